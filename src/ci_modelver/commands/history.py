"""``history``, ``reproduce`` and ``attach``: what happened to a model, and how to rebuild it."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters import files
from ci_modelver.adapters.files import PathProblem
from ci_modelver.adapters.referrers import evaluations_of, push_referrer
from ci_modelver.adapters.store import hash_file
from ci_modelver.core.audit import (
    EVALUATION_TYPE,
    AliasMove,
    Evaluation,
    evaluation_manifest,
    is_internal_tag,
    overlay,
)
from ci_modelver.core.context import precise_time
from ci_modelver.core.modelpack import OCI_MANIFEST, Descriptor, parse_model_manifest
from ci_modelver.core.move_trust import MoveTrust
from ci_modelver.core.provenance import (
    FAILING_LOCK_STATUSES,
    LockCheck,
    command_text,
    lockfile_path_problem,
    normal_lockfile_path,
)
from ci_modelver.core.refs import Reference, is_version_tag, semver_key
from ci_modelver.core.text import one_line
from ci_modelver.core.trust import Policy
from ci_modelver.core.validate import metric_value_findings, relative_path_problem, schema_findings
from ci_modelver.errors import GateFailed, InputError, InvalidMetrics, ModelverError, Untrusted
from ci_modelver.settings import Settings
from ci_modelver.signatures import load_policy, move_signature
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    actor,
    add_trust_flags,
    alias_log,
    open_store,
    read_artifact,
    read_model,
    repository_argument,
    version_target,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "history",
        parents=[parents.common, parents.remote],
        help="versions, aliases and the alias log",
        description="Versions in SemVer order with digest, creation time, commit, gated "
        "metrics and aliases; then every recorded alias move.",
    )
    p.add_argument(
        "repository_ref",
        nargs="?",
        metavar="REPO",
        help="HOST/PATH, oci:DIR or a model name (default: the model of ./modelver.yaml)",
    )
    p.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    p.add_argument("--limit", type=int, metavar="N", help="only the N newest versions and moves")
    p.add_argument(
        "--verify",
        action="store_true",
        help="check each alias-move record's signature: trusted, unknown-signer or unsigned "
        "(needs --key PUB or --ca ROOTS --cert-identity NAME)",
    )
    add_trust_flags(p)
    p.add_argument(
        "--require-signature",
        action="store_true",
        help="exit 5 when any alias-move record shown is not signed by a trusted signer "
        "(implies --verify)",
    )
    p.set_defaults(run=run_history)

    p = sub.add_parser(
        "reproduce",
        parents=[parents.common, parents.remote],
        help="what is needed to rebuild a version",
        description="Code, data, build (command, lock files, Python, platform, CI run), "
        "hyperparameters and framework of a version; --check-data hashes local dataset files "
        "and --check-env the recorded lock files, and each exits 1 on a mismatch.",
    )
    p.add_argument("ref", metavar="REF")
    p.add_argument("--check-data", metavar="DIR")
    p.add_argument(
        "--check-env",
        metavar="DIR",
        help="compare the recorded lock files with the ones in DIR (the manifest's folder)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run_reproduce)

    p = sub.add_parser(
        "attach",
        parents=[parents.common, parents.remote],
        help="attach later metrics to a version",
        description="Attach an evaluation (metrics measured after release) to a version as "
        "a referrer; the version's digest does not change.",
    )
    p.add_argument("ref", metavar="REF")
    p.add_argument(
        "--metrics", required=True, metavar="FILE", help="JSON/YAML {set: {metric: number}}"
    )
    p.add_argument(
        "--set",
        metavar="NAME",
        help="the evaluation set, for a flat {metric: number} file or to pick one set",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run_attach)


def run_history(args: argparse.Namespace, inv: Invocation) -> History:
    settings = inv.settings
    policy = load_policy(
        settings, key_files=args.trusted_keys, ca=args.ca, identity=args.cert_identity
    )
    wanted = args.verify or args.require_signature
    if policy.empty and wanted:
        flag = "--require-signature" if args.require_signature else "--verify"
        raise InputError(
            f"history {flag}: name who is trusted: --key PUB (repeatable), or --ca ROOTS "
            "--cert-identity NAME"
        )
    return history(
        args.repository_ref,
        settings,
        limit=args.limit,
        policy=None if policy.empty else policy,
        require_signature=args.require_signature,
    )


def run_reproduce(args: argparse.Namespace, inv: Invocation) -> Reproduction:
    check = Path(args.check_data) if args.check_data else None
    env = Path(args.check_env) if args.check_env else None
    return reproduce(args.ref, inv.settings, check_data=check, check_env=env)


def run_attach(args: argparse.Namespace, inv: Invocation) -> AttachResult:
    return attach(args.ref, Path(args.metrics), inv.settings, set_name=args.set)


def _load_metrics(path: Path, set_name: str | None) -> dict[str, dict[str, float]]:
    doc = files.load_document(path, str(path))
    findings = list(doc.problems)
    data = doc.data
    if data is None and not findings:
        findings.append(doc.finding((), "the metrics file is empty"))
    if (
        set_name is not None
        and isinstance(data, dict)
        and all(not isinstance(v, dict) for v in data.values())
    ):
        data = {set_name: data}  # --set NAME with a flat {metric: number} file
        doc = type(doc)(
            doc.file,
            data,
            {(set_name, *k): v for k, v in doc.keys.items()},
            {(set_name, *k): v for k, v in doc.values.items()},
            doc.problems,
        )
    if data is not None:
        findings.extend(schema_findings(doc, files.bundled_schema("metrics")))
        findings.extend(metric_value_findings(doc, data, ()))
    if findings:
        raise InvalidMetrics(str(path), tuple(findings))
    assert isinstance(data, dict)
    if set_name is not None:
        if set_name not in data:
            raise InputError(
                f"{path}: --set {set_name}: the file has no evaluation set '{set_name}' (it has {', '.join(sorted(data))})"
            )
        data = {set_name: data[set_name]}
    return {s: {m: float(v) for m, v in values.items()} for s, values in data.items()}


@dataclass(frozen=True)
class AttachResult:
    ref: Reference
    digest: str
    evaluation: Evaluation

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": str(self.ref.with_digest(self.digest)),
            "digest": self.digest,
            "record": self.evaluation.record_digest,
            **self.evaluation.to_json(),
        }


def attach(
    ref_text: str,
    metrics_file: Path,
    settings: Settings,
    *,
    set_name: str | None,
    now: Callable[[], float] = time.time,
) -> AttachResult:
    """Attach later metrics to a version as a referrer; the version's digest does not change."""
    ref, target = version_target(ref_text, settings, "attach")
    metrics = _load_metrics(metrics_file, set_name)
    store = open_store(ref.bare(), settings, create=False)
    data, artifact = read_model(store, str(ref), target)
    digest = artifact.digest
    when = precise_time(now())
    evaluation = Evaluation(metrics, when, actor(settings.env), metrics_file.name)
    subject = Descriptor(OCI_MANIFEST, digest, len(data))
    entry = push_referrer(
        store,
        subject,
        evaluation_manifest(evaluation, subject),
        EVALUATION_TYPE,
        tag=None,
        created=when,
    )
    return AttachResult(
        ref.bare(),
        digest,
        Evaluation(metrics, when, evaluation.actor, evaluation.source, entry.digest),
    )


@dataclass(frozen=True)
class VersionEntry:
    version: str
    digest: str
    created: str | None
    commit: str | None
    gated: Mapping[str, float]
    aliases: tuple[str, ...]
    evaluations: int

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "created": self.created,
            "commit": self.commit,
            "gatedMetrics": dict(self.gated),
            "aliases": list(self.aliases),
            "evaluations": self.evaluations,
        }


@dataclass(frozen=True)
class History:
    repository: Reference
    versions: tuple[VersionEntry, ...]
    moves: tuple[AliasMove, ...]
    # With --verify: what each move's record signatures prove (same order as ``moves``).
    trust: tuple[MoveTrust, ...] | None = None
    policy: Policy | None = None
    require_signature: bool = False

    def failure(self) -> Untrusted | None:
        """Exit 5 with --require-signature when a shown alias-move record is not trusted."""
        if not self.require_signature or self.trust is None:
            return None
        bad = [(m, t) for m, t in zip(self.moves, self.trust, strict=True) if not t.trusted]
        if not bad:
            return None
        move, trust = bad[0]
        why = f": {trust.problem}" if trust.problem else ""
        shown = self.policy.describe() if self.policy else "nobody"
        return Untrusted(
            f"{self.repository}: {len(bad)} of {len(self.moves)} alias move record(s) shown are "
            f"not signed by a trusted signer; the first: {move.alias} at {move.time} "
            f"({move.record_digest}) is {trust.status}{why}; trusted: {shown}"
        )

    def to_json(self) -> dict[str, Any]:
        log = [m.to_json() for m in self.moves]
        if self.trust is not None:
            for entry, move, trust in zip(log, self.moves, self.trust, strict=True):
                entry["record"] = move.record_digest
                entry["signature"] = trust.to_json()
        return {
            "repository": str(self.repository),
            "versions": [v.to_json() for v in self.versions],
            "aliasLog": log,
            "verified": self.trust is not None,
        }


def _gated_metrics(
    record: Mapping[str, Any], metrics: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    raw = record.get("gates")
    gates: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    out: dict[str, float] = {}
    for set_name, values in metrics.items():
        for metric, value in values.items():
            if f"{set_name}/{metric}" in gates or metric in gates:
                out[f"{set_name}/{metric}"] = value
    return out


def history(
    repo_text: str | None,
    settings: Settings,
    *,
    limit: int | None,
    policy: Policy | None = None,
    require_signature: bool = False,
) -> History:
    """Versions (SemVer order) with digests, creation, commit, gated metrics, aliases; the alias log.

    With ``policy`` each alias-move record shown is checked: trusted, unknown-signer or unsigned.
    """
    if limit is not None and limit < 1:
        raise InputError(f"history: --limit must be 1 or more, got {limit}")
    ref = repository_argument(repo_text, settings, "history")
    store = open_store(ref, settings, create=False)
    tags = store.tags()
    versions = sorted((t for t in tags if is_version_tag(t)), key=semver_key)
    if limit is not None:
        versions = versions[-limit:] if limit > 0 else []
    alias_tags = [t for t in tags if not is_version_tag(t) and not is_internal_tag(t)]
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        resolved = dict(zip(alias_tags, pool.map(store.resolve, alias_tags), strict=True))

    def entry(tag: str) -> VersionEntry | None:
        found = store.find_manifest(tag)
        if found is None:
            return None
        try:
            artifact = parse_model_manifest(found[0], found[1], f"{ref}:{tag}")
        except ModelverError:
            return None
        record = dict(artifact.record or {})
        evaluations = evaluations_of(store, artifact.digest)
        metrics = overlay(record.get("metrics") or {}, evaluations)
        aliases = tuple(
            sorted(a for a, d in resolved.items() if d is not None and d.digest == artifact.digest)
        )
        raw_code = record.get("code")
        code: Mapping[str, Any] = raw_code if isinstance(raw_code, dict) else {}
        return VersionEntry(
            tag,
            artifact.digest,
            record.get("created"),
            code.get("commit"),
            _gated_metrics(record, metrics),
            aliases,
            len(evaluations),
        )

    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        entries = tuple(e for e in pool.map(entry, versions) if e is not None)
    moves = alias_log(store, settings.concurrency)
    if limit is not None:
        moves = moves[-limit:] if limit > 0 else []
    trust = None
    if policy is not None:
        checked = policy

        def signature(move: AliasMove) -> MoveTrust:
            assert move.record_digest is not None  # alias_log reads records by their digest
            return move_signature(store, move.record_digest, checked)

        with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
            trust = tuple(pool.map(signature, moves))
    return History(ref, entries, tuple(moves), trust, policy, require_signature)


@dataclass(frozen=True)
class DataCheck:
    name: str
    uri: str
    expected: str | None
    status: str  # match, mismatch, missing, unchecked
    found: str | None = None


@dataclass(frozen=True)
class Reproduction:
    ref: Reference
    digest: str
    record: Mapping[str, Any]
    checks: tuple[DataCheck, ...]
    env_checks: tuple[LockCheck, ...] = ()

    @property
    def mismatch(self) -> bool:
        return any(c.status == "mismatch" for c in self.checks)

    def failure(self) -> ModelverError | None:
        problems = []
        if self.mismatch:
            problems.append("a local dataset does not match the digest recorded at publish time")
        failed = [c for c in self.env_checks if c.status in FAILING_LOCK_STATUSES]
        if failed:
            shown = ", ".join(f"{one_line(c.path, 200)} ({c.status})" for c in failed[:10])
            more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
            problems.append(
                f"lock file(s) differ from the ones recorded at publish time: {shown}{more}"
            )
        return GateFailed("; ".join(problems)) if problems else None

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "ref": str(self.ref.with_digest(self.digest)),
            "digest": self.digest,
            "name": record.get("name"),
            "version": record.get("version"),
            "code": record.get("code") or {},
            "data": list(record.get("data") or []),
            "hyperparameters": record.get("hyperparameters") or {},
            "framework": record.get("framework") or {},
            "build": record.get("build") or {},
            "commands": _commands(record),
            "dataCheck": [
                {
                    "name": c.name,
                    "uri": c.uri,
                    "expected": c.expected,
                    "found": c.found,
                    "status": c.status,
                }
                for c in self.checks
            ],
            "envCheck": [c.to_json() for c in self.env_checks],
        }


def _commands(record: Mapping[str, Any]) -> list[str]:
    """The recorded training command, as one line of shell (a list of words is quoted)."""
    raw = record.get("build")
    build: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    text = command_text(build.get("command"))
    return [text] if text is not None else []


def reproduce(
    ref_text: str,
    settings: Settings,
    *,
    check_data: Path | None,
    check_env: Path | None = None,
) -> Reproduction:
    """What is needed to rebuild a version; ``check_data``/``check_env`` compare local files."""
    ref, target = version_target(ref_text, settings, "reproduce")
    if check_env is not None and not check_env.is_dir():  # a local mistake: before any request
        raise InputError(
            f"--check-env {check_env}: not a folder; give the folder the version's manifest "
            "was published from"
        )
    store = open_store(ref.bare(), settings, create=False)
    artifact, _config = read_artifact(store, ref, target)
    record = dict(artifact.record or {})
    if not record:
        raise InputError(
            f"{ref}: has no ci-modelver version record, so there is nothing to reproduce from"
        )
    checks: list[DataCheck] = []
    if check_data is not None:
        if not check_data.is_dir():
            raise InputError(f"--check-data {check_data}: not a folder")
        for item in record.get("data") or []:
            if isinstance(item, dict):
                checks.append(_check_dataset(item, check_data))
    env_checks: list[LockCheck] = []
    if check_env is not None:
        build = record.get("build") or {}
        env_checks = [_check_lockfile(item, check_env) for item in build.get("lockfiles") or []]
    return Reproduction(ref.bare(), artifact.digest, record, tuple(checks), tuple(env_checks))


def _check_lockfile(item: Mapping[str, Any], folder: Path) -> LockCheck:
    """One recorded lock file against ``folder/path``: only regular files are ever read.

    The path comes from the store. It is used only when it is relative (it may lead above
    ``folder``, as lock files may lie above the manifest), and only a regular file is hashed: a
    device, a FIFO or a folder named by a hostile record is never opened.
    """
    path, expected = str(item["path"]), str(item["digest"])
    if lockfile_path_problem(path) is not None:
        return LockCheck(path, expected, "refused")
    check = files.check_file(folder, normal_lockfile_path(path), must_stay_inside=False)
    if check.problem is PathProblem.MISSING:
        return LockCheck(path, expected, "missing")
    if check.problem is not None:
        return LockCheck(path, expected, "refused")
    found = hash_file(folder / normal_lockfile_path(path))[0]
    return LockCheck(path, expected, "match" if found == expected else "mismatch", found)


def _check_dataset(item: Mapping[str, Any], folder: Path) -> DataCheck:
    name, uri, expected = str(item.get("name")), str(item.get("uri")), item.get("digest")
    recorded = item.get("path")
    # The record comes from the store: only clean relative paths, so DIR is never left.
    options = (recorded, recorded.rsplit("/", 1)[-1] if isinstance(recorded, str) else None, name)
    candidates = [
        c for c in options if isinstance(c, str) and c and relative_path_problem(c) is None
    ]
    for candidate in candidates:
        path = folder / candidate
        if path.is_file():
            found = hash_file(path)[0]
            status = "match" if found == expected else "mismatch"
            return DataCheck(
                name, uri, expected if isinstance(expected, str) else None, status, found
            )
    return DataCheck(name, uri, expected if isinstance(expected, str) else None, "missing")

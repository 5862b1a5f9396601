"""``ci-modelver compare``: judge a candidate against its baseline and report it (and on the PR)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_modelver import __version__
from ci_modelver.adapters import files
from ci_modelver.adapters.github import (
    GitHubClient,
    append_summary,
    pull_request_from_event,
    write_outputs,
)
from ci_modelver.adapters.referrers import evaluations_of
from ci_modelver.adapters.store import Store
from ci_modelver.commands.inspect import read_artifact
from ci_modelver.commands.publish import InvalidManifest, prepare
from ci_modelver.commands.stores import open_store, repository_for
from ci_modelver.commands.validate import validate_manifest
from ci_modelver.core.audit import Evaluation, overlay
from ci_modelver.core.compare import Comparison, FileInfo, Side, TrendPoint, compare
from ci_modelver.core.compare_report import (
    COMMENT_LIMIT,
    SUMMARY_LIMIT,
    comparison_json,
    marker_for,
    render_markdown,
    render_text,
)
from ci_modelver.core.manifest import Manifest
from ci_modelver.core.modelpack import ModelArtifact, parse_model_manifest
from ci_modelver.core.refs import Reference, is_version_tag, parse_ref, semver_key
from ci_modelver.errors import InputError, ModelverError
from ci_modelver.settings import Settings

DEFAULT_ALIAS = "production"


def _metrics_of(record: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Metrics of a version record; parse_model_manifest already kept only finite numbers."""
    metrics = record.get("metrics")
    return {s: dict(v) for s, v in metrics.items()} if isinstance(metrics, dict) else {}


def side_from_artifact(
    artifact: ModelArtifact, ref: Reference, label: str, evaluations: Sequence[Evaluation] = ()
) -> Side:
    """A published version as one side of a comparison; attached evaluations override its metrics per set."""
    record = dict(artifact.record or {})
    version = str(
        record.get("version") or artifact.annotations.get("org.opencontainers.image.version") or "?"
    )
    return Side(
        name=str(record.get("name") or ref.name),
        version=version,
        digest=artifact.digest,
        ref=str(ref.with_digest(artifact.digest)),
        metrics=overlay(_metrics_of(record), evaluations),
        hyperparameters=record.get("hyperparameters") or {},
        data=[d for d in record.get("data") or [] if isinstance(d, dict)],
        code=record.get("code") or {},
        files=[
            FileInfo(artifact.file_path(layer), artifact.file_type(layer), layer.digest, layer.size)
            for layer in artifact.layers
        ],
        label=label,
    )


def _open_existing(repository: Reference, settings: Settings) -> Store | None:
    try:
        return open_store(repository, settings, create=False)
    except InputError:
        if repository.kind == "layout":
            return None  # no embedded store yet: nothing was ever published here
        raise


def _target_of(text: str, repository: Reference) -> tuple[Reference, str]:
    """``--baseline`` may be a full reference, a tag/alias/version, or a digest in the repository."""
    if text.startswith("oci:") or "/" in text:
        ref = parse_ref(text)
        target = ref.digest or ref.tag
        if not target:
            raise InputError(
                f"--baseline '{text}' names no version; add ':VERSION', ':ALIAS' or '@sha256:…'"
            )
        return ref.bare(), target
    if text.startswith("sha256:"):
        return repository, parse_ref(f"{repository}@{text}").digest or text
    return repository, parse_ref(f"{repository}:{text}").tag or text


@dataclass(frozen=True)
class BaselineChoice:
    """Which version was chosen as the baseline and why."""

    artifact: ModelArtifact | None
    ref: Reference
    label: str
    note: str = ""


def _below(version: str, tags: list[str]) -> str | None:
    candidates = [t for t in tags if is_version_tag(t) and semver_key(t) < semver_key(version)]
    return max(candidates, key=semver_key) if candidates else None


def choose_baseline(
    manifest: Manifest,
    explicit: str | None,
    repository: Reference,
    store: Store | None,
    tags: list[str],
    settings: Settings,
) -> BaselineChoice:
    """--baseline, else the manifest's baseline, else 'production', else the highest lower version."""
    if explicit:
        ref, target = _target_of(explicit, repository)
        src = store if ref == repository else _open_existing(ref, settings)
        found = (
            src.resolve(target) if src is not None and not target.startswith("sha256:") else None
        )
        if src is None or (found is None and not target.startswith("sha256:")):
            raise InputError(
                f"--baseline '{explicit}': not found in {ref}; check 'ci-modelver versions {ref}'"
            )
        artifact, _ = read_artifact(src, ref, target)
        return BaselineChoice(artifact, ref, explicit)
    wanted = manifest.baseline or DEFAULT_ALIAS
    if store is not None:
        if wanted.startswith("sha256:") or store.resolve(wanted) is not None:
            artifact, _ = read_artifact(store, repository, wanted)
            return BaselineChoice(artifact, repository, wanted)
        lower = _below(manifest.version, tags)
        if lower is not None:
            artifact, _ = read_artifact(store, repository, lower)
            note = f"'{wanted}' does not exist yet in {repository}; compared with the highest lower version, {lower}."
            return BaselineChoice(artifact, repository, lower, note)
    return BaselineChoice(
        None, repository, "", f"No '{wanted}' and no earlier version in {repository}."
    )


def _trend(
    store: Store, repository: Reference, tags: list[str], exclude: str, workers: int
) -> list[TrendPoint]:
    versions = sorted((t for t in tags if is_version_tag(t) and t != exclude), key=semver_key)[-10:]

    def load(tag: str) -> TrendPoint | None:
        try:
            data, digest = store.get_manifest(tag)
            record = parse_model_manifest(data, digest, f"{repository}:{tag}").record or {}
        except ModelverError:
            return None
        return TrendPoint(tag, _metrics_of(dict(record)))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [p for p in pool.map(load, versions) if p is not None]


def run_compare(
    manifest_path: Path,
    settings: Settings,
    *,
    baseline: str | None,
    now: Callable[[], float] = time.time,
) -> Comparison:
    """Pack the candidate without pushing, find its baseline, judge and diff."""
    result = validate_manifest(manifest_path, str(manifest_path))
    if result.manifest is None:
        raise InvalidManifest(result)
    manifest = result.manifest
    packed, _sources = prepare(manifest, manifest_path.parent, settings, now)
    repository = repository_for(settings, manifest.name)
    store = _open_existing(repository.bare(), settings)
    tags = store.tags() if store is not None else []
    choice = choose_baseline(manifest, baseline, repository.bare(), store, tags, settings)
    record = dict(packed.record)
    candidate = Side(
        name=manifest.name,
        version=manifest.version,
        digest=packed.digest,
        ref=None,
        metrics=manifest.metrics,
        hyperparameters=manifest.hyperparameters,
        data=list(record.get("data") or []),
        code=record.get("code") or {},
        files=[
            FileInfo(f.path, f.type, layer.digest, layer.size)
            for f, layer in zip(manifest.files, packed.layers, strict=True)
        ],
        label="candidate",
    )
    base_side = None
    if choice.artifact is not None:
        base_store = (
            store if choice.ref == repository.bare() else _open_existing(choice.ref, settings)
        )
        evaluations = (
            evaluations_of(base_store, choice.artifact.digest) if base_store is not None else []
        )
        base_side = side_from_artifact(choice.artifact, choice.ref, choice.label, evaluations)
    trend = (
        _trend(store, repository.bare(), tags, manifest.version, settings.concurrency)
        if store is not None
        else []
    )
    return compare(candidate, base_side, manifest.gates, trend, choice.note)


@dataclass
class Delivery:
    """Where the report went (for outputs and for the CLI to tell the user)."""

    report_path: Path | None = None
    comment_url: str | None = None
    comment_action: str | None = None
    warnings: list[str] = field(default_factory=list)


def report_markdown(
    comparison: Comparison, template: str | None, key: str | None, limit: int = COMMENT_LIMIT
) -> str:
    text = template if template is not None else files.bundled_template("compare.md.j2")
    return render_markdown(
        comparison,
        text,
        marker=marker_for(comparison.candidate.name, key),
        version=__version__,
        limit=limit,
    )


def report_text(comparison: Comparison, template: str | None) -> str:
    text = template if template is not None else files.bundled_template("compare.txt.j2")
    return render_text(comparison, text, version=__version__)


def report_json(comparison: Comparison) -> str:
    return json.dumps(comparison_json(comparison), indent=2, sort_keys=True, ensure_ascii=False)


def deliver(
    comparison: Comparison,
    settings: Settings,
    *,
    template: str | None,
    key: str | None,
    comment: bool,
    pr: int | None,
    token: str | None,
    comment_file: Path | None,
) -> Delivery:
    """Job summary, outputs, comment file and the sticky comment; never fails for a read-only token."""
    env = settings.env
    delivery = Delivery()
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        full = report_markdown(comparison, template, key, limit=SUMMARY_LIMIT // 2)
        append_summary(Path(summary), full)
    # The comment-sized report is rendered only when something will carry it.
    if comment or comment_file is not None:
        markdown = report_markdown(comparison, template, key)
        target = comment_file or _default_comment_file(
            env, comparison.candidate.name, key, settings.cwd
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(markdown, encoding="utf-8")
        delivery.report_path = target
    if comment:
        post_comment(delivery, markdown, settings, pr=pr, token=token)
    output = env.get("GITHUB_OUTPUT")
    if settings.in_github_actions and output:
        write_outputs(
            Path(output),
            {
                "regression": "true" if comparison.failed else "false",
                "report-path": str(delivery.report_path or ""),
                "comment-url": delivery.comment_url or "",
                "baseline-digest": comparison.baseline.digest or "" if comparison.baseline else "",
            },
        )
    return delivery


def _default_comment_file(env: Mapping[str, str], name: str, key: str | None, cwd: Path) -> Path:
    base = Path(env.get("RUNNER_TEMP") or cwd)
    suffix = "-" + re.sub(r"[^A-Za-z0-9._-]", "_", key) if key else ""  # never a path separator
    return base / f"ci-modelver-comment-{name}{suffix}.md"


def post_comment(
    delivery: Delivery, markdown: str, settings: Settings, *, pr: int | None, token: str | None
) -> None:
    """Create or update the sticky comment; a read-only token (fork PR) becomes a warning."""
    env = settings.env
    repo = env.get("GITHUB_REPOSITORY")
    fork = False
    number = pr
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).is_file():
        event_repo, event_number, fork = pull_request_from_event(Path(event_path))
        repo = repo or event_repo
        number = number if number is not None else event_number
    if number is None:
        raise InputError(
            "--comment: no pull request number; pass --pr N or run on a pull_request event"
        )
    if not repo:
        raise InputError("--comment: no repository; set GITHUB_REPOSITORY=owner/name")
    if not token:
        raise InputError("--comment: no GitHub token; set GITHUB_TOKEN or pass --github-token")
    api = env.get("GITHUB_API_URL") or "https://api.github.com"
    marker = markdown.split("\n", 1)[0]
    client = GitHubClient(api, token, author=env.get("MODELVER_COMMENT_AUTHOR") or None)
    outcome = client.upsert_comment(repo, number, markdown, marker)
    delivery.comment_action = outcome.action
    delivery.comment_url = outcome.url
    if outcome.action == "read-only":
        why = (
            "this pull request comes from a fork, so the token is read-only"
            if fork
            else "the token cannot write comments"
        )
        delivery.warnings.append(
            f"could not comment on {repo}#{number} ({outcome.detail}): {why}; the report is in the job "
            f"summary and in {delivery.report_path} — post it from a workflow_run job with "
            "'ci-modelver comment --from-file FILE --pr N'"
        )


def comment_from_file(
    path: Path, settings: Settings, *, pr: int | None, token: str | None
) -> Delivery:
    """``ci-modelver comment --from-file``: post a report written earlier (e.g. by a fork PR job)."""
    text = files.read_text(path, str(path))
    if not text.startswith("<!-- ci-modelver:report "):
        raise InputError(
            f"{path}: not a ci-modelver report (its first line must be the report marker)"
        )
    if len(text) > COMMENT_LIMIT:
        raise InputError(
            f"{path}: {len(text)} characters is over GitHub's {COMMENT_LIMIT}-character comment limit"
        )
    delivery = Delivery(report_path=path)
    post_comment(delivery, text, settings, pr=pr, token=token)
    return delivery

"""``ci-modelver compare`` and ``comment``: judge a candidate against its baseline, report it."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_modelver import __version__
from ci_modelver.adapters import files
from ci_modelver.adapters.github import GitHubClient, api_url_from, pull_request_from_event
from ci_modelver.adapters.referrers import evaluations_of
from ci_modelver.adapters.store import Store
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
from ci_modelver.core.jsontext import json_text
from ci_modelver.core.manifest import Manifest
from ci_modelver.core.modelpack import ModelArtifact, parse_model_manifest
from ci_modelver.core.refs import (
    Reference,
    check_digest,
    check_tag,
    is_version_tag,
    parse_ref,
    semver_key,
)
from ci_modelver.errors import GateFailed, GitHubError, InputError, ModelverError, TemplateError
from ci_modelver.packing import prepare
from ci_modelver.settings import ACTION, Settings
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    load_manifest,
    metrics_of,
    open_existing,
    read_artifact,
    repository_for,
    safe_file_part,
    version_of,
)

DEFAULT_ALIAS = "production"


def side_from_artifact(
    artifact: ModelArtifact, ref: Reference, label: str, evaluations: Sequence[Evaluation] = ()
) -> Side:
    """A published version as one side of a comparison; attached evaluations override its metrics per set."""
    record = dict(artifact.record or {})
    version = version_of(artifact) or "?"
    return Side(
        name=str(record.get("name") or ref.name),
        version=version,
        digest=artifact.digest,
        ref=str(ref.with_digest(artifact.digest)),
        metrics=overlay(metrics_of(record), evaluations),
        hyperparameters=record.get("hyperparameters") or {},
        data=[d for d in record.get("data") or [] if isinstance(d, dict)],
        code=record.get("code") or {},
        files=[
            FileInfo(artifact.file_path(layer), artifact.file_type(layer), layer.digest, layer.size)
            for layer in artifact.layers
        ],
        label=label,
    )


def _target_of(text: str, repository: Reference, option: str) -> tuple[Reference, str]:
    """``--baseline`` may be a full reference, a tag/alias/version, or a digest in the repository."""
    if text.startswith("oci:") or "/" in text:
        ref = parse_ref(text)
        target = ref.digest or ref.tag
        if not target:
            raise InputError(
                f"{option} '{text}' names no version; add ':VERSION', ':ALIAS' or '@sha256:…'"
            )
        return ref.bare(), target
    try:
        if text.startswith("sha256:"):
            return repository, check_digest(text)
        return repository, check_tag(text, "tag")
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None


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
        option = settings.option("baseline")
        ref, target = _target_of(explicit, repository, option)
        src = store if ref == repository else open_existing(ref, settings)
        found = (
            src.resolve(target) if src is not None and not target.startswith("sha256:") else None
        )
        if src is None or (found is None and not target.startswith("sha256:")):
            raise InputError(
                f"{option} '{explicit}': not found in {ref}; check 'ci-modelver versions {ref}'"
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
        return TrendPoint(tag, metrics_of(dict(record)))

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
    manifest = load_manifest(manifest_path)
    return compare_manifest(manifest, manifest_path.parent, settings, baseline=baseline, now=now)


def compare_manifest(
    manifest: Manifest,
    base: Path,
    settings: Settings,
    *,
    baseline: str | None,
    now: Callable[[], float] = time.time,
) -> Comparison:
    """``run_compare`` for a manifest already validated (files relative to ``base``)."""
    packed, _sources = prepare(manifest, base, settings, now)
    repository = repository_for(settings, manifest.name)
    store = open_existing(repository.bare(), settings)
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
            store if choice.ref == repository.bare() else open_existing(choice.ref, settings)
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
    """Where the report went besides the terminal: the comment file and the sticky comment."""

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
    return json_text(comparison_json(comparison))


def summary_markdown(comparison: Comparison, template: str | None, key: str | None) -> str:
    """The report sized for the job summary (half GitHub's limit: other steps write there too)."""
    return report_markdown(comparison, template, key, limit=SUMMARY_LIMIT // 2)


def default_comment_file(settings: Settings, name: str, key: str | None) -> Path:
    base = Path(settings.env.get("RUNNER_TEMP") or settings.cwd)
    suffix = "-" + safe_file_part(key) if key else ""
    return base / f"ci-modelver-comment-{name}{suffix}.md"


def write_report_file(path: Path, markdown: str, what: str) -> Path:
    """Write the comment-sized report where a later job (or the user) can pick it up.

    Written beside the target and renamed over it: a symlink planted at the path (the default
    file may sit in a pull request's checkout) is replaced, never written through.
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ci-modelver-report-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(markdown)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def post_comment(
    delivery: Delivery,
    markdown: str,
    settings: Settings,
    *,
    pr: int | None,
    token: str | None,
    wait_hint: str | None = None,
) -> None:
    """Create or update the sticky comment within ``settings.timeout``; a token that may not
    write (a fork's pull request) becomes a warning, every other refusal an error (exit 3)."""
    env = settings.env
    repo = env.get("GITHUB_REPOSITORY")
    fork = False
    number = pr
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).is_file():
        event_repo, event_number, fork = pull_request_from_event(Path(event_path))
        repo = repo or event_repo
        number = number if number is not None else event_number
    comment = settings.option("comment")
    if number is None:
        raise InputError(
            f"{comment}: no pull request number; {settings.supply('pr')} N or run on a "
            "pull_request event"
            if settings.surface != ACTION
            else f"{comment}: the event payload has no pull request number; set comment: false "
            "outside pull requests"
        )
    if not repo:
        raise InputError(f"{comment}: no repository; set GITHUB_REPOSITORY=owner/name")
    if not token:
        raise InputError(
            f"{comment}: no GitHub token; set GITHUB_TOKEN or {settings.supply('github-token')}"
        )
    api = api_url_from(env)
    from_env = token == env.get("GITHUB_TOKEN") and settings.surface != ACTION
    client = GitHubClient(
        api,
        token,
        author=env.get("MODELVER_COMMENT_AUTHOR") or None,
        budget=settings.timeout,
        token_source="GITHUB_TOKEN" if from_env else settings.option("github-token"),
        wait_hint=wait_hint or settings.wait_hint(),
        log=settings.log,
    )
    marker = markdown.split("\n", 1)[0]
    try:
        outcome = client.upsert_comment(repo, number, markdown, marker)
    except GitHubError as exc:
        if delivery.report_path is None:
            raise
        raise GitHubError(
            f"{exc}; the report is kept in {delivery.report_path}", exc.kind, exc.status
        ) from None
    delivery.comment_action = outcome.action
    delivery.comment_url = outcome.url
    if outcome.action == "read-only":
        why = (
            "this pull request comes from a fork, so the token is read-only"
            if fork
            else outcome.advice or "the token may not write comments"
        )
        delivery.warnings.append(
            f"could not comment on {repo}#{number} ({outcome.detail}): {why}; the report is in the job "
            f"summary and in {delivery.report_path} — post it from a workflow_run job with "
            "'ci-modelver comment --from-file FILE --pr N'"
        )


@dataclass(frozen=True)
class CompareResult:
    """A comparison, its report in the requested format, and where else it went."""

    comparison: Comparison
    report: str
    output: Path | None  # --output: the report went to this file, not to the terminal
    summary: str | None  # the job summary's Markdown, inside GitHub Actions
    delivery: Delivery
    enforce: bool  # a failed gate fails the command (not --no-fail)

    def to_json(self) -> dict[str, Any]:
        return comparison_json(self.comparison)

    def outputs(self) -> dict[str, str]:
        c = self.comparison
        return {
            "digest": c.candidate.digest or "",
            "version": c.candidate.version,
            "regression": "true" if c.failed else "false",
            "baseline-digest": (c.baseline.digest or "") if c.baseline else "",
            "report-path": str(self.delivery.report_path or ""),
            "comment-url": self.delivery.comment_url or "",
        }

    def failure(self) -> ModelverError | None:
        c = self.comparison
        if not (c.failed and self.enforce):
            return None
        names = ", ".join(f"{r.set}/{r.metric}" for r in c.failures[:5])
        return GateFailed(f"regression: {len(c.failures)} gate(s) failed ({names})")


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "compare",
        parents=[parents.common, parents.remote],
        help="compare a candidate with its baseline",
        description="Compare the manifest's metrics with its baseline (default: the "
        "'production' alias, else the highest lower version), judge the gates, diff "
        "hyperparameters, data, code and files; exit 1 when a gate fails.",
    )
    p.add_argument("manifest", nargs="?", default="modelver.yaml", metavar="MANIFEST")
    p.add_argument(
        "--repository", metavar="REPO", help="where published versions live (as for publish)"
    )
    p.add_argument(
        "--baseline",
        metavar="REF",
        help="alias, version, digest or full reference to compare against",
    )
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument(
        "--template",
        metavar="FILE",
        help="Jinja2 template replacing the bundled one (text or markdown)",
    )
    p.add_argument(
        "--comment", action="store_true", help="post or update the sticky pull-request comment"
    )
    p.add_argument("--comment-key", metavar="KEY", help="separate sticky comments per matrix job")
    p.add_argument(
        "--comment-file",
        metavar="FILE",
        help="also write the comment Markdown here (default under $RUNNER_TEMP)",
    )
    p.add_argument(
        "--pr", type=int, metavar="N", help="pull request number (default: from GITHUB_EVENT_PATH)"
    )
    p.add_argument("--github-token", metavar="TOKEN", help="default: env GITHUB_TOKEN")
    p.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a gate fails (report only)"
    )
    p.set_defaults(run=run)

    p = sub.add_parser(
        "comment",
        parents=[parents.common],
        help="post a saved report as the sticky PR comment",
        description="Post a report written by 'compare --comment' (e.g. in a fork PR job) "
        "from a workflow_run job that has a write token.",
    )
    p.add_argument("--from-file", required=True, metavar="FILE")
    p.add_argument("--pr", type=int, metavar="N")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds all GitHub requests of the comment may take (default 120, env MODELVER_TIMEOUT)",
    )
    p.add_argument("--github-token", metavar="TOKEN", help="default: env GITHUB_TOKEN")
    p.set_defaults(run=run_comment)


def _render(run: Callable[[], str], template_path: str | None) -> str:
    try:
        return run()
    except TemplateError as exc:
        raise InputError(f"--template {template_path}: {exc.detail}") from None


def run(args: argparse.Namespace, inv: Invocation) -> CompareResult:
    settings = inv.settings
    template = files.read_text(Path(args.template), args.template) if args.template else None
    comparison = run_compare(Path(args.manifest), settings, baseline=args.baseline)
    fmt = args.format
    if fmt == "json":
        report = report_json(comparison)
    elif fmt == "markdown":
        report = _render(
            lambda: report_markdown(comparison, template, args.comment_key), args.template
        )
    else:
        report = _render(lambda: report_text(comparison, template), args.template)
    output = None
    if args.output:
        output = Path(args.output)
        try:
            output.write_text(report.rstrip("\n") + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"--output {args.output}: cannot write: {exc.strerror or exc}"
            ) from None
    markdown_template = template if fmt == "markdown" else None
    summary = None
    if settings.in_github_actions:
        summary = _render(
            lambda: summary_markdown(comparison, markdown_template, args.comment_key),
            args.template,
        )
    delivery = Delivery()
    if args.comment or args.comment_file:
        markdown = _render(
            lambda: report_markdown(comparison, markdown_template, args.comment_key),
            args.template,
        )
        target = (
            Path(args.comment_file)
            if args.comment_file
            else default_comment_file(settings, comparison.candidate.name, args.comment_key)
        )
        delivery.report_path = write_report_file(target, markdown, "--comment-file")
        if args.comment:
            token = args.github_token or settings.env.get("GITHUB_TOKEN")
            post_comment(delivery, markdown, settings, pr=args.pr, token=token)
    return CompareResult(comparison, report, output, summary, delivery, not args.no_fail)


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


def run_comment(args: argparse.Namespace, inv: Invocation) -> Delivery:
    token = args.github_token or inv.settings.env.get("GITHUB_TOKEN")
    return comment_from_file(Path(args.from_file), inv.settings, pr=args.pr, token=token)

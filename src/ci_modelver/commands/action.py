"""``ci-modelver action``: the GitHub Action's single entry point, configured by INPUT_* variables."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci_modelver.adapters import files
from ci_modelver.adapters.github import append_summary, write_outputs
from ci_modelver.adapters.store import NoProgress
from ci_modelver.commands.compare import deliver, run_compare
from ci_modelver.commands.promote import promote, rollback
from ci_modelver.commands.publish import InvalidManifest, publish
from ci_modelver.commands.validate import validate_manifest
from ci_modelver.core.refs import parse_ref
from ci_modelver.errors import ExitCode, InputError
from ci_modelver.settings import Settings

MODES = ("auto", "check", "publish", "promote", "rollback")
SECRET_INPUTS = ("INPUT_REGISTRY_PASSWORD", "INPUT_GITHUB_TOKEN")


def _input(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(f"INPUT_{name.upper().replace('-', '_')}", default).strip()


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _input(env, name, "true" if default else "false").lower()
    if raw in ("true", "yes", "1", "on"):
        return True
    if raw in ("false", "no", "0", "off"):
        return False
    raise InputError(f"input '{name}': expected true or false, got '{raw}'")


def secrets_to_mask(env: Mapping[str, str]) -> list[str]:
    """Every secret input value (masked before anything else is printed)."""
    return [env[k] for k in SECRET_INPUTS if env.get(k)]


def resolve_mode(env: Mapping[str, str]) -> str:
    """``auto``: pull requests are checked, tags and releases published; dispatch must say."""
    mode = _input(env, "mode", "auto").lower() or "auto"
    if mode not in MODES:
        raise InputError(f"input 'mode': '{mode}' is not one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    event = env.get("GITHUB_EVENT_NAME", "")
    if event in ("pull_request", "pull_request_target"):
        return "check"
    if event == "release" or (
        event == "push" and env.get("GITHUB_REF", "").startswith("refs/tags/")
    ):
        return "publish"
    raise InputError(
        f"input 'mode' is auto, but a '{event or 'unknown'}' event is neither a pull request nor a tag "
        "or release; set mode: check, publish, promote or rollback"
    )


def default_repository(env: Mapping[str, str], name: str) -> str:
    """``ghcr.io/<owner>/<repo>/<name>``, lowercased (GHCR requires lowercase paths)."""
    repo = env.get("GITHUB_REPOSITORY", "")
    if "/" not in repo:
        raise InputError(
            "input 'repository' is empty and GITHUB_REPOSITORY is not set; give a repository"
        )
    return f"ghcr.io/{repo}/{name}".lower()


def release_tag(env: Mapping[str, str]) -> str:
    """The pushed tag (refs/tags/…) or the release's tag."""
    ref = env.get("GITHUB_REF", "")
    if ref.startswith("refs/tags/"):
        return ref[len("refs/tags/") :]
    name = env.get("GITHUB_REF_NAME", "")
    if env.get("GITHUB_EVENT_NAME") == "release" and name:
        return name
    raise InputError(f"publish needs a tag: GITHUB_REF is '{ref}', not refs/tags/…")


def version_from_tag(tag: str, prefix: str, name: str) -> str | None:
    """``v1.2.3`` → ``1.2.3``; ``<name>@v1.2.3`` → ``1.2.3`` for this model, None for another model."""
    model, at, rest = tag.partition("@")
    if at:
        if model != name:
            return None
        tag = rest
    if prefix and tag.startswith(prefix):
        return tag[len(prefix) :]
    return tag


@dataclass
class ActionRun:
    """The outcome of one action run; the CLI prints ``log`` lines as they come."""

    mode: str
    exit_code: int = ExitCode.OK
    summary: list[str] = field(default_factory=list)


Log = Callable[[str], None]


def _settings(env: dict[str, str], repository: str | None) -> Settings:
    return Settings.build(_with_registry_credentials(env, repository), repository=repository)


def _with_registry_credentials(env: dict[str, str], repository: str | None) -> dict[str, str]:
    """Registry credentials from the inputs (defaults: github.actor / github.token).

    The job's GITHUB_TOKEN is only meaningful to ghcr.io: when the password input is still that
    default and the repository is elsewhere, it is not sent; a docker login or
    MODELVER_REGISTRY_* set by the workflow is used instead.
    """
    out = dict(env)
    password = env.get("INPUT_REGISTRY_PASSWORD", "").strip()
    user = _input(env, "registry-username")
    host = parse_ref(repository).host if repository and not repository.startswith("oci:") else ""
    default_token = env.get("MODELVER_JOB_TOKEN", "")
    if password and password == default_token and host != "ghcr.io":
        return out
    if user and password:
        out["MODELVER_REGISTRY_USERNAME"] = user
        out["MODELVER_REGISTRY_PASSWORD"] = password
    return out


def run_action(env: Mapping[str, str], log: Log) -> ActionRun:
    """Run the mode the inputs and the event ask for; print through ``log`` only."""
    work = dict(env)
    if _input(env, "github-token"):
        work["GITHUB_TOKEN"] = env["INPUT_GITHUB_TOKEN"].strip()
    mode = resolve_mode(env)
    for name, default in (("comment", True), ("fail-on-regression", True), ("move-latest", True)):
        _flag(env, name, default)  # a bad value is an error now, not at the first regression
    manifest = Path(_input(env, "manifest", "modelver.yaml") or "modelver.yaml")
    run = ActionRun(mode)
    log(f"::group::ci-modelver {mode}")
    try:
        if mode == "check":
            _check(work, manifest, run, log)
        elif mode == "publish":
            _publish(work, manifest, run, log)
        else:
            _move(work, manifest, mode, run, log)
    finally:
        log("::endgroup::")
        summary_file = env.get("GITHUB_STEP_SUMMARY")
        if summary_file and run.summary:
            append_summary(Path(summary_file), "\n".join(run.summary))
    return run


def _repository(env: Mapping[str, str], name: str) -> str:
    return _input(env, "repository") or default_repository(env, name)


def _manifest_name(manifest: Path) -> str:
    result = validate_manifest(manifest, str(manifest))
    if result.manifest is None:
        raise InvalidManifest(result)
    return result.manifest.name


def _check(env: dict[str, str], manifest: Path, run: ActionRun, log: Log) -> None:
    name = _manifest_name(manifest)
    settings = _settings(env, _repository(env, name))
    baseline = _input(env, "baseline") or None
    comparison = run_compare(manifest, settings, baseline=baseline)
    comment = _flag(env, "comment", True)
    if comment and env.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        log(
            f"::notice title=ci-modelver::no pull request in a '{env.get('GITHUB_EVENT_NAME', '')}' event; the report is in the job summary only"
        )
        comment = False
    delivery = deliver(
        comparison,
        settings,
        template=None,
        key=None,
        comment=comment,
        pr=None,
        token=env.get("GITHUB_TOKEN"),
        comment_file=None,
    )
    for warning in delivery.warnings:
        log(f"::warning title=ci-modelver::{warning}")
    output = env.get("GITHUB_OUTPUT")
    if output and comparison.candidate.digest:
        # The candidate is packed, not pushed: its digest is what publishing it would produce.
        write_outputs(
            Path(output),
            {"digest": comparison.candidate.digest, "version": comparison.candidate.version},
        )
    verdict = "regression" if comparison.failed else "no regression"
    log(f"{comparison.candidate.name} {comparison.candidate.version}: {verdict}")
    if delivery.comment_url:
        log(f"comment {delivery.comment_action}: {delivery.comment_url}")
    if comparison.failed and _flag(env, "fail-on-regression", True):
        for row in comparison.failures:
            log(
                f"::error title=ci-modelver regression::{row.set}/{row.metric}: {row.reason or row.verdict}"
            )
        run.exit_code = ExitCode.GATE_FAILED


def _publish(env: dict[str, str], manifest: Path, run: ActionRun, log: Log) -> None:
    result = validate_manifest(manifest, str(manifest))
    if result.manifest is None:
        raise InvalidManifest(result)
    name = result.manifest.name
    tag = release_tag(env)
    prefix = _input(env, "tag-prefix", "v")
    wanted = version_from_tag(tag, prefix, name)
    if wanted is None:
        log(f"tag '{tag}' is for another model; {name} is not published")
        run.summary.append(f"### ci-modelver: tag `{tag}` is not for `{name}`; nothing published")
        return
    if wanted != result.manifest.version:
        raise InputError(
            f"tag '{tag}' means version '{wanted}', but {manifest} says version '{result.manifest.version}'; "
            f"nothing was pushed — tag {prefix}{result.manifest.version} or fix 'version'"
        )
    settings = _settings(env, _repository(env, name))
    extra = ("latest",) if _flag(env, "move-latest", True) else ()
    published = publish(manifest, settings, extra_tags=extra, progress=NoProgress())
    state = "already published" if published.status == "unchanged" else "published"
    log(f"{published.name} {published.version} {state}: {published.ref}")
    run.summary += [
        f"### ci-modelver: {published.name} {published.version} {state}",
        "",
        "| | |",
        "|---|---|",
        f"| reference | `{published.ref}` |",
        f"| digest | `{published.digest}` |",
        f"| tags | {', '.join(f'`{t}`' for t in published.tags)} |",
    ]


_VERSIONISH = re.compile(r"^v?\d")


def _move(env: dict[str, str], manifest: Path, mode: str, run: ActionRun, log: Log) -> None:
    repository = _input(env, "repository")
    if not repository and manifest.is_file():
        # Moving an alias needs only the model's name, not its (possibly untrained) files.
        data = files.load_document(manifest, str(manifest)).data
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str) and name:
            repository = default_repository(env, name)
    if not repository:
        raise InputError(
            f"mode {mode}: set the 'repository' input (or keep a manifest at {manifest})"
        )
    repo_ref = parse_ref(repository)
    alias = _input(env, "alias", "production") or "production"
    to = _input(env, "to") or None
    reason = _input(env, "reason") or f"{mode} from GitHub Actions"
    settings = _settings(env, str(repo_ref))
    if mode == "promote":
        if not to:
            raise InputError(
                "mode promote needs the 'to' input: a version, an alias or a sha256 digest"
            )
        target = (
            f"{repo_ref}@{to}"
            if to.startswith("sha256:")
            else f"{repo_ref}:{to.removeprefix('v') if _VERSIONISH.match(to) else to}"
        )
        result = promote(target, alias, settings, reason=reason)
    else:
        result = rollback(str(repo_ref), alias, settings, to=to, reason=reason)
    move = result.move
    state = "moved" if result.changed else "already there"
    log(f"{repo_ref}:{alias} -> {move.to_version or move.to_digest} ({state})")
    run.summary += [
        f"### ci-modelver: {mode} `{alias}` → {move.to_version or move.to_digest}",
        "",
        f"- from: {move.from_version or move.from_digest or 'nothing'}",
        f"- to: `{repo_ref.with_digest(move.to_digest)}`",
        f"- by {move.actor}: {reason}",
    ]

"""``ci-modelver action``: the GitHub Action's entry point, configured by INPUT_* variables.

Like cli.py it sits above the commands: it runs them for the mode the inputs and the event ask
for, and writes through the two edges only. Outputs are written the moment they are known, so a
later failure (a comment GitHub refuses, a registry that goes away) cannot leave them empty.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Mapping
from typing import Any

from ci_modelver.adapters import files
from ci_modelver.adapters.store import NoProgress
from ci_modelver.commands.compare import (
    Delivery,
    compare_manifest,
    default_comment_file,
    post_comment,
    report_markdown,
    summary_markdown,
    write_report_file,
)
from ci_modelver.commands.promote import MoveResult, promote, rollback
from ci_modelver.commands.publish import publish_manifest
from ci_modelver.core.compare_report import md
from ci_modelver.core.refs import parse_ref
from ci_modelver.core.source import Finding
from ci_modelver.core.text import one_line
from ci_modelver.core.trust import Policy
from ci_modelver.edges.actions import ActionsEdge
from ci_modelver.edges.terminal import Console
from ci_modelver.errors import GateFailed, InputError, ModelverError
from ci_modelver.settings import ACTION, ActionInputs, Settings, secrets_to_mask
from ci_modelver.signatures import load_signing_key, promotion_policy
from ci_modelver.toolkit import Parents, load_manifest, manifest_name

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "action",
        parents=[parents.common],
        help="entry point of the GitHub Action",
        description="Run the GitHub Action: reads INPUT_* variables (mode, manifest, "
        "repository, …) and the GitHub event; see action.yml.",
    )
    p.set_defaults(entry=main)


def resolve_mode(mode: str, env: Mapping[str, str]) -> str:
    """``auto``: pull requests are checked, tags and releases published; dispatch must say."""
    if mode != "auto":
        return mode
    event = env.get("GITHUB_EVENT_NAME", "")
    if event in PULL_REQUEST_EVENTS:
        return "check"
    if event == "release" or (
        event == "push" and env.get("GITHUB_REF", "").startswith("refs/tags/")
    ):
        return "publish"
    raise InputError(
        f"input 'mode' is auto, but a '{one_line(event, 60) or 'unknown'}' event is neither a pull "
        "request nor a tag or release; set mode: check, publish, promote or rollback"
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
    raise InputError(
        f"mode publish needs a tag: GITHUB_REF is '{one_line(ref, 100)}', not refs/tags/…; "
        "run it on a tag push or a release, or set mode: check"
    )


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


def with_registry_credentials(env: Mapping[str, str], repository: str | None) -> dict[str, str]:
    """Registry credentials from the inputs (defaults: github.actor / github.token).

    The job's GITHUB_TOKEN is only meaningful to ghcr.io: when the password input is still that
    default and the repository is elsewhere, it is not sent; a docker login or
    MODELVER_REGISTRY_* set by the workflow is used instead.
    """
    out = dict(env)
    inputs = ActionInputs.from_env(env)
    password, user = inputs.registry_password, inputs.registry_username
    host = parse_ref(repository).host if repository and not repository.startswith("oci:") else ""
    default_token = env.get("MODELVER_JOB_TOKEN", "")
    if password and password == default_token and host != "ghcr.io":
        return out
    if user and password:
        out["MODELVER_REGISTRY_USERNAME"] = user
        out["MODELVER_REGISTRY_PASSWORD"] = password
    return out


class _Run:
    """One action run: its inputs, environment and the edges it writes through."""

    def __init__(
        self, env: Mapping[str, str], inputs: ActionInputs, edge: ActionsEdge, console: Console
    ) -> None:
        self.env = dict(env)
        if inputs.github_token:
            self.env["GITHUB_TOKEN"] = inputs.github_token
        self.inputs = inputs
        self.edge = edge
        self.console = console

    def settings(self, repository: str) -> Settings:
        return Settings.build(
            with_registry_credentials(self.env, repository),
            repository=repository,
            surface=ACTION,
        )

    def repository(self, name: str) -> str:
        return self.inputs.repository or default_repository(self.env, name)

    def check(self) -> None:
        path = self.inputs.manifest
        manifest = load_manifest(path)
        self.edge.outputs({"version": manifest.version})
        settings = self.settings(self.repository(manifest.name))
        comparison = compare_manifest(
            manifest, path.parent, settings, baseline=self.inputs.baseline or None
        )
        baseline = comparison.baseline
        self.edge.outputs(
            {
                # The candidate is packed, not pushed: its digest is what publishing it would give.
                "digest": comparison.candidate.digest or "",
                "regression": "true" if comparison.failed else "false",
                "baseline-digest": (baseline.digest or "") if baseline else "",
            }
        )
        self.edge.summary(summary_markdown(comparison, None, None))
        markdown = report_markdown(comparison, None, None)
        report = write_report_file(
            default_comment_file(settings, manifest.name, None), markdown, "the report file"
        )
        self.edge.outputs({"report-path": str(report)})
        delivery = Delivery(report_path=report)
        event = self.env.get("GITHUB_EVENT_NAME", "")
        if self.inputs.comment and event not in PULL_REQUEST_EVENTS:
            self.edge.annotate(
                "notice",
                f"no pull request in a '{event}' event; the report is in the job summary only",
            )
        elif self.inputs.comment:
            post_comment(delivery, markdown, settings, pr=None, token=self.env.get("GITHUB_TOKEN"))
        self.edge.outputs({"comment-url": delivery.comment_url or ""})
        for warning in delivery.warnings:
            self.edge.annotate("warning", warning)
        verdict = "regression" if comparison.failed else "no regression"
        self.console.print(f"{manifest.name} {manifest.version}: {verdict}")
        if delivery.comment_url:
            self.console.print(f"comment {delivery.comment_action}: {delivery.comment_url}")
        if comparison.failed and self.inputs.fail_on_regression:
            for row in comparison.failures:
                self.edge.annotate(
                    "error",
                    f"{row.set}/{row.metric}: {row.reason or row.verdict}",
                    title="ci-modelver regression",
                )
            raise GateFailed(
                f"regression: {len(comparison.failures)} gate(s) failed; see the job summary"
            )

    def publish(self) -> None:
        path = self.inputs.manifest
        manifest = load_manifest(path)
        tag = release_tag(self.env)
        prefix = self.inputs.tag_prefix
        wanted = version_from_tag(tag, prefix, manifest.name)
        if wanted is None:
            self.console.print(
                f"tag '{tag}' is for another model; {manifest.name} is not published"
            )
            self.edge.summary(
                f"### ci-modelver: tag {_code(tag)} is not for `{manifest.name}`; nothing published"
            )
            return
        self.edge.outputs({"version": manifest.version})
        if wanted != manifest.version:
            doc = files.load_document(path, str(path))
            raise _located(
                InputError(
                    f"tag '{one_line(tag, 140)}' means version '{one_line(wanted, 140)}', but {path} "
                    f"says version '{manifest.version}'; nothing was pushed — tag "
                    f"{prefix}{manifest.version} or fix 'version'"
                ),
                doc.finding(("version",), "the release tag names another version"),
            )
        settings = self.settings(self.repository(manifest.name))
        extra = ("latest",) if self.inputs.move_latest else ()
        # A signing key set on the step or job (MODELVER_SIGNING_KEY*) signs the version before
        # its tag is written, as publish --sign-key does.
        signer = load_signing_key(settings, key=None)
        published = publish_manifest(
            manifest, path.parent, settings, extra_tags=extra, progress=NoProgress(), signer=signer
        )
        self.edge.outputs(published.outputs())
        state = "already published" if published.status == "unchanged" else "published"
        self.console.print(f"{published.name} {published.version} {state}: {published.ref}")
        self.edge.summary(
            "\n".join(
                [
                    f"### ci-modelver: {published.name} {published.version} {state}",
                    "",
                    "| | |",
                    "|---|---|",
                    f"| reference | `{published.ref}` |",
                    f"| digest | `{published.digest}` |",
                    f"| tags | {', '.join(f'`{t}`' for t in published.tags)} |",
                ]
            )
        )

    def move(self, mode: str) -> None:
        inputs = self.inputs
        repository = inputs.repository
        if not repository:
            # Moving an alias needs only the model's name, not its (possibly untrained) files.
            name = manifest_name(inputs.manifest)
            if name:
                repository = default_repository(self.env, name)
        if not repository:
            raise InputError(
                f"mode {mode}: set the 'repository' input (or keep a manifest at {inputs.manifest})"
            )
        repo_ref = parse_ref(repository)
        if repo_ref.tag or repo_ref.digest:
            raise InputError(
                f"input 'repository': '{repo_ref}' must not carry a tag or digest; "
                f"give '{repo_ref.bare()}' and the target in 'to'"
            )
        alias, to = inputs.alias, inputs.to or None
        reason = inputs.reason or f"{mode} from GitHub Actions"
        settings = self.settings(str(repo_ref))
        # Read and checked before the store is touched; from the workflow, never the version.
        policy = _promotion_policy(settings, inputs)
        signer = load_signing_key(settings, key=None)
        result: MoveResult
        if mode == "promote":
            if not to:
                raise InputError(
                    "mode promote needs the 'to' input: a version, an alias or a sha256 digest"
                )
            result = promote(
                _target(str(repo_ref), to),
                alias,
                settings,
                reason=reason,
                policy=policy,
                signer=signer,
            )
        else:
            result = rollback(
                str(repo_ref), alias, settings, to=to, reason=reason, policy=policy, signer=signer
            )
        move = result.move
        self.edge.outputs(
            {
                "digest": move.to_digest,
                "version": move.to_version or "",
                "ref": str(repo_ref.with_digest(move.to_digest)),
            }
        )
        state = "moved" if result.changed else "already there"
        self.console.print(f"{repo_ref}:{alias} -> {move.to_version or move.to_digest} ({state})")
        self.edge.summary(
            "\n".join(
                [
                    f"### ci-modelver: {mode} `{alias}` → {md(move.to_version or move.to_digest)}",
                    "",
                    f"- from: {md(move.from_version or move.from_digest or 'nothing')}",
                    f"- to: `{repo_ref.with_digest(move.to_digest)}`",
                    f"- by {md(move.actor)}: {md(reason)}",
                    *(
                        [f"- signed by trusted {md(', '.join(result.trusted_by))}"]
                        if result.trusted_by
                        else []
                    ),
                    *(
                        [f"- record signed by {md(result.record_signer or '')}"]
                        if result.record_signature
                        else []
                    ),
                ]
            )
        )


def _promotion_policy(settings: Settings, inputs: ActionInputs) -> Policy | None:
    """The inputs' trust policy: ``trusted-keys`` is PEM text (it holds ``-----BEGIN``) or paths
    of PEM files, one per line (relative to the workspace)."""
    text = inputs.trusted_keys
    pem = text.encode("utf-8", "replace") if "-----BEGIN" in text else None
    files = [] if pem else [line.strip() for line in text.splitlines() if line.strip()]
    return promotion_policy(
        settings,
        key_files=files,
        require=inputs.require_signature,
        pem=pem,
        key_flag="trusted-keys",
    )


_VERSIONISH = re.compile(r"^v?\d")
_CODE_SAFE = re.compile(r"^[A-Za-z0-9._@/+:=-]+\Z")


def _code(text: str) -> str:
    """Outside text as a Markdown code span when it is plainly safe there, else escaped."""
    return f"`{text}`" if _CODE_SAFE.match(text) else md(text)


def _target(repository: str, to: str) -> str:
    """The promote target as a reference: a digest, or a version (``v`` dropped) or an alias."""
    if to.startswith("sha256:"):
        return f"{repository}@{to}"
    return f"{repository}:{to.removeprefix('v') if _VERSIONISH.match(to) else to}"


def _located(error: ModelverError, finding: Finding) -> ModelverError:
    error.findings = (finding,)
    return error


def _failure_summary(mode: str, exc: BaseException) -> str:
    if isinstance(exc, ModelverError):
        message = one_line(str(exc), 2000)
    else:
        message = f"internal error ({type(exc).__name__}); rerun with --debug and report it"
    lines = [f"### ❌ ci-modelver {mode} failed", "", md(message, 2000)]
    findings = exc.findings if isinstance(exc, ModelverError) else ()
    if findings:
        lines.append("")
        lines += [
            f"- `{md(f.file)}:{f.line}:{f.column}` {md(f.message)} ({md(f.path)})"
            for f in findings[:50]
        ]
    return "\n".join(lines)


def main(args: argparse.Namespace, env: Mapping[str, str], console: Console) -> None:
    """Run the action; errors propagate to the CLI's one boundary after the summary is written."""
    edge = ActionsEdge(
        console.command,
        output_file=env.get("GITHUB_OUTPUT"),
        summary_file=env.get("GITHUB_STEP_SUMMARY"),
    )
    # Masks first: nothing may be printed before GitHub knows which strings to hide.
    edge.masks(secrets_to_mask(env))
    mode = "action"
    try:
        inputs = ActionInputs.from_env(env)
        mode = resolve_mode(inputs.mode, env)
        run = _Run(env, inputs, edge, console)
        edge.group(f"ci-modelver {mode}")
        try:
            if mode == "check":
                run.check()
            elif mode == "publish":
                run.publish()
            else:
                run.move(mode)
        finally:
            edge.endgroup()
    except GateFailed:
        raise  # the report is in the summary and every failed gate is annotated already
    except BaseException as exc:
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            # An unwritable summary must not hide the error that brought us here.
            with contextlib.suppress(ModelverError):
                edge.summary(_failure_summary(mode, exc))
        raise

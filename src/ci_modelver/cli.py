"""Command line: flags → settings, run a command, render its result, map errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from ci_modelver import __version__
from ci_modelver.adapters.files import bundled_schema, read_text
from ci_modelver.commands.action import run_action, secrets_to_mask
from ci_modelver.commands.compare import (
    comment_from_file,
    deliver,
    report_json,
    report_markdown,
    report_text,
    run_compare,
)
from ci_modelver.commands.history import InvalidMetrics, attach, history, reproduce
from ci_modelver.commands.init import init_folder
from ci_modelver.commands.inspect import show, versions
from ci_modelver.commands.promote import MoveResult, promote, rollback
from ci_modelver.commands.publish import InvalidManifest, publish
from ci_modelver.commands.pull import parse_only, parse_size, pull
from ci_modelver.commands.validate import validate_manifest
from ci_modelver.core.compare_report import TemplateError
from ci_modelver.core.report import (
    escape_command_data,
    finding_line,
    findings_json,
    github_annotation,
    history_text,
    human_size,
    reproduce_text,
    show_text,
    versions_text,
)
from ci_modelver.core.source import Finding
from ci_modelver.core.text import one_line
from ci_modelver.errors import ExitCode, InputError, ModelverError
from ci_modelver.progress import TerminalProgress
from ci_modelver.settings import Settings

Handler = Callable[[argparse.Namespace, "Console"], int]


class Console:
    """The only place that writes to the terminal."""

    def __init__(self, env: Mapping[str, str], out: TextIO, err: TextIO) -> None:
        self.env = env
        self.out = out
        self.err = err

    def print(self, text: str = "") -> None:
        _write(self.out, text)

    def error(self, text: str) -> None:
        _write(self.err, text)

    @property
    def in_github_actions(self) -> bool:
        return self.env.get("GITHUB_ACTIONS") == "true"


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text + "\n")
        # Flushed at once: in CI logs stdout and stderr must interleave in the order written.
        stream.flush()
    except UnicodeEncodeError:
        # Lone surrogates or characters the terminal cannot show: escape, never crash.
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem as one line and exit code 2, via our hierarchy."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _print_findings(console: Console, findings: tuple[Finding, ...], fmt: str) -> None:
    emit_github = fmt == "github" or console.in_github_actions
    for finding in findings:
        if fmt != "github":
            console.print(finding_line(finding))
        if emit_github:
            console.print(github_annotation(finding, title="invalid manifest"))


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    shown = args.manifest
    result = validate_manifest(Path(shown), shown)
    fmt = args.format
    if fmt == "json":
        extra = {}
        if result.manifest:
            extra = {"name": result.manifest.name, "version": result.manifest.version}
        console.print(findings_json(result.file, result.findings, extra))
    else:
        _print_findings(console, result.findings, fmt)
        if result.manifest:
            m = result.manifest
            console.print(
                f"{result.file}: valid — {m.name} {m.version}, {len(m.files)} file(s), "
                f"{sum(len(v) for v in m.metrics.values())} metric(s), {len(m.gates)} gate(s)"
            )
        elif fmt == "text":
            console.error(f"{result.file}: {len(result.findings)} problem(s); fix them and rerun")
    return ExitCode.OK if result.ok else ExitCode.INVALID_INPUT


def _settings(args: argparse.Namespace, console: Console) -> Settings:
    return Settings.build(
        console.env,
        repository=getattr(args, "repository", None),
        plain_http=getattr(args, "plain_http", False),
        concurrency=getattr(args, "concurrency", None),
        timeout=getattr(args, "timeout", None),
        chunk_size=getattr(args, "chunk_size", None),
        log=console.error if getattr(args, "debug", False) else None,
    )


def _progress(console: Console, verb: str) -> TerminalProgress:
    tty = console.err.isatty() and console.env.get("TERM") != "dumb"
    return TerminalProgress(console.err, verb=verb, tty=tty)


def _cmd_publish(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args, console)
    try:
        result = publish(
            Path(args.manifest),
            settings,
            extra_tags=args.tag or (),
            progress=_progress(console, "uploaded"),
        )
    except InvalidManifest as exc:
        _print_findings(console, exc.findings, "text")
        raise
    if args.format == "json":
        console.print(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return ExitCode.OK
    verb = "already published (no bytes sent)" if result.status == "unchanged" else "published"
    console.print(f"{result.name} {result.version} {verb}")
    console.print(f"  digest: {result.digest}")
    console.print(f"  ref:    {result.ref}")
    console.print(f"  tags:   {', '.join(result.tags)}")
    if result.status == "published":
        console.print(
            f"  blobs:  {result.uploaded} uploaded ({human_size(result.bytes_uploaded)}), "
            f"{result.present} already present"
        )
    return ExitCode.OK


def _cmd_pull(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args, console)
    result = pull(
        args.ref,
        settings,
        output=Path(args.output) if args.output else None,
        only=parse_only(args.only),
        progress=_progress(console, "downloaded"),
        max_total=parse_size(args.max_size, "--max-size"),
        max_file=parse_size(args.max_file_size, "--max-file-size"),
    )
    if args.format == "json":
        console.print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        fetched = sum(1 for f in result.files if f[2])
        console.print(
            f"pulled {result.digest} into {result.output}: {len(result.files)} file(s), "
            f"{fetched} downloaded, {len(result.files) - fetched} already up to date; all digests verified"
        )
    return ExitCode.OK


def _cmd_show(args: argparse.Namespace, console: Console) -> int:
    doc = show(args.ref, _settings(args, console)).to_json()
    console.print(
        json.dumps(doc, indent=2, sort_keys=True) if args.format == "json" else show_text(doc)
    )
    return ExitCode.OK


def _cmd_versions(args: argparse.Namespace, console: Console) -> int:
    ref, rows = versions(args.repository_ref, _settings(args, console))
    if args.format == "json":
        doc = {
            "repository": str(ref),
            "versions": [
                {"version": r.version, "digest": r.digest, "aliases": list(r.aliases)} for r in rows
            ],
        }
        console.print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        console.print(versions_text(str(ref), [(r.version, r.digest, r.aliases) for r in rows]))
    return ExitCode.OK


def _read_template(path: str | None) -> str | None:
    if path is None:
        return None
    return read_text(Path(path), path)


def _cmd_compare(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args, console)
    template = _read_template(args.template)
    try:
        comparison = run_compare(Path(args.manifest), settings, baseline=args.baseline)
    except InvalidManifest as exc:
        _print_findings(console, exc.findings, "text")
        raise
    fmt = args.format
    try:
        if fmt == "json":
            report = report_json(comparison)
        elif fmt == "markdown":
            report = report_markdown(comparison, template, args.comment_key)
        else:
            report = report_text(comparison, template)
    except TemplateError as exc:
        raise InputError(f"--template {args.template}: {exc.detail}") from None
    if args.output:
        try:
            Path(args.output).write_text(report.rstrip("\n") + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"--output {args.output}: cannot write: {exc.strerror or exc}"
            ) from None
    else:
        console.print(report.rstrip("\n"))
    token = args.github_token or console.env.get("GITHUB_TOKEN")
    delivery = deliver(
        comparison,
        settings,
        template=template if fmt == "markdown" else None,
        key=args.comment_key,
        comment=args.comment,
        pr=args.pr,
        token=token,
        comment_file=Path(args.comment_file) if args.comment_file else None,
    )
    for warning in delivery.warnings:
        console.error(f"warning: {warning}")
        if console.in_github_actions:
            console.error(f"::warning title=ci-modelver::{escape_command_data(warning)}")
    if delivery.comment_url:
        console.error(f"comment {delivery.comment_action}: {delivery.comment_url}")
    if comparison.failed and not args.no_fail:
        failures = ", ".join(f"{r.set}/{r.metric}" for r in comparison.failures[:5])
        console.error(f"regression: {len(comparison.failures)} gate(s) failed ({failures})")
        return ExitCode.GATE_FAILED
    return ExitCode.OK


def _cmd_comment(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args, console)
    token = args.github_token or console.env.get("GITHUB_TOKEN")
    delivery = comment_from_file(Path(args.from_file), settings, pr=args.pr, token=token)
    for warning in delivery.warnings:
        console.error(f"warning: {warning}")
    if delivery.comment_url:
        console.print(f"comment {delivery.comment_action}: {delivery.comment_url}")
    return ExitCode.OK


def _cmd_promote(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args, console)
    result = promote(args.ref, args.alias, settings, reason=args.reason)
    return _print_move(console, result, args.format)


def _cmd_rollback(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args, console)
    result = rollback(args.repository_ref, args.alias, settings, to=args.to, reason=args.reason)
    return _print_move(console, result, args.format)


def _print_move(console: Console, result: MoveResult, fmt: str) -> int:
    if fmt == "json":
        console.print(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return ExitCode.OK
    move = result.move
    target = f"{move.to_version or '?'} ({move.to_digest})"
    if not result.changed:
        console.print(
            f"{result.repository}:{move.alias} already points at {target}; nothing changed"
        )
        return ExitCode.OK
    before = f"{move.from_version or '?'} ({move.from_digest})" if move.from_digest else "nothing"
    console.print(f"{move.action}: {result.repository}:{move.alias} {before} -> {target}")
    console.print(
        f"  recorded as {result.repository}:{result.record_tag} by {move.actor} at {move.time}"
    )
    return ExitCode.OK


def _cmd_history(args: argparse.Namespace, console: Console) -> int:
    doc = history(args.repository_ref, _settings(args, console), limit=args.limit).to_json()
    if args.format == "json":
        console.print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        console.print(history_text(doc, markdown=args.format == "markdown").rstrip("\n"))
    return ExitCode.OK


def _cmd_reproduce(args: argparse.Namespace, console: Console) -> int:
    result = reproduce(
        args.ref,
        _settings(args, console),
        check_data=Path(args.check_data) if args.check_data else None,
    )
    doc = result.to_json()
    console.print(
        json.dumps(doc, indent=2, sort_keys=True) if args.format == "json" else reproduce_text(doc)
    )
    if result.mismatch:
        console.error("error: a local dataset does not match the digest recorded at publish time")
        return ExitCode.GATE_FAILED
    return ExitCode.OK


def _cmd_attach(args: argparse.Namespace, console: Console) -> int:
    try:
        result = attach(args.ref, Path(args.metrics), _settings(args, console), set_name=args.set)
    except InvalidMetrics as exc:
        for finding in exc.findings:
            console.print(finding_line(finding))
        raise
    if args.format == "json":
        console.print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        sets = ", ".join(sorted(result.evaluation.metrics))
        console.print(
            f"attached {sets} to {result.ref}@{result.digest} (record {result.evaluation.record_digest}); the version's digest is unchanged"
        )
    return ExitCode.OK


def _cmd_action(args: argparse.Namespace, console: Console) -> int:
    env = console.env
    # Masks first: nothing may be printed before GitHub knows which strings to hide.
    for secret in secrets_to_mask(env):
        console.print(f"::add-mask::{escape_command_data(secret)}")
        # The runner registers the unescaped value; mask each line too, as a multi-line secret
        # (a JSON key, a PEM) can appear in logs line by line.
        for line in secret.splitlines():
            if line.strip() and line != secret:
                console.print(f"::add-mask::{escape_command_data(line)}")
    console.out.flush()
    try:
        run = run_action(env, console.print)
    except InvalidManifest as exc:
        _print_findings(console, exc.findings, "text")
        raise
    return run.exit_code


def _cmd_init(args: argparse.Namespace, console: Console) -> int:
    result = init_folder(Path(args.directory))
    if args.format == "json":
        console.print(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return ExitCode.OK
    kinds = ", ".join(
        f"{sum(1 for _, k in result.files if k == kind)} {kind}"
        for kind in dict.fromkeys(k for _, k in result.files)
    )
    listed = f"{len(result.files)} file(s) ({kinds})" if result.files else "no files"
    metrics = f", metrics: {result.metrics}" if result.metrics else ""
    console.print(f"wrote {result.manifest}: {result.name} {result.version}, {listed}{metrics}")
    for workflow in result.workflows:
        console.print(f"wrote {workflow}")
    if result.left_out:
        console.print(
            f"note: {result.left_out} more model file(s) were found but not listed; add the ones you need"
        )
    if not result.files:
        console.print(
            f"next: no model file was found — edit 'files:' in {result.manifest} (at least one); "
            "until then it does not validate"
        )
    elif result.findings:
        for finding in result.findings:
            console.print(finding_line(finding))
        console.print(f"next: fix the problem(s) above in {result.manifest}")
    else:
        console.print(
            f"next: check {result.manifest} (add data, hyperparameters, metrics and gates), "
            f"then 'ci-modelver validate {result.manifest}'"
        )
    if not (result.directory / ".git").exists():
        console.print(
            "note: GitHub reads workflows from the repository root's .github/workflows; if "
            f"{result.directory} is not the root, move them there and set 'manifest:' in each"
        )
    return ExitCode.OK


def _cmd_schema(args: argparse.Namespace, console: Console) -> int:
    console.print(json.dumps(bundled_schema(args.which), indent=2, ensure_ascii=False))
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    """The whole command line grammar."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and HTTP details",
    )
    parser = _Parser(
        prog="ci-modelver",
        description="Model versioning that lives in CI: immutable OCI artifacts for model versions.",
        epilog="Exit codes: 0 ok, 1 gate failed, 2 invalid input or usage, "
        "3 registry/network/GitHub failure, 4 conflict, 70 internal error.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and HTTP details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "validate",
        parents=[common],
        help="check a version manifest",
        description="Check a version manifest and its metrics file; "
        "report every problem as FILE:LINE:COL: message (JSON path).",
    )
    p.add_argument(
        "manifest",
        nargs="?",
        default="modelver.yaml",
        metavar="MANIFEST",
        help="path of the manifest (default: ./modelver.yaml)",
    )
    p.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="output format; 'github' annotations are added to text inside GitHub Actions",
    )
    p.set_defaults(handler=_cmd_validate)

    remote = _Parser(add_help=False)
    remote.add_argument(
        "--plain-http",
        action="store_true",
        help="use HTTP instead of HTTPS (automatic for localhost/127.0.0.0/8/::1)",
    )
    remote.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="parallel transfers (default 4, env MODELVER_CONCURRENCY)",
    )
    remote.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="retry budget per request in seconds (default 120, env MODELVER_TIMEOUT)",
    )

    p = sub.add_parser(
        "publish",
        parents=[common, remote],
        help="publish a model version",
        description="Validate, pack and push the manifest's version under an "
        "immutable version tag. Default store: oci:.modelver/<name>.",
    )
    p.add_argument("manifest", nargs="?", default="modelver.yaml", metavar="MANIFEST")
    p.add_argument(
        "--repository",
        metavar="REPO",
        help="HOST/PATH or oci:DIR (default: env MODELVER_REPOSITORY, else oci:.modelver/<name>)",
    )
    p.add_argument("--tag", action="append", metavar="EXTRA", help="also tag as EXTRA (repeatable)")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="upload in PATCH chunks of this size (e.g. 4194304 for ghcr.io); default one PUT",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_publish)

    p = sub.add_parser(
        "pull",
        parents=[common, remote],
        help="download and verify a version",
        description="Download a version's files into a folder, verifying every digest.",
    )
    p.add_argument("ref", metavar="REF", help="REPO:VERSION, REPO:ALIAS or REPO@sha256:…")
    p.add_argument("--output", "-o", metavar="DIR", help="target folder (default ./<name>)")
    p.add_argument(
        "--only",
        metavar="TYPES",
        help="comma-separated file types: weight,weight-config,doc,code,dataset",
    )
    p.add_argument(
        "--max-size", metavar="SIZE", help="refuse versions larger than SIZE in all (e.g. 20G)"
    )
    p.add_argument(
        "--max-file-size", metavar="SIZE", help="refuse any single file larger than SIZE"
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_pull)

    p = sub.add_parser(
        "show",
        parents=[common, remote],
        help="show a version record (no weights)",
        description="Print a version's files, code, data, hyperparameters and metrics "
        "without downloading its weights.",
    )
    p.add_argument("ref", metavar="REF")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_show)

    p = sub.add_parser(
        "versions",
        parents=[common, remote],
        help="list versions in SemVer order",
        description="List the version tags of a repository in SemVer order, with digests.",
    )
    p.add_argument("repository_ref", metavar="REPO")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_versions)

    p = sub.add_parser(
        "compare",
        parents=[common, remote],
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
    p.set_defaults(handler=_cmd_compare)

    p = sub.add_parser(
        "comment",
        parents=[common],
        help="post a saved report as the sticky PR comment",
        description="Post a report written by 'compare --comment' (e.g. in a fork PR job) "
        "from a workflow_run job that has a write token.",
    )
    p.add_argument("--from-file", required=True, metavar="FILE")
    p.add_argument("--pr", type=int, metavar="N")
    p.add_argument("--github-token", metavar="TOKEN", help="default: env GITHUB_TOKEN")
    p.set_defaults(handler=_cmd_comment)

    p = sub.add_parser(
        "promote",
        parents=[common, remote],
        help="move an alias to a version",
        description="Point an alias (production, staging, champion, …) at an existing "
        "version by re-PUTting its exact manifest bytes, and record the move.",
    )
    p.add_argument("ref", metavar="REF", help="REPO:VERSION, REPO:ALIAS or REPO@sha256:…")
    p.add_argument("--alias", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_promote)

    p = sub.add_parser(
        "rollback",
        parents=[common, remote],
        help="move an alias back",
        description="Move an alias back to where it pointed before its last move, or --to a version.",
    )
    p.add_argument("repository_ref", metavar="REPO")
    p.add_argument("--alias", required=True, metavar="NAME")
    p.add_argument("--to", metavar="REF", help="version, alias or sha256:… to move the alias to")
    p.add_argument("--reason", metavar="TEXT")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_rollback)

    p = sub.add_parser(
        "history",
        parents=[common, remote],
        help="versions, aliases and the alias log",
        description="Versions in SemVer order with digest, creation time, commit, gated "
        "metrics and aliases; then every recorded alias move.",
    )
    p.add_argument("repository_ref", metavar="REPO")
    p.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    p.add_argument("--limit", type=int, metavar="N", help="only the N newest versions and moves")
    p.set_defaults(handler=_cmd_history)

    p = sub.add_parser(
        "reproduce",
        parents=[common, remote],
        help="what is needed to rebuild a version",
        description="Code, data, hyperparameters and framework of a version; --check-data "
        "hashes local dataset files and exits 1 on a mismatch.",
    )
    p.add_argument("ref", metavar="REF")
    p.add_argument("--check-data", metavar="DIR")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_reproduce)

    p = sub.add_parser(
        "attach",
        parents=[common, remote],
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
    p.set_defaults(handler=_cmd_attach)

    p = sub.add_parser(
        "action",
        parents=[common],
        help="entry point of the GitHub Action",
        description="Run the GitHub Action: reads INPUT_* variables (mode, manifest, "
        "repository, …) and the GitHub event; see action.yml.",
    )
    p.set_defaults(handler=_cmd_action)

    p = sub.add_parser(
        "init",
        parents=[common],
        help="write a starter modelver.yaml and the example workflows",
        description="Write DIR/modelver.yaml (name from the folder, version 0.1.0, the model "
        "files found under DIR with a guessed type) and the example GitHub workflows in "
        "DIR/.github/workflows; refuses to overwrite any existing file. When no model file "
        "is found, 'files:' is left empty and the manifest does not validate until you list them.",
    )
    p.add_argument(
        "directory",
        nargs="?",
        default=".",
        metavar="DIR",
        help="folder of the model (default: the current folder)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_init)

    p = sub.add_parser(
        "schema",
        parents=[common],
        help="print a bundled JSON Schema",
        description="Print the JSON Schema of the manifest or of a metrics file.",
    )
    p.add_argument("which", nargs="?", choices=["modelver", "metrics"], default="modelver")
    p.set_defaults(handler=_cmd_schema)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the CLI and return the process exit code."""
    console = Console(os.environ if env is None else env, out or sys.stdout, err or sys.stderr)
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    try:
        args = build_parser().parse_args(arguments)
        if args.version:
            console.print(f"ci-modelver {__version__}")
            return int(ExitCode.OK)
        if args.command is None:
            raise InputError("ci-modelver: a command is required (see 'ci-modelver --help')")
        handler: Handler = args.handler
        return int(handler(args, console))
    except ModelverError as exc:
        if debug:
            console.error(traceback.format_exc().rstrip())
        console.error(f"error: {one_line(str(exc))}")
        return int(exc.exit_code)
    except OSError as exc:
        # A local file or folder the user named cannot be used (exit 2); anything else at the
        # operating-system level is an I/O or network failure that retrying may fix (exit 3).
        if debug:
            console.error(traceback.format_exc().rstrip())
        filename = getattr(exc, "filename", None)
        if filename is not None:
            console.error(
                f"error: {one_line(str(filename), 300)}: {exc.strerror or type(exc).__name__}"
            )
            return int(ExitCode.INVALID_INPUT)
        console.error(f"error: {one_line(f'{type(exc).__name__}: {exc}', 300)}")
        return int(ExitCode.REMOTE_FAILURE)
    except KeyboardInterrupt:
        console.error("error: interrupted")
        return 130
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        if debug:
            console.error(traceback.format_exc().rstrip())
        summary = one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, 300)
        console.error(
            f"internal error: {summary} — this is a bug in ci-modelver; "
            "rerun with --debug and report the traceback"
        )
        return int(ExitCode.INTERNAL)

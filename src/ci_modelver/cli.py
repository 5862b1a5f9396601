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
from ci_modelver.adapters.files import bundled_schema
from ci_modelver.commands.validate import validate_manifest
from ci_modelver.core.report import finding_line, findings_json, github_annotation
from ci_modelver.errors import ExitCode, InputError, ModelverError

Handler = Callable[[argparse.Namespace, "Console"], int]


class Console:
    """The only place that writes to the terminal."""

    def __init__(self, env: Mapping[str, str], out: TextIO, err: TextIO) -> None:
        self.env = env
        self.out = out
        self.err = err

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def error(self, text: str) -> None:
        print(text, file=self.err)

    @property
    def in_github_actions(self) -> bool:
        return self.env.get("GITHUB_ACTIONS") == "true"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem as one line and exit code 2, via our hierarchy."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


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
        emit_github = fmt == "github" or console.in_github_actions
        for finding in result.findings:
            if fmt == "text":
                console.print(finding_line(finding))
            if emit_github:
                console.print(github_annotation(finding, title="invalid manifest"))
        if result.manifest:
            m = result.manifest
            console.print(
                f"{result.file}: valid — {m.name} {m.version}, {len(m.files)} file(s), "
                f"{sum(len(v) for v in m.metrics.values())} metric(s), {len(m.gates)} gate(s)"
            )
        elif fmt == "text":
            console.error(f"{result.file}: {len(result.findings)} problem(s); fix them and rerun")
    return ExitCode.OK if result.ok else ExitCode.INVALID_INPUT


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
        console.error(f"error: {exc}")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        console.error("error: interrupted")
        return 130
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        if debug:
            console.error(traceback.format_exc().rstrip())
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        console.error(
            f"internal error: {summary} — this is a bug in ci-modelver; "
            "rerun with --debug and report the traceback"
        )
        return int(ExitCode.INTERNAL)

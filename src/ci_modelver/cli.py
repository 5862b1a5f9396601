"""Command line: flags → settings, run a command, render its result, map errors to exit codes.

Each command module registers its own flags (``register``) and runs (``run``), returning a typed
result; this module only wires them to the two edges and holds the one error boundary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import NoReturn, TextIO

from ci_modelver import __version__, action_entry
from ci_modelver.adapters import cancel
from ci_modelver.adapters.store import Progress
from ci_modelver.commands import (
    compare,
    copy,
    diff,
    history,
    init,
    inspect,
    promote,
    prune,
    publish,
    pull,
    schema,
    sign,
    site,
    storage,
    validate,
    verify,
)
from ci_modelver.core.text import mask_credentials, one_line
from ci_modelver.edges.actions import ActionsEdge, annotation, finding_annotation
from ci_modelver.edges.progress import TerminalProgress
from ci_modelver.edges.terminal import Console, finding_line, render
from ci_modelver.errors import InputError, ModelverError, Reported, exit_code_of
from ci_modelver.settings import Settings, in_github_actions
from ci_modelver.toolkit import Invocation, Parents

# In the order --help lists them.
COMMANDS: tuple[ModuleType, ...] = (
    validate,
    publish,
    pull,
    inspect,
    compare,
    diff,
    promote,
    sign,
    verify,
    history,
    storage,
    prune,
    copy,
    site,
    init,
    schema,
    action_entry,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem as one line and exit code 2, via our hierarchy."""

    def error(self, message: str) -> NoReturn:
        # argparse quotes stray arguments back: a reference with credentials must not come back.
        shown = " ".join(
            mask_credentials(word, bare_user=True, all_parameters=True)
            for word in message.split(" ")
        )
        raise InputError(f"{self.prog}: {shown} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line grammar: the shared parents, then each command's own flags."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and HTTP details",
    )
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
        help="the most a request may take in seconds, retries and body included; a blob gets its "
        "size at MODELVER_MIN_THROUGHPUT more (default 120, env MODELVER_TIMEOUT)",
    )
    parser = _Parser(
        prog="ci-modelver",
        description="Model versioning that lives in CI: immutable OCI artifacts for model versions.",
        epilog="Exit codes: 0 ok, 1 gate failed, 2 invalid input or usage, "
        "3 registry/network/GitHub failure, 4 conflict, 5 untrusted, 70 internal error.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and HTTP details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parents = Parents(common, remote)
    for module in COMMANDS:
        module.register(sub, parents)
    return parser


def _settings(args: argparse.Namespace, env: Mapping[str, str], console: Console) -> Settings:
    return Settings.build(
        env,
        repository=getattr(args, "repository", None),
        plain_http=getattr(args, "plain_http", False),
        concurrency=getattr(args, "concurrency", None),
        timeout=getattr(args, "timeout", None),
        chunk_size=getattr(args, "chunk_size", None),
        log=console.error if getattr(args, "debug", False) else None,
    )


def _progress(console: Console, env: Mapping[str, str], verb: str) -> Progress:
    tty = console.err.isatty() and env.get("TERM") != "dumb"
    return TerminalProgress(console.err, verb=verb, tty=tty, in_actions=console.in_actions)


def _github_effects(result: object, settings: Settings, console: Console) -> None:
    """Inside GitHub Actions, a command's outputs, summary and warnings also go to the runner."""
    env = settings.env
    edge = ActionsEdge(
        console.command,
        output_file=env.get("GITHUB_OUTPUT"),
        summary_file=env.get("GITHUB_STEP_SUMMARY"),
    )
    if isinstance(result, compare.CompareResult):
        if result.summary is not None:
            edge.summary(result.summary)
        for warning in result.delivery.warnings:
            edge.annotate("warning", warning)
        if result.failure() is not None:
            for row in result.comparison.failures:
                edge.annotate(
                    "error",
                    f"{row.set}/{row.metric}: {row.reason or row.verdict}",
                    title="ci-modelver regression",
                )
    outputs = getattr(result, "outputs", None)
    if callable(outputs):
        edge.outputs(outputs())


def _run(args: argparse.Namespace, env: Mapping[str, str], console: Console) -> None:
    if args.version:
        console.print(f"ci-modelver {__version__}")
        return
    if args.command is None:
        raise InputError("ci-modelver: a command is required (see 'ci-modelver --help')")
    entry = getattr(args, "entry", None)
    if entry is not None:
        entry(args, env, console)
        return
    settings = _settings(args, env, console)
    inv = Invocation(settings, progress=lambda verb: _progress(console, env, verb))
    result = args.run(args, inv)
    console.show(render(result, getattr(args, "format", "text"), in_actions=console.in_actions))
    if settings.in_github_actions:
        _github_effects(result, settings, console)
    failure = getattr(result, "failure", None)
    problem = failure() if callable(failure) else None
    if problem is not None:
        problem.annotate = False  # the result's own output (and annotations) said it already
        raise problem


def _report(exc: BaseException, console: Console, debug: bool) -> None:
    """Print an error as one line (its located findings first); a traceback only with --debug."""
    if debug and not isinstance(exc, SystemExit):
        console.error("".join(traceback.format_exception(exc)).rstrip())
    if isinstance(exc, Reported):
        return
    if isinstance(exc, ModelverError):
        for finding in exc.findings:
            console.print(finding_line(finding))
            if console.in_actions:
                console.command(finding_annotation(finding, title="ci-modelver"))
        message = f"error: {one_line(str(exc))}"
    elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or errors.Interrupted / Terminated
        message = f"error: {one_line(str(exc))}" if str(exc) else "error: interrupted"
    elif isinstance(exc, SystemExit):
        return
    elif isinstance(exc, OSError):
        filename = getattr(exc, "filename", None)
        if filename is not None:
            message = f"error: {one_line(str(filename), 300)}: {exc.strerror or type(exc).__name__}"
        else:
            message = f"error: {one_line(f'{type(exc).__name__}: {exc}', 300)}"
    else:
        summary = one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, 300)
        message = (
            f"internal error: {summary} — this is a bug in ci-modelver; "
            "rerun with --debug and report the traceback"
        )
    # In Actions the failure is also an annotation, unless it was annotated already: per failed
    # gate, per finding (on its file and line, above), or by the result's own output.
    annotate = getattr(exc, "annotate", True) and not getattr(exc, "findings", ())
    if console.in_actions and annotate:
        console.command(annotation("error", message.removeprefix("error: ")))
    console.error(message)


def _cancellable(*, process: bool) -> contextlib.AbstractContextManager[cancel.Guard]:
    """SIGINT and SIGTERM cancel the run: exit 130 / 143, transfers stopped, temp files gone.

    ``process``: this call is the process itself (the console script, ``python -m``), not a
    library or test call; then a run that has not ended ``cancel.GRACE`` seconds after the
    signal is ended, and says so on stderr (written to the descriptor directly: the thread that
    writes it must not wait for a lock a stuck thread may hold).
    """

    def forced(exc: BaseException) -> None:
        line = (
            f"error: {one_line(str(exc))} (a transfer did not stop within "
            f"{cancel.GRACE:g}s; ended)\n"
        )
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os.write(2, line.encode("utf-8", "backslashreplace"))

    return cancel.on_signals(hard_exit=process, on_forced=forced)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the CLI and return the process exit code."""
    environ = os.environ if env is None else env
    console = Console(out or sys.stdout, err or sys.stderr, in_actions=in_github_actions(environ))
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        with _cancellable(process=argv is None) as guard, guard.live():
            _run(build_parser().parse_args(arguments), environ, console)
        return 0
    except BaseException as exc:  # the one boundary: every failure becomes a line and a code
        _report(exc, console, "--debug" in arguments)
        return exit_code_of(exc)

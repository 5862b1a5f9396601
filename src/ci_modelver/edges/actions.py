"""The GitHub Actions edge: workflow commands, step outputs, the job summary and masks.

Every workflow command we print is built here, and every piece of outside text in one goes
through ``escape_data`` / ``escape_property``. The runner reads commands from any line whose
first non-blank characters are ``::`` (and legacy ``##[`` commands anywhere), on stdout and
stderr alike, so plain lines that carry outside text are neutralised by ``neutralise``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from ci_modelver.core.compare_report import SUMMARY_LIMIT
from ci_modelver.core.source import Finding
from ci_modelver.errors import InputError

LEVELS = ("error", "warning", "notice")
# The step outputs action.yml declares; nothing else is ever written to $GITHUB_OUTPUT.
OUTPUT_KEYS = (
    "digest",
    "ref",
    "version",
    "regression",
    "baseline-digest",
    "report-path",
    "comment-url",
    "subject-name",
    "subject-digest",
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_OTHER_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def _runner_escape(text: str) -> str:
    """The runner's own escaping of command data: ``%``, CR and LF (it decodes exactly these)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_data(text: str) -> str:
    """The message part of a workflow command (``%``, CR and LF escaped, as the runner decodes).

    Other control characters (ESC, BEL, NEL, U+2028, U+2029, …) are not commands to the runner
    but drive terminals and break lines in log viewers: they are shown escaped (``\\x1b``).
    """
    text = _runner_escape(text)
    # A legacy "##[" command is never parsed inside a valid "::" line, but it never appears at all.
    text = text.replace("##[", "## [")
    return _OTHER_BREAKS.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def escape_property(text: str) -> str:
    """A property value (file, title) of a workflow command: also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: str | int | None) -> str:
    """``::name k=v,…::message`` with every value escaped; None properties are left out."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(
    level: str,
    message: str,
    *,
    title: str = "ci-modelver",
    file: str | None = None,
    line: int | None = None,
    col: int | None = None,
) -> str:
    """An ``::error``/``::warning``/``::notice`` annotation line."""
    if level not in LEVELS:
        raise ValueError(f"not an annotation level: {level}")
    return command(level, message, file=file, line=line, col=col, title=title)


def finding_annotation(
    finding: Finding, *, level: str = "error", title: str = "ci-modelver"
) -> str:
    """One located finding as an annotation on its file and line."""
    return annotation(
        level,
        f"{finding.message} ({finding.path})",
        title=title,
        file=finding.file,
        line=finding.line,
        col=finding.column,
    )


def neutralise(text: str) -> str:
    """Plain output that can never be read as a workflow command, line by line."""
    out = []
    for line in _LINE_BREAK.split(text):
        if line.lstrip().startswith("::"):
            line = "> " + line
        out.append(line.replace("##[", "## ["))
    return "\n".join(out)


def mask_commands(secret: str) -> list[str]:
    """``::add-mask::`` for a secret and, for a multi-line one (a PEM, a JSON key), each line."""
    # Only the runner's escaping: the runner must register the secret exactly as it is.
    found = [f"::add-mask::{_runner_escape(secret)}"]
    for line in secret.splitlines():
        if line.strip() and line != secret:
            found.append(f"::add-mask::{_runner_escape(line)}")
    return found


def _delimiter(value: str) -> str:
    while True:
        candidate = f"ghadelim_{secrets.token_hex(16)}"
        # Not anywhere in the value, so no line of it can end the block early.
        if candidate not in value:
            return candidate


def output_block(key: str, value: str) -> str:
    """``key<<DELIM`` … ``DELIM`` with a random delimiter that does not occur in ``value``."""
    if key not in OUTPUT_KEYS:
        raise ValueError(f"not a declared output: {key}")
    delimiter = _delimiter(value)
    return f"{key}<<{delimiter}\n{value}\n{delimiter}\n"


class ActionsEdge:
    """Writes to the runner: workflow commands through ``emit``, outputs and summary to files."""

    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        output_file: str | None,
        summary_file: str | None,
    ) -> None:
        self._emit = emit
        self._output = Path(output_file) if output_file else None
        self._summary = Path(summary_file) if summary_file else None
        self.written: dict[str, str] = {}

    def masks(self, values: Iterable[str]) -> None:
        for value in values:
            for line in mask_commands(value):
                self._emit(line)

    def group(self, title: str) -> None:
        self._emit(command("group", title))

    def endgroup(self) -> None:
        self._emit(command("endgroup"))

    def annotate(
        self,
        level: str,
        message: str,
        *,
        title: str = "ci-modelver",
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self._emit(annotation(level, message, title=title, file=file, line=line))

    def outputs(self, values: dict[str, str]) -> None:
        """Append outputs now (as soon as they are known); a later failure cannot lose them."""
        fresh = {k: v for k, v in values.items() if self.written.get(k) != v}
        if not fresh or self._output is None:
            self.written.update(fresh)
            return
        text = "".join(output_block(k, v) for k, v in fresh.items())
        try:
            with self._output.open("a", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise InputError(
                f"GITHUB_OUTPUT {self._output}: cannot append: {exc.strerror or exc}"
            ) from None
        self.written.update(fresh)

    def summary(self, markdown: str) -> None:
        """Append to ``$GITHUB_STEP_SUMMARY``, keeping the whole file under GitHub's 1 MiB."""
        if self._summary is None:
            return
        append_summary(self._summary, markdown)


def append_summary(path: Path, markdown: str) -> None:
    """Append Markdown to a job summary file without passing GitHub's size limit."""
    current = path.stat().st_size if path.is_file() else 0
    data = markdown if markdown.endswith("\n") else markdown + "\n"
    room = SUMMARY_LIMIT - current
    if len(data.encode()) > room:
        data = "_The ci-modelver report is too large for the job summary; see the report file._\n"
        if len(data.encode()) > room:
            return
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(data)
    except OSError as exc:
        raise InputError(
            f"GITHUB_STEP_SUMMARY {path}: cannot append: {exc.strerror or exc}"
        ) from None

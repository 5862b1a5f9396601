"""Hostile text, and checks that nothing a process printed can act as a workflow command.

The GitHub runner reads every line of a step's stdout and stderr (lines end at LF, CR or CRLF:
.NET's ``ReadLine``). A line whose first non-blank characters are ``::`` is a workflow command
(``TrimStart()``: every Unicode white space counts as blank), and a line holding ``##[`` anywhere
is a legacy one (tried only when the line is not a v2 command). ``stream_problems`` applies those
rules, stricter than the runner where Python's ``str.lstrip`` strips more than .NET's
``TrimStart``:

- no line may contain ``##[``, not even one of our own v2 commands;
- a line that starts with ``::`` must be one of the commands ci-modelver emits (``group``,
  ``endgroup``, ``add-mask``, ``error``, ``warning``, ``notice``), parse as that command with only
  the properties ci-modelver writes, mask only the secrets the test passed, and carry any hostile
  text it quotes faithfully (a ``%0A`` in the text must reach the annotation as ``%0A``, not as a
  line break).

``output_entries`` reads ``$GITHUB_OUTPUT`` with the harness's port of the runner's file-command
parser, which honours heredoc delimiters, and keeps every entry in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.support.action_runner import WorkflowCommand, parse_file_command, parse_workflow_command

# A marker every hostile string carries, to find the commands that quote one.
PAYLOAD = "add-mask"

# id -> text a pull-request author (or a server) could put where ci-modelver prints it.
HOSTILE: dict[str, str] = {
    "newline": "acc\n::add-mask::x\n::stop-commands::abc",
    "percent-escape": "acc%0A::add-mask::x%0D::warning::y",
    "leading-colons": "::add-mask::x",
    "legacy": "##[add-mask]x",
    "heredoc-delimiter": "acc\nghadelim_0123456789abcdef0123456789abcdef\n::add-mask::x",
    "eof": "acc\nEOF\n::add-mask::x",
    "carriage-return": "acc\r::add-mask::x",
    "line-separator": "acc\u2028::add-mask::x",
    "next-line": "acc\u0085::add-mask::x",
    "nul": "acc\x00::add-mask::x",
    "leading-spaces": "   ::add-mask::x",
    "spaces-after-newline": "acc\n \t\u00a0::add-mask::x",
}
# Environment variables (action inputs, GITHUB_REF) cannot carry NUL: exec refuses them.
HOSTILE_ENV = {key: value for key, value in HOSTILE.items() if "\x00" not in value}

# What the manifest schema's "printable" rule refuses: C0, DEL, C1, U+2028 and U+2029.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
CR_STAND_IN = "\ue000"  # a private-use character no test value holds

OUR_COMMANDS = frozenset({"group", "endgroup", "add-mask", "error", "warning", "notice"})
ANNOTATION_PROPERTIES = frozenset({"file", "line", "col", "title"})
TITLES = frozenset({"ci-modelver", "invalid manifest", "ci-modelver regression"})
GROUP = re.compile(r"^ci-modelver (check|publish|promote|rollback)$")
OUTPUT_KEYS = frozenset(
    {
        "digest",
        "ref",
        "version",
        "regression",
        "baseline-digest",
        "report-path",
        "comment-url",
        "subject-name",
        "subject-digest",
    }
)


def printable(text: str) -> bool:
    return CONTROL.search(text) is None


def escaped_forms(text: str) -> set[str]:
    """The faithful ways a message may quote ``text``: as is or stripped (action inputs are), with
    or without its control characters escaped, and with a legacy ``##[`` shown as ``## [`` (the
    one change ci-modelver makes to quoted text so that no line holds ``##[``)."""
    forms = {text, text.strip()}
    forms |= {
        CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), form)
        for form in forms
    }
    return forms | {form.replace("##[", "## [") for form in forms}


def runner_lines(text: str) -> list[str]:
    """``text`` cut into lines the way the runner reads a step's output."""
    return _LINE_BREAK.split(text)


def allowed_masks(secrets: Iterable[str]) -> set[str]:
    """A secret, and each line of a multi-line one (ci-modelver masks both)."""
    out: set[str] = set()
    for secret in secrets:
        out.add(secret)
        out.update(line for line in secret.splitlines() if line.strip())
    return out


def commands_in(text: str) -> list[WorkflowCommand]:
    """Every line of ``text`` the runner would read as a (v2) workflow command."""
    found = []
    for line in runner_lines(text):
        command = parse_workflow_command(line, 0)
        if command is not None:
            found.append(command)
    return found


def stream_problems(
    name: str,
    text: str,
    *,
    secrets: Iterable[str] = (),
    hostile: Sequence[str] = (),
) -> list[str]:
    """What in one stream could act as a command that is not ours; empty when all is well."""
    masks = allowed_masks(secrets)
    problems: list[str] = []
    for number, line in enumerate(runner_lines(text), 1):
        where = f"{name} line {number} {line!r}"
        if "##[" in line:
            problems.append(f"{where}: holds '##[' (a legacy workflow command)")
        if not line.lstrip().startswith("::"):
            continue
        command = parse_workflow_command(line, 0)
        if command is None or command.name not in OUR_COMMANDS:
            problems.append(f"{where}: starts with '::' but is not a command ci-modelver emits")
            continue
        problems += [f"{where}: {p}" for p in _command_problems(command, masks, hostile)]
    return problems


def _command_problems(
    command: WorkflowCommand, masks: set[str], hostile: Sequence[str]
) -> list[str]:
    problems: list[str] = []
    if command.name == "add-mask":
        if command.properties or command.data not in masks:
            problems.append("masks a value that is not one of the secrets passed")
        return problems
    if command.name in ("group", "endgroup"):
        if command.properties or (command.name == "group" and not GROUP.match(command.data)):
            problems.append(f"an unexpected {command.name} command")
        elif command.name == "endgroup" and command.data:
            problems.append("endgroup with data")
        return problems
    extra = set(command.properties) - ANNOTATION_PROPERTIES
    if extra:
        problems.append(f"annotation with properties ci-modelver never writes: {sorted(extra)}")
    for key in ("line", "col"):
        if key in command.properties and not command.properties[key].isdigit():
            problems.append(f"annotation {key}={command.properties[key]!r} is not a number")
    if command.properties.get("title") not in TITLES:
        problems.append(f"annotation title {command.properties.get('title')!r}")
    if PAYLOAD in command.data and hostile:
        faithful = any(form in command.data for text in hostile for form in escaped_forms(text))
        if not faithful:
            problems.append(
                f"annotation quotes hostile text unfaithfully (escaping lost): {command.data!r}"
            )
    return problems


def output_entries(path: Path) -> list[tuple[str, str]]:
    """``$GITHUB_OUTPUT`` as the runner reads it (``name=value`` and heredocs), in order.

    The harness's ``parse_file_command`` on the exact text: it reads the file with
    ``read_text``, whose universal newlines turn a CR inside a value into LF, which the runner
    (``File.ReadAllText``, lines split at LF) does not do.
    """
    data = path.read_bytes()
    assert CR_STAND_IN.encode() not in data, f"{path} holds the stand-in for CR"
    exact = path.with_name(path.name + ".exact")
    exact.write_bytes(data.replace(b"\r", CR_STAND_IN.encode()))
    try:
        return [
            (key.replace(CR_STAND_IN, "\r"), value.replace(CR_STAND_IN, "\r"))
            for key, value in parse_file_command(exact)
        ]
    finally:
        exact.unlink()


def output_problems(entries: Sequence[tuple[str, str]], expected: dict[str, str]) -> list[str]:
    """Keys outside the documented set, and values that differ from ``expected`` (last one wins)."""
    problems = [
        f"undocumented output {key!r}={value!r}" for key, value in entries if key not in OUTPUT_KEYS
    ]
    got = dict(entries)
    if got != expected:
        problems.append(f"outputs {got!r} != expected {expected!r}")
    return problems

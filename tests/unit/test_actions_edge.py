"""The Actions edge: one escaping for workflow commands, neutralised plain lines, safe outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_modelver.edges.actions import (
    OUTPUT_KEYS,
    ActionsEdge,
    annotation,
    command,
    escape_data,
    escape_property,
    mask_commands,
    neutralise,
    output_block,
)
from tests.support.action_runner import parse_file_command, parse_workflow_command

HOSTILE = [
    "acc\n::add-mask::x\n::stop-commands::abc",
    "%0A::error::x",
    "::warning::y",
    "  ::notice::indented",
    "a\r::set-output name=x::y",
    "ghadelim_0123\nEOF\n",
    "line\u2028::error::sep",
    "nul\x00::error::z",
    "##[add-mask]secret",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_data_and_properties_never_break_the_line(text: str) -> None:
    line = annotation("error", text, title=text, file=text, line=3)
    assert "\n" not in line and "\r" not in line
    parsed = parse_workflow_command(line, 0)
    assert parsed is not None and parsed.name == "error"
    # Other controls are shown escaped, never sent; a legacy "##[" is shown as "## [".
    shown = re.sub(
        "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]",
        lambda m: m.group(0).encode("unicode_escape").decode("ascii"),
        text,
    ).replace("##[", "## [")
    assert parsed.data == shown
    assert parsed.properties["title"] == shown and parsed.properties["file"] == shown
    assert parsed.properties["line"] == "3"


def test_escaping_follows_the_runner() -> None:
    assert escape_data("100%\r\n") == "100%25%0D%0A"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    assert command("group", "x") == "::group::x"
    assert command("endgroup") == "::endgroup::"
    with pytest.raises(ValueError):
        annotation("debug", "x")


@pytest.mark.parametrize("text", HOSTILE)
def test_neutralised_text_has_no_command_line(text: str) -> None:
    for line in neutralise(f"{text}\n{text}").split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line


@given(st.text())
def test_neutralise_for_any_text(text: str) -> None:
    for line in neutralise(text).split("\n"):
        assert "\r" not in line
        assert not line.lstrip().startswith("::")
        assert "##[" not in line


def test_multi_line_secrets_are_masked_line_by_line() -> None:
    lines = mask_commands("-----BEGIN-----\nabc%\n-----END-----")
    assert lines[0] == "::add-mask::-----BEGIN-----%0Aabc%25%0A-----END-----"
    assert lines[1:] == [
        "::add-mask::-----BEGIN-----",
        "::add-mask::abc%25",
        "::add-mask::-----END-----",
    ]


# The runner reads CR LF as a line end, so a CR cannot survive in a value; ours never hold one
# (digests, versions, references, paths, URLs).
@given(st.text().filter(lambda v: "\r" not in v))
def test_output_values_round_trip_through_the_runner_parser(value: str) -> None:
    block = output_block("digest", value)
    assert parse_file_command_text(block) == [("digest", value)]


def parse_file_command_text(text: str) -> list[tuple[str, str]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out"
        path.write_text(text, encoding="utf-8")
        return parse_file_command(path)


def test_a_value_holding_a_delimiter_like_line_stays_one_value(tmp_path: Path) -> None:
    value = "x\nghadelim_0000\nEOF\ndigest<<EOF\nsha256:evil\nEOF"
    out = tmp_path / "output"
    edge = ActionsEdge(lambda line: None, output_file=str(out), summary_file=None)
    edge.outputs({"version": value, "digest": "sha256:good"})
    assert parse_file_command(out) == [("version", value), ("digest", "sha256:good")]


def test_only_declared_output_keys() -> None:
    assert set(OUTPUT_KEYS) == {
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
    with pytest.raises(ValueError):
        output_block("evil", "x")


def test_outputs_are_written_once_per_value(tmp_path: Path) -> None:
    out = tmp_path / "output"
    edge = ActionsEdge(lambda line: None, output_file=str(out), summary_file=None)
    edge.outputs({"version": "1.0.0"})
    edge.outputs({"version": "1.0.0", "digest": "sha256:1"})
    assert parse_file_command(out) == [("version", "1.0.0"), ("digest", "sha256:1")]


def test_summary_stays_under_the_limit(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    edge = ActionsEdge(lambda line: None, output_file=None, summary_file=str(summary))
    edge.summary("# ok")
    edge.summary("x" * (2 * 1024 * 1024))
    text = summary.read_text()
    assert text.startswith("# ok\n") and "too large for the job summary" in text
    assert summary.stat().st_size < 1024 * 1024


def test_progress_lines_carry_hostile_file_names_safely() -> None:
    import io

    from ci_modelver.edges.progress import TerminalProgress

    stream = io.StringIO()
    progress = TerminalProgress(stream, verb="downloaded", tty=False, in_actions=True)
    for name in ("::add-mask::x", "a\n::error::b", "##[add-mask]y"):
        progress.start(name, 10)
        progress.finish(name, skipped=False)
        progress.finish(name, skipped=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6
    assert all(not line.lstrip().startswith("::") and "##[" not in line for line in lines), lines


def test_annotation_data_shows_terminal_controls_escaped() -> None:
    line = annotation("error", "unknown key 'x\x1b]2;title\x07' \x9b2J")
    assert "\x1b" not in line and "\x07" not in line and "\x9b" not in line
    assert "\\x1b]2;title\\x07" in line


def test_a_mask_registers_the_secret_exactly() -> None:
    assert mask_commands("pa##[ss\x1bword") == ["::add-mask::pa##[ss\x1bword"]

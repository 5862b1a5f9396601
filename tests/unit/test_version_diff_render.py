"""``diff`` rendered: hostile names escaped in Markdown, one line per entry in text, JSON as is."""

from __future__ import annotations

import json
import re
from typing import Any

from ci_modelver.commands.diff import DiffResult
from ci_modelver.core.version_diff import FileState, VersionInput, diff_versions
from ci_modelver.edges.terminal import render

DA = "sha256:" + "a" * 64
DB = "sha256:" + "b" * 64
SCRIPT = "</script><script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
C1, C2 = "1" * 40, "2" * 40


def _side(digest: str, version: str, **record: Any) -> VersionInput:
    files = record.pop("files", ())
    aliases = record.pop("aliases", ())
    return VersionInput(
        ref=f"ghcr.io/acme/churn@{digest}",
        digest=digest,
        name="churn",
        version=version,
        created="2026-01-01T00:00:00Z",
        record={"name": "churn", "version": version, **record},
        files=files,
        aliases=aliases,
    )


def _hostile() -> DiffResult:
    weights = "application/vnd.cncf.model.weight.v1.raw"
    a = _side(
        DA,
        "1.0.0",
        description="plain",
        metrics={"validation|x": {SCRIPT: 0.5, "acc`uracy`": 0.8}},
        hyperparameters={"a|b": "x | y", "tick": "`rm -rf`"},
        gates={SCRIPT: {"direction": "higher", "tolerance": 0.01}},
        code={"repository": "https://github.com/acme/churn", "commit": C1},
        files=(FileState("model|.bin", "weight", weights, False, 10, "sha256:" + "c" * 64),),
    )
    b = _side(
        DB,
        "1.1.0",
        description=IMG,
        metrics={"validation|x": {SCRIPT: 0.4, "acc`uracy`": 0.9}},
        hyperparameters={"a|b": "x || y", "tick": "``whoami``", "@team": "[link](javascript:x)"},
        data=[{"name": "train|set", "uri": "s3://b/<b>bold</b>", "digest": "sha256:" + "d" * 64}],
        code={"repository": "https://github.com/acme/churn", "commit": C2},
        files=(FileState("model|.bin", "weight", weights, False, 12, "sha256:" + "e" * 64),),
    )
    return DiffResult(diff_versions(a, b))


def _markdown(result: DiffResult) -> str:
    return render(result, "markdown", in_actions=False).text("out")


def _cells(line: str) -> list[str]:
    # A table row splits on unescaped pipes only: escaped ones are &#124;.
    return line.strip().strip("|").split("|")


def test_markdown_escapes_hostile_metric_names_and_descriptions() -> None:
    text = _markdown(_hostile())
    assert "<script" not in text and "</script" not in text
    assert "<img" not in text and "<b>" not in text
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "](javascript" not in text
    assert "@team" not in text  # no mention
    assert "[compare the code](https://github.com/acme/churn/compare/" in text


def test_markdown_pipes_and_backticks_never_break_a_table() -> None:
    text = _markdown(_hostile())
    tables: list[list[str]] = []
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            tables.append(rows)
    assert tables
    for rows in tables:
        widths = {len(_cells(r)) for r in rows}
        assert len(widths) == 1, rows
    body = "\n".join(line for rows in tables for line in rows)
    # Backticks only around digests we checked, never from recorded text.
    assert re.sub(r"`sha256:[0-9a-f]{64}`", "", body).count("`") == 0
    assert "x &#124;&#124; y" in text and "&#96;&#96;whoami&#96;&#96;" in text


def test_gated_metric_marked_from_the_record_gates() -> None:
    text = _markdown(_hostile())
    row = next(line for line in text.splitlines() if "alert(1)&lt;/script&gt; 🔒" in line)
    assert "-0.1000" in row and "failed" in row


def test_text_lines_carry_no_raw_control_characters() -> None:
    a = _side(DA, "1.0.0", hyperparameters={"k": "v"})
    b = _side(DB, "1.1.0", hyperparameters={"k": "v\n::error::x\x1b[2J"})
    out = render(DiffResult(diff_versions(a, b)), "text", in_actions=False).text("out")
    assert "\x1b" not in out
    assert not any(line.startswith("::") for line in out.splitlines())
    assert "  ~ k: v → v\\n::error::x\\x1b[2J" in out


def test_text_output_of_a_change_and_of_identical_versions() -> None:
    out = render(_hostile(), "text", in_actions=False).text("out")
    assert out.splitlines()[0] == "churn 1.0.0 → churn 1.1.0"
    assert "files: 1 changed" in out
    assert "  ~ model|.bin  weight  10 B → 12 B" in out
    assert f"  compare: https://github.com/acme/churn/compare/{C1}...{C2}" in out
    assert "metrics (B against A; gates from A's record):" in out
    same = _side(DA, "1.0.0", metrics={"v": {"m": 1.0}})
    out = render(DiffResult(diff_versions(same, same)), "text", in_actions=False).text("out")
    assert f"identical: A and B are the same version ({DA})" in out
    md = _markdown(DiffResult(diff_versions(same, same)))
    assert "**Identical**" in md


def test_json_is_the_plain_diff() -> None:
    result = _hostile()
    doc = json.loads(render(result, "json", in_actions=False).text("out"))
    assert doc == json.loads(json.dumps(result.to_json()))
    assert doc["record"] == [{"key": "description", "change": "changed", "a": "plain", "b": IMG}]
    assert doc["code"]["compareUrl"] == f"https://github.com/acme/churn/compare/{C1}...{C2}"

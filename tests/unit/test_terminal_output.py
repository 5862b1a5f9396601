"""Text from a store never drives the terminal: control characters are shown, never sent."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ci_modelver.core.jsontext import json_text
from ci_modelver.edges.terminal import Console, history_text, reproduce_text, show_text, visible

HOSTILE = "a\x1b]0;owned\x07b\x1b[2Jc\rd\x9b2Je\u2028f\x00g"


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def test_visible_escapes_every_control_but_tab_and_newline() -> None:
    shown = visible(HOSTILE + "\tx\ny")
    assert _raw_controls(shown) == []
    assert "\\x1b]0;owned\\x07" in shown and "\\r" in shown and "\\x9b" in shown
    assert shown.endswith("\tx\ny")


@pytest.mark.parametrize("in_actions", [False, True])
def test_console_never_writes_raw_controls(in_actions: bool) -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(out, err, in_actions=in_actions)
    console.print(HOSTILE)
    console.error(HOSTILE)
    assert _raw_controls(out.getvalue()) == [] and _raw_controls(err.getvalue()) == []


def _doc(value: str) -> dict[str, Any]:
    record = {
        "name": value,
        "version": "1.0.0",
        "description": value,
        "code": {"repository": value, "commit": value, "runUrl": value},
        "framework": {"name": value, "extra": {value: value}},
        "data": [{"name": value, "uri": value, "digest": value}],
        "hyperparameters": {value: value},
        "metrics": {value: {value: 1.0}},
    }
    return {
        "ref": value,
        "name": value,
        "version": value,
        "record": record,
        "files": [{"type": "weight", "size": 1, "digest": "sha256:" + "0" * 64, "path": value}],
        "annotations": {},
        **record,
        "dataCheck": [],
        "commands": [value],
    }


@pytest.mark.parametrize("render", [show_text, reproduce_text], ids=["show", "reproduce"])
def test_renderers_keep_registry_values_on_their_line(render: Any) -> None:
    text = render(_doc("x\nfake: line\x1b[2J"))
    assert _raw_controls(text) == []
    assert not any(line.startswith("fake: line") for line in text.splitlines())


def test_history_escapes_too() -> None:
    value = "x\ny\x1b[2J"
    doc = {
        "repository": value,
        "versions": [
            {
                "version": value,
                "digest": value,
                "created": value,
                "commit": value,
                "gatedMetrics": {value: 1.0},
                "aliases": [value],
                "evaluations": 0,
            }
        ],
        "aliasLog": [],
    }
    for markdown in (False, True):
        assert _raw_controls(history_text(doc, markdown)) == []


def test_json_text_stays_json_without_raw_controls() -> None:
    doc = {"k\x9b": "v\u2028\x7f\x1b", "ok": "—"}
    text = json_text(doc)
    assert _raw_controls(text) == [] and "\u2028" not in text
    assert json.loads(text) == doc
    assert "—" in text

"""A hostile registry's text never drives the terminal or the Actions runner.

The registry serves a model whose version record carries ESC sequences (clear screen, retitle),
carriage returns, C1 controls, line separators and workflow commands in every field a renderer
shows. Every text renderer prints them escaped; JSON stays valid; in GitHub Actions no line can be
read as a workflow command.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.hostile_registry import HostileRegistry, canonical, model_artifact

pytestmark = pytest.mark.integration

EVIL = "v\x1b]0;owned\x07\x1b[2J\rX\x9b2J\u2028\n::add-mask::leak\n##[add-mask]y"
T = ("--timeout", "5")


def _record() -> str:
    return canonical(
        {
            "schemaVersion": 1,
            "name": "model",
            "version": "1.0.0",
            "description": EVIL,
            "license": EVIL,
            "created": EVIL,
            "metrics": {"validation": {"accuracy": 0.9}, EVIL: {EVIL: 0.5}},
            "hyperparameters": {EVIL: EVIL, "lr": EVIL},
            "code": {"repository": EVIL, "commit": EVIL, "runUrl": EVIL, "path": EVIL},
            "data": [{"name": EVIL, "uri": EVIL, "digest": EVIL}],
            "framework": {"name": EVIL, "version": EVIL, "extra": {EVIL: EVIL}},
            "gates": {},
        }
    ).decode()


@pytest.fixture(scope="module")
def registry() -> Iterator[HostileRegistry]:
    reg = HostileRegistry().start()
    reg.add_model(["1.0.0", "production"], model_artifact(record=_record()))
    try:
        yield reg
    finally:
        reg.stop()


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def _check(result: Run, actions: bool) -> None:
    assert "Traceback" not in result.err
    for stream in (result.out, result.err):
        assert _raw_controls(stream) == [], stream
        assert "\u2028" not in stream
        if actions:
            for line in stream.split("\n"):
                assert not line.lstrip().startswith("::"), line
                assert "##[" not in line, line


def _commands(reg: HostileRegistry, tmp: Path) -> list[tuple[str, ...]]:
    model = make_model(tmp / "m", name="model", version="1.1.0")
    return [
        ("show", reg.ref("1.0.0"), *T),
        ("show", reg.ref("1.0.0"), "--format", "json", *T),
        ("reproduce", reg.ref("1.0.0"), *T),
        ("versions", reg.repo(), *T),
        ("history", reg.repo(), *T),
        ("history", reg.repo(), "--format", "markdown", *T),
        ("compare", str(model), "--repository", reg.repo(), *T),
        ("compare", str(model), "--repository", reg.repo(), "--format", "markdown", *T),
    ]


@pytest.mark.parametrize("actions", [False, True], ids=["terminal", "actions"])
def test_every_renderer_escapes_registry_text(
    registry: HostileRegistry, tmp_path: Path, actions: bool
) -> None:
    extra = {"GITHUB_ACTIONS": "true"} if actions else {}
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1", **extra)
    for args in _commands(registry, tmp_path):
        result = run_cli(*args, env=env)
        assert result.code == 0, (args, result.err)
        _check(result, actions)


def test_json_keeps_the_values_exactly(registry: HostileRegistry, tmp_path: Path) -> None:
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1")
    result = run_cli("show", registry.ref("1.0.0"), "--format", "json", *T, env=env)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["record"]["description"] == EVIL
    assert doc["record"]["hyperparameters"][EVIL] == EVIL

"""The CLI boundary: version, usage errors, output formats, exit codes, tracebacks only on --debug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_modelver import __version__, validation
from tests.conftest import EXAMPLE, run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"ci-modelver {__version__}"


def test_validate_example_text() -> None:
    result = run_cli("validate", str(EXAMPLE / "modelver.yaml"))
    assert result.code == 0, result.out + result.err
    assert "valid — churn-classifier 1.0.0, 5 file(s), 8 metric(s), 3 gate(s)" in result.out


def test_validate_example_json() -> None:
    result = run_cli("validate", str(EXAMPLE / "modelver.yaml"), "--format", "json")
    doc = json.loads(result.out)
    assert doc == {
        "file": str(EXAMPLE / "modelver.yaml"),
        "valid": True,
        "findings": [],
        "name": "churn-classifier",
        "version": "1.0.0",
    }


def test_default_manifest_is_modelver_yaml_in_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE)
    assert run_cli("validate").code == 0


def _write_invalid(tmp_path: Path) -> Path:
    (tmp_path / "w.bin").write_bytes(b"w")
    manifest = tmp_path / "modelver.yaml"
    manifest.write_text(
        "name: demo\nversion: 1.0.0\nfiles:\n  - {path: w.bin, type: weight}\nhyperparams: {}\n"
    )
    return manifest


def test_github_annotations_added_inside_actions(tmp_path: Path) -> None:
    manifest = _write_invalid(tmp_path)
    plain = run_cli("validate", str(manifest))
    assert plain.code == 2
    assert "::error" not in plain.out
    assert f"{manifest}:5:1: unknown key 'hyperparams'" in plain.out
    actions = run_cli("validate", str(manifest), env={"GITHUB_ACTIONS": "true"})
    assert actions.code == 2
    assert (
        f"::error file={manifest},line=5,col=1,title=invalid manifest::unknown key" in actions.out
    )
    assert f"{manifest}:5:1:" in actions.out


def test_usage_error_is_one_line_exit_2() -> None:
    result = run_cli("validate", "--no-such-flag")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: ") and "--no-such-flag" in result.err


def test_unknown_command_exit_2() -> None:
    result = run_cli("publishh")
    assert result.code == 2
    assert "invalid choice: 'publishh'" in result.err
    assert "Traceback" not in result.err


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.code == 2
    assert result.err == f"error: {tmp_path / 'nope.yaml'}: file not found; check the path\n"


def _boom(path: Path, display: str | None = None) -> validation.ValidationResult:
    raise RuntimeError("kaboom")


def test_internal_error_exit_70_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    # The error boundary itself is under test; a failing command is the only way to reach it.
    monkeypatch.setattr("ci_modelver.commands.validate.validate_manifest", _boom)
    result = run_cli("validate", "x.yaml")
    assert result.code == 70
    assert "Traceback" not in result.err
    assert "internal error: RuntimeError: kaboom" in result.err
    assert "rerun with --debug" in result.err
    debug = run_cli("validate", "x.yaml", "--debug")
    assert debug.code == 70
    assert "Traceback (most recent call last)" in debug.err


def test_schema_command_prints_bundled_schema() -> None:
    result = run_cli("schema", "metrics")
    assert result.code == 0
    assert json.loads(result.out)["$id"] == "urn:ci-modelver:schema:metrics:v1"


def test_usage_errors_never_echo_credentials() -> None:
    result = run_cli("show", "a", "https://user:s3cret@host/x?token=t0k3n", "oauth:pw2@h/y")
    assert result.code == 2
    assert "unrecognized arguments" in result.err
    for secret in ("s3cret", "t0k3n", "pw2"):
        assert secret not in result.err

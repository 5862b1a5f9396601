"""The action and every workflow: schema-valid, clean under zizmor, no injection, pinned actions.

check-jsonschema (vendored schemas) and zizmor (--offline) run as local processes from the venv's
bin folder; a dead proxy in their environment makes any network attempt fail instead of passing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

ACTION = ROOT / "action.yml"
OWN_WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
EXAMPLE_WORKFLOWS = sorted((ROOT / "examples" / "workflows").glob("*.y*ml"))
WORKFLOWS = OWN_WORKFLOWS + EXAMPLE_WORKFLOWS
# The example workflows call this repository's action by its major tag, as users copy them.
OWN_ACTION_BY_TAG = "ci-modelver/ci-modelver@v1"

UNTRUSTED_IN_RUN = re.compile(r"\$\{\{\s*(inputs\.|github\.event\.|github\.head_ref)")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
DEAD_PROXY = "http://127.0.0.1:9"


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing: install the test extras (pip install '.[test]')"
    return str(path)


def _offline_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN", "ZIZMOR_CONFIG")
    }
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key] = env[key.lower()] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = ""
    env["ZIZMOR_OFFLINE"] = "true"
    env["NO_COLOR"] = "1"
    return env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=_offline_env(), capture_output=True, text=True, timeout=120, check=False
    )


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_there_are_workflows() -> None:
    names = {_rel(p) for p in WORKFLOWS}
    assert {
        ".github/workflows/ci.yml",
        ".github/workflows/self-test.yml",
        "examples/workflows/pr-check.yml",
        "examples/workflows/release.yml",
        "examples/workflows/rollback.yml",
        "examples/workflows/fork-comment.yml",
    } <= names


def test_action_matches_the_github_actions_schema() -> None:
    done = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", _rel(ACTION)
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_match_the_github_workflows_schema() -> None:
    done = _run(
        _tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *(_rel(p) for p in WORKFLOWS),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _zizmor(*inputs: str) -> list[dict[str, Any]]:
    done = _run(
        _tool("zizmor"),
        "--offline",
        "--no-progress",
        "--format",
        "json",
        "--min-severity",
        "medium",
        *inputs,
    )
    # zizmor exits 0 when clean, 10+ when it has findings, other codes when it failed.
    assert done.returncode == 0 or done.returncode >= 10, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def _summary(findings: list[dict[str, Any]]) -> list[str]:
    out = []
    for finding in findings:
        where = finding["locations"][0]["symbolic"]["key"]
        place = next(iter(where.values())).get("verbatim_path", where)
        row = finding["locations"][0]["concrete"]["location"]["start_point"]["row"] + 1
        severity = finding["determinations"]["severity"]
        out.append(f"{place}:{row}: {finding['ident']} ({severity})")
    return out


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    # Directories are searched for .github/workflows only, so the examples are named one by one.
    findings = _zizmor(_rel(ACTION), ".github/workflows", *(_rel(p) for p in EXAMPLE_WORKFLOWS))
    assert findings == [], "\n".join(_summary(findings))


def test_zizmor_does_report_an_injection(tmp_path: Path) -> None:
    """The audit above really runs: the same call flags a workflow with a template injection."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        '    steps:\n      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    findings = _zizmor(str(bad))
    assert "template-injection" in {f["ident"] for f in findings}


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(data, dict), path
    return data


def _steps(path: Path) -> Iterator[dict[str, Any]]:
    data = _load(path)
    if path == ACTION:
        yield from data["runs"]["steps"]
        return
    for job in data["jobs"].values():
        yield from job.get("steps", [])


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=_rel)
def test_no_untrusted_expression_inside_run(path: Path) -> None:
    for step in _steps(path):
        script = step.get("run")
        if isinstance(script, str):
            match = UNTRUSTED_IN_RUN.search(script)
            assert match is None, (
                f"{_rel(path)}: step {step.get('name') or step.get('id')!r} expands "
                f"{match.group(0)}… inside run:; pass it through env: instead"
            )


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=_rel)
def test_actions_are_pinned_by_commit_sha(path: Path) -> None:
    for step in _steps(path):
        uses = step.get("uses")
        if not isinstance(uses, str) or uses.startswith(("./", "docker://")):
            continue
        if path in EXAMPLE_WORKFLOWS and uses == OWN_ACTION_BY_TAG:
            continue
        assert PINNED.match(uses), f"{_rel(path)}: '{uses}' is not pinned by a full commit SHA"
    for line in path.read_text("utf-8").splitlines():
        found = USES_LINE.match(line)
        if found and PINNED.match(found.group(1)):
            assert re.search(r"#\s*v\d", found.group(2)), (
                f"{_rel(path)}: '{line.strip()}' needs a version comment (# vX.Y.Z)"
            )


@pytest.mark.parametrize("path", WORKFLOWS, ids=_rel)
def test_workflows_limit_permissions_and_credentials(path: Path) -> None:
    data = _load(path)
    assert "permissions" in data, f"{_rel(path)}: no top-level permissions"
    top = data["permissions"]
    assert top in ({}, {"contents": "read"}), f"{_rel(path)}: top-level permissions {top}"
    for step in _steps(path):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, _rel(path)


def test_fork_comment_follows_the_check_workflow() -> None:
    check = _load(ROOT / "examples" / "workflows" / "pr-check.yml")
    comment = _load(ROOT / "examples" / "workflows" / "fork-comment.yml")
    trigger = comment.get("on", comment.get(True))  # PyYAML reads a bare 'on' key as True
    assert trigger["workflow_run"]["workflows"] == [check["name"]]
    uploads = [
        s
        for s in _steps(ROOT / "examples" / "workflows" / "pr-check.yml")
        if "upload" in str(s.get("uses"))
    ]
    downloads = [
        s
        for s in _steps(ROOT / "examples" / "workflows" / "fork-comment.yml")
        if "download" in str(s.get("uses"))
    ]
    assert [s["with"]["name"] for s in uploads] == [s["with"]["name"] for s in downloads]

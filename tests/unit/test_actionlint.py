"""actionlint (with shellcheck on every run: script) finds nothing in any workflow.

actionlint never fetches remote actions: it knows a bundled set of popular actions by tag and
skips the rest (a SHA pin or ci-modelver/ci-modelver@v1 is only checked for its syntax). So the
example workflows are linted twice: as shipped, and as a copy in a scratch repository that holds
this repository's action.yml, with the reference to this action rewritten to `uses: ./`. actionlint
then checks every `with:` input and every `steps.<id>.outputs.*` the examples use against
action.yml, from local files only.

Under CI=true a missing actionlint or shellcheck fails the test; elsewhere it skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

OWN_WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
EXAMPLE_WORKFLOWS = sorted((ROOT / "examples" / "workflows").glob("*.y*ml"))
WORKFLOWS = OWN_WORKFLOWS + EXAMPLE_WORKFLOWS
DEAD_PROXY = "http://127.0.0.1:9"
# The examples call this action as users copy it: <owner>/ci-modelver@<ref>.
OWN_ACTION_USES = re.compile(r"^(\s*(?:-\s+)?uses:\s*)[A-Za-z0-9_.-]+/ci-modelver@\S+(\s*)$", re.M)

# Findings that are wrong for this repository: repository-relative path -> actionlint -ignore
# regexes. Each workflow gets its own actionlint call, so an ignore applies to that one file;
# -ignore matches the message only, so each pattern names the check (e.g. r"SC2015:").
# Every entry needs a comment saying why, and every pattern must still match a finding.
IGNORED: dict[str, tuple[str, ...]] = {}


def _binary(name: str, *candidates: Path) -> str:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} not found; ./dev.sh test installs it and CI=true requires it")
    pytest.skip(f"{name} not installed (./dev.sh test installs it)")


@pytest.fixture(scope="module")
def tools() -> tuple[str, str]:
    actionlint = _binary("actionlint", Path(sys.executable).parent / "actionlint")
    # Debian's shellcheck; actionlint silently drops the check when the executable is missing,
    # so the path is resolved here and the wiring is proven by test_actionlint_reports_findings.
    shellcheck = _binary("shellcheck", Path("/usr/bin/shellcheck"))
    return actionlint, shellcheck


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[key] = env[key.lower()] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = ""
    env["NO_COLOR"] = "1"
    return env


def _actionlint(
    tools: tuple[str, str], cwd: Path, files: list[str], ignore: tuple[str, ...], scratch: Path
) -> list[dict[str, Any]]:
    actionlint, shellcheck = tools
    # An empty config file: a .github/actionlint.yaml cannot loosen the checks; ignores live here.
    config = scratch / "actionlint-config.yaml"
    config.write_text("{}\n")
    args = [
        actionlint,
        "-config-file",
        str(config),
        "-shellcheck",
        shellcheck,
        # No step uses `shell: python`; disabled so a pyflakes on PATH cannot change the result.
        "-pyflakes=",
        "-no-color",
        "-format",
        "{{json .}}",
    ]
    for pattern in ignore:
        args += ["-ignore", pattern]
    done = subprocess.run(
        [*args, *files],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 0: clean, 1: findings; anything else (2 bad flags, 3 crash) is a failure of the run itself.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    assert (done.returncode == 1) == bool(findings), done.stdout + done.stderr
    return findings


def _summary(findings: list[dict[str, Any]], shown_as: str = "") -> str:
    return "\n".join(
        f"{shown_as or f['filepath']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
        for f in findings
    )


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _scratch_repository(root: Path) -> Path:
    """A directory actionlint takes for a repository holding this action at its root."""
    (root / ".git").mkdir(parents=True)
    (root / ".github" / "workflows").mkdir(parents=True)
    shutil.copy2(ROOT / "action.yml", root / "action.yml")
    return root


def _check(
    tools: tuple[str, str], cwd: Path, file: str, rel: str, scratch: Path, shown_as: str
) -> None:
    ignore = IGNORED.get(rel, ())
    findings = _actionlint(tools, cwd, [file], ignore, scratch)
    assert findings == [], _summary(findings, shown_as)
    if ignore:
        unfiltered = _actionlint(tools, cwd, [file], (), scratch)
        for pattern in ignore:
            assert any(re.search(pattern, f["message"]) for f in unfiltered), (
                f"{rel}: ignore {pattern!r} matches no finding any more; remove it"
            )


def test_there_are_workflows_and_ignores_name_them() -> None:
    names = {_rel(p) for p in WORKFLOWS}
    assert {".github/workflows/ci.yml", "examples/workflows/pr-check.yml"} <= names
    assert set(IGNORED) <= names, set(IGNORED) - names


@pytest.mark.parametrize("path", WORKFLOWS, ids=_rel)
def test_actionlint_finds_nothing(path: Path, tools: tuple[str, str], tmp_path: Path) -> None:
    _check(tools, ROOT, _rel(path), _rel(path), tmp_path, _rel(path))


@pytest.mark.parametrize("path", EXAMPLE_WORKFLOWS, ids=_rel)
def test_actionlint_checks_the_examples_against_action_yml(
    path: Path, tools: tuple[str, str], tmp_path: Path
) -> None:
    repo = _scratch_repository(tmp_path / "repo")
    text = path.read_text("utf-8")
    # Same line count, so the line numbers actionlint reports are those of the example.
    local, count = OWN_ACTION_USES.subn(r"\1./\2", text)
    uses_of_this_action = re.findall(r"^\s*(?:-\s+)?uses:.*ci-modelver", text, re.M)
    assert count == len(uses_of_this_action), f"{_rel(path)}: unexpected reference to the action"
    copy = repo / ".github" / "workflows" / path.name
    copy.write_text(local, "utf-8")
    where = f"{_rel(path)} (copy using ./)"
    _check(tools, repo, copy.relative_to(repo).as_posix(), _rel(path), tmp_path, where)


def test_actionlint_reports_findings(tools: tuple[str, str], tmp_path: Path) -> None:
    """The calls above really lint: shellcheck and the local action.yml are both consulted."""
    repo = _scratch_repository(tmp_path / "repo")
    bad = repo / ".github" / "workflows" / "bad.yml"
    bad.write_text(
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n"
        '      - run: test -n "$A" && mkdir out || rm -f out\n'
        "      - id: own\n"
        "        uses: ./\n"
        "        with:\n"
        "          no-such-input: x\n"
        "      - env:\n"
        "          D: ${{ steps.own.outputs.no-such-output }}\n"
        '        run: echo "$D"\n'
    )
    findings = _actionlint(tools, repo, [".github/workflows/bad.yml"], (), tmp_path)
    found = {(f["kind"], f["line"]) for f in findings}
    assert found == {("shellcheck", 8), ("action", 12), ("expression", 14)}, _summary(findings)
    messages = " ".join(f["message"] for f in findings)
    assert "SC2015:" in messages, messages
    assert '"no-such-input" is not defined in action "ci-modelver"' in messages, messages
    assert 'property "no-such-output" is not defined' in messages, messages
    # An ignore names one check: the shellcheck finding goes, the action finding stays.
    narrowed = _actionlint(tools, repo, [".github/workflows/bad.yml"], ("SC2015:",), tmp_path)
    assert {f["kind"] for f in narrowed} == {"action", "expression"}, _summary(narrowed)


def test_the_projects_own_shell_scripts_pass_shellcheck(tools: tuple[str, str]) -> None:
    scripts = [ROOT / "dev.sh", ROOT / ".ci" / "run"]
    done = subprocess.run(
        [tools[1], "--format=gcc", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

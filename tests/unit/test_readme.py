"""The README's promises: two Quickstart commands, CI runs the test one, it stays short; the
generated manifest reference in docs/manifest.md is current; the exit-code tables match the code."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
MANIFEST_DOC = (ROOT / "docs" / "manifest.md").read_text("utf-8")
CLI_DOC = (ROOT / "docs" / "cli.md").read_text("utf-8")


def _quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S)
    assert block, "the Quickstart section has no fenced block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def _section(text: str, heading: str) -> str:
    """The text under a '## heading', up to the next heading of level 1 or 2."""
    body = text.split(f"\n{heading}\n", 1)[1]
    return re.split(r"^#{1,2} ", body, maxsplit=1, flags=re.M)[0]


def _exit_codes(table: str) -> set[int]:
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}


def test_readme_is_under_10000_characters() -> None:
    assert len(README) < 10_000, f"README.md has {len(README)} characters; move detail into docs/"


def test_quickstart_is_exactly_two_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert all(not c.startswith("#") for c in commands)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    commands = [ln for ln in lines if not ln.startswith(("set ", "cd "))]
    assert commands == [_quickstart_commands()[1]]


def test_quickstart_scripts_exist_and_are_executable() -> None:
    for command in _quickstart_commands():
        script = ROOT / shlex.split(command)[0]
        assert script.is_file(), script
        assert script.stat().st_mode & 0o111, f"{script} is not executable"


def test_manifest_reference_matches_schema() -> None:
    spec = importlib.util.spec_from_file_location("ref", ROOT / "scripts" / "manifest_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DOC == ROOT / "docs" / "manifest.md"
    assert module.refreshed(MANIFEST_DOC) == MANIFEST_DOC, (
        "docs/manifest.md's manifest reference is stale: "
        "run python scripts/manifest_reference.py --write"
    )
    assert "| `gates.<key>.tolerance` |" in MANIFEST_DOC
    assert "manifest-reference:start" not in README


def test_exit_codes_documented_match_the_code() -> None:
    from ci_modelver.errors import ExitCode

    codes = {int(code) for code in ExitCode}
    assert _exit_codes(_section(CLI_DOC, "## Exit codes")) == codes
    assert _exit_codes(_section(README, "## Exit codes")) == codes

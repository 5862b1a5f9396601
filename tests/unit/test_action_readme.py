"""docs/github-action.md's input/output tables list exactly what action.yml declares, with its
defaults, and say in which modes each output is set."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "github-action.md").read_text("utf-8")
MODES = {"check", "publish", "promote", "rollback"}
ACTION = yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))


def _table(name: str) -> list[list[str]]:
    block = DOC.split(f"<!-- action-{name}:start -->", 1)[1].split(
        f"<!-- action-{name}:end -->", 1
    )[0]
    rows = [line for line in block.strip().splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_inputs_table_matches_action_yml() -> None:
    rows = _table("inputs")
    names = [re.sub(r"`", "", row[0]) for row in rows]
    assert names == list(ACTION["inputs"])
    for row in rows:
        name = row[0].strip("`")
        default = str(ACTION["inputs"][name].get("default", ""))
        shown = row[1].strip("`")
        if name == "repository":
            assert default == "" and "ghcr.io" in shown  # computed at run time
        else:
            assert shown == default, (name, shown, default)


def test_outputs_table_matches_action_yml() -> None:
    names = [row[0].strip("`") for row in _table("outputs")]
    assert names == list(ACTION["outputs"])
    for name, spec in ACTION["outputs"].items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_outputs_table_says_in_which_modes_each_output_is_set() -> None:
    for row in _table("outputs"):
        assert len(row) == 3, row  # output, set in, meaning
        named = set(re.findall(r"[a-z]+", row[1])) & MODES
        assert row[1].startswith("every mode") or named, row


def test_every_input_reaches_the_entry_point_through_env() -> None:
    run_step = next(step for step in ACTION["runs"]["steps"] if step.get("id") == "run")
    expected = {
        f"INPUT_{name.upper().replace('-', '_')}"
        for name in ACTION["inputs"]
        if name != "python-version"
    }
    assert set(run_step["env"]) == expected | {"MODELVER_JOB_TOKEN"}
    assert run_step["env"]["MODELVER_JOB_TOKEN"] == "${{ github.token }}"
    for key, value in run_step["env"].items():
        if not key.startswith("INPUT_"):
            continue
        name = key[len("INPUT_") :].lower().replace("_", "-")
        assert value == f"${{{{ inputs.{name} }}}}"
    assert "${{" not in run_step["run"]

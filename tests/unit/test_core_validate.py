"""Pure helpers of core.validate and core.source."""

from __future__ import annotations

import pytest

from ci_modelver.core.source import Finding, format_path
from ci_modelver.core.validate import (
    license_problem,
    normalise_relative,
    relative_path_problem,
    split_gate_key,
    suggest,
    version_problem,
)
from ci_modelver.edges.actions import escape_data as escape_command_data
from ci_modelver.edges.actions import escape_property as escape_command_property
from ci_modelver.edges.actions import finding_annotation as github_annotation


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), "$"),
        (("files", 0, "path"), "$.files[0].path"),
        (("gates", "validation/auc"), "$.gates['validation/auc']"),
        (("metrics", "it's"), "$.metrics['it\\'s']"),
    ],
)
def test_format_path(path: tuple[str | int, ...], expected: str) -> None:
    assert format_path(path) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "MIT",
        "Apache-2.0",
        "MIT OR Apache-2.0",
        "(MIT AND BSD-3-Clause) OR GPL-2.0+",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "LicenseRef-acme-1.0",
    ],
)
def test_spdx_accepts(expression: str) -> None:
    assert license_problem(expression) is None


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("MIT OR", "incomplete"),
        ("MIT Apache-2.0", "join licenses"),
        ("(MIT", "incomplete"),
        ("MIT)", "unbalanced"),
        ("OR MIT", "needs a license"),
        ("MIT/Apache", "unexpected '/'"),
        ("MIT (BSD)", "missing AND/OR"),
    ],
)
def test_spdx_rejects(expression: str, fragment: str) -> None:
    problem = license_problem(expression)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/x", "drive"),
        ("a\\b", "separator"),
        ("./", "does not name"),
        ("a\nb", "control"),
    ],
)
def test_relative_path_problems(path: str, fragment: str) -> None:
    problem = relative_path_problem(path)
    assert problem is not None and fragment in problem


def test_relative_path_ok_and_normalised() -> None:
    assert relative_path_problem("model/w.bin") is None
    assert normalise_relative("./model//w.bin") == "model/w.bin"


def test_split_gate_key() -> None:
    sets = {"validation": {"auc": 1.0, "precision/macro": 0.5}, "test": {"auc": 1.0}}
    assert split_gate_key("auc", sets) == (None, "auc")
    assert split_gate_key("validation/auc", sets) == ("validation", "auc")
    assert split_gate_key("precision/macro", sets) == (None, "precision/macro")
    assert split_gate_key("nosuchset/auc", sets) == ("nosuchset", "auc")


def test_version_problem_messages() -> None:
    assert "build metadata" in version_problem("1.2.0+build.5")
    assert "write '1.2.0'" in version_problem("v1.2.0")
    assert "SemVer 2.0" in version_problem("01.2.0")


def test_suggest() -> None:
    assert (
        suggest("hyperparams", ["hyperparameters", "name"]) == " — did you mean 'hyperparameters'?"
    )
    assert suggest("zzz", ["hyperparameters"]) == ""


def test_github_annotation_escapes_properties_and_data() -> None:
    finding = Finding("dir,x/a:b.yaml", 3, 4, "$.x", "100% bad\nsecond line")
    line = github_annotation(finding, title="t")
    assert line.startswith("::error file=dir%2Cx/a%3Ab.yaml,line=3,col=4,title=t::")
    assert "100%25 bad%0Asecond line ($.x)" in line
    assert "\n" not in line
    assert escape_command_data("a\r") == "a%0D"
    assert escape_command_property("a:b,c") == "a%3Ab%2Cc"

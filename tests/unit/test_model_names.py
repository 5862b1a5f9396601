"""A bare model name means that model in the default store; reports sort names naturally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_modelver.core.refs import split_model_ref
from ci_modelver.core.text import natural_key
from tests.conftest import run_cli
from tests.helpers import base_env, make_model

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn-classifier", ("churn-classifier", None, None)),
        ("churn-classifier:1.0.0", ("churn-classifier", "1.0.0", None)),
        ("churn.v2_x:production", ("churn.v2_x", "production", None)),
        (f"churn@{DIGEST}", ("churn", None, DIGEST)),
        ("ghcr.io/acme/churn:1.0.0", None),
        ("oci:.modelver/churn", None),
        ("Churn", None),
        ("churn--x", None),
        ("", None),
    ],
)
def test_split_model_ref(text: str, expected: tuple[str, str | None, str | None] | None) -> None:
    assert split_model_ref(text) == expected


def test_a_bad_tag_on_a_model_name_is_one_clear_error() -> None:
    from ci_modelver.errors import InputError

    with pytest.raises(InputError, match="invalid tag"):
        split_model_ref("churn:bad tag")


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    env = base_env(tmp_path)
    for version, acc in (("1.0.0", 0.8), ("1.1.0", 0.85)):
        manifest = make_model(
            tmp_path / f"src-{version}",
            name="churn",
            version=version,
            weights=version.encode() * 50,
            metrics={"validation": {"accuracy": acc}},
        )
        assert run_cli("publish", str(manifest), env=env).code == 0
    assert (tmp_path / ".modelver" / "churn" / "index.json").is_file()
    return env


def test_bare_names_work_where_a_reference_is_taken(published: dict[str, str]) -> None:
    env = published
    shown = run_cli("show", "churn:1.0.0", "--format", "json", env=env)
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["version"] == "1.0.0"
    listed = run_cli("versions", "churn", "--format", "json", env=env)
    assert [v["version"] for v in json.loads(listed.out)["versions"]] == ["1.0.0", "1.1.0"]
    moved = run_cli("promote", "churn:1.1.0", "--alias", "production", env=env)
    assert moved.code == 0, moved.err
    assert "oci:.modelver/churn:production" in moved.out
    history = run_cli("history", "churn", "--format", "json", env=env)
    assert [m["alias"] for m in json.loads(history.out)["aliasLog"]] == ["production"]
    digest = json.loads(shown.out)["digest"]
    by_digest = run_cli("show", f"churn@{digest}", "--format", "json", env=env)
    assert json.loads(by_digest.out)["digest"] == digest


def test_repository_commands_default_to_the_manifest_here(
    published: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "modelver.yaml").write_text("name: churn\nversion: 9.9.9\nfiles: []\n")
    listed = run_cli("versions", "--format", "json", env=published)
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["repository"] == "oci:.modelver/churn"
    assert run_cli("history", env=published).code == 0


def test_without_a_manifest_the_repository_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("versions", env=base_env(tmp_path))
    assert result.code == 2
    assert result.err.startswith("error: versions: give a repository")
    assert "modelver.yaml" in result.err and "\n" not in result.err.rstrip("\n")


def test_an_unpublished_model_name_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("show", "nothing-here:1.0.0", env=base_env(tmp_path))
    assert result.code == 2
    assert ".modelver/nothing-here: does not exist" in result.err


def test_modelver_repository_wins_for_bare_names(published: dict[str, str], tmp_path: Path) -> None:
    env = {**published, "MODELVER_REPOSITORY": f"oci:{tmp_path / '.modelver' / 'churn'}"}
    listed = run_cli("versions", "other-name", "--format", "json", env=env)
    assert listed.code == 0, listed.err
    assert len(json.loads(listed.out)["versions"]) == 2


def test_natural_order() -> None:
    names = ["set10", "set2", "Set1", "set1", "a", "set02"]
    assert sorted(names, key=natural_key) == ["a", "Set1", "set1", "set02", "set2", "set10"]


def test_reports_list_sets_and_metrics_naturally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = base_env(tmp_path)
    metrics = {f"set{i}": {f"m{j}": 0.5 for j in (10, 2, 1)} for i in (10, 2, 1)}
    manifest = make_model(tmp_path / "m", name="nat", metrics=metrics)
    assert run_cli("publish", str(manifest), env=env).code == 0
    report = run_cli("compare", str(manifest), "--format", "json", env=env)
    rows = [(r["set"], r["metric"]) for r in json.loads(report.out)["metrics"]]
    assert rows == [(s, m) for s in ("set1", "set2", "set10") for m in ("m1", "m2", "m10")]
    shown = run_cli("show", "nat:1.0.0", env=env).out
    assert shown.index("set1:") < shown.index("set2:") < shown.index("set10:")
    assert "m1=0.5, m2=0.5, m10=0.5" in shown

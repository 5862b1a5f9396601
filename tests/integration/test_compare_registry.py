"""compare end to end on a real registry: baselines, exit codes, trend, outputs and summary."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

GATES = {
    "accuracy": {"direction": "higher", "tolerance": 0.01},
    "validation/loss": {"direction": "lower", "tolerance": "5%"},
}


def _model(folder: Path, version: str, acc: float, loss: float) -> Path:
    return make_model(
        folder,
        name="cmp",
        version=version,
        weights=f"w-{version}".encode(),
        metrics={
            "validation": {"accuracy": acc, "loss": loss},
            "holdout": {"accuracy": acc - 0.02},
        },
        gates=GATES,
    )


@pytest.fixture
def published(registry: Registry, tmp_path: Path) -> tuple[str, dict[str, str]]:
    env = base_env(tmp_path)
    repo = registry.repo(f"cmp/r{uuid.uuid4().hex[:12]}")
    for version, acc, loss, extra in (
        ("1.0.0", 0.80, 0.40, ["--tag", "production"]),
        ("1.1.0", 0.82, 0.38, []),
    ):
        result = run_cli(
            "publish",
            str(_model(tmp_path / version, version, acc, loss)),
            "--repository",
            repo,
            *extra,
            env=env,
        )
        assert result.code == 0, result.err
    return repo, env


def test_better_candidate_passes_against_production(
    published: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = published
    result = run_cli(
        "compare",
        str(_model(tmp_path / "c", "1.2.0", 0.83, 0.37)),
        "--repository",
        repo,
        "--format",
        "json",
        env=env,
    )
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["regression"] is False
    assert doc["baseline"]["version"] == "1.0.0"  # production, not the newest version
    assert doc["baseline"]["label"] == "production"
    verdicts = {(m["set"], m["metric"]): m["verdict"] for m in doc["metrics"]}
    assert verdicts[("validation", "accuracy")] == "improved"
    assert verdicts[("validation", "loss")] == "improved"


def test_worse_candidate_fails_with_exit_1(
    published: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = published
    out = tmp_path / "report.md"
    result = run_cli(
        "compare",
        str(_model(tmp_path / "c", "1.2.0", 0.75, 0.50)),
        "--repository",
        repo,
        "--format",
        "markdown",
        "--output",
        str(out),
        env=env,
    )
    assert result.code == 1
    assert "regression: 3 gate(s) failed" in result.err
    text = out.read_text()
    assert "### ❌ cmp 1.2.0 vs production (1.0.0): 3 gate(s) failed" in text
    assert "```mermaid" in text and '"1.2.0 (candidate)"' in text  # two published versions: a trend
    assert (
        run_cli(
            "compare",
            str(_model(tmp_path / "d", "1.2.0", 0.75, 0.50)),
            "--repository",
            repo,
            "--no-fail",
            env=env,
        ).code
        == 0
    )


def test_explicit_baseline_and_fallback_to_lower_version(
    published: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = published
    explicit = run_cli(
        "compare",
        str(_model(tmp_path / "c", "1.2.0", 0.815, 0.38)),
        "--repository",
        repo,
        "--baseline",
        "1.1.0",
        "--format",
        "json",
        env=env,
    )
    assert explicit.code == 0, explicit.err
    assert json.loads(explicit.out)["baseline"]["version"] == "1.1.0"
    missing = run_cli(
        "compare",
        str(_model(tmp_path / "d", "1.2.0", 0.8, 0.4)),
        "--repository",
        repo,
        "--baseline",
        "9.9.9",
        env=env,
    )
    assert missing.code == 2
    assert "--baseline '9.9.9': not found" in missing.err
    manifest = _model(tmp_path / "e", "1.2.0", 0.83, 0.37)
    manifest.write_text(manifest.read_text() + "baseline: staging\n")
    fallback = run_cli("compare", str(manifest), "--repository", repo, "--format", "json", env=env)
    doc = json.loads(fallback.out)
    assert doc["baseline"]["version"] == "1.1.0"
    assert "'staging' does not exist yet" in doc["note"]


def test_first_version_nothing_to_compare(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    result = run_cli(
        "compare",
        str(_model(tmp_path / "a", "0.1.0", 0.5, 0.9)),
        "--repository",
        registry.repo("cmp/empty"),
        env=env,
    )
    assert result.code == 0, result.err
    assert "first version, nothing to compare" in result.out


def test_actions_outputs_and_summary(published: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    repo, env = published
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    env = {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(tmp_path),
    }
    result = run_cli(
        "compare",
        str(_model(tmp_path / "c", "1.2.0", 0.70, 0.5)),
        "--repository",
        repo,
        "--comment-file",
        str(tmp_path / "c.md"),
        env=env,
    )
    assert result.code == 1
    text = outputs.read_text()
    assert "regression<<" in text and "\ntrue\n" in text
    assert f"\n{tmp_path / 'c.md'}\n" in text
    prod = json.loads(run_cli("show", f"{repo}:production", "--format", "json", env=env).out)[
        "digest"
    ]
    assert f"\n{prod}\n" in text
    assert summary.read_text().startswith("<!-- ci-modelver:report name=cmp -->")
    assert (tmp_path / "c.md").read_text() == summary.read_text()

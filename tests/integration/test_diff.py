"""``diff A B`` end to end: two versions on a real registry, one in a layout, across stores."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

GATES = {"accuracy": {"direction": "higher", "tolerance": 0.01}}
C1, C2 = "a1" * 20, "b2" * 20


def _model(folder: Path, version: str, acc: float, **fields: Any) -> Path:
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer" / "vocab.txt").write_text(f"vocab {version}\n")
    return make_model(
        folder,
        name="diffmodel",
        version=version,
        weights=f"weights-{version}".encode() * 10,
        metrics={"validation": {"accuracy": acc, "loss": 0.3}},
        files=[
            {"path": "model/weights.bin", "type": "weight"},
            {"path": "README.md", "type": "doc"},
            {"path": "tokenizer/", "type": "weight-config"},
        ],
        **fields,
    )


def _publish(manifest: Path, repo: str, env: dict[str, str]) -> str:
    result = run_cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
    assert result.code == 0, result.err
    return str(json.loads(result.out)["digest"])


@pytest.fixture
def stores(registry: Registry, tmp_path: Path) -> dict[str, Any]:
    env = base_env(tmp_path)
    repo = registry.repo(f"diff/r{uuid.uuid4().hex[:12]}")
    layout = f"oci:{tmp_path / 'layout'}"
    code = "https://github.com/acme/diffmodel"
    d1 = _publish(
        _model(
            tmp_path / "v1",
            "1.0.0",
            0.80,
            gates=GATES,
            hyperparameters={"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}},
            data=[{"name": "train", "uri": "s3://b/train.csv", "digest": "sha256:" + "c" * 64}],
            code={"repository": code, "commit": C1},
            framework={"name": "sklearn", "version": "1.4"},
        ),
        repo,
        env,
    )
    d2 = _publish(
        _model(
            tmp_path / "v2",
            "1.1.0",
            0.83,
            gates=GATES,
            hyperparameters={"lr": 0.05, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}},
            data=[{"name": "train", "uri": "s3://b/train.csv", "digest": "sha256:" + "d" * 64}],
            code={"repository": code, "commit": C2},
            framework={"name": "sklearn", "version": "1.5"},
        ),
        repo,
        env,
    )
    d3 = _publish(
        _model(
            tmp_path / "v3", "2.0.0", 0.85, hyperparameters={"lr": 0.01}, description="<b>x</b>"
        ),
        layout,
        env,
    )
    for version, alias in (("1.0.0", "production"), ("1.1.0", "staging")):
        moved = run_cli("promote", f"{repo}:{version}", "--alias", alias, env=env)
        assert moved.code == 0, moved.err
    return {"env": env, "repo": repo, "layout": layout, "digests": (d1, d2, d3)}


def _diff(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = run_cli("diff", *args, "--format", "json", env=env)
    assert result.code == 0, result.err
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def test_two_registry_versions_through_an_alias(stores: dict[str, Any]) -> None:
    env, repo = stores["env"], stores["repo"]
    d1, d2, _ = stores["digests"]
    doc = _diff(env, f"{repo}:production", f"{repo}:1.1.0")
    assert doc["identical"] is False and doc["changed"] is True
    assert doc["a"]["digest"] == d1 and doc["b"]["digest"] == d2
    assert doc["a"]["ref"] == f"{repo}@{d1}"
    assert doc["a"]["aliases"] == ["production"]
    assert doc["b"]["aliases"] == ["staging"]
    assert doc["a"]["version"] == "1.0.0" and doc["b"]["created"] == "2026-01-01T00:00:00Z"
    files = {f["path"]: f for f in doc["files"]}
    assert set(files) == {"model/weights.bin", "tokenizer"}
    assert files["model/weights.bin"]["change"] == "changed"
    assert files["tokenizer"]["b"]["folder"] is True
    assert files["tokenizer"]["b"]["mediaType"].endswith(".tar")
    assert doc["unchangedFiles"] == 1  # README.md
    assert [(h["key"], h["a"], h["b"]) for h in doc["hyperparameters"]] == [
        ("lr", 0.1, 0.05),
        ("optimizer.betas", [0.9, 0.99], [0.9, 0.999]),
    ]
    assert [(d["name"], d["change"]) for d in doc["data"]] == [("train", "changed")]
    assert doc["data"][0]["b"]["digest"] == "sha256:" + "d" * 64
    accuracy = next(m for m in doc["metrics"] if m["metric"] == "accuracy")
    assert accuracy["gated"] is True and accuracy["verdict"] == "improved"
    assert accuracy["delta"] == pytest.approx(0.03)
    assert accuracy["deltaPercent"] == pytest.approx(3.75)
    assert doc["gatesFrom"] == "b"
    assert [(f["key"], f["a"], f["b"]) for f in doc["framework"]] == [("version", "1.4", "1.5")]
    assert doc["code"]["compareUrl"] == f"https://github.com/acme/diffmodel/compare/{C1}...{C2}"

    text = run_cli("diff", f"{repo}:production", f"{repo}:1.1.0", env=env)
    assert text.code == 0, text.err
    assert text.out.startswith("diffmodel 1.0.0 → diffmodel 1.1.0\n")
    assert "aliases: production" in text.out and "aliases: staging" in text.out
    assert "  ~ lr: 0.1 → 0.05" in text.out

    markdown = run_cli("diff", f"{repo}:1.0.0", f"{repo}:1.1.0", "--format", "markdown", env=env)
    assert markdown.code == 0, markdown.err
    assert markdown.out.startswith("### diffmodel 1.0.0 → diffmodel 1.1.0")
    assert "| validation | accuracy 🔒 | 0.8000 | 0.8300 | +0.0300 | +3.75% | improved |" in (
        markdown.out
    )


def test_across_stores_with_a_bare_model_name(stores: dict[str, Any]) -> None:
    env = {**stores["env"], "MODELVER_REPOSITORY": stores["repo"]}
    d1, _, d3 = stores["digests"]
    doc = _diff(env, f"diffmodel@{d1}", f"{stores['layout']}:2.0.0")
    assert doc["a"]["digest"] == d1 and doc["b"]["digest"] == d3
    assert doc["b"]["ref"].startswith("oci:") and doc["b"]["aliases"] == []
    assert doc["gatesFrom"] == "a"  # 2.0.0 records no gates
    assert doc["code"]["compareUrl"] is None  # 2.0.0 records no commit
    assert [(r["key"], r["change"]) for r in doc["record"]] == [("description", "added")]
    markdown = run_cli(
        "diff", "diffmodel:1.0.0", f"{stores['layout']}:2.0.0", "--format", "markdown", env=env
    )
    assert markdown.code == 0, markdown.err
    assert "<b>" not in markdown.out and "&lt;b&gt;x&lt;/b&gt;" in markdown.out


def test_identical_versions_say_so(stores: dict[str, Any]) -> None:
    env, repo = stores["env"], stores["repo"]
    d1 = stores["digests"][0]
    doc = _diff(env, f"{repo}:1.0.0", f"{repo}@{d1}")
    assert doc["identical"] is True and doc["changed"] is False
    assert doc["files"] == [] and doc["hyperparameters"] == []
    text = run_cli("diff", f"{repo}:production", f"{repo}:1.0.0", env=env)
    assert text.code == 0 and "identical: A and B are the same version" in text.out


def test_a_missing_version_exits_2(stores: dict[str, Any], tmp_path: Path) -> None:
    env, repo = stores["env"], stores["repo"]
    missing = run_cli("diff", f"{repo}:1.0.0", f"{repo}:9.9.9", env=env)
    assert missing.code == 2
    assert "9.9.9: not found" in missing.err and "Traceback" not in missing.err
    assert len(missing.err.strip().splitlines()) == 1
    no_layout = run_cli("diff", f"oci:{tmp_path / 'nothing'}:1.0.0", f"{repo}:1.0.0", env=env)
    assert no_layout.code == 2, no_layout.err
    no_version = run_cli("diff", repo, f"{repo}:1.0.0", env=env)
    assert no_version.code == 2 and "names no version" in no_version.err

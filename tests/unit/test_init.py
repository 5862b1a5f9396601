"""``ci-modelver init``: starter manifest, guessed file types, skipped folders, no overwriting."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ci_modelver.commands import init as init_command
from tests.conftest import EXAMPLE, ROOT, run_cli

NAME_RULE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
EXAMPLE_WORKFLOWS = ROOT / "examples" / "workflows"


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``root``."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        out[path.relative_to(root).as_posix()] = path.read_bytes() if path.is_file() else None
    return out


def _listed(manifest: Path) -> dict[str, str]:
    doc = yaml.safe_load(manifest.read_text("utf-8"))
    return {entry["path"]: entry["type"] for entry in doc["files"]}


def _touch(root: Path, *relatives: str) -> None:
    for relative in relatives:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("modelver.yaml"))
    return target


def test_generated_manifest_validates(tmp_path: Path) -> None:
    folder = _copy_example(tmp_path / "My Churn Model")
    result = run_cli("init", str(folder))
    assert result.code == 0, result.out + result.err
    manifest = folder / "modelver.yaml"
    assert f"wrote {manifest}: my-churn-model 0.1.0, 9 file(s)" in result.out
    assert "then 'ci-modelver validate" in result.out
    checked = run_cli("validate", str(manifest))
    assert checked.code == 0, checked.out + checked.err
    assert "valid — my-churn-model 0.1.0, 9 file(s), 8 metric(s), 0 gate(s)" in checked.out
    text = manifest.read_text("utf-8")
    assert text.startswith(f"# yaml-language-server: $schema={init_command.SCHEMA_URL}\n")
    doc = yaml.safe_load(text)
    assert doc["name"] == "my-churn-model"
    assert doc["version"] == "0.1.0"
    assert doc["metrics"] == "metrics.json"
    assert _listed(manifest) == {
        "model/model.safetensors": "weight",
        "model/config.json": "weight-config",
        "README.md": "doc",
        "evaluate.py": "code",
        "make_data.py": "code",
        "train.py": "code",
        "data/test-shifted.csv": "dataset",
        "data/train.csv": "dataset",
        "data/validation.csv": "dataset",
    }
    # Weights first, then configs, docs, code and datasets.
    assert list(_listed(manifest).values()) == sorted(
        _listed(manifest).values(), key=init_command.TYPE_ORDER.index
    )


def test_types_are_guessed_from_names(tmp_path: Path) -> None:
    expected = {
        "model.safetensors": "weight",
        "pytorch_model.bin": "weight",
        "ckpt/epoch=3.ckpt": "weight",
        "model.onnx": "weight",
        "model.gguf": "weight",
        "keras/model.h5": "weight",
        "keras/model.keras": "weight",
        "sk/model.pkl": "weight",
        "sk/model.joblib": "weight",
        "mobile.tflite": "weight",
        "xgb.ubj": "weight",
        "lgbm.model": "weight",
        "weights.pt": "weight",
        "weights.pth": "weight",
        "config.json": "weight-config",
        "generation_config.json": "weight-config",
        "encoder.config.json": "weight-config",
        "tokenizer.json": "weight-config",
        "tokenizer_config.json": "weight-config",
        "tokenizer.model": "weight-config",
        "special_tokens_map.json": "weight-config",
        "README.md": "doc",
        "MODEL_CARD.txt": "doc",
        "docs/notes.md": "doc",
        "LICENSE": "doc",
        "train.py": "code",
        "notebooks/explore.ipynb": "code",
        "data/train.csv": "dataset",
        "data/part-0.parquet": "dataset",
        "data/eval.jsonl": "dataset",
        "data/cache.arrow": "dataset",
    }
    _touch(tmp_path, *expected, "notes.txt", "plot.png", "requirements.lock", "metrics.json")
    assert run_cli("init", str(tmp_path)).code == 0
    assert _listed(tmp_path / "modelver.yaml") == expected
    assert run_cli("validate", str(tmp_path / "modelver.yaml")).code == 2  # metrics.json is "x"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("a/B.SAFETENSORS", "weight"),
        ("Config.json", "weight-config"),
        ("metrics.json", None),
        ("data.json", None),
        ("readme.rst", "doc"),
        ("README", "doc"),
        ("setup.cfg", None),
        ("notice.py", "code"),
    ],
)
def test_guess_type(path: str, kind: str | None) -> None:
    assert init_command.guess_type(path) == kind


def test_hidden_and_tool_folders_are_skipped(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        ".git/objects/pack.bin",
        ".venv/lib/model.pt",
        ".modelver/churn/blobs/sha256.bin",
        ".hidden/weights.safetensors",
        ".cache.pt",
        "node_modules/pkg/model.onnx",
        "__pycache__/train.cpython-311.pkl",
        "sub/__pycache__/x.pkl",
        "venv/lib/site.pt",
        "sub/visible.pt",
        "model.safetensors",
    )
    assert run_cli("init", str(tmp_path)).code == 0
    assert _listed(tmp_path / "modelver.yaml") == {
        "model.safetensors": "weight",
        "sub/visible.pt": "weight",
    }
    assert run_cli("validate", str(tmp_path / "modelver.yaml")).code == 0


def test_symlinks_leading_outside_are_not_listed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"w")
    folder = tmp_path / "model"
    _touch(folder, "inside.safetensors")
    os.symlink(outside, folder / "escape.safetensors")
    os.symlink(folder / "inside.safetensors", folder / "alias.safetensors")
    assert run_cli("init", str(folder)).code == 0
    assert _listed(folder / "modelver.yaml") == {
        "alias.safetensors": "weight",
        "inside.safetensors": "weight",
    }


def test_awkward_file_names_round_trip(tmp_path: Path) -> None:
    names = ["yes.csv", "1.0.pt", "a b.pt", "ünï.pt", "#hash.pt", "null.md", "- dash.py"]
    _touch(tmp_path, *names)
    assert run_cli("init", str(tmp_path)).code == 0
    assert set(_listed(tmp_path / "modelver.yaml")) == set(names)
    assert run_cli("validate", str(tmp_path / "modelver.yaml")).code == 0


def test_file_count_is_capped(tmp_path: Path) -> None:
    count = init_command.MAX_FILES + 5
    _touch(tmp_path, *(f"shards/part-{i:04d}.safetensors" for i in range(count)))
    result = run_cli("init", str(tmp_path))
    assert result.code == 0
    assert len(_listed(tmp_path / "modelver.yaml")) == init_command.MAX_FILES
    assert "5 more model file(s) were found but not listed" in result.out


def test_workflows_are_copied_from_examples(tmp_path: Path) -> None:
    _touch(tmp_path, "model.onnx")
    result = run_cli("init", str(tmp_path))
    assert result.code == 0
    target = tmp_path / ".github" / "workflows"
    examples = sorted(p.name for p in EXAMPLE_WORKFLOWS.glob("*.yml"))
    assert examples == [
        "fork-comment.yml",
        "pr-check.yml",
        "registry-site.yml",
        "release.yml",
        "rollback.yml",
    ]
    copied = [name for name in examples if name != "registry-site.yml"]  # opt-in: needs Pages
    assert sorted(p.name for p in target.iterdir()) == copied
    for name in copied:
        assert (target / name).read_bytes() == (EXAMPLE_WORKFLOWS / name).read_bytes(), name
        assert f"wrote {target / name}" in result.out
    assert init_command.bundled_workflows() == {
        name: (EXAMPLE_WORKFLOWS / name).read_bytes() for name in examples
    }


@pytest.mark.parametrize(
    "existing", ["modelver.yaml", ".github/workflows/release.yml", ".github/workflows/pr-check.yml"]
)
def test_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, existing: str) -> None:
    _touch(tmp_path, "model.safetensors")
    (tmp_path / existing).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / existing).write_text("mine\n")
    before = _tree(tmp_path)
    result = run_cli("init", str(tmp_path))
    assert result.code == 2
    assert str(tmp_path / existing) in result.err
    assert "nothing was written" in result.err
    assert result.out == ""
    assert _tree(tmp_path) == before


def test_refuses_a_dangling_symlink_and_a_file_named_like_the_workflow_folder(
    tmp_path: Path,
) -> None:
    _touch(tmp_path, "model.safetensors")
    os.symlink(tmp_path / "nowhere", tmp_path / "modelver.yaml")
    before = _tree(tmp_path)
    assert run_cli("init", str(tmp_path)).code == 2
    assert _tree(tmp_path) == before
    (tmp_path / "modelver.yaml").unlink()
    (tmp_path / ".github").write_text("not a folder")
    before = _tree(tmp_path)
    result = run_cli("init", str(tmp_path))
    assert result.code == 2
    assert "is not a folder" in result.err
    assert _tree(tmp_path) == before


def test_no_model_files_still_writes_a_manifest_that_needs_files(tmp_path: Path) -> None:
    _touch(tmp_path, "notes.txt")
    result = run_cli("init", str(tmp_path))
    assert result.code == 0
    assert "no files" in result.out
    assert "edit 'files:'" in result.out
    manifest = tmp_path / "modelver.yaml"
    doc = yaml.safe_load(manifest.read_text("utf-8"))
    assert doc["files"] == []
    assert "metrics" not in doc
    checked = run_cli("validate", str(manifest))
    assert checked.code == 2
    assert "files" in checked.out


def test_json_output(tmp_path: Path) -> None:
    folder = tmp_path / "ResNet50V2"
    _touch(folder, "weights.h5")
    (folder / ".git").mkdir()
    result = run_cli("init", str(folder), "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["name"] == "res-net50-v2"
    assert doc["files"] == [{"path": "weights.h5", "type": "weight"}]
    assert doc["valid"] is True
    assert doc["findings"] == []
    assert doc["metrics"] is None
    assert doc["leftOut"] == 0
    assert doc["written"][0] == str(folder / "modelver.yaml")
    assert len(doc["workflows"]) == 4  # registry-site.yml is opt-in


def test_not_a_folder(tmp_path: Path) -> None:
    result = run_cli("init", str(tmp_path / "missing"))
    assert result.code == 2
    assert "is not a folder" in result.err
    assert not (tmp_path / "missing").exists()


def test_default_folder_is_the_current_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "churn"
    _touch(folder, "model.safetensors")
    monkeypatch.chdir(folder)
    result = run_cli("init")
    assert result.code == 0
    assert yaml.safe_load((folder / "modelver.yaml").read_text("utf-8"))["name"] == "churn"
    assert "move them there and set 'manifest:'" in result.out  # no .git here


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("churn", "churn"),
        ("Churn Model", "churn-model"),
        ("ChurnModel", "churn-model"),
        ("--weird__name..v2--", "weird_name.v2"),
        ("Modèle_Été", "modele_ete"),
        ("!!!", "model"),
        ("", "model"),
        ("a" * 300, "a" * 128),
    ],
)
def test_model_name(folder: str, name: str) -> None:
    assert init_command.model_name(folder) == name


@given(st.text(max_size=300))
def test_model_name_always_follows_the_rule(folder: str) -> None:
    name = init_command.model_name(folder)
    assert NAME_RULE.match(name)
    assert len(name) <= 128


def test_a_failed_write_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path, "model.safetensors")
    before = _tree(tmp_path)
    too_long = "x" * 300 + ".yml"  # longer than any file system allows: the write fails midway
    monkeypatch.setattr(
        init_command, "bundled_workflows", lambda: {"a.yml": b"a\n", too_long: b"b\n"}
    )
    result = run_cli("init", str(tmp_path))
    assert result.code == 2
    assert "nothing was kept" in result.err
    assert _tree(tmp_path) == before

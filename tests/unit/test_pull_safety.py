"""Pulling hostile or corrupted artifacts from an OCI layout: refused, nothing written outside."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.core.modelpack import MODEL_ARTIFACT, MODEL_CONFIG, OCI_MANIFEST, canonical_json
from tests.conftest import run_cli
from tests.helpers import base_env, make_model


def _blob(store_root: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = store_root / "blobs" / "sha256" / digest.split(":")[1]
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _hostile_layout(root: Path, paths: list[str]) -> None:
    LayoutStore(root, create=True)
    config = _blob(root, b"{}")
    layers = []
    for i, path in enumerate(paths):
        desc = _blob(root, f"payload {i}".encode())
        layers.append(
            {
                "mediaType": "application/vnd.cncf.model.weight.v1.raw",
                **desc,
                "annotations": {"org.cncf.model.filepath": path},
            }
        )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": MODEL_ARTIFACT,
            "config": {"mediaType": MODEL_CONFIG, **config},
            "layers": layers,
        }
    )
    LayoutStore(root, create=False).put_manifest("1.0.0", manifest, OCI_MANIFEST)


@pytest.mark.parametrize(
    ("paths", "fragment"),
    [
        (["ok.bin", "../outside.bin"], "'..'"),
        (["/tmp/abs.bin"], "absolute"),
        (["a.bin", "a.bin"], "collides"),
    ],
)
def test_hostile_paths_exit_2_and_write_nothing(
    tmp_path: Path, paths: list[str], fragment: str
) -> None:
    _hostile_layout(tmp_path / "store", paths)
    out = tmp_path / "work" / "out"
    result = run_cli(
        "pull", f"oci:{tmp_path / 'store'}:1.0.0", "-o", str(out), env=base_env(tmp_path)
    )
    assert result.code == 2
    assert fragment in result.err
    assert result.err.count("\n") == 1
    assert not out.exists()
    assert not (tmp_path / "work" / "outside.bin").exists()


def test_symlink_in_target_folder_cannot_redirect_writes(tmp_path: Path) -> None:
    _hostile_layout(tmp_path / "store", ["sub/file.bin"])
    out = tmp_path / "out"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(outside)
    result = run_cli(
        "pull", f"oci:{tmp_path / 'store'}:1.0.0", "-o", str(out), env=base_env(tmp_path)
    )
    assert result.code == 2
    assert "leads outside" in result.err
    assert list(outside.iterdir()) == []


def test_corrupted_blob_is_detected_and_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = make_model(tmp_path / "m", name="corrupt")
    env = base_env(tmp_path)
    published = run_cli("publish", str(manifest), "--format", "json", env=env)
    assert published.code == 0, published.err
    doc = json.loads(
        run_cli("show", "oci:.modelver/corrupt:1.0.0", "--format", "json", env=env).out
    )
    weights = next(f for f in doc["files"] if f["type"] == "weight")
    blob = tmp_path / ".modelver" / "corrupt" / "blobs" / "sha256" / weights["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = run_cli("pull", "oci:.modelver/corrupt:1.0.0", "-o", str(out), env=env)
    assert result.code == 3
    assert "hashes to" in result.err and weights["digest"] in result.err
    assert not (out / "model" / "weights.bin").exists()
    assert not list(out.rglob(".partial-*"))


def test_missing_layout_is_exit_2(tmp_path: Path) -> None:
    result = run_cli("show", f"oci:{tmp_path / 'nope'}:1.0.0", env=base_env(tmp_path))
    assert result.code == 2
    assert "does not exist" in result.err


def test_not_a_model_artifact_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    LayoutStore(root, create=True)
    config = _blob(root, b"{}")
    image = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [],
        }
    )
    LayoutStore(root, create=False).put_manifest("img", image, OCI_MANIFEST)
    result = run_cli("show", f"oci:{root}:img", env=base_env(tmp_path))
    assert result.code == 2
    assert "not a ModelPack model artifact" in result.err

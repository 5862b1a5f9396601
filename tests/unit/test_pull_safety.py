"""Pulling hostile or corrupted artifacts from an OCI layout: refused, nothing written outside."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
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


def _tar_layout(
    root: Path, build: Callable[[tarfile.TarFile], None], path: str = "tokenizer"
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        build(archive)
    LayoutStore(root, create=True)
    config = _blob(root, b"{}")
    desc = _blob(root, buffer.getvalue())
    layer = {
        "mediaType": "application/vnd.cncf.model.weight.config.v1.tar",
        **desc,
        "annotations": {"org.cncf.model.filepath": path},
    }
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": MODEL_ARTIFACT,
            "config": {"mediaType": MODEL_CONFIG, **config},
            "layers": [layer],
        }
    )
    LayoutStore(root, create=False).put_manifest("1.0.0", manifest, OCI_MANIFEST)


def _add(archive: tarfile.TarFile, name: str, data: bytes = b"x", **fields: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if fields.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if info.size else None)


def test_tar_layer_is_extracted_inside_the_folder(tmp_path: Path) -> None:
    def build(archive: tarfile.TarFile) -> None:
        _add(archive, "tokenizer/vocab.json", b'{"a": 1}')
        _add(archive, "tokenizer/merges.txt", b"a b\n")
        _add(archive, "tokenizer/alias.json", type=tarfile.SYMTYPE, linkname="vocab.json")

    _tar_layout(tmp_path / "store", build)
    out = tmp_path / "out"
    result = run_cli(
        "pull", f"oci:{tmp_path / 'store'}:1.0.0", "-o", str(out), env=base_env(tmp_path)
    )
    assert result.code == 0, result.err
    assert (out / "tokenizer" / "vocab.json").read_bytes() == b'{"a": 1}'
    assert (out / "tokenizer" / "alias.json").resolve() == (
        out / "tokenizer" / "vocab.json"
    ).resolve()
    assert not list(out.glob(".modelver-tar-*"))


@pytest.mark.parametrize(
    ("entry", "fields", "fragment"),
    [
        ("/etc/evil", {}, "absolute"),
        ("../evil", {}, "'..'"),
        ("tokenizer/../../evil", {}, "'..'"),
        ("tokenizer/link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "symlink"),
        ("tokenizer/link", {"type": tarfile.SYMTYPE, "linkname": "../../outside"}, "symlink"),
        ("tokenizer/hard", {"type": tarfile.LNKTYPE, "linkname": "../outside"}, "hardlink"),
        ("tokenizer/dev", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "device"),
        ("tokenizer/fifo", {"type": tarfile.FIFOTYPE}, "FIFO"),
    ],
)
def test_hostile_tar_entries_are_refused(
    tmp_path: Path, entry: str, fields: dict[str, Any], fragment: str
) -> None:
    _tar_layout(tmp_path / "store", lambda archive: _add(archive, entry, **fields))
    out = tmp_path / "work" / "out"
    result = run_cli(
        "pull", f"oci:{tmp_path / 'store'}:1.0.0", "-o", str(out), env=base_env(tmp_path)
    )
    assert result.code == 2, result.err
    assert fragment in result.err
    assert len([line for line in result.err.splitlines() if line.startswith("error: ")]) == 1
    assert "Traceback" not in result.err
    assert not (tmp_path / "work" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (out / "tokenizer" / "dev").exists()


def test_size_caps_refuse_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ci_modelver.adapters.store import NoProgress
    from ci_modelver.commands.pull import parse_size, pull
    from ci_modelver.errors import InputError
    from ci_modelver.settings import Settings

    monkeypatch.chdir(tmp_path)
    manifest = make_model(tmp_path / "m", name="caps", weights=b"w" * 5000)
    assert run_cli("publish", str(manifest), env=base_env(tmp_path)).code == 0
    settings = Settings.build(base_env(tmp_path), cwd=tmp_path)
    with pytest.raises(InputError, match="over --max-file-size 1000"):
        pull(
            "oci:.modelver/caps:1.0.0",
            settings,
            output=tmp_path / "o1",
            only=None,
            progress=NoProgress(),
            max_file=1000,
        )
    with pytest.raises(InputError, match="over --max-size 2048"):
        pull(
            "oci:.modelver/caps:1.0.0",
            settings,
            output=tmp_path / "o2",
            only=None,
            progress=NoProgress(),
            max_total=2048,
        )
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert parse_size("500M", "--max-size") == 500 * 1024**2
    assert parse_size("2GiB", "--max-size") == 2 * 1024**3
    with pytest.raises(InputError):
        parse_size("lots", "--max-size")

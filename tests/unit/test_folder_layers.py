"""Folders in a manifest: located findings, the typed manifest, the .tar layer descriptor, and
publish → pull through the embedded layout store (byte-identical, --only, twice the same digest)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ci_modelver.core.manifest import FileEntry
from ci_modelver.core.modelpack import (
    ANN_FILE_METADATA,
    ANN_FILEPATH,
    ANN_TITLE,
    PackedFile,
    layer_descriptor,
)
from ci_modelver.validation import validate_manifest
from tests.conftest import run_cli
from tests.helpers import base_env

CREATED = "2026-01-01T00:00:00Z"


def _model(folder: Path, files_block: str) -> Path:
    """A model folder with weights, a tokenizer folder and a README; returns the manifest."""
    (folder / "tokenizer" / "special").mkdir(parents=True)
    (folder / "tokenizer" / "vocab.json").write_text('{"hello": 0, "world": 1}\n')
    (folder / "tokenizer" / "special" / "tokens.txt").write_text("<s>\n</s>\n")
    (folder / "model.bin").write_bytes(b"\x00\x01weights" * 50)
    (folder / "README.md").write_text("# demo\n")
    manifest = folder / "modelver.yaml"
    manifest.write_text(
        f"name: demo\nversion: 1.0.0\nfiles:\n{files_block}"
        "metrics: {validation: {accuracy: 0.9}}\n"
    )
    return manifest


FILES = (
    "  - {path: model.bin, type: weight}\n"
    "  - {path: tokenizer/, type: weight-config, description: the tokenizer}\n"
    "  - {path: README.md, type: doc}\n"
)


def _findings(manifest: Path) -> list[tuple[int, str, str]]:
    result = validate_manifest(manifest, "modelver.yaml")
    return [(f.line, f.path, f.message) for f in result.findings]


def test_a_folder_entry_is_marked_in_the_typed_manifest(tmp_path: Path) -> None:
    result = validate_manifest(_model(tmp_path, FILES))
    assert result.ok, result.findings
    assert result.manifest is not None
    assert result.manifest.files == (
        FileEntry("model.bin", "weight"),
        FileEntry("tokenizer", "weight-config", "the tokenizer", folder=True),
        FileEntry("README.md", "doc"),
    )


def test_without_the_trailing_slash_the_disk_decides(tmp_path: Path) -> None:
    result = validate_manifest(_model(tmp_path, "  - {path: ./tokenizer, type: weight-config}\n"))
    assert result.manifest is not None
    assert result.manifest.files == (FileEntry("tokenizer", "weight-config", folder=True),)


def test_a_symlink_out_of_a_folder_is_a_located_finding(tmp_path: Path) -> None:
    manifest = _model(tmp_path, FILES)
    (tmp_path.parent / "secret.txt").write_text("not the model's")
    (tmp_path / "tokenizer" / "special" / "leak").symlink_to("../../../secret.txt")
    assert _findings(manifest) == [
        (
            5,
            "$.files[1].path",
            "folder 'tokenizer/' cannot be packed: 'tokenizer/special/leak' is a symlink to "
            "'../../../secret.txt', which leads outside the folder",
        )
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_in_a_folder_is_a_located_finding(tmp_path: Path) -> None:
    manifest = _model(tmp_path, FILES)
    os.mkfifo(tmp_path / "tokenizer" / "pipe")
    assert _findings(manifest) == [
        (
            5,
            "$.files[1].path",
            "folder 'tokenizer/' cannot be packed: 'tokenizer/pipe' is a FIFO; a folder may hold "
            "only files, folders and symlinks inside it",
        )
    ]


def test_many_bad_entries_are_capped_per_folder(tmp_path: Path) -> None:
    manifest = _model(tmp_path, FILES)
    for i in range(25):
        (tmp_path / "tokenizer" / f"gone-{i:02}").symlink_to(f"missing-{i}")
    found = _findings(manifest)
    assert len(found) == 21
    assert found[0][2].endswith(
        "'tokenizer/gone-00' is a symlink to 'missing-0', which does not exist"
    )
    assert found[-1][2] == "folder 'tokenizer/': 5 more entries cannot be packed"


def test_a_folder_that_is_a_symlink_out_is_refused(tmp_path: Path) -> None:
    manifest = _model(tmp_path / "m", "  - {path: shared, type: weight-config}\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "m" / "shared").symlink_to("../shared", target_is_directory=True)
    assert _findings(manifest) == [
        (4, "$.files[0].path", "folder 'shared' resolves outside the manifest's folder (symlink)")
    ]


def test_a_file_listed_inside_a_listed_folder_is_refused(tmp_path: Path) -> None:
    manifest = _model(
        tmp_path,
        "  - {path: tokenizer, type: weight-config}\n"
        "  - {path: tokenizer/vocab.json, type: weight-config}\n",
    )
    assert _findings(manifest) == [
        (
            5,
            "$.files[1].path",
            "file 'tokenizer/vocab.json' lies inside files[0] 'tokenizer', a folder packed as one "
            "layer: it would be in the version twice; drop one of them",
        )
    ]


def test_a_folder_listed_after_a_file_inside_it_is_refused(tmp_path: Path) -> None:
    manifest = _model(
        tmp_path,
        "  - {path: tokenizer/vocab.json, type: weight-config}\n"
        "  - {path: tokenizer/, type: weight-config}\n",
    )
    assert _findings(manifest) == [
        (
            5,
            "$.files[1].path",
            "folder 'tokenizer/' holds files[0] 'tokenizer/vocab.json', and a folder is packed "
            "as one layer: it would be in the version twice; drop one of them",
        )
    ]


def test_a_folder_descriptor_is_the_tar_media_type_with_directory_metadata() -> None:
    digest = "sha256:" + "ab" * 32
    layer = layer_descriptor(
        PackedFile("nlp/tokenizer", "weight-config", digest, 10240, folder=True), CREATED
    )
    assert layer.media_type == "application/vnd.cncf.model.weight.config.v1.tar"
    assert (layer.digest, layer.size) == (digest, 10240)
    assert layer.annotations[ANN_FILEPATH] == "nlp/tokenizer"
    assert layer.annotations[ANN_TITLE] == "nlp/tokenizer"
    assert json.loads(layer.annotations[ANN_FILE_METADATA]) == {
        "name": "tokenizer",
        "mode": 0o755,
        "uid": 0,
        "gid": 0,
        "size": 0,
        "mtime": CREATED,
        "typeflag": ord("5"),
    }
    raw = layer_descriptor(PackedFile("w.bin", "weight", digest, 3), CREATED)
    assert raw.media_type == "application/vnd.cncf.model.weight.v1.raw"
    assert json.loads(raw.annotations[ANN_FILE_METADATA])["typeflag"] == ord("0")


@pytest.mark.parametrize(
    ("kind", "media"),
    [
        ("weight", "application/vnd.cncf.model.weight.v1.tar"),
        ("weight-config", "application/vnd.cncf.model.weight.config.v1.tar"),
        ("doc", "application/vnd.cncf.model.doc.v1.tar"),
        ("code", "application/vnd.cncf.model.code.v1.tar"),
        ("dataset", "application/vnd.cncf.model.dataset.v1.tar"),
    ],
)
def test_every_type_has_its_tar_media_type(kind: str, media: str, tmp_path: Path) -> None:
    manifest = _model(tmp_path / "m", f"  - {{path: tokenizer, type: {kind}}}\n")
    digest = _publish(manifest, tmp_path / "store", tmp_path / "home")
    layers = _manifest_doc(tmp_path / "store", digest)["layers"]
    assert isinstance(layers, list)
    assert [layer["mediaType"] for layer in layers] == [media]
    shown = run_cli("show", f"oci:{tmp_path / 'store'}:1.0.0", env=base_env(tmp_path / "home"))
    assert shown.code == 0, shown.err
    assert "tokenizer" in shown.out


def _publish(manifest: Path, store: Path, home: Path) -> str:
    env = base_env(home)
    out = run_cli(
        "publish", str(manifest), "--repository", f"oci:{store}", "--format", "json", env=env
    )
    assert out.code == 0, out.err
    return str(json.loads(out.out)["digest"])


def _manifest_doc(store: Path, digest: str) -> dict[str, object]:
    data = (store / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    doc: dict[str, object] = json.loads(data)
    return doc


def test_publish_and_pull_a_folder_through_the_layout_store(tmp_path: Path) -> None:
    model = tmp_path / "m"
    manifest = _model(model, FILES)
    (model / "tokenizer" / "latest").symlink_to("vocab.json")
    store = tmp_path / "store"
    digest = _publish(manifest, store, tmp_path / "home")
    doc = _manifest_doc(store, digest)
    layers = doc["layers"]
    assert isinstance(layers, list)
    assert [layer["mediaType"] for layer in layers] == [
        "application/vnd.cncf.model.weight.v1.raw",
        "application/vnd.cncf.model.weight.config.v1.tar",
        "application/vnd.cncf.model.doc.v1.raw",
    ]
    assert layers[1]["annotations"][ANN_FILEPATH] == "tokenizer"
    env = base_env(tmp_path / "home")
    out = tmp_path / "out"
    pulled = run_cli("pull", f"oci:{store}:1.0.0", "-o", str(out), "--format", "json", env=env)
    assert pulled.code == 0, pulled.err
    assert [f["path"] for f in json.loads(pulled.out)["files"]] == [
        "model.bin",
        "tokenizer",
        "README.md",
    ]
    for rel in ("model.bin", "README.md", "tokenizer/vocab.json", "tokenizer/special/tokens.txt"):
        assert (out / rel).read_bytes() == (model / rel).read_bytes(), rel
    assert os.readlink(out / "tokenizer" / "latest") == "vocab.json"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "README.md",
        "model.bin",
        "tokenizer",
        "tokenizer/latest",
        "tokenizer/special",
        "tokenizer/special/tokens.txt",
        "tokenizer/vocab.json",
    ]
    again = run_cli("pull", f"oci:{store}:1.0.0", "-o", str(out), env=env)  # over the first pull
    assert again.code == 0, again.err


def test_pull_only_selects_folder_layers_by_type(tmp_path: Path) -> None:
    model = tmp_path / "m"
    store = tmp_path / "store"
    _publish(_model(model, FILES), store, tmp_path / "home")
    env = base_env(tmp_path / "home")
    only = tmp_path / "only"
    pulled = run_cli(
        "pull", f"oci:{store}:1.0.0", "-o", str(only), "--only", "weight-config", env=env
    )
    assert pulled.code == 0, pulled.err
    assert sorted(p.relative_to(only).as_posix() for p in only.rglob("*")) == [
        "tokenizer",
        "tokenizer/special",
        "tokenizer/special/tokens.txt",
        "tokenizer/vocab.json",
    ]
    skipped = tmp_path / "skipped"
    pulled = run_cli(
        "pull", f"oci:{store}:1.0.0", "-o", str(skipped), "--only", "weight,doc", env=env
    )
    assert pulled.code == 0, pulled.err
    assert not (skipped / "tokenizer").exists()
    assert (skipped / "model.bin").is_file()


def test_pull_refuses_a_folder_layer_where_a_file_is(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _publish(_model(tmp_path / "m", FILES), store, tmp_path / "home")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tokenizer").write_text("in the way")
    pulled = run_cli("pull", f"oci:{store}:1.0.0", "-o", str(out), env=base_env(tmp_path / "home"))
    assert pulled.code == 2
    assert "exists and is not a folder, and this layer is a folder" in pulled.err
    assert (out / "tokenizer").read_text() == "in the way"


def test_a_copy_with_other_times_and_modes_publishes_the_same_digest(tmp_path: Path) -> None:
    first = tmp_path / "a"
    manifest = _model(first, FILES)
    second = tmp_path / "b"
    shutil.copytree(first, second, symlinks=True)
    for path in (second / "tokenizer").rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890))
    (second / "tokenizer" / "vocab.json").chmod(0o600)
    (second / "tokenizer" / "special").chmod(0o700)
    a = _publish(manifest, tmp_path / "store-a", tmp_path / "home-a")
    b = _publish(second / "modelver.yaml", tmp_path / "store-b", tmp_path / "home-b")
    layers_a = _manifest_doc(tmp_path / "store-a", a)["layers"]
    layers_b = _manifest_doc(tmp_path / "store-b", b)["layers"]
    assert layers_a == layers_b
    assert a == b  # SOURCE_DATE_EPOCH pins created; the folder's times do not reach the layer


def test_republishing_an_unchanged_folder_is_already_published(tmp_path: Path) -> None:
    manifest = _model(tmp_path / "m", FILES)
    store = tmp_path / "store"
    digest = _publish(manifest, store, tmp_path / "home")
    env = base_env(tmp_path / "home")
    again = run_cli(
        "publish", str(manifest), "--repository", f"oci:{store}", "--format", "json", env=env
    )
    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert doc["digest"] == digest
    assert doc["status"] == "unchanged"
    assert doc["blobs"]["bytesUploaded"] == 0


def test_validate_counts_a_folder_as_one_file(tmp_path: Path) -> None:
    result = run_cli("validate", str(_model(tmp_path, FILES)))
    assert result.code == 0, result.err
    assert "3 file(s)" in result.out


def test_outside_git_created_is_the_newest_time_inside_a_folder(tmp_path: Path) -> None:
    manifest = _model(tmp_path / "m", "  - {path: tokenizer, type: weight-config}\n")
    for path in [tmp_path / "m" / "tokenizer", *(tmp_path / "m" / "tokenizer").rglob("*")]:
        os.utime(path, (1_700_000_000, 1_700_000_000))
    newest = tmp_path / "m" / "tokenizer" / "special" / "tokens.txt"
    os.utime(newest, (1_767_225_600, 1_767_225_600))  # 2026-01-01T00:00:00Z
    env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "MODELVER_NO_CACHE": "1"}
    out = run_cli(
        "publish",
        str(manifest),
        "--repository",
        f"oci:{tmp_path / 'store'}",
        "--format",
        "json",
        env=env,
    )
    assert out.code == 0, out.err
    doc = _manifest_doc(tmp_path / "store", json.loads(out.out)["digest"])
    annotations = doc["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["org.opencontainers.image.created"] == CREATED

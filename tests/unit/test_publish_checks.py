"""Versions that cannot be consumed are refused at publish: one path rule, one manifest size limit.

The path rule (``path_clashes``) is the one ``pull`` applies to layer paths; ``validate`` and
``publish`` apply it to the manifest's files. The size limit (``MAX_MANIFEST_BYTES``) is the one the
registry adapter reads with; ``pack`` and the layout store refuse anything over it.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_modelver.adapters import registry
from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.core.manifest import build_manifest
from ci_modelver.core.modelpack import (
    MAX_MANIFEST_BYTES,
    MODEL_ARTIFACT,
    MODEL_CONFIG,
    OCI_MANIFEST,
    PackedFile,
    Provenance,
    canonical_json,
    pack,
    parse_model_manifest,
    safe_layer_paths,
)
from ci_modelver.core.validate import PathClash, path_clashes, path_key
from ci_modelver.errors import ArtifactError, ExitCode, ManifestTooLarge, exit_code_of
from ci_modelver.validation import validate_manifest

NFC = unicodedata.normalize("NFC", "modèle.bin")
NFD = unicodedata.normalize("NFD", "modèle.bin")
D1 = "sha256:" + "1" * 64
CREATED = "2026-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------
# The key: what a case-insensitive, Unicode-normalising file system sees


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Model.bin", "model.bin"),
        (NFC, NFD),
        (NFC.upper(), NFD),
        ("./a//B/c.bin", "a/b/C.BIN"),
        ("CAFÉ/x", unicodedata.normalize("NFD", "café/x")),
    ],
)
def test_one_file_on_macos_and_windows_shares_one_key(a: str, b: str) -> None:
    assert a != b
    assert path_key(a) == path_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("model.bin", "model.bin."),  # pull keeps trailing dots and spaces: so does publish
        ("model.bin", "model.bin "),
        ("a/b", "a-b"),
        ("weights.bin", "weights.bim"),
    ],
)
def test_distinct_names_keep_distinct_keys(a: str, b: str) -> None:
    assert path_key(a) != path_key(b)


# ---------------------------------------------------------------------------------------------
# The clashes


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["a.bin", "b.bin", "a/b.bin"], []),
        (["a.bin", "./a.bin"], [PathClash(1, 0, "duplicate")]),
        (["Model.bin", "x", "model.bin"], [PathClash(2, 0, "same-name")]),
        ([NFC, NFD], [PathClash(1, 0, "same-name")]),
        (["a", "a/x"], [PathClash(1, 0, "below-a-file")]),
        (["A", "a/x/y"], [PathClash(1, 0, "below-a-file")]),
        (["a/x", "a/y", "A"], [PathClash(2, 0, "over-a-folder")]),
        (["d/Model.bin", "D/model.bin"], [PathClash(1, 0, "same-name")]),
        # each later path once, against the first path it clashes with
        (["a", "A", "a/x"], [PathClash(1, 0, "same-name"), PathClash(2, 0, "below-a-file")]),
    ],
)
def test_path_clashes(paths: list[str], expected: list[PathClash]) -> None:
    assert path_clashes(paths) == expected


_NAMES = st.sampled_from(["a", "A", "b", NFC, NFD, "x.bin", "X.BIN", ".", "c."])
_PATHS = st.lists(_NAMES, min_size=1, max_size=4).map("/".join)


def _layer(path: str) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.cncf.model.weight.v1.raw",
        "digest": D1,
        "size": 1,
        "annotations": {"org.cncf.model.filepath": path},
    }


def _artifact(paths: list[str]) -> Any:
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": MODEL_ARTIFACT,
            "config": {"mediaType": MODEL_CONFIG, "digest": D1, "size": 2},
            "layers": [_layer(p) for p in paths],
        }
    )
    return parse_model_manifest(manifest, D1, "src")


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATHS, min_size=1, max_size=6))
def test_pull_refuses_exactly_what_the_rule_refuses(paths: list[str]) -> None:
    clean = [p for p in paths if any(part not in ("", ".") for part in p.split("/"))]
    if not clean:
        return
    clashes = path_clashes(clean)
    artifact = _artifact(clean)
    if clashes:
        with pytest.raises(ArtifactError, match=rf"refusing layers\[{clashes[0].index}\]"):
            safe_layer_paths(artifact, "src")
        return
    pulled = safe_layer_paths(artifact, "src")
    # No clash: every key is unique and no file is another one's folder.
    keys = [path_key(p) for p in pulled]
    assert len(set(keys)) == len(keys)
    for key in keys:
        parts = key.split("/")
        assert not {"/".join(parts[:d]) for d in range(1, len(parts))} & set(keys)


def test_pull_refuses_nfc_and_nfd_spellings_of_one_name() -> None:
    with pytest.raises(ArtifactError, match=r"refusing layers\[1\].*collides with layers\[0\]"):
        safe_layer_paths(_artifact([NFC, NFD]), "src")


# ---------------------------------------------------------------------------------------------
# validate: located at the second path, naming the first


def _manifest(folder: Path, paths: list[str], *, create: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rel in paths:
        target = folder / rel
        if create and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x")
    manifest = {
        "name": "demo",
        "version": "1.0.0",
        "files": [{"path": p, "type": "weight"} for p in paths],
    }
    path = folder / "modelver.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("paths", "index", "message"),
    [
        (["Model.bin", "model.bin"], 1, "is the same file as files[0] 'Model.bin' on file systems"),
        ([NFC, NFD], 1, f"is the same file as files[0] '{NFC}'"),
        (["Weights", "weights/part-0"], 1, "lies inside files[0] 'Weights', which is a file on"),
        (
            ["weights/part-0", "Weights"],
            1,
            "is also the folder that holds files[0] 'weights/part-0'",
        ),
        (["d/A.bin", "readme.md", "D/a.bin"], 2, "is the same file as files[0] 'd/A.bin'"),
        (["./w.bin", "w.bin"], 1, "is listed twice (also files[0])"),
    ],
)
def test_validate_finds_the_clash_at_the_second_path(
    tmp_path: Path, paths: list[str], index: int, message: str
) -> None:
    result = validate_manifest(_manifest(tmp_path / "m", paths))
    assert result.manifest is None
    [finding] = result.findings
    assert finding.path == f"$.files[{index}].path"
    assert finding.line == 4 + 2 * index  # the line of files[index].path
    assert message in finding.message
    assert "\n" not in finding.message


def test_a_literal_file_and_folder_clash_does_not_blame_case(tmp_path: Path) -> None:
    """``a`` is a file, so ``a/x`` cannot exist: the clash is said once, not 'does not exist'."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a").write_bytes(b"x")
    result = validate_manifest(_manifest(tmp_path / "m", ["a", "a/x"], create=False))
    messages = [f.message for f in result.findings]
    assert any("lies inside files[0] 'a', which is a file:" in m for m in messages), messages
    assert not any("a/x' does not exist" in m for m in messages), messages


def test_names_pull_keeps_apart_are_published(tmp_path: Path) -> None:
    result = validate_manifest(_manifest(tmp_path / "m", ["model.bin", "model.bin.", "Model/x"]))
    assert result.findings == ()


# ---------------------------------------------------------------------------------------------
# The manifest size limit


def test_the_limit_is_the_one_the_registry_reads_with() -> None:
    assert MAX_MANIFEST_BYTES == 4 * 1024 * 1024
    assert registry.MAX_MANIFEST_BYTES == MAX_MANIFEST_BYTES


def _pack(count: int, path_length: int = 1000) -> Any:
    paths = [f"{'d' * path_length}/{i:05d}.bin" for i in range(count)]
    manifest = build_manifest(
        {
            "name": "demo",
            "version": "1.0.0",
            "files": [{"path": p, "type": "weight"} for p in paths],
        },
        {},
    )
    files = [PackedFile(p, "weight", D1, 1) for p in paths]
    return pack(manifest, files, Provenance(created=CREATED))


def test_pack_refuses_a_manifest_over_the_limit_with_the_fix() -> None:
    with pytest.raises(ManifestTooLarge) as caught:
        _pack(2000)
    message = str(caught.value)
    assert caught.value.size > MAX_MANIFEST_BYTES
    assert exit_code_of(caught.value) == ExitCode.INVALID_INPUT
    assert message.startswith("demo 1.0.0: the OCI manifest is ")
    assert "$.files: 2,000 files take" in message
    assert "list a folder of many small files as the folder" in message
    assert "shorten description and hyperparameters" in message
    assert "\n" not in message


def test_pack_accepts_a_manifest_under_the_limit() -> None:
    packed = _pack(1500)
    assert MAX_MANIFEST_BYTES / 2 < len(packed.manifest) <= MAX_MANIFEST_BYTES


def _manifest_of_size(size: int) -> bytes:
    head = canonical_json({"annotations": {"pad": ""}, "schemaVersion": 2})
    data = canonical_json({"annotations": {"pad": "x" * (size - len(head))}, "schemaVersion": 2})
    assert len(data) == size
    return data


def test_layout_stores_a_manifest_of_exactly_the_limit(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "store", create=True)
    data = _manifest_of_size(MAX_MANIFEST_BYTES)
    digest = store.put_manifest("1.0.0", data, OCI_MANIFEST)
    assert store.find_manifest("1.0.0") == (data, digest)


def test_layout_refuses_a_manifest_over_the_limit_and_writes_nothing(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "store", create=True)
    index = (tmp_path / "store" / "index.json").read_bytes()
    with pytest.raises(
        ManifestTooLarge, match=r"oci:.*store:1\.0\.0: the OCI manifest is 4,194,305"
    ):
        store.put_manifest("1.0.0", _manifest_of_size(MAX_MANIFEST_BYTES + 1), OCI_MANIFEST)
    assert (tmp_path / "store" / "index.json").read_bytes() == index
    assert json.loads(index)["manifests"] == []
    assert list((tmp_path / "store" / "blobs" / "sha256").iterdir()) == []

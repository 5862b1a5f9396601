"""An OCI layout's deletes and garbage collection: index.json entries, reachability, the cutoff."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.adapters.store import BlobSource, NoProgress
from ci_modelver.core.audit import EVALUATION_TYPE, referrers_tag
from ci_modelver.core.modelpack import (
    MODEL_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    sha256_digest,
)
from ci_modelver.errors import InputError, LayoutUnreadable

OLD = time.time() - 7 * 24 * 3600  # a week ago


def put_blob(
    store: LayoutStore, data: bytes, media: str = "application/octet-stream"
) -> Descriptor:
    descriptor = Descriptor(media, sha256_digest(data), len(data))
    store.push_blob(BlobSource(descriptor, "blob", data=data), NoProgress())
    return descriptor


def manifest(
    config: Descriptor, layers: list[Descriptor], subject: Descriptor | None = None
) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if subject is not None:
        doc["subject"] = subject.to_json()
        doc["artifactType"] = EVALUATION_TYPE
    return canonical_json(doc)


def blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir() if len(p.name) == 64}


def age_everything(root: Path) -> None:
    for path in (root / "blobs" / "sha256").iterdir():
        os.utime(path, (OLD, OLD))


@pytest.fixture
def layout(tmp_path: Path) -> tuple[LayoutStore, dict[str, Descriptor]]:
    """Two versions sharing a layer; 1.0.0 has an evaluation listed in its fallback index."""
    store = LayoutStore(tmp_path / "store", create=True)
    shared = put_blob(store, b"shared weights")
    only = put_blob(store, b"weights of 1.0.0")
    config1 = put_blob(store, b'{"v":1}', MODEL_CONFIG)
    config2 = put_blob(store, b'{"v":2}', MODEL_CONFIG)
    m1 = manifest(config1, [shared, only])
    m2 = manifest(config2, [shared])
    d1 = store.put_manifest("1.0.0", m1, OCI_MANIFEST)
    d2 = store.put_manifest("2.0.0", m2, OCI_MANIFEST)
    v1 = Descriptor(OCI_MANIFEST, d1, len(m1))
    empty = put_blob(store, b"{}", "application/vnd.oci.empty.v1+json")
    evaluation = manifest(empty, [empty], subject=v1)
    e = store.put_manifest(None, evaluation, OCI_MANIFEST)
    fallback = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": e, "size": len(evaluation)}],
        }
    )
    i = store.put_manifest(referrers_tag(d1), fallback, OCI_INDEX)
    found = {
        "shared": shared,
        "only": only,
        "config1": config1,
        "config2": config2,
        "empty": empty,
        "v1": v1,
        "v2": Descriptor(OCI_MANIFEST, d2, len(m2)),
        "evaluation": Descriptor(OCI_MANIFEST, e, len(evaluation)),
        "index": Descriptor(OCI_INDEX, i, len(fallback)),
    }
    age_everything(store.root)
    return store, found


def hexes(*descriptors: Descriptor) -> set[str]:
    return {d.digest.split(":", 1)[1] for d in descriptors}


def test_nothing_reachable_is_collected(layout: tuple[LayoutStore, dict[str, Descriptor]]) -> None:
    store, _ = layout
    before = blob_files(store.root)
    assert store.collect_garbage(time.time()).blobs == 0
    assert blob_files(store.root) == before


def test_delete_removes_the_entries_and_collection_the_blobs(
    layout: tuple[LayoutStore, dict[str, Descriptor]],
) -> None:
    store, d = layout
    before = blob_files(store.root)
    store.delete_manifest(d["v1"].digest)
    assert "1.0.0" not in store.tags() and store.resolve("2.0.0") is not None
    # The evaluation is still listed by the fallback index: it stays until the index goes.
    collected = store.collect_garbage(time.time())
    gone = hexes(d["v1"], d["config1"], d["only"])
    assert blob_files(store.root) == before - gone
    assert collected.blobs == 3
    assert collected.bytes == d["v1"].size + d["config1"].size + d["only"].size
    store.delete_manifest(d["index"].digest)
    collected = store.collect_garbage(time.time())
    assert blob_files(store.root) == before - gone - hexes(d["index"], d["evaluation"], d["empty"])
    assert collected.blobs == 3
    assert store.tags() == ["2.0.0"]
    assert store.find_manifest("2.0.0") is not None
    # still a layout anyone can read
    index = json.loads((store.root / "index.json").read_bytes())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "2.0.0"
    ]


def test_deleting_twice_and_an_unknown_digest_are_no_errors(
    layout: tuple[LayoutStore, dict[str, Descriptor]],
) -> None:
    store, d = layout
    store.delete_manifest(d["v1"].digest)
    store.delete_manifest(d["v1"].digest)
    store.delete_manifest(sha256_digest(b"never stored"))
    with pytest.raises(InputError, match="invalid digest"):
        store.delete_manifest("sha256:../../etc")


def test_blobs_newer_than_the_cutoff_stay(
    layout: tuple[LayoutStore, dict[str, Descriptor]],
) -> None:
    store, d = layout
    store.delete_manifest(d["v1"].digest)
    fresh = store.root / "blobs" / "sha256" / d["only"].digest.split(":", 1)[1]
    os.utime(fresh)  # written just now, e.g. by a publish that is not in index.json yet
    collected = store.collect_garbage(time.time() - 3600)
    assert fresh.exists()
    assert (collected.blobs, collected.young, collected.young_bytes) == (2, 1, d["only"].size)


def test_a_reused_blob_is_touched_so_a_concurrent_collection_spares_it(
    layout: tuple[LayoutStore, dict[str, Descriptor]],
) -> None:
    store, d = layout
    store.delete_manifest(d["v1"].digest)
    started = time.time() - 1  # file times come from a coarser clock than time.time()
    # A publisher reuses the weights of the deleted version: present, so not sent again ...
    data = b"weights of 1.0.0"
    assert store.push_blob(BlobSource(d["only"], "w", data=data), NoProgress()) is False
    # ... and re-puts the manifest bytes (the same digest) before its index.json update.
    m1 = manifest(d["config1"], [d["shared"], d["only"]])
    assert store.put_manifest(None, m1, OCI_MANIFEST) == d["v1"].digest
    store.collect_garbage(started)
    path = store.root / "blobs" / "sha256"
    assert (path / d["only"].digest.split(":", 1)[1]).exists()
    assert (path / d["v1"].digest.split(":", 1)[1]).exists()
    assert not (path / d["config1"].digest.split(":", 1)[1]).exists()  # not reused: collected


def test_an_unreadable_manifest_stops_the_collection(
    layout: tuple[LayoutStore, dict[str, Descriptor]],
) -> None:
    store, d = layout
    store.delete_manifest(d["v1"].digest)
    (store.root / "blobs" / "sha256" / d["v2"].digest.split(":", 1)[1]).write_bytes(b"<html>")
    before = blob_files(store.root)
    with pytest.raises(LayoutUnreadable, match="no blob was removed"):
        store.collect_garbage(time.time())
    assert blob_files(store.root) == before


def test_temporary_and_foreign_files_are_left_alone(
    layout: tuple[LayoutStore, dict[str, Descriptor]],
) -> None:
    store, _ = layout
    folder = store.root / "blobs" / "sha256"
    for name in (".partial-modelver-0123456789abcdef", ".tmp-xyz", "README"):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (OLD, OLD))
    store.collect_garbage(time.time())
    assert {".partial-modelver-0123456789abcdef", ".tmp-xyz", "README"} <= {
        p.name for p in folder.iterdir()
    }

"""The copy engine against in-memory stores: HEAD first, mount or stream, exact manifest bytes,
referrers indexed at the destination, and the text and JSON of the result."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

from ci_modelver.adapters.store import BlobSource, NoProgress, Progress, iter_source
from ci_modelver.commands.copy import AliasCopy, CopiedVersion, CopyResult
from ci_modelver.copying import BlobTally, Tree, copy_blobs, read_tree, write_tree
from ci_modelver.core.audit import (
    ANN_MOVE,
    AliasMove,
    Evaluation,
    audit_tag,
    evaluation_manifest,
    move_manifest,
    referrers_tag,
)
from ci_modelver.core.copy_plan import Node, manifest_parts
from ci_modelver.core.modelpack import (
    ANN_CREATED,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    sha256_digest,
)
from ci_modelver.core.refs import parse_ref
from ci_modelver.edges.terminal import render


class MemoryStore:
    """Just enough of the Store protocol for the copy engine, with call counts."""

    def __init__(self, name: str, *, mounts: bool = False) -> None:
        self.display = name
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tag_map: dict[str, str] = {}
        self.mounts = mounts
        self.calls: list[str] = []

    # reading
    def resolve(self, tag: str) -> Descriptor | None:
        digest = self.tag_map.get(tag)
        return None if digest is None else Descriptor(OCI_MANIFEST, digest, 0)

    def find_manifest(self, reference: str) -> tuple[bytes, str] | None:
        digest = reference if reference.startswith("sha256:") else self.tag_map.get(reference)
        if digest is None or digest not in self.manifests:
            return None
        return self.manifests[digest], digest

    def referrers_api(self, digest: str) -> list[Descriptor] | None:
        return None

    def blob_exists(self, descriptor: Descriptor) -> bool:
        self.calls.append(f"HEAD {descriptor.digest}")
        return descriptor.digest in self.blobs

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        return io.BytesIO(self.blobs[descriptor.digest])

    def tags(self) -> list[str]:
        return list(self.tag_map)

    # writing
    def push_blob(self, source: BlobSource, progress: Progress) -> bool:
        if source.descriptor.digest in self.blobs:
            return False
        data = b"".join(iter_source(source))
        assert sha256_digest(data) == source.descriptor.digest
        self.blobs[source.descriptor.digest] = data
        self.calls.append(f"PUT {source.descriptor.digest}")
        return True

    def mount_blob(self, descriptor: Descriptor, source_path: str) -> bool:
        self.calls.append(f"MOUNT {descriptor.digest} from {source_path}")
        if self.mounts:
            self.blobs[descriptor.digest] = b"mounted"
        return self.mounts

    def put_manifest(self, tag: str | None, data: bytes, media_type: str) -> str:
        digest = sha256_digest(data)
        self.manifests[digest] = data
        if tag is not None:
            self.tag_map[tag] = digest
        self.calls.append(f"MANIFEST {tag or digest}")
        return digest

    # unused here
    def push_stream(self, path: Path, name: str, size: int, progress: Progress) -> str:
        raise NotImplementedError

    def read_blob(self, descriptor: Descriptor, limit: int) -> bytes:
        return self.blobs[descriptor.digest]

    def fetch_blob(self, descriptor: Descriptor, dest: Path, progress: Progress, name: str) -> None:
        raise NotImplementedError

    @property
    def streams(self) -> bool:
        return True

    def transfer_stats(self) -> dict[str, int]:
        return {}

    def transfer_notes(self) -> list[Any]:
        return []


def _blob(store: MemoryStore, data: bytes, media: str = "application/octet-stream") -> Descriptor:
    store.blobs[sha256_digest(data)] = data
    return Descriptor(media, sha256_digest(data), len(data))


def _index(store: MemoryStore, subject: str, entries: list[Descriptor]) -> None:
    body = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [e.to_json() for e in entries]}
    )
    store.put_manifest(referrers_tag(subject), body, OCI_INDEX)


def _source() -> tuple[MemoryStore, Node, dict[str, str]]:
    """A version with an evaluation and an alias-move record (tagged) with a referrer of its own."""
    src = MemoryStore("src")
    config = _blob(src, b'{"descriptor":{}}', "application/vnd.cncf.model.config.v1+json")
    weights = _blob(src, b"w" * 5000)
    _blob(src, b"{}", "application/vnd.oci.empty.v1+json")
    version = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": config.to_json(),
            "layers": [weights.to_json()],
        }
    )
    digest = src.put_manifest("1.0.0", version, OCI_MANIFEST)
    subject = Descriptor(OCI_MANIFEST, digest, len(version))
    evaluation = evaluation_manifest(
        Evaluation({"s": {"m": 1.0}}, "2026-01-01T00:00:00Z", "me"), subject
    )
    move = AliasMove("production", digest, "2026-01-02T03:04:05.000006Z", "me")
    record = move_manifest(move, subject)
    tag = audit_tag("production", move.time, "abcd0123")
    record_digest = src.put_manifest(tag, record, OCI_MANIFEST)
    evaluation_digest = src.put_manifest(None, evaluation, OCI_MANIFEST)
    on_record = move_manifest(
        AliasMove("x", record_digest, "2026-01-03T00:00:00Z", "me"),
        Descriptor(OCI_MANIFEST, record_digest, len(record)),
    )
    on_record_digest = src.put_manifest(None, on_record, OCI_MANIFEST)
    created = {ANN_CREATED: "2026-01-01T00:00:00Z"}
    _index(
        src,
        digest,
        [
            Descriptor(
                OCI_MANIFEST,
                evaluation_digest,
                len(evaluation),
                created,
                "application/vnd.ci-modelver.evaluation.v1+json",
            ),
            Descriptor(
                OCI_MANIFEST,
                record_digest,
                len(record),
                created,
                "application/vnd.ci-modelver.alias-move.v1+json",
            ),
            Descriptor(OCI_MANIFEST, "sha256:" + "9" * 64, 10, {}, "x"),  # listed, missing
        ],
    )
    _index(
        src, record_digest, [Descriptor(OCI_MANIFEST, on_record_digest, len(on_record), {}, "y")]
    )
    root = Node(digest, manifest_parts(version, "src", OCI_MANIFEST), version)
    names = {
        "record": record_digest,
        "evaluation": evaluation_digest,
        "on_record": on_record_digest,
        "tag": tag,
    }
    return src, root, names


def _tree(src: MemoryStore, root: Node) -> Tree:
    return read_tree(
        src, root, record_tags=[t for t in src.tags() if t.startswith("modelver-audit-")], workers=2
    )  # type: ignore[arg-type]


def test_the_tree_holds_every_referrer_and_its_record_tag() -> None:
    src, root, names = _source()
    tree = _tree(src, root)
    assert set(tree.nodes) == {
        root.digest,
        names["record"],
        names["evaluation"],
        names["on_record"],
    }
    assert tree.nodes[names["record"]].tags == (names["tag"],)
    assert len(tree.skipped) == 1 and "missing" in tree.skipped[0]
    assert ANN_MOVE in tree.nodes[names["record"]].data.decode()


def test_copy_streams_then_finds_everything_present() -> None:
    src, root, names = _source()
    tree = _tree(src, root)
    dst = MemoryStore("dst")
    tally = BlobTally()
    sent = copy_blobs(
        src, dst, tree.blobs(), mount_from=None, workers=2, progress=NoProgress(), tally=tally
    )  # type: ignore[arg-type]
    assert (
        sent == 3 and tally.streamed == 3 and tally.bytes_sent == sum(b.size for b in tree.blobs())
    )
    written = write_tree(dst, tree, tags_needed=lambda t, d: True, sleep=lambda s: None)  # type: ignore[arg-type]
    assert written.referrers_copied == 3 and written.index_entries == 3
    for digest, node in tree.nodes.items():
        assert dst.manifests[digest] == node.data  # exact bytes
    assert dst.tag_map[names["tag"]] == names["record"]
    assert "1.0.0" not in dst.tag_map  # the version tag is the caller's last step
    listed = dst.manifests[dst.tag_map[referrers_tag(root.digest)]]
    assert names["evaluation"].encode() in listed and names["record"].encode() in listed
    # A rerun: HEADs and GETs only.
    dst.calls.clear()
    again = BlobTally()
    assert (
        copy_blobs(
            src, dst, tree.blobs(), mount_from=None, workers=2, progress=NoProgress(), tally=again
        )
        == 0
    )  # type: ignore[arg-type]
    assert again.present == 3 and again.bytes_sent == 0
    rerun = write_tree(dst, tree, tags_needed=lambda t, d: False, sleep=lambda s: None)  # type: ignore[arg-type]
    assert rerun.manifests == 0 and rerun.index_entries == 0 and rerun.referrers_present == 3
    assert not [c for c in dst.calls if not c.startswith("HEAD")]


def test_a_mount_is_tried_first_and_a_refused_one_streams() -> None:
    src, root, _names = _source()
    tree = _tree(src, root)
    mounting = MemoryStore("dst", mounts=True)
    tally = BlobTally()
    copy_blobs(
        src,
        mounting,
        tree.blobs(),
        mount_from="team/src",
        workers=1,
        progress=NoProgress(),
        tally=tally,
    )  # type: ignore[arg-type]
    assert tally.mounted == 3 and tally.streamed == 0 and tally.bytes_sent == 0
    refusing = MemoryStore("dst")
    tally = BlobTally()
    copy_blobs(
        src,
        refusing,
        tree.blobs(),
        mount_from="team/src",
        workers=1,
        progress=NoProgress(),
        tally=tally,
    )  # type: ignore[arg-type]
    assert tally.mounted == 0 and tally.streamed == 3
    assert sum(c.startswith("MOUNT") for c in refusing.calls) == 3


def test_the_result_renders_as_text_and_json() -> None:
    result = CopyResult(
        parse_ref("127.0.0.1:5000/a/m"),
        parse_ref("oci:/media/usb/m"),
        (CopiedVersion("1.0.0", "sha256:" + "1" * 64, "copied", 5),),
        5,
        0,
        1,
        2,
        3,
        2048,
        (AliasCopy("production", "sha256:" + "1" * 64, "1.0.0", True, None, "modelver-audit-x"),),
        ("src@sha256:…: listed but missing; skipped",),
    )
    text = render(result, "text", in_actions=False).text("out")
    assert "copied 1 version(s) from 127.0.0.1:5000/a/m to oci:/media/usb/m" in text
    assert "1 mounted, 2 streamed (2.0 KiB sent), 3 already there" in text
    assert "alias production -> 1.0.0" in text and "skipped: src@" in text
    doc = result.to_json()
    assert doc["blobs"] == {"mounted": 1, "streamed": 2, "present": 3, "bytesSent": 2048}
    assert doc["versions"][0]["status"] == "copied" and doc["aliases"][0]["recordTag"]


def test_a_hostile_index_cannot_steer_the_copy() -> None:
    src, root, names = _source()
    other = move_manifest(
        AliasMove("p", "sha256:" + "8" * 64, "2026-01-05T00:00:00Z", "me"),
        Descriptor(OCI_MANIFEST, "sha256:" + "8" * 64, 10),
    )
    other_digest = src.put_manifest(None, other, OCI_MANIFEST)
    _index(
        src,
        root.digest,
        [
            Descriptor(OCI_MANIFEST, "sha256:../../../etc/passwd", 10, {}, "x"),
            Descriptor(OCI_MANIFEST, other_digest, len(other), {}, "y"),  # about another subject
            Descriptor(OCI_MANIFEST, names["evaluation"], 1, {}, "z"),  # a size that is wrong
        ],
    )
    tree = _tree(src, root)
    assert set(tree.nodes) == {root.digest, names["evaluation"]}
    assert len(tree.skipped) == 2
    assert any("invalid digest" in s for s in tree.skipped)
    assert any("subject differs" in s for s in tree.skipped)
    entry = tree.nodes[names["evaluation"]].entry
    assert entry is not None and entry.size == len(src.manifests[names["evaluation"]])

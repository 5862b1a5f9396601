"""The pure planning of ``copy``: manifest parts, version selection, tags, alias history, order."""

from __future__ import annotations

import pytest

from ci_modelver.core.audit import (
    EMPTY_DESCRIPTOR,
    EVALUATION_TYPE,
    AliasMove,
    Evaluation,
    audit_tag,
    evaluation_manifest,
    move_manifest,
)
from ci_modelver.core.copy_plan import (
    Node,
    alias_history,
    aliases_to_move,
    manifest_parts,
    record_tag_candidates,
    referrer_entry,
    select_versions,
    tag_needed,
    write_order,
)
from ci_modelver.core.modelpack import (
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    sha256_digest,
)
from ci_modelver.errors import ArtifactError, ConflictError, ExitCode, InputError

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _manifest(layers: list[str], subject: str | None = None) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.cncf.model.config.v1+json",
            "digest": D1,
            "size": 2,
        },
        "layers": [{"mediaType": "x", "digest": d, "size": 5} for d in layers],
    }
    if subject:
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 10}
    return canonical_json(doc)


def _node(data: bytes, entry: bool = False) -> Node:
    parts = manifest_parts(data, "src", OCI_MANIFEST)
    digest = sha256_digest(data)
    found = Descriptor(OCI_MANIFEST, digest, len(data)) if entry else None
    return Node(digest, parts, data, found)


def test_a_model_manifest_needs_its_config_and_layers() -> None:
    parts = manifest_parts(_manifest([D2, D3]), "src", OCI_INDEX)
    assert [b.digest for b in parts.blobs] == [D1, D2, D3]
    assert parts.media_type == OCI_MANIFEST and parts.subject is None and parts.children == ()
    assert parts.artifact_type == "application/vnd.cncf.model.manifest.v1+json"


def test_a_referrer_names_its_subject_and_its_entry_keeps_the_source_annotations() -> None:
    version = Descriptor(OCI_MANIFEST, D2, 100)
    data = evaluation_manifest(Evaluation({"s": {"m": 1.0}}, "2026-01-01T00:00:00Z", "me"), version)
    parts = manifest_parts(data, "src", OCI_MANIFEST)
    assert parts.subject == D2 and parts.artifact_type == EVALUATION_TYPE
    assert [b.digest for b in parts.blobs] == [EMPTY_DESCRIPTOR.digest] * 2
    listed = Descriptor(OCI_MANIFEST, sha256_digest(data), 1, {"k": "v"}, EVALUATION_TYPE)
    entry = referrer_entry(listed, parts, len(data))
    assert entry.size == len(data) and entry.annotations == {"k": "v"}
    assert entry.artifact_type == EVALUATION_TYPE


def test_an_index_lists_manifests() -> None:
    data = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": D3, "size": 9}],
        }
    )
    parts = manifest_parts(data, "src", OCI_MANIFEST)
    assert [c.digest for c in parts.children] == [D3] and parts.blobs == ()


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        canonical_json({"config": {"mediaType": "x", "digest": "sha256:../../etc", "size": 1}}),
        canonical_json({"layers": [{"mediaType": "x", "digest": D1, "size": -1}]}),
        canonical_json({"layers": "nope"}),
        canonical_json({"manifests": [{"digest": D1, "size": 1}]}),
    ],
)
def test_untrusted_manifests_that_cannot_be_copied_are_refused(data: bytes) -> None:
    with pytest.raises(ArtifactError):
        manifest_parts(data, "src", OCI_MANIFEST)


def test_versions_are_selected_in_semver_order() -> None:
    tags = ["1.10.0", "latest", "1.2.0", "1.2.0-rc.1", "production", "sha256-abc", "2.0.0"]
    assert select_versions(tags, None) == ["1.2.0-rc.1", "1.2.0", "1.10.0", "2.0.0"]
    assert select_versions(tags, 2) == ["1.10.0", "2.0.0"]
    assert select_versions(tags, 10) == ["1.2.0-rc.1", "1.2.0", "1.10.0", "2.0.0"]
    with pytest.raises(InputError):
        select_versions(tags, 0)


def test_tags_are_immutable_at_the_destination() -> None:
    assert tag_needed("dst", "1.0.0", D1, None) is True
    assert tag_needed("dst", "1.0.0", D1, D1) is False
    with pytest.raises(ConflictError) as caught:
        tag_needed("dst", "1.0.0", D1, D2)
    assert caught.value.exit_code == ExitCode.CONFLICT
    message = str(caught.value)
    assert D1 in message and D2 in message and "immutable" in message and "dst:1.0.0" in message


def test_a_records_tag_is_found_among_the_tags() -> None:
    move = AliasMove("prod", D1, "2026-11-27T05:32:44.193491Z", "me")
    tag = audit_tag("prod", move.time, "0a1b2c3d")
    other_alias = audit_tag("prod-eu", move.time, "0a1b2c3d")
    other_time = audit_tag("prod", "2026-11-27T05:32:45.000000Z", "ffff0000")
    tags = [tag, other_alias, other_time, "1.0.0", f"{tag}x"]
    assert record_tag_candidates(move, tags) == [tag]


def test_an_alias_history_is_every_digest_it_pointed_at() -> None:
    moves = [
        AliasMove("p", D1, "t1", "me"),
        AliasMove("p", D2, "t2", "me", from_digest=D1),
        AliasMove("p", D1, "t3", "me", from_digest=D2),
        AliasMove("p", "sha256:bad", "t4", "me", from_digest=D1),
    ]
    assert alias_history(moves, D3) == [D1, D2, D3]
    assert alias_history([], None) == []


def test_aliases_that_point_at_copied_versions_move() -> None:
    aliases = {"production": D1, "staging": D2, "latest": D1}
    assert aliases_to_move(aliases, [D1]) == [("latest", D1), ("production", D1)]


def test_a_manifest_is_written_after_what_it_names() -> None:
    version = _node(_manifest([D2]))
    record = _node(_manifest([D3], subject=version.digest), entry=True)
    signature = _node(_manifest([D3, D2], subject=record.digest), entry=True)
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": signature.digest, "size": 1}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": version.digest, "size": 1},
        }
    )
    listing = _node(index, entry=True)
    nodes = {n.digest: n for n in (signature, listing, record, version)}
    order = [n.digest for n in write_order(nodes, version.digest)]
    assert order[0] == version.digest and set(order) == set(nodes)
    assert order.index(record.digest) < order.index(signature.digest)
    assert order.index(signature.digest) < order.index(listing.digest)


def test_a_move_record_is_copied_with_its_subject() -> None:
    version = Descriptor(OCI_MANIFEST, D2, 100)
    data = move_manifest(AliasMove("p", D2, "2026-01-01T00:00:00Z", "me"), version)
    assert manifest_parts(data, "src", OCI_MANIFEST).subject == D2

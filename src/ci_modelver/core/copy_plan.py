"""Planning a copy between stores (pure): which versions, what each manifest needs, which tags.

A copied manifest keeps its exact bytes (so its digest); what it needs at the destination first
is read from those bytes: its blobs (config and layers) and, for an image index, the manifests it
lists. Referrers (alias-move records, evaluations, signatures, and their own referrers) are
manifests whose ``subject`` is the manifest they refer to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ci_modelver.core import json_bounds
from ci_modelver.core.audit import AUDIT_TAG_PREFIX, AliasMove
from ci_modelver.core.modelpack import Descriptor, parse_descriptor
from ci_modelver.core.refs import DIGEST_RE, is_version_tag, semver_key
from ci_modelver.errors import ArtifactError, ConflictError, InputError, JSONRefused

# What a source may make us walk: referrers of referrers this deep, this many manifests per version.
MAX_DEPTH = 8
MAX_NODES = 10_000


@dataclass(frozen=True)
class ManifestParts:
    """What a manifest needs before it can be stored: blobs, listed manifests, its subject."""

    media_type: str
    blobs: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]  # the manifests an image index lists
    subject: str | None
    artifact_type: str | None


@dataclass(frozen=True)
class Node:
    """One manifest to copy: its exact bytes, what it needs, and how it is found at the source."""

    digest: str
    parts: ManifestParts
    data: bytes = field(repr=False)
    # Its descriptor in its subject's referrers index (referrers only).
    entry: Descriptor | None = None
    tags: tuple[str, ...] = ()

    @property
    def is_referrer(self) -> bool:
        return self.entry is not None


def manifest_parts(data: bytes, source: str, fallback_media: str) -> ManifestParts:
    """Blobs, listed manifests and subject of manifest bytes; ArtifactError when they are not a
    manifest or index whose descriptors can be trusted as paths and URLs."""
    try:
        doc = json_bounds.parse(data)
    except JSONRefused as exc:
        raise ArtifactError(f"{source}: the manifest {exc.problem}") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: the manifest is not a JSON object")
    media = doc.get("mediaType")
    media_type = media if isinstance(media, str) and media else fallback_media
    blobs: list[Descriptor] = []
    if "config" in doc:
        blobs.append(parse_descriptor(doc["config"], "config", source))
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise ArtifactError(f"{source}: layers is not a list")
    blobs.extend(parse_descriptor(layer, f"layers[{i}]", source) for i, layer in enumerate(layers))
    listed = doc.get("manifests", [])
    if not isinstance(listed, list):
        raise ArtifactError(f"{source}: manifests is not a list")
    children = tuple(parse_descriptor(m, f"manifests[{i}]", source) for i, m in enumerate(listed))
    subject = None
    if doc.get("subject") is not None:
        subject = parse_descriptor(doc["subject"], "subject", source).digest
    artifact = doc.get("artifactType")
    if not isinstance(artifact, str):
        config_media = blobs[0].media_type if "config" in doc and blobs else None
        artifact = config_media
    return ManifestParts(media_type, tuple(blobs), children, subject, artifact)


def referrer_entry(found: Descriptor, parts: ManifestParts, size: int) -> Descriptor:
    """The descriptor a referrers index at the destination lists for a referrer.

    The source's entry (its annotations and artifactType), with the media type and size of the
    bytes actually read: an index may not change what the manifest is.
    """
    return Descriptor(
        parts.media_type,
        found.digest,
        size,
        dict(found.annotations),
        found.artifact_type or parts.artifact_type,
    )


def select_versions(tags: Iterable[str], keep_last: int | None) -> list[str]:
    """Version tags in SemVer order; with ``keep_last`` only the newest N."""
    versions = sorted((t for t in set(tags) if is_version_tag(t)), key=semver_key)
    if keep_last is not None:
        if keep_last < 1:
            raise InputError(f"copy: --keep-last must be 1 or more, got {keep_last}")
        versions = versions[-keep_last:]
    return versions


def tag_needed(where: str, tag: str, digest: str, existing: str | None) -> bool:
    """Whether ``tag`` must still be written at the destination.

    False when it already holds ``digest``; ConflictError when it holds another digest: version
    tags (and audit-record tags) are immutable, so a copy never moves one.
    """
    if existing is None:
        return True
    if existing == digest:
        return False
    if is_version_tag(tag):
        advice = (
            "version tags are immutable; copy into another repository, or leave this version out"
        )
    else:
        advice = "record tags are immutable; this destination holds another record under it"
    raise ConflictError(
        f"{where}:{tag} already holds {existing}, but the source has {digest} under it; {advice}; "
        "nothing of this version was written"
    )


def audit_tag_prefix(move: AliasMove) -> str:
    """The start of the tag ``audit_tag`` gave this move's record (its nonce follows)."""
    compact = re.sub(r"[^0-9T]", "", move.time)  # the same compaction as core.audit.audit_tag
    return f"{AUDIT_TAG_PREFIX}{move.alias}-{compact}-"


def record_tag_candidates(move: AliasMove, tags: Sequence[str]) -> list[str]:
    """The audit tags that may hold this move's record (to be resolved to be sure)."""
    prefix = audit_tag_prefix(move)
    return sorted(
        t for t in tags if t.startswith(prefix) and re.fullmatch(r"[0-9a-f]+", t[len(prefix) :])
    )


def alias_history(moves: Sequence[AliasMove], current: str | None) -> list[str]:
    """Every digest an alias pointed to in its audit log (oldest first), then where it is now."""
    out: list[str] = []
    for move in moves:
        for digest in (move.from_digest, move.to_digest):
            if digest is not None and DIGEST_RE.match(digest) and digest not in out:
                out.append(digest)
    if current is not None and current not in out:
        out.append(current)
    return out


def aliases_to_move(aliases: Mapping[str, str], copied: Iterable[str]) -> list[tuple[str, str]]:
    """``(alias, digest)`` for each source alias that points at a copied version, by name."""
    wanted = set(copied)
    return sorted((a, d) for a, d in aliases.items() if d in wanted)


def write_order(nodes: Mapping[str, Node], root: str) -> list[Node]:
    """Every node reachable from ``root``: a manifest after what it lists, a referrer after its
    subject, so no manifest is stored before what it names."""
    done: set[str] = set()
    order: list[Node] = []
    referrers: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.parts.subject is not None and node.is_referrer:
            referrers.setdefault(node.parts.subject, []).append(node.digest)

    def visit(digest: str, depth: int) -> None:
        if digest in done or digest not in nodes:
            return
        if depth > 8 * MAX_DEPTH:  # read_tree stops at MAX_DEPTH levels; this is a hostile graph
            raise ArtifactError(
                f"{root}: its referrers nest deeper than {8 * MAX_DEPTH} manifests; not copied"
            )
        done.add(digest)
        node = nodes[digest]
        if node.parts.subject is not None:
            visit(node.parts.subject, depth + 1)  # reached through an index first
        for child in node.parts.children:
            visit(child.digest, depth + 1)
        order.append(node)
        for referrer in sorted(referrers.get(digest, [])):
            visit(referrer, depth + 1)

    visit(root, 0)
    return order

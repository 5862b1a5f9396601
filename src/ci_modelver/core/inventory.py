"""What a repository holds, as read from its manifests: tags, manifests, referrers (pure).

``storage`` and ``prune`` both start from an :class:`Inventory`; the store adapter that reads it
(adapters/inventory_scan.py) only fetches manifests, never a layer or config blob.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_modelver.core import json_bounds
from ci_modelver.core.audit import ALIAS_MOVE_TYPE, EVALUATION_TYPE, AliasMove, is_internal_tag
from ci_modelver.core.modelpack import (
    DOCKER_LIST,
    OCI_INDEX,
    Descriptor,
)
from ci_modelver.core.refs import DIGEST_RE, is_version_tag, semver_key
from ci_modelver.core.signing import BUNDLE_TYPES
from ci_modelver.errors import JSONRefused

SIGNATURE_TYPES = BUNDLE_TYPES
AUDIT, EVALUATION, SIGNATURE, OTHER = "audit", "evaluation", "signature", "other"
_FALLBACK_TAG = re.compile(r"^sha256-([0-9a-f]{64})\Z")


def referrer_kind(artifact_type: str | None) -> str:
    """``audit``, ``evaluation``, ``signature`` or ``other`` for a referrer's artifactType."""
    if artifact_type == ALIAS_MOVE_TYPE:
        return AUDIT
    if artifact_type == EVALUATION_TYPE:
        return EVALUATION
    if artifact_type in SIGNATURE_TYPES:
        return SIGNATURE
    return OTHER


def fallback_subject(tag: str) -> str | None:
    """``sha256:<hex>`` for a referrers fallback tag ``sha256-<hex>``, else None."""
    match = _FALLBACK_TAG.match(tag)
    return f"sha256:{match.group(1)}" if match else None


@dataclass(frozen=True)
class ManifestInfo:
    """One manifest or index: what it references and how large it is."""

    digest: str
    size: int
    media_type: str = ""
    artifact_type: str | None = None
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()  # an image index's manifests
    subject: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config and layers: the blobs this manifest needs."""
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def kind_type(self) -> str | None:
        """The artifactType, else the config's media type (OCI 1.1 artifact guidance)."""
        return self.artifact_type or (self.config.media_type if self.config else None)


def _descriptor(raw: Any) -> Descriptor | None:
    if not isinstance(raw, dict):
        return None
    digest, size, media = raw.get("digest"), raw.get("size"), raw.get("mediaType")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return None
    annotations = raw.get("annotations")
    artifact = raw.get("artifactType")
    return Descriptor(
        media if isinstance(media, str) else "",
        digest,
        size,
        {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {},
        artifact if isinstance(artifact, str) else None,
    )


def _descriptors(raw: Any) -> tuple[Descriptor, ...]:
    items = raw if isinstance(raw, list) else []
    return tuple(d for d in (_descriptor(item) for item in items) if d is not None)


def parse_manifest_info(data: bytes, digest: str) -> ManifestInfo:
    """What a manifest or index references; malformed parts are left out (never raises)."""
    try:
        doc = json_bounds.parse(data)
    except JSONRefused:
        return ManifestInfo(digest, len(data))
    if not isinstance(doc, dict):
        return ManifestInfo(digest, len(data))
    media = doc.get("mediaType")
    artifact = doc.get("artifactType")
    subject = _descriptor(doc.get("subject"))
    annotations = doc.get("annotations")
    return ManifestInfo(
        digest,
        len(data),
        media if isinstance(media, str) else "",
        artifact if isinstance(artifact, str) else None,
        _descriptor(doc.get("config")),
        _descriptors(doc.get("layers")) + _descriptors(doc.get("blobs")),
        _descriptors(doc.get("manifests")),
        subject.digest if subject else None,
        {str(k): v for k, v in annotations.items() if isinstance(v, str)}
        if isinstance(annotations, dict)
        else {},
    )


def is_index(info: ManifestInfo) -> bool:
    return info.media_type in (OCI_INDEX, DOCKER_LIST) or bool(info.children)


@dataclass(frozen=True)
class Inventory:
    """Every tag of a repository, the manifests read, and who refers to whom.

    ``referrers`` maps a subject digest to the referrer entries found for it (the registry's
    referrers API, or the ``sha256-<hex>`` fallback index); ``missing`` holds subjects of
    fallback indexes whose manifest no longer exists (left behind by an interrupted prune);
    ``moves`` the alias moves recorded under audit tags, oldest first.
    """

    tags: Mapping[str, str]  # tag -> manifest digest
    manifests: Mapping[str, ManifestInfo]  # digest -> every manifest read
    referrers: Mapping[str, tuple[Descriptor, ...]] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()
    moves: tuple[AliasMove, ...] = ()

    def versions(self) -> list[str]:
        """Version tags whose manifest was read, in SemVer order."""
        found = [t for t, d in self.tags.items() if is_version_tag(t) and d in self.manifests]
        return sorted(found, key=semver_key)

    def aliases(self) -> dict[str, str]:
        """Movable tags (not versions, not our bookkeeping tags) and their digests."""
        return {
            t: d for t, d in self.tags.items() if not is_version_tag(t) and not is_internal_tag(t)
        }

    def kind_of(self, entry: Descriptor) -> str:
        """A referrer's kind, from its own manifest when it was read (else the index entry)."""
        info = self.manifests.get(entry.digest)
        return referrer_kind(info.kind_type if info else entry.artifact_type)

    def referrers_of(self, subject: str) -> list[Descriptor]:
        """Referrer entries of ``subject`` whose manifest exists (read), each once."""
        seen: set[str] = set()
        out: list[Descriptor] = []
        for entry in self.referrers.get(subject, ()):
            if entry.digest in self.manifests and entry.digest not in seen:
                seen.add(entry.digest)
                out.append(entry)
        return out

    def size_of(self) -> dict[str, int]:
        """Size of every digest the inventory knows: manifests and the blobs they name."""
        sizes: dict[str, int] = {}
        for info in self.manifests.values():
            for blob in info.blobs:
                sizes.setdefault(blob.digest, blob.size)
        for digest, info in self.manifests.items():
            sizes[digest] = info.size
        return sizes

    def closure(self, roots: Iterable[str], *, with_referrers: bool) -> set[str]:
        """Every digest ``roots`` keep: themselves, their blobs, an index's manifests and
        (``with_referrers``) the referrers of each manifest reached, transitively."""
        out: set[str] = set()
        stack = list(roots)
        while stack:
            digest = stack.pop()
            if digest in out:
                continue
            out.add(digest)
            info = self.manifests.get(digest)
            if info is None:
                continue
            out.update(b.digest for b in info.blobs)
            stack.extend(c.digest for c in info.children)
            if with_referrers:
                stack.extend(e.digest for e in self.referrers.get(digest, ()))
        return out

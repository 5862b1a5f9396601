"""Storage numbers of a repository, computed from its manifests alone (pure).

- A version's **size** is its config plus its layers, as the manifest declares them.
- Its **new bytes** are the config and layers whose digest no earlier version (SemVer order)
  has; a blob listed twice in one version counts once. The new bytes of all versions add up to
  the repository's unique total.
- The **unique total** counts every distinct blob digest (configs included) once; the
  **saving** is what one layer per file saves: logical total minus unique total.
- Referrer manifests (audit records, evaluations, signatures) and the ``sha256-<hex>`` fallback
  indexes are counted apart from the versions: manifest bytes plus the blobs they name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_modelver.core.audit import is_internal_tag
from ci_modelver.core.inventory import (
    AUDIT,
    EVALUATION,
    OTHER,
    SIGNATURE,
    Inventory,
    fallback_subject,
    is_index,
    referrer_kind,
)
from ci_modelver.core.modelpack import ANN_CREATED, FILE_TYPE_OF, Descriptor

LARGEST = 5
CONFIG = "config"
_KIND_KEYS = {
    AUDIT: "auditRecords",
    EVALUATION: "evaluations",
    SIGNATURE: "signatures",
    OTHER: "other",
}


@dataclass(frozen=True)
class VersionUsage:
    version: str
    digest: str
    created: str | None
    size: int
    new: int
    by_type: Mapping[str, int]
    aliases: tuple[str, ...] = ()
    referrers: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "created": self.created,
            "size": self.size,
            "newBytes": self.new,
            "byType": dict(self.by_type),
            "aliases": list(self.aliases),
            "referrers": self.referrers,
        }


@dataclass(frozen=True)
class Usage:
    """How many manifests of a kind, and their bytes (manifests plus distinct blobs)."""

    count: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "bytes": self.bytes}


@dataclass(frozen=True)
class StorageReport:
    versions: tuple[VersionUsage, ...]
    logical: int
    unique: int
    by_type: Mapping[str, tuple[int, int]]  # type -> (logical, unique)
    referrers: Mapping[str, Usage]  # kind -> usage
    indexes: Usage
    other_tags: Mapping[str, str] = field(default_factory=dict)  # tags naming no version

    @property
    def saving(self) -> int:
        return self.logical - self.unique

    @property
    def largest(self) -> tuple[VersionUsage, ...]:
        """The largest versions by size (the newer one first on a tie)."""
        order = sorted(enumerate(self.versions), key=lambda p: (-p[1].size, -p[0]))
        return tuple(v for _, v in order[:LARGEST])

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": [v.to_json() for v in self.versions],
            "totals": {
                "versions": len(self.versions),
                "logical": self.logical,
                "unique": self.unique,
                "saving": self.saving,
                "savingRatio": round(self.saving / self.logical, 4) if self.logical else 0.0,
            },
            "byType": {
                kind: {"logical": logical, "unique": unique}
                for kind, (logical, unique) in sorted(self.by_type.items())
            },
            "largest": [{"version": v.version, "size": v.size} for v in self.largest],
            "referrers": {
                _KIND_KEYS[kind]: self.referrers.get(kind, Usage()).to_json()
                for kind in (AUDIT, EVALUATION, SIGNATURE, OTHER)
            }
            | {"indexes": self.indexes.to_json()},
            "otherTags": [{"tag": t, "digest": d} for t, d in sorted(self.other_tags.items())],
        }


def _typed_blobs(inventory: Inventory, digest: str) -> list[tuple[str, Descriptor]]:
    """``(file type, blob)`` for a version's config and layers."""
    info = inventory.manifests[digest]
    out: list[tuple[str, Descriptor]] = []
    if info.config is not None:
        out.append((CONFIG, info.config))
    for layer in info.layers:
        # A ModelPack media type names its file type; any other layer counts as its media type.
        kind = FILE_TYPE_OF.get(layer.media_type, layer.media_type)
        out.append((kind or "unknown", layer))
    return out


def storage_report(inventory: Inventory) -> StorageReport:
    """Per-version and repository totals (see the module docstring for each number)."""
    aliases = inventory.aliases()
    seen: set[str] = set()
    type_seen: dict[str, set[str]] = {}
    by_type: dict[str, list[int]] = {}
    versions: list[VersionUsage] = []
    logical = 0
    version_digests: set[str] = set()
    for tag in inventory.versions():
        digest = inventory.tags[tag]
        version_digests.add(digest)
        typed = _typed_blobs(inventory, digest)
        size = sum(blob.size for _, blob in typed)
        new = 0
        mine: dict[str, int] = {}
        for kind, blob in typed:
            mine[kind] = mine.get(kind, 0) + blob.size
            totals = by_type.setdefault(kind, [0, 0])
            totals[0] += blob.size
            if blob.digest not in type_seen.setdefault(kind, set()):
                type_seen[kind].add(blob.digest)
                totals[1] += blob.size
            if blob.digest not in seen:
                seen.add(blob.digest)
                new += blob.size
        logical += size
        created = inventory.manifests[digest].annotations.get(ANN_CREATED)
        versions.append(
            VersionUsage(
                tag,
                digest,
                created,
                size,
                new,
                mine,
                tuple(sorted(a for a, d in aliases.items() if d == digest)),
                len(inventory.referrers_of(digest)),
            )
        )
    unique = _unique_bytes(inventory, version_digests)
    referrers, indexes = _referrer_usage(inventory)
    other = {t: d for t, d in aliases.items() if d not in version_digests}
    return StorageReport(
        tuple(versions),
        logical,
        unique,
        {k: (v[0], v[1]) for k, v in by_type.items()},
        referrers,
        indexes,
        other,
    )


def _unique_bytes(inventory: Inventory, version_digests: set[str]) -> int:
    sizes: dict[str, int] = {}
    for digest in version_digests:
        for blob in inventory.manifests[digest].blobs:
            sizes.setdefault(blob.digest, blob.size)
    return sum(sizes.values())


def _referrer_usage(inventory: Inventory) -> tuple[dict[str, Usage], Usage]:
    """Referrer manifests by kind, and the fallback indexes (tags ``sha256-<hex>``)."""
    kinds: dict[str, set[str]] = {}
    for entries in inventory.referrers.values():
        for entry in entries:
            if entry.digest in inventory.manifests:
                kinds.setdefault(inventory.kind_of(entry), set()).add(entry.digest)
    # Audit records are found by their own tags too (their subject may have been pruned).
    for tag, digest in inventory.tags.items():
        info = inventory.manifests.get(digest)
        if is_internal_tag(tag) and info and referrer_kind(info.kind_type) == AUDIT:
            kinds.setdefault(AUDIT, set()).add(digest)
    usage = {kind: _usage(inventory, digests) for kind, digests in kinds.items()}
    index_digests = {
        d
        for t, d in inventory.tags.items()
        if fallback_subject(t) and d in inventory.manifests and is_index(inventory.manifests[d])
    }
    return usage, _usage(inventory, index_digests)


def _usage(inventory: Inventory, digests: set[str]) -> Usage:
    blobs: dict[str, int] = {}
    total = 0
    for digest in digests:
        info = inventory.manifests[digest]
        total += info.size
        for blob in info.blobs:
            blobs.setdefault(blob.digest, blob.size)
    return Usage(len(digests), total + sum(blobs.values()))

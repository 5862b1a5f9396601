"""Read what the registry site shows from a store: version manifests, aliases, alias moves,
evaluations. Manifests only (never a config or layer blob); with a cache folder, manifests
already fetched are read from it by digest (verified) instead of the store.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ci_modelver.adapters.referrers import list_referrers
from ci_modelver.adapters.store import Store
from ci_modelver.core.audit import (
    EVALUATION_TYPE,
    AliasMove,
    Evaluation,
    alias_of_audit_tag,
    is_internal_tag,
    parse_evaluation,
    parse_move,
)
from ci_modelver.core.inventory import SIGNATURE_TYPES
from ci_modelver.core.modelpack import parse_model_manifest, sha256_digest
from ci_modelver.core.refs import DIGEST_RE, is_version_tag
from ci_modelver.core.site_model import RepoSnapshot, VersionSnapshot
from ci_modelver.errors import ModelverError

T = TypeVar("T")
R = TypeVar("R")


class ManifestReader:
    """Manifests by tag or digest, through an optional cache folder of ``sha256/<hex>`` files.

    Tags are mutable, so a tag is resolved first (a HEAD on a registry); the manifest it names is
    then immutable and read from the cache when present and its bytes hash to the digest.
    """

    def __init__(self, store: Store, cache: Path | None) -> None:
        self.store = store
        self.cache = cache
        self.fetched = 0
        self.cached = 0
        self._lock = threading.Lock()

    def _count(self, *, cached: bool) -> None:
        with self._lock:
            if cached:
                self.cached += 1
            else:
                self.fetched += 1

    def _cache_file(self, digest: str) -> Path | None:
        if self.cache is None or not DIGEST_RE.match(digest):
            return None
        return self.cache / "sha256" / digest.split(":", 1)[1]

    def by_digest(self, digest: str) -> tuple[bytes, str] | None:
        path = self._cache_file(digest)
        if path is not None:
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                if sha256_digest(data) == digest:
                    self._count(cached=True)
                    return data, digest
        found = self.store.find_manifest(digest)
        self._count(cached=False)
        if found is not None and path is not None:
            _write_atomic(path, found[0])
        return found

    def by_tag(self, tag: str) -> tuple[bytes, str] | None:
        if self.cache is None:
            self._count(cached=False)
            return self.store.find_manifest(tag)
        descriptor = self.store.resolve(tag)
        return None if descriptor is None else self.by_digest(descriptor.digest)


def _write_atomic(path: Path, data: bytes) -> None:
    # A cache that cannot be written is no error: the next run fetches again.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _map(workers: int, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(work, items))


def read_repository(reader: ManifestReader, display: str, workers: int) -> RepoSnapshot:
    """Versions (with evaluations and signature counts), aliases and the alias log of a store."""
    store = reader.store
    tags = sorted(store.tags())
    versions = [t for t in tags if is_version_tag(t)]
    aliases = [t for t in tags if not is_version_tag(t) and not is_internal_tag(t)]
    audit = [t for t in tags if alias_of_audit_tag(t) is not None]

    def version(tag: str) -> VersionSnapshot | None:
        found = reader.by_tag(tag)
        if found is None:
            return None  # deleted between the tag list and the read
        try:
            artifact = parse_model_manifest(found[0], found[1], f"{display}:{tag}")
        except ModelverError:
            return None  # not a model artifact: not shown
        referrers = list_referrers(store, artifact.digest)
        evaluations: list[Evaluation] = []
        for entry in sorted(referrers, key=lambda d: d.digest):
            if entry.artifact_type != EVALUATION_TYPE:
                continue
            loaded = reader.by_digest(entry.digest)
            parsed = parse_evaluation(loaded[0], loaded[1]) if loaded else None
            if parsed is not None:
                evaluations.append(parsed)
        evaluations.sort(key=lambda e: (e.time, e.record_digest or ""))
        signatures = sum(1 for d in referrers if d.artifact_type in SIGNATURE_TYPES)
        return VersionSnapshot(tag, artifact, tuple(evaluations), signatures)

    def alias(tag: str) -> tuple[str, str] | None:
        descriptor = store.resolve(tag)
        return (tag, descriptor.digest) if descriptor is not None else None

    def move(tag: str) -> AliasMove | None:
        found = reader.by_tag(tag)
        return parse_move(found[0], found[1]) if found else None

    snapshots = tuple(v for v in _map(workers, version, versions) if v is not None)
    pointed = dict(a for a in _map(workers, alias, aliases) if a is not None)
    moves = [m for m in _map(workers, move, audit) if m is not None]
    moves.sort(key=lambda m: (m.time, m.record_digest or ""))
    return RepoSnapshot(display, snapshots, pointed, tuple(moves))

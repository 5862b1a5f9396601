"""The embedded store: an OCI image layout directory (oci-layout, index.json, blobs/sha256/…).

skopeo reads it as ``oci:DIR:TAG``: tags are ``org.opencontainers.image.ref.name`` annotations
on the entries of index.json (image-spec, image-layout.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ci_modelver.adapters.store import (
    BlobSource,
    Progress,
    UploadNote,
    file_mode,
    iter_file,
    iter_source,
    write_hashed,
    write_verified,
)
from ci_modelver.core import json_bounds
from ci_modelver.core.modelpack import (
    ANN_REF_NAME,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    Descriptor,
    canonical_json,
    require_manifest_size,
    sha256_digest,
)
from ci_modelver.core.refs import DIGEST_RE
from ci_modelver.errors import InputError, IntegrityError, JSONRefused, LayoutUnreadable

LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'
MAX_INDEX_BYTES = 64 * 1024 * 1024  # index.json: every tag, alias record and referrer index
_BLOB_NAME = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Collected:
    """What ``collect_garbage`` removed, and the unreferenced blobs it left for being too new."""

    blobs: int = 0
    bytes: int = 0
    young: int = 0
    young_bytes: int = 0


def _read_at_most(path: Path, limit: int) -> bytes:
    """The file's first ``limit`` + 1 bytes: enough to tell that it is over ``limit``."""
    with path.open("rb") as handle:
        return handle.read(limit + 1)


class LayoutStore:
    """A Store over an OCI image layout directory."""

    def __init__(self, root: Path, *, create: bool) -> None:
        self.root = root
        self.display = f"oci:{root}"
        try:
            self._open(create)
        except OSError as exc:
            raise InputError(
                f"{self.display}: cannot use this folder: {exc.strerror or exc}"
            ) from None

    def _open(self, create: bool) -> None:
        root = self.root
        if create:
            self._init()
        elif not (root / "index.json").is_file():
            what = (
                "does not exist"
                if not root.exists()
                else "is not an OCI image layout (no index.json)"
            )
            raise InputError(f"{self.display}: {what}; check the path or publish a version first")

    def _init(self) -> None:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        marker = self.root / "oci-layout"
        if not marker.exists():
            self._atomic_write(marker, LAYOUT_VERSION)
        if not (self.root / "index.json").exists():
            self._atomic_write(self.root / "index.json", self._index_bytes([]))

    def _blob_path(self, digest: str) -> Path:
        # Digests come from index.json and manifests, i.e. from the store: never trust them
        # as path components ('sha256:../../x').
        if not DIGEST_RE.match(digest):
            raise InputError(
                f"{self.display}: invalid digest '{digest[:80]}' in the layout; it is corrupted"
            )
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    @staticmethod
    def _index_bytes(entries: list[dict[str, Any]]) -> bytes:
        return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), file_mode())  # 0644 like every blob, not mkstemp's 0600
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _entries(self) -> list[dict[str, Any]]:
        path = self.root / "index.json"
        try:
            data = _read_at_most(path, MAX_INDEX_BYTES)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputError(
                f"{self.display}/index.json: unreadable ({exc.strerror or type(exc).__name__}); repair or remove it"
            ) from None
        doc = json_bounds.load(
            data,
            source=f"{self.display}/index.json: the layout's index",
            error=InputError,
            advice="repair or remove it",
            max_bytes=MAX_INDEX_BYTES,
        )
        manifests = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(manifests, list):
            raise InputError(f"{self.display}/index.json: has no 'manifests' list")
        return [
            m
            for m in manifests
            if isinstance(m, dict) and isinstance(m.get("annotations") or {}, dict)
        ]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two publishers into one layout must not lose each other's index.json entries.
        with (self.root / ".modelver.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def resolve(self, tag: str) -> Descriptor | None:
        for entry in self._entries():
            annotations = entry.get("annotations") or {}
            if isinstance(annotations, dict) and annotations.get(ANN_REF_NAME) == tag:
                digest, size = entry.get("digest"), entry.get("size")
                if (
                    not isinstance(digest, str)
                    or not DIGEST_RE.match(digest)
                    or not isinstance(size, int)
                ):
                    raise InputError(
                        f"{self.display}/index.json: the entry for '{tag}' is malformed; the layout is corrupted"
                    )
                return Descriptor(str(entry.get("mediaType")), digest, size)
        return None

    def transfer_stats(self) -> dict[str, int]:
        return {"requests": 0, "retries": 0}

    def transfer_notes(self) -> list[UploadNote]:
        return []

    def find_manifest(self, reference: str) -> tuple[bytes, str] | None:
        """Manifest bytes and digest by tag or digest, or None when absent."""
        if reference.startswith("sha256:"):
            digest = reference
        else:
            found = self.resolve(reference)
            if found is None:
                return None
            digest = found.digest
        try:
            data = _read_at_most(self._blob_path(digest), MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            return None
        if len(data) > MAX_MANIFEST_BYTES:
            raise InputError(
                f"{self.display}@{digest}: the manifest is over the 4 MiB limit; the layout is corrupted"
            )
        if sha256_digest(data) != digest:
            raise IntegrityError(
                f"{self.display}@{digest}: manifest blob is corrupted (digest mismatch)"
            )
        # Local bytes: a manifest that is not JSON within bounds is a broken layout (exit 2).
        json_bounds.load(
            data,
            source=f"{self.display}@{digest}: the manifest",
            error=InputError,
            advice="the layout is corrupted; repair it or publish the version again",
            max_bytes=MAX_MANIFEST_BYTES,
        )
        return data, digest

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        found = self.find_manifest(reference)
        if found is None:
            sep = "@" if reference.startswith("sha256:") else ":"
            raise InputError(
                f"{self.display}{sep}{reference}: not found; check 'ci-modelver versions {self.display}'"
            )
        return found

    def referrers_api(self, digest: str) -> list[Descriptor] | None:
        """An image layout has no referrers API: referrers live in the tag fallback."""
        return None

    def blob_exists(self, descriptor: Descriptor) -> bool:
        try:
            return self._blob_path(descriptor.digest).stat().st_size == descriptor.size
        except FileNotFoundError:
            return False

    def push_blob(self, source: BlobSource, progress: Progress) -> bool:
        dest = self._blob_path(source.descriptor.digest)
        if self.blob_exists(source.descriptor) and self._reuse(dest):
            progress.finish(source.name, skipped=True)
            return False
        progress.start(source.name, source.descriptor.size)
        write_verified(
            iter_source(source), dest, source.descriptor, progress, source.name, self.display
        )
        progress.finish(source.name, skipped=False)
        return True

    @property
    def streams(self) -> bool:
        return True

    def push_stream(self, path: Path, name: str, size: int, progress: Progress) -> str:
        progress.start(name, size)
        digest = write_hashed(iter_file(path), self.root / "blobs" / "sha256", progress, name, size)
        progress.finish(name, skipped=False)
        return digest

    def read_blob(self, descriptor: Descriptor, limit: int) -> bytes:
        if descriptor.size > limit:
            raise InputError(
                f"{self.display}@{descriptor.digest}: {descriptor.size} bytes is over the {limit} byte limit"
            )
        try:
            data = self._blob_path(descriptor.digest).read_bytes()
        except FileNotFoundError:
            raise InputError(f"{self.display}: blob {descriptor.digest} is missing") from None
        if len(data) != descriptor.size or sha256_digest(data) != descriptor.digest:
            raise IntegrityError(
                f"{self.display}: blob {descriptor.digest} is corrupted (digest mismatch)"
            )
        return data

    def fetch_blob(self, descriptor: Descriptor, dest: Path, progress: Progress, name: str) -> None:
        source = self._blob_path(descriptor.digest)
        if not source.is_file():
            raise InputError(f"{self.display}: blob {descriptor.digest} ({name}) is missing")
        progress.start(name, descriptor.size)
        write_verified(iter_file(source), dest, descriptor, progress, name, self.display)
        progress.finish(name, skipped=False)

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        try:
            return self._blob_path(descriptor.digest).open("rb")
        except FileNotFoundError:
            raise InputError(f"{self.display}: blob {descriptor.digest} is missing") from None

    def mount_blob(self, descriptor: Descriptor, source_path: str) -> bool:
        return False  # a layout has no other repositories to mount from

    def put_manifest(self, tag: str | None, data: bytes, media_type: str) -> str:
        # A layout takes no manifest a registry would refuse: what it holds can be copied anywhere.
        require_manifest_size(data, f"{self.display}{':' + tag if tag else ''}")
        digest = sha256_digest(data)
        blob = self._blob_path(digest)
        if not self._reuse(blob):
            self._atomic_write(blob, data)
        if tag is None:
            return digest
        with self._locked():
            entries = [
                e for e in self._entries() if (e.get("annotations") or {}).get(ANN_REF_NAME) != tag
            ]
            entries.append(
                {
                    "mediaType": media_type,
                    "digest": digest,
                    "size": len(data),
                    "annotations": {ANN_REF_NAME: tag},
                }
            )
            self._atomic_write(self.root / "index.json", self._index_bytes(entries))
        return digest

    def _reuse(self, blob: Path) -> bool:
        """Whether ``blob`` is there; if so its time is refreshed, under the layout's lock, so
        a ``collect_garbage`` running meanwhile spares it (it only removes blobs older than its
        cutoff, and holds the same lock from its index read to its last removal)."""
        try:
            with self._locked():
                os.utime(blob)
            return True
        except FileNotFoundError:
            return False
        except OSError:  # a read-only layout: nothing collects garbage there either
            return blob.is_file()

    def delete_manifest(self, digest: str) -> None:
        """Remove every index.json entry (tag) naming ``digest``: one atomic write under the lock.

        The blobs stay until ``collect_garbage`` (like a registry's garbage collection), so a
        delete interrupted at any point leaves a readable layout.
        """
        self._blob_path(digest)  # a well-formed digest, or InputError
        with self._locked():
            entries = self._entries()
            remaining = [e for e in entries if e.get("digest") != digest]
            if len(remaining) != len(entries):
                self._atomic_write(self.root / "index.json", self._index_bytes(remaining))

    def _references(self, digest: str) -> tuple[list[str], list[str]]:
        """``(blobs, manifests)`` a manifest or index names; ([], []) when it is absent."""
        where = f"{self.display}@{digest}"
        try:
            data = _read_at_most(self._blob_path(digest), MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            raise LayoutUnreadable(
                f"{where}: unreadable ({exc.strerror or type(exc).__name__}); no blob was "
                "removed, since what it references is unknown"
            ) from None
        try:
            doc = json_bounds.parse(data, max_bytes=MAX_MANIFEST_BYTES)
        except JSONRefused as exc:
            raise LayoutUnreadable(
                f"{where}: the manifest {exc.problem}; no blob was removed, since what it "
                "references is unknown; repair or remove the entry naming it in index.json"
            ) from None
        if not isinstance(doc, dict):
            return [], []
        blobs: list[str] = []
        for key in ("config", "layers", "blobs"):
            raw = doc.get(key)
            for item in raw if isinstance(raw, list) else [raw]:
                if isinstance(item, dict) and isinstance(item.get("digest"), str):
                    blobs.append(item["digest"])
        raw_children = doc.get("manifests")
        children = [
            item["digest"]
            for item in (raw_children if isinstance(raw_children, list) else [])
            if isinstance(item, dict) and isinstance(item.get("digest"), str)
        ]
        return blobs, children

    def _reachable(self) -> set[str]:
        """Every digest index.json reaches: its manifests, their blobs, an index's manifests
        (referrer indexes included), transitively. A manifest's ``subject`` keeps nothing."""
        seen: set[str] = set()
        stack = [e["digest"] for e in self._entries() if isinstance(e.get("digest"), str)]
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            if not DIGEST_RE.match(digest):
                continue  # another algorithm: not in blobs/sha256, never collected
            blobs, children = self._references(digest)
            seen.update(blobs)
            stack.extend(children)
        return seen

    def collect_garbage(self, cutoff: float) -> Collected:
        """Remove the blobs nothing in index.json reaches and last written before ``cutoff``.

        The rule that keeps a concurrent publish safe: a publisher writes (or, for a blob it
        reuses, touches under the lock) every blob before it writes the manifest and then
        index.json, so a blob it needs is either reachable or newer than the cutoff (the
        prune's start minus its grace). The lock is held from the index read to the last
        removal. Interrupted, it leaves only unreachable blobs behind for the next run.
        """
        folder = self.root / "blobs" / "sha256"
        removed = freed = young = young_bytes = 0
        with self._locked():
            reachable = self._reachable()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                return Collected()
            for entry in entries:
                if not _BLOB_NAME.fullmatch(entry.name) or f"sha256:{entry.name}" in reachable:
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if info.st_mtime >= cutoff:
                        young += 1
                        young_bytes += info.st_size
                        continue
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise InputError(
                        f"{self.display}: cannot remove blob sha256:{entry.name} "
                        f"({exc.strerror or type(exc).__name__}); {removed} blob(s) were "
                        "removed before; fix the permissions and rerun"
                    ) from None
                removed += 1
                freed += info.st_size
        return Collected(removed, freed, young, young_bytes)

    def tags(self) -> list[str]:
        out = []
        for entry in self._entries():
            name = (entry.get("annotations") or {}).get(ANN_REF_NAME)
            if isinstance(name, str):
                out.append(name)
        return out

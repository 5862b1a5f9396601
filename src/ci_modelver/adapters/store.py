"""The Store protocol: the few operations publish/pull/show need, for registries and layouts."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ci_modelver.core.modelpack import Descriptor
from ci_modelver.errors import IntegrityError

CHUNK = 1024 * 1024  # ≥ 1 MiB reads: hashing and copying large weights stay cheap per call


class Progress(Protocol):
    """Receives transfer events; the CLI renders them (bar on a TTY, a line per file in CI)."""

    def start(self, name: str, total: int) -> None: ...
    def advance(self, name: str, amount: int) -> None: ...
    def finish(self, name: str, *, skipped: bool) -> None: ...


class NoProgress:
    """A Progress that ignores everything (library use, tests)."""

    def start(self, name: str, total: int) -> None:
        pass

    def advance(self, name: str, amount: int) -> None:
        pass

    def finish(self, name: str, *, skipped: bool) -> None:
        pass


@dataclass(frozen=True)
class BlobSource:
    """Content to upload: a file on disk (streamed) or small in-memory bytes (config)."""

    descriptor: Descriptor
    name: str
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")


class Store(Protocol):
    """Where model versions live: an OCI registry repository or an OCI image layout."""

    display: str

    def resolve(self, tag: str) -> Descriptor | None:
        """The manifest descriptor a tag points to, or None when the tag does not exist."""
        ...

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """Manifest bytes and digest by tag or digest (digest verified)."""
        ...

    def find_manifest(self, reference: str) -> tuple[bytes, str] | None:
        """Like get_manifest, but None when it does not exist."""
        ...

    def referrers_api(self, digest: str) -> list[Descriptor] | None:
        """Referrers from the registry's referrers API; None when there is no such API."""
        ...

    def blob_exists(self, descriptor: Descriptor) -> bool: ...

    def push_blob(self, source: BlobSource, progress: Progress) -> bool:
        """Upload unless present; True when bytes were sent."""
        ...

    def read_blob(self, descriptor: Descriptor, limit: int) -> bytes:
        """A small blob (config), size and digest verified."""
        ...

    def fetch_blob(self, descriptor: Descriptor, dest: Path, progress: Progress, name: str) -> None:
        """Stream a blob into ``dest`` (temp file, verify size and digest, rename)."""
        ...

    def put_manifest(self, tag: str | None, data: bytes, media_type: str) -> str:
        """Store manifest bytes exactly as given, under ``tag`` or by digest; return the digest."""
        ...

    def tags(self) -> list[str]: ...

    def transfer_stats(self) -> dict[str, int]:
        """Requests and retries so far (zero for local stores)."""
        ...


def hash_file(path: Path) -> tuple[str, int]:
    """``(sha256:<hex>, size)`` of a file, read once in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return "sha256:" + digest.hexdigest(), size


def write_verified(
    chunks: Iterable[bytes],
    dest: Path,
    descriptor: Descriptor,
    progress: Progress,
    name: str,
    source: str,
) -> None:
    """Write ``chunks`` to a temp file beside ``dest``; rename only if size and digest match."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for chunk in _bounded(chunks, descriptor, source):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                progress.advance(name, len(chunk))
        got = "sha256:" + digest.hexdigest()
        if size != descriptor.size:
            raise IntegrityError(
                f"{source}: blob {descriptor.digest} has {size} bytes, expected {descriptor.size}; "
                "nothing was written"
            )
        if got != descriptor.digest:
            raise IntegrityError(
                f"{source}: blob content hashes to {got}, expected {descriptor.digest}; "
                "the store is corrupted or tampered with; nothing was written"
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _bounded(chunks: Iterable[bytes], descriptor: Descriptor, source: str) -> Iterator[bytes]:
    """Stop as soon as more bytes arrive than declared: a hostile store cannot fill the disk."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > descriptor.size:
            raise IntegrityError(
                f"{source}: blob {descriptor.digest} sends more than its declared "
                f"{descriptor.size} bytes; nothing was written"
            )
        yield chunk


def iter_file(path: Path) -> Iterator[bytes]:
    """A file's content in 1 MiB chunks."""
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def index_descriptors(body: object) -> list[Descriptor]:
    """The well-formed descriptors of an image index document (others are skipped)."""
    manifests = body.get("manifests") if isinstance(body, dict) else None
    out: list[Descriptor] = []
    for raw in manifests if isinstance(manifests, list) else []:
        if not isinstance(raw, dict):
            continue
        digest, size, media = raw.get("digest"), raw.get("size"), raw.get("mediaType")
        raw_annotations = raw.get("annotations")
        annotations: dict[str, object] = (
            raw_annotations if isinstance(raw_annotations, dict) else {}
        )
        if isinstance(digest, str) and isinstance(size, int) and isinstance(media, str):
            artifact = raw.get("artifactType")
            out.append(
                Descriptor(
                    media,
                    digest,
                    size,
                    {str(k): str(v) for k, v in annotations.items()},
                    artifact if isinstance(artifact, str) else None,
                )
            )
    return out

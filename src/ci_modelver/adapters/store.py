"""The Store protocol: the few operations publish/pull/show need, for registries and layouts."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import queue
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ci_modelver.adapters import cancel
from ci_modelver.core.modelpack import Descriptor
from ci_modelver.errors import InputError, IntegrityError

CHUNK = 1024 * 1024  # ≥ 1 MiB reads: hashing and copying large weights stay cheap per call

# Our temporary files and folders: this prefix and 16 hex digits, nothing else. While one is in
# use its creator holds an exclusive flock on it (the kernel drops the lock when the process
# ends, however it ends), so any entry of ours that can be locked is stale and may go.
TEMP_PREFIX = ".partial-modelver-"
_TEMP_NAME = re.compile(r"\.partial-modelver-[0-9a-f]{16}")
FILE_MODE = 0o644  # files we write: rw-r--r-- (masked by the umask); executables get 0o755
EXECUTABLE_MODE = 0o755


@dataclass(frozen=True)
class UploadNote:
    """An upload that resumed an interrupted earlier one, or had to start again."""

    name: str
    kind: str  # "resumed" or "restarted"
    offset: int  # bytes already in the registry when resumed (0 when restarted)
    size: int
    reason: str = ""


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
    # Content that is not the file's bytes as they are on disk (a folder's tar stream).
    opener: Callable[[], BinaryIO] | None = None

    def open(self) -> BinaryIO:
        cancel.check()
        if self.opener is not None:
            return self.opener()
        if self.path is not None:
            return CancellableReader(io.FileIO(self.path, "rb"), CHUNK)
        return io.BytesIO(self.data or b"")


class CancellableReader(io.BufferedReader):
    """A stream read for an upload or a copy: every read first checks for cancellation
    (SIGINT/SIGTERM), so a stopped transfer stops sending within one read."""

    def read(self, size: int | None = -1, /) -> bytes:
        cancel.check()
        return super().read(size)

    def read1(self, size: int = -1, /) -> bytes:
        cancel.check()
        return super().read1(size)

    def readinto(self, buffer: Any, /) -> int:
        cancel.check()
        return super().readinto(buffer)


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

    @property
    def streams(self) -> bool:
        """Whether ``push_stream`` hashes while it sends (else it is better to hash first)."""
        ...

    def push_stream(self, path: Path, name: str, size: int, progress: Progress) -> str:
        """Upload a file whose digest is not known yet (hashed as it is sent); its digest."""
        ...

    def read_blob(self, descriptor: Descriptor, limit: int) -> bytes:
        """A small blob (config), size and digest verified."""
        ...

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        """A blob's bytes as a stream (close it when done), for copying into another store.

        Not verified here: whoever writes them verifies (a registry's PUT ?digest=, a layout's
        write_verified), so a copy never needs a second pass.
        """
        ...

    def mount_blob(self, descriptor: Descriptor, source_path: str) -> bool:
        """Make a blob of repository ``source_path`` (same registry) present here without
        moving its bytes; False when the store cannot (then stream it)."""
        ...

    def fetch_blob(self, descriptor: Descriptor, dest: Path, progress: Progress, name: str) -> None:
        """Stream a blob into ``dest`` (temp file, verify size and digest, rename)."""
        ...

    def put_manifest(self, tag: str | None, data: bytes, media_type: str) -> str:
        """Store manifest bytes exactly as given, under ``tag`` or by digest; return the digest."""
        ...

    def tags(self) -> list[str]: ...

    def delete_manifest(self, digest: str) -> None:
        """Delete a manifest by digest, and with it every tag naming it; a manifest that is
        already gone is no error. Blob space comes back only in the store's own garbage
        collection (a registry's ``garbage-collect``, a layout's ``collect_garbage``)."""
        ...

    def transfer_stats(self) -> dict[str, int]:
        """Requests and retries so far (zero for local stores)."""
        ...

    def transfer_notes(self) -> list[UploadNote]:
        """Uploads resumed from an interrupted earlier run, or restarted (none for layouts)."""
        ...


def hash_file(path: Path) -> tuple[str, int]:
    """``(sha256:<hex>, size)`` of a file, read once in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            cancel.check()
            digest.update(block)
            size += len(block)
    return "sha256:" + digest.hexdigest(), size


def umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text("ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split(":", 1)[1].strip(), 8)
    with _UMASK_LOCK:  # elsewhere: set and restore (a moment when other threads see umask 077)
        current = os.umask(0o077)
        os.umask(current)
        return current


_UMASK_LOCK = threading.Lock()


def file_mode(executable: bool = False) -> int:
    """The mode of a file we write: 0o644 or 0o755, masked by the umask like any new file."""
    return (EXECUTABLE_MODE if executable else FILE_MODE) & ~umask()


@contextlib.contextmanager
def _writing(dest: Path) -> Iterator[None]:
    """Local file-system failures while writing ``dest`` name ``dest``, never a temp file."""
    try:
        yield
    except IsADirectoryError:
        raise InputError(
            f"{dest}: is a folder, so the file cannot be written there; move the folder away "
            "or choose another output folder; nothing was written"
        ) from None
    except OSError as exc:
        raise InputError(
            f"{dest}: cannot write ({exc.strerror or type(exc).__name__}); nothing was written"
        ) from None


def _lock(fd: int) -> bool | None:
    """True: locked; False: someone holds it; None: this file system has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    return True


def _same(path: Path, fd: int) -> bool:
    try:
        on_disk, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _create_owned(folder: Path, *, directory: bool) -> tuple[int, Path]:
    """A new temp file or folder of ours in ``folder``, locked and registered for cancellation.

    A sweeper in another process may lock and remove an entry between its creation and our
    lock; then the path no longer is what we hold, and we start again with another name.
    """
    while True:
        path = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        if directory:
            path.mkdir(mode=0o700)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        # Without flock (some network file systems) the entry is simply never judged stale.
        if _lock(fd) is not False and _same(path, fd):
            cancel.CURRENT.track(path, folder=directory)
            return fd, path
        os.close(fd)


@contextlib.contextmanager
def owned_temp_dir(folder: Path) -> Iterator[Path]:
    """A temporary folder of ours inside ``folder`` (locked, swept if we die), removed after."""
    fd, path = _create_owned(folder, directory=True)
    try:
        yield path
    finally:
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            cancel.CURRENT.untrack(path)
            os.close(fd)


def sweep_stale(folder: Path) -> int:
    """Remove temp files and folders of ours in ``folder`` that no live process holds.

    Only entries named ``TEMP_PREFIX`` + 16 hex digits are considered, never through a
    symlink, and only when their lock can be taken (so their writer has ended). Returns how
    many were removed; a folder that cannot be read is left alone.
    """
    removed = 0
    try:
        entries = [e for e in os.scandir(folder) if _TEMP_NAME.fullmatch(e.name)]
    except OSError:
        return 0
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if is_dir else 0)
            fd = os.open(path, flags | os.O_NONBLOCK)
        except OSError:  # a symlink, a FIFO that vanished, no permission: not ours to judge
            continue
        try:
            if _lock(fd) is not True or not _same(path, fd):
                continue  # in use, or no flock here to prove that it is not
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                shutil.rmtree(path, ignore_errors=True)
            elif stat.S_ISREG(mode):
                path.unlink()
            else:
                continue
            removed += 1
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


_SWEPT: set[str] = set()
_SWEPT_LOCK = threading.Lock()


def _sweep_once(folder: Path) -> None:
    """Sweep ``folder`` the first time this process writes into it."""
    key = os.path.realpath(folder)
    with _SWEPT_LOCK:
        if key in _SWEPT:
            return
        _SWEPT.add(key)
    sweep_stale(folder)


def write_verified(
    chunks: Iterable[bytes],
    dest: Path,
    descriptor: Descriptor,
    progress: Progress,
    name: str,
    source: str,
    *,
    mode: int | None = None,
) -> None:
    """Write ``chunks`` to a temp file beside ``dest``; rename only if size and digest match.

    The temp file is ours (see ``TEMP_PREFIX``): locked while we write, removed on any failure
    or cancellation (checked before every chunk). ``dest`` gets ``mode`` (default: 0o644 masked
    by the umask), whatever the temp file had.
    """
    with _temp_file(dest.parent, dest) as (fd, tmp):
        digest = hashlib.sha256()
        with os.fdopen(os.dup(fd), "wb", buffering=0) as out:
            size = _write_and_hash(
                _bounded(chunks, descriptor, source),
                lambda chunk: _write_all(out, chunk, dest),
                digest,
                progress,
                name,
                pipelined=descriptor.size >= PIPELINE_MIN,
            )
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
        cancel.check()
        with _writing(dest):
            os.fchmod(fd, file_mode() if mode is None else mode)
            os.replace(tmp, dest)


def write_hashed(
    chunks: Iterable[bytes], folder: Path, progress: Progress, name: str, size: int
) -> str:
    """Write ``chunks`` into ``folder`` under their own sha256 hex name; return the digest.

    For content whose digest is not known in advance (a layout blob hashed while it is
    copied): a temp file of ours until the digest is known, then renamed. ``size`` bytes must
    arrive, or nothing is written.
    """
    with _temp_file(folder, folder) as (fd, tmp):
        digest = hashlib.sha256()
        with os.fdopen(os.dup(fd), "wb", buffering=0) as out:
            written = _write_and_hash(
                chunks,
                lambda chunk: _write_all(out, chunk, folder),
                digest,
                progress,
                name,
                pipelined=size >= PIPELINE_MIN,
            )
        if written != size:
            raise InputError(
                f"{name}: {written} bytes were read, expected {size}: the file changed while it "
                "was copied; rerun"
            )
        hexdigest = digest.hexdigest()
        with _writing(folder):
            os.fchmod(fd, file_mode())
            os.replace(tmp, folder / hexdigest)
        return "sha256:" + hexdigest


@contextlib.contextmanager
def _temp_file(folder: Path, shown: Path) -> Iterator[tuple[int, Path]]:
    """A temp file of ours in ``folder`` (locked, tracked for cancellation) as (fd, path);
    whatever is still at that path afterwards (a failure, a signal) is removed. Failures to
    create it name ``shown``."""
    cancel.check()
    with _writing(shown):
        folder.mkdir(parents=True, exist_ok=True)
        _sweep_once(folder)
        fd, tmp = _create_owned(folder, directory=False)
    try:
        yield fd, tmp
    finally:
        try:
            if _same(tmp, fd):
                tmp.unlink()
        finally:
            cancel.CURRENT.untrack(tmp)
            os.close(fd)


class ChunkReader(io.RawIOBase):
    """A binary stream over an iterator of byte chunks (an HTTP body), closing ``on_close``."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._on_close()
            finally:
                super().close()


def iter_source(source: BlobSource) -> Iterator[bytes]:
    """A BlobSource's content in 1 MiB chunks, whatever it reads from."""
    if source.path is None and source.opener is None:
        yield source.data or b""
        return
    with source.open() as handle:
        while block := handle.read(CHUNK):
            yield block


# From this size on, a download is received, hashed and written by three threads at once
# (socket reads, hashlib and file writes all release the GIL): on 2 cores, 1 GiB over loopback
# took 1.10 s with the three in one thread and 0.77-0.95 s pipelined.
PIPELINE_MIN = 8 * 1024 * 1024
# Per stage: at most 4 MiB of a blob queued. With 8 (and 4 blobs at once) an 8-shard pull
# peaked at 94 MiB RSS; the stages keep up with each other, so depth buys no speed.
_QUEUE_CHUNKS = 4
# At most this many downloads pipelined at once in the process; the others run in one thread.
# Two pipelines already keep 2 cores busy; each more would only add its queues to the RSS
# (measured: 102 MiB at --concurrency 8 with every download pipelined).
_PIPELINES = threading.BoundedSemaphore(2)


def _write_all(out: BinaryIO, chunk: bytes, dest: Path) -> None:
    view = memoryview(chunk)
    with _writing(dest):
        while view:
            written = out.write(view)
            view = view[written or 0 :]


def _write_and_hash(
    chunks: Iterable[bytes],
    write: Callable[[bytes], None],
    digest: Any,
    progress: Progress,
    name: str,
    *,
    pipelined: bool,
) -> int:
    """Write and hash every chunk; with ``pipelined``, hashing and writing run in their own
    threads while this one receives. Returns the number of bytes."""
    if pipelined and _PIPELINES.acquire(blocking=False):
        try:
            return _pipelined(chunks, write, digest, progress, name)
        finally:
            _PIPELINES.release()
    size = 0
    for chunk in chunks:
        cancel.check()
        write(chunk)
        digest.update(chunk)
        size += len(chunk)
        progress.advance(name, len(chunk))
    return size


def _pipelined(
    chunks: Iterable[bytes],
    write: Callable[[bytes], None],
    digest: Any,
    progress: Progress,
    name: str,
) -> int:
    size = 0
    failures: list[BaseException] = []
    stages = [
        (queue.Queue[bytes | None](maxsize=_QUEUE_CHUNKS), digest.update),
        (queue.Queue[bytes | None](maxsize=_QUEUE_CHUNKS), write),
    ]

    def consume(inbox: queue.Queue[bytes | None], work: Callable[[bytes], Any]) -> None:
        while (chunk := inbox.get()) is not None:
            if not failures:  # after a failure, only drain so the receiver never blocks
                try:
                    work(chunk)
                except BaseException as exc:  # handed to the receiving thread
                    failures.append(exc)

    workers = [threading.Thread(target=consume, args=stage, daemon=True) for stage in stages]
    for worker in workers:
        worker.start()
    try:
        for chunk in chunks:
            cancel.check()
            if failures:
                break
            for inbox, _work in stages:
                inbox.put(chunk)
            size += len(chunk)
            progress.advance(name, len(chunk))
    finally:
        for inbox, _work in stages:
            inbox.put(None)
        for worker in workers:
            worker.join()
    if failures:
        raise failures[0]
    return size


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
    """A file's content in 1 MiB chunks (cancellation is checked before each)."""
    with path.open("rb") as handle:
        while True:
            cancel.check()
            block = handle.read(CHUNK)
            if not block:
                return
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

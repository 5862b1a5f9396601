"""Chunked blob uploads that hash while they send and resume after an interruption.

One upload session (``POST``), the content in ``PATCH`` chunks, each accepted chunk written to
the journal, then ``PUT ?digest=``. A digest not known in advance is computed from the bytes as
they go out, so a file is read once. After an interruption the next run asks the registry
where the session stands (``GET``, ``Range: 0-<end>``) and, if that is where the journal says,
re-reads the sent part locally (to rebuild the hash) and sends only the rest.

What interrupts a chunk decides whether it can resume. SIGINT/SIGTERM let the chunk in flight
finish (within the grace period of adapters/cancel.py), so the journal matches the registry.
A connection cut inside a chunk leaves the registry holding part of it; CNCF distribution
(registry/handlers/blobupload.go) then finds the session's size differing from the offset
in our session URL and cancels the session on the next request: we start again and say so.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin

from ci_modelver.adapters import cancel
from ci_modelver.adapters.http import RegistryHTTP, describe_error, same_origin
from ci_modelver.adapters.store import Progress, UploadNote
from ci_modelver.adapters.upload_journal import Entry, UploadJournal, identity
from ci_modelver.errors import InputError, RemoteError, UploadSessionLost

_RANGE = re.compile(r"^(?:bytes=)?0-(\d+)$")
READ = 1024 * 1024


class BodySlice:
    """``length`` bytes of a stream as a request body (exact Content-Length, progress events),
    hashed into ``hasher`` (when given) as they are read.

    No cancellation check inside a chunk: a chunk the registry half-received cannot be resumed
    (see the module docstring), so a signal lets it finish; the check follows each chunk.
    """

    def __init__(
        self,
        handle: BinaryIO,
        length: int,
        hasher: Any,
        progress: Progress,
        name: str,
    ) -> None:
        self._handle = handle
        self._left = length
        self._length = length
        self.hasher = hasher
        self._progress = progress
        self._name = name

    def __len__(self) -> int:
        return self._length

    @property
    def complete(self) -> bool:
        return self._left == 0

    # No close(): requests closes a body it has sent, and the chunks of one upload share a
    # stream; whoever opened the stream closes it.

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        chunk = self._handle.read(want)
        if self.hasher is not None:
            self.hasher.update(chunk)
        self._left -= len(chunk)
        self._progress.advance(self._name, len(chunk))
        return chunk


def _skip(handle: BinaryIO, count: int, hasher: Any) -> None:
    """Move past the first ``count`` bytes, hashing them when a hash is being built."""
    if hasher is None and handle.seekable():
        handle.seek(count)
        return
    left = count
    while left > 0:
        cancel.check()
        block = handle.read(min(READ, left))
        if not block:
            raise InputError("the file became shorter while it was uploaded; rerun the publish")
        if hasher is not None:
            hasher.update(block)
        left -= len(block)


def _with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class ChunkedUploader:
    """Chunked, journaled uploads into one repository."""

    def __init__(
        self,
        http: RegistryHTTP,
        path: str,
        display: str,
        journal: UploadJournal,
        chunk: int,
    ) -> None:
        self.http = http
        self.path = path
        self.display = display
        self.journal = journal
        self.chunk = chunk
        self._scope = f"repository:{path}:pull,push"
        self._lock = threading.Lock()
        self.notes: list[UploadNote] = []

    def _note(self, note: UploadNote) -> None:
        with self._lock:
            self.notes.append(note)

    def _start(self, what: str) -> str:
        url = self.http.url(f"/v2/{self.path}/blobs/uploads/")
        with self.http.request("POST", url, scope=self._scope, ok=(202,), what=what) as reply:
            location = reply.headers.get("Location")
        if not location:
            raise RemoteError(f"{what}: the registry gave no upload Location")
        return urljoin(url, location)

    def _status(self, location: str, what: str) -> tuple[str, int] | str:
        """Where the session stands: (location, bytes held), or why it cannot be resumed."""
        with self.http.request(
            "GET",
            location,
            scope=self._scope,
            ok=(204,),
            allow=(400, 401, 403, 404, 405, 416),
            what=f"{what} (asking where the interrupted upload stands)",
        ) as reply:
            if reply.status_code != 204:
                return f"the registry no longer holds the session ({describe_error(reply)})"
            found = _RANGE.match(reply.headers.get("Range", "").strip())
            fresh = reply.headers.get("Location")
        if found is None:
            return "the registry does not say how much of the session it holds"
        return (urljoin(location, fresh) if fresh else location), int(found.group(1)) + 1

    def upload(
        self,
        name: str,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        digest: str | None,
        local: Path | None,
        progress: Progress,
    ) -> str:
        """Send ``size`` bytes from ``opener`` and commit them; returns the blob's digest.

        ``digest`` None: it is computed from the bytes sent. ``local``: the file the bytes come
        from (the journal's key, and what must be unchanged for a resumption).
        """
        what = f"upload {name} to {self.display}"
        try:
            return self._upload(name, size, opener, digest, local, progress, what)
        except UploadSessionLost as lost:
            # Once: the session broke under us (an interrupted chunk); a new one starts at 0.
            self._note(UploadNote(name, "restarted", 0, size, str(lost)))
            if local is not None:
                self.journal.drop(self.journal.key(self.display, local))
            return self._upload(name, size, opener, digest, local, progress, what, fresh=True)

    def _resume_point(
        self, key: str | None, size: int, file_id: list[int] | None, name: str, what: str
    ) -> tuple[str, int] | None:
        entry = self.journal.load(key) if key else None
        if entry is None or key is None:
            return None
        reason: str
        if entry.file != file_id or entry.size != size:
            reason = "the file changed since the interrupted upload"
        elif not same_origin(entry.location, self.http.url("/")):
            # The file's bytes would go wherever the journal says: only to this registry.
            reason = "the recorded session is not on this registry"
        else:
            status = self._status(entry.location, what)
            if isinstance(status, str):
                reason = status
            elif status[1] != entry.offset:
                reason = (
                    f"the registry holds {status[1]} bytes of the session, "
                    f"not the {entry.offset} recorded"
                )
            else:
                self._note(UploadNote(name, "resumed", entry.offset, size))
                return status
        self.journal.drop(key)
        self._note(UploadNote(name, "restarted", 0, size, reason))
        return None

    def _upload(
        self,
        name: str,
        size: int,
        opener: Callable[[], BinaryIO],
        digest: str | None,
        local: Path | None,
        progress: Progress,
        what: str,
        *,
        fresh: bool = False,
    ) -> str:
        before = os.stat(local) if local is not None else None
        file_id = identity(before) if before is not None else None
        key = self.journal.key(self.display, local) if local is not None else None
        point = None if fresh else self._resume_point(key, size, file_id, name, what)
        location, offset = point if point is not None else (self._start(what), 0)
        committed = hashlib.sha256() if digest is None else None
        handle = opener()
        try:
            if offset:
                _skip(handle, offset, committed)
                progress.advance(name, offset)
            while offset < size:
                length = min(self.chunk, size - offset)
                location, committed, handle = self._patch(
                    location, handle, offset, length, committed, opener, progress, name, what
                )
                offset += length
                if key is not None and file_id is not None and offset < size:
                    self.journal.save(
                        key, Entry(location, offset, size, file_id, self.chunk, time.time())
                    )
                cancel.check()
        finally:
            handle.close()
        if local is not None and before is not None and identity(os.stat(local)) != file_id:
            raise InputError(
                f"{local}: changed while it was uploaded; nothing was tagged; rerun the publish"
            )
        final = digest or "sha256:" + committed.hexdigest()  # type: ignore[union-attr]
        self._commit(location, final, what)
        if key is not None:
            self.journal.drop(key)
        return final

    def _patch(
        self,
        location: str,
        handle: BinaryIO,
        start: int,
        length: int,
        committed: Any,
        opener: Callable[[], BinaryIO],
        progress: Progress,
        name: str,
        what: str,
    ) -> tuple[str, Any, BinaryIO]:
        """One chunk; returns the session's next location, the hash including the chunk, and
        the stream to go on reading (a retried chunk of a stream that cannot seek reopens it)."""
        bodies: list[BodySlice] = []
        state = {"handle": handle}

        def body() -> BodySlice:
            # A retried chunk starts again from its first byte, and from the hash before it.
            current = state["handle"]
            if bodies:
                if current.seekable():
                    current.seek(start)
                else:
                    current.close()
                    current = state["handle"] = opener()
                    _skip(current, start, None)
            chunk = BodySlice(
                current,
                length,
                committed.copy() if committed is not None else None,
                progress,
                name,
            )
            bodies.append(chunk)
            return chunk

        with self.http.request(
            "PATCH",
            location,
            scope=self._scope,
            ok=(202,),
            allow=(400, 404, 416),
            body=body,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{start}-{start + length - 1}",
            },
            what=what,
            size=length,
        ) as reply:
            if reply.status_code != 202:
                raise UploadSessionLost(
                    f"the registry refused a chunk at byte {start} ({describe_error(reply)})"
                )
            fresh = reply.headers.get("Location")
        last = bodies[-1]
        if not last.complete:
            raise InputError(f"{what}: the file became shorter while it was uploaded; rerun")
        return (urljoin(location, fresh) if fresh else location), last.hasher, state["handle"]

    def _commit(self, location: str, digest: str, what: str) -> None:
        with self.http.request(
            "PUT",
            _with_query(location, digest=digest),
            scope=self._scope,
            ok=(201, 204),
            allow=(400,),
            headers={"Content-Length": "0"},
            what=what,
        ) as reply:
            if reply.status_code == 400:
                raise RemoteError(
                    f"{what}: the registry refused to commit {digest} ({describe_error(reply)}); "
                    "rerun the publish"
                )

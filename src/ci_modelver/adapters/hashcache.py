"""Remember file digests by (size, mtime, inode) so re-publishing unchanged weights skips hashing.

A stale entry cannot forge content: the registry verifies every uploaded blob's digest, the
layout store re-hashes while copying, and the cache is keyed on the file's identity and times.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ci_modelver.adapters.store import hash_file
from ci_modelver.core import json_bounds
from ci_modelver.errors import JSONRefused

MAX_ENTRIES = 10_000


def cache_dir(env: Mapping[str, str]) -> Path | None:
    """``$XDG_CACHE_HOME/ci-modelver`` (or ~/.cache/ci-modelver); None when MODELVER_NO_CACHE
    turns caching off or there is no home to cache in."""
    if env.get("MODELVER_NO_CACHE", "").lower() in ("1", "true", "yes"):
        return None
    base = env.get("XDG_CACHE_HOME") or (
        os.path.join(env["HOME"], ".cache") if env.get("HOME") else None
    )
    return Path(base) / "ci-modelver" if base else None


def cache_path(env: Mapping[str, str]) -> Path | None:
    """``<cache_dir>/digests.json``; None when caching is off."""
    folder = cache_dir(env)
    return folder / "digests.json" if folder else None


class DigestCache:
    """A small JSON map from absolute path to (identity, digest); thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, Any] = {}
        self._dirty = False
        self._lock = threading.Lock()
        if path is not None:
            # Only a cache: anything unreadable or unbounded is dropped and rebuilt.
            try:
                loaded = json_bounds.parse(path.read_bytes(), max_bytes=64 * 1024 * 1024)
                if isinstance(loaded, dict):
                    self._entries = loaded
            except (OSError, JSONRefused):
                self._entries = {}

    @staticmethod
    def _identity(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]

    def cached(self, path: Path) -> str | None:
        """The digest remembered for ``path`` if the file is unchanged since, else None."""
        st = path.stat()
        with self._lock:
            entry = self._entries.get(str(path.resolve()))
        if (
            isinstance(entry, dict)
            and entry.get("id") == self._identity(st)
            and isinstance(entry.get("digest"), str)
        ):
            return str(entry["digest"])
        return None

    def store(self, path: Path, digest: str, before: os.stat_result) -> None:
        """Remember a digest computed elsewhere (while uploading), if the file is unchanged
        since ``before`` was taken, the moment its reading started."""
        try:
            identity = self._identity(path.stat())
        except OSError:
            return
        if identity == self._identity(before):
            with self._lock:
                self._entries[str(path.resolve())] = {"id": identity, "digest": digest}
                self._dirty = True

    @staticmethod
    def _tree_key(folder: Path) -> str:
        # A trailing '/' keeps a folder's entry apart from a file once at the same path.
        return str(folder.resolve()) + "/"

    def cached_tree(self, folder: Path, identity: str) -> str | None:
        """The digest remembered for a folder's archive whose listing had ``identity``, else None.

        ``identity`` covers every entry (relative path, size, mtime, ctime, inode, mode, link),
        so any change inside the folder misses the cache.
        """
        with self._lock:
            entry = self._entries.get(self._tree_key(folder))
        if (
            isinstance(entry, dict)
            and entry.get("tree") == identity
            and isinstance(entry.get("digest"), str)
        ):
            return str(entry["digest"])
        return None

    def store_tree(self, folder: Path, identity: str, digest: str) -> None:
        """Remember the digest of a folder's archive computed from a listing with ``identity``."""
        with self._lock:
            self._entries[self._tree_key(folder)] = {"tree": identity, "digest": digest}
            self._dirty = True

    def digest(self, path: Path) -> tuple[str, int]:
        """``(sha256:<hex>, size)``, from the cache when the file is unchanged, else hashed."""
        key = str(path.resolve())
        st = path.stat()
        identity = self._identity(st)
        with self._lock:
            entry = self._entries.get(key)
        if (
            isinstance(entry, dict)
            and entry.get("id") == identity
            and isinstance(entry.get("digest"), str)
        ):
            return entry["digest"], st.st_size
        digest, size = hash_file(path)
        if self._identity(path.stat()) == identity:  # unchanged while hashing
            with self._lock:
                self._entries[key] = {"id": identity, "digest": digest}
                self._dirty = True
        return digest, size

    def save(self) -> None:
        """Write the cache atomically; failures are ignored (it is only a cache)."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            entries = dict(list(self._entries.items())[-MAX_ENTRIES:])
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".digests-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entries, out)
            os.replace(tmp, self.path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:  # a failed write or a signal: never leave the temp file behind
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

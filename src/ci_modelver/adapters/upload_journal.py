"""Where an interrupted blob upload stood: its registry session and how far it got.

One small JSON file per (registry repository, local file) under the cache directory, written
after every chunk the registry accepted and removed when the blob is committed. It holds no
credential (a session URL is a capability only together with our token) but is written 0600
all the same. A journal is only a hint: on rerun the registry is asked where the session
stands (``GET`` on it, OCI distribution spec "Resuming an upload"), and the local file must be
unchanged (size, mtime, inode), or the upload starts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_modelver.adapters.hashcache import cache_dir
from ci_modelver.core import json_bounds
from ci_modelver.errors import JSONRefused

# Sessions older than this are not worth asking about: registries purge stale uploads
# (CNCF distribution: after a week by default), and a stale journal would only cost a request.
MAX_AGE = 7 * 24 * 3600


def journal_dir(env: Mapping[str, str]) -> Path | None:
    """``<cache_dir>/uploads`` (``$XDG_CACHE_HOME/ci-modelver/uploads``); None when caching is
    off."""
    folder = cache_dir(env)
    return folder / "uploads" if folder else None


def identity(st: os.stat_result) -> list[int]:
    """What must not change between an interrupted upload and its resumption."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


@dataclass(frozen=True)
class Entry:
    """An upload session in progress: ``offset`` bytes of the file are in the registry."""

    location: str
    offset: int
    size: int
    file: list[int]  # identity() of the file when the upload started
    chunk: int
    saved: float


class UploadJournal:
    """Entries by key; every failure to read or write is ignored (it is only a hint)."""

    def __init__(self, folder: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self._clock = clock

    @staticmethod
    def key(repository: str, path: Path) -> str:
        return hashlib.sha256(f"{repository}\n{path.resolve()}".encode()).hexdigest()[:40]

    def _file(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.json"

    def load(self, key: str) -> Entry | None:
        path = self._file(key)
        if path is None:
            return None
        try:
            raw = json_bounds.parse(path.read_bytes(), max_bytes=64 * 1024)
        except (OSError, JSONRefused):
            return None
        try:
            entry = Entry(
                location=str(raw["location"]),
                offset=int(raw["offset"]),
                size=int(raw["size"]),
                file=[int(v) for v in raw["file"]],
                chunk=int(raw["chunk"]),
                saved=float(raw["saved"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not 0 < entry.offset <= entry.size or self._clock() - entry.saved > MAX_AGE:
            return None
        return entry

    def save(self, key: str, entry: Entry) -> None:
        path = self._file(key)
        if path is None:
            return
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entry.__dict__, out)
            os.replace(tmp, path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def drop(self, key: str) -> None:
        path = self._file(key)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

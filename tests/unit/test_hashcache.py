"""The digest cache: hits only for unchanged files, never a stale digest after a change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ci_modelver.adapters.hashcache import DigestCache, cache_path


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_hit_after_save_and_miss_after_change(tmp_path: Path) -> None:
    store = tmp_path / "cache" / "digests.json"
    target = tmp_path / "w.bin"
    target.write_bytes(b"a" * 1000)
    first = DigestCache(store)
    assert first.digest(target) == (_sha(b"a" * 1000), 1000)
    first.save()
    assert store.is_file()

    second = DigestCache(store)
    assert second.digest(target) == (_sha(b"a" * 1000), 1000)

    before = target.stat()
    target.write_bytes(b"b" * 1000)  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime; ctime still moves
    third = DigestCache(store)
    assert third.digest(target) == (_sha(b"b" * 1000), 1000)


def test_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    store = tmp_path / "digests.json"
    store.write_text("{not json")
    target = tmp_path / "x"
    target.write_bytes(b"x")
    assert DigestCache(store).digest(target)[0] == _sha(b"x")


def test_cache_location_and_opt_out(tmp_path: Path) -> None:
    assert cache_path({"HOME": "/home/u"}) == Path("/home/u/.cache/ci-modelver/digests.json")
    assert cache_path({"XDG_CACHE_HOME": "/c", "HOME": "/home/u"}) == Path(
        "/c/ci-modelver/digests.json"
    )
    assert cache_path({"HOME": "/home/u", "MODELVER_NO_CACHE": "1"}) is None
    assert cache_path({}) is None

"""The upload journal: a hint that survives only while it is valid, never an error."""

from __future__ import annotations

import os
from pathlib import Path

from ci_modelver.adapters.upload_journal import MAX_AGE, Entry, UploadJournal, identity, journal_dir


def _entry(offset: int = 64, size: int = 256, saved: float = 1000.0) -> Entry:
    return Entry("http://r/v2/x/blobs/uploads/u?_state=s", offset, size, [size, 1, 2, 3], 64, saved)


def test_saved_entries_load_back_and_drop(tmp_path: Path) -> None:
    journal = UploadJournal(tmp_path / "uploads", clock=lambda: 1000.0)
    key = journal.key("r/x", tmp_path / "w.bin")
    journal.save(key, _entry())
    assert journal.load(key) == _entry()
    written = next((tmp_path / "uploads").glob("*.json"))
    assert written.stat().st_mode & 0o777 == 0o600
    journal.drop(key)
    assert journal.load(key) is None
    assert not list((tmp_path / "uploads").iterdir())


def test_keys_differ_by_repository_and_file(tmp_path: Path) -> None:
    key = UploadJournal.key
    assert key("r/x", tmp_path / "a") != key("r/y", tmp_path / "a")
    assert key("r/x", tmp_path / "a") != key("r/x", tmp_path / "b")
    assert key("r/x", tmp_path / "a") == key("r/x", tmp_path / "." / "a")


def test_stale_malformed_or_impossible_entries_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    journal = UploadJournal(folder, clock=lambda: 1000.0 + MAX_AGE + 1)
    journal.save("old", _entry())
    assert journal.load("old") is None
    now = UploadJournal(folder, clock=lambda: 1000.0)
    now.save("zero", _entry(offset=0))
    now.save("past-end", _entry(offset=300, size=256))
    assert now.load("zero") is None and now.load("past-end") is None
    (folder / "broken.json").write_text("{not json")
    (folder / "wrong.json").write_text('{"location": 1}')
    (folder / "list.json").write_text("[1, 2]")
    assert now.load("broken") is None and now.load("wrong") is None and now.load("list") is None


def test_a_journal_without_folder_or_with_an_unwritable_one_is_silent(tmp_path: Path) -> None:
    off = UploadJournal(None)
    off.save("k", _entry())
    assert off.load("k") is None
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    journal = UploadJournal(blocked / "uploads")
    journal.save("k", _entry())  # no exception: it is only a hint
    assert journal.load("k") is None


def test_where_the_journal_lives() -> None:
    assert journal_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/ci-modelver/uploads")
    assert journal_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/ci-modelver/uploads")
    assert journal_dir({"HOME": "/h", "MODELVER_NO_CACHE": "1"}) is None
    assert journal_dir({}) is None


def test_identity_changes_when_the_file_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 10)
    first = identity(path.stat())
    os.utime(path, ns=(1, 2))
    assert identity(path.stat()) != first

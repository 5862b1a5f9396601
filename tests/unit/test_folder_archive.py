"""A folder as one tar layer: deterministic bytes, exact size, a stream read in any pieces,
refused entries, the digest cache, and readers (tarfile, GNU tar, our own extraction)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ci_modelver.adapters import folder_archive
from ci_modelver.adapters.folder_archive import Entry, FolderArchive, Kind, archive, scan
from ci_modelver.adapters.hashcache import DigestCache
from ci_modelver.adapters.tarball import extract
from ci_modelver.errors import InputError

LONG = "merges-" + "x" * 140 + ".txt"


def _tokenizer(base: Path, *, mtime: int = 1_700_000_000, mode: int = 0o644) -> Path:
    """A small tokenizer folder: nested files, an executable, a long and a non-ASCII name,
    an empty folder and a symlink inside."""
    root = base / "tokenizer"
    (root / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "vocab.json").write_bytes(b'{"a": 1, "b": 2}\n')
    (root / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 9)
    (root / "sub" / LONG).write_bytes(b"a b\nc d\n")
    (root / "sub" / "übersetzung.txt").write_bytes("ü\n".encode())
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "latest").symlink_to("sub/weights.bin")
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (mtime, mtime))
            if path.is_file():
                path.chmod(mode)
    (root / "run.sh").chmod(0o700)
    return root


def _bytes(found: FolderArchive) -> bytes:
    with found.open() as stream:
        return stream.read()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_the_stream_is_exactly_size_bytes_and_its_digest(tmp_path: Path) -> None:
    _tokenizer(tmp_path)
    found = archive(tmp_path, "tokenizer")
    data = _bytes(found)
    assert len(data) == found.size
    assert found.size % 512 == 0
    assert data.endswith(bytes(1024))
    assert found.digest() == _sha(data)


def test_entries_are_sorted_normalised_and_named_from_the_manifest_folder(tmp_path: Path) -> None:
    _tokenizer(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(_bytes(archive(tmp_path, "tokenizer")))) as tar:
        members = tar.getmembers()
        contents = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    names = [m.name for m in members]
    assert names == [
        "tokenizer",
        "tokenizer/empty",
        "tokenizer/latest",
        "tokenizer/run.sh",
        "tokenizer/sub",
        f"tokenizer/sub/{LONG}",
        "tokenizer/sub/weights.bin",
        "tokenizer/sub/übersetzung.txt",
        "tokenizer/vocab.json",
    ]
    assert names == sorted(names)
    by_name = {m.name: m for m in members}
    for member in members:
        assert (member.mtime, member.uid, member.gid) == (0, 0, 0)
        assert (member.uname, member.gname) == ("", "")
    assert by_name["tokenizer"].isdir() and by_name["tokenizer"].mode == 0o755
    assert by_name["tokenizer/empty"].isdir()
    assert by_name["tokenizer/run.sh"].mode == 0o755
    assert by_name["tokenizer/vocab.json"].mode == 0o644
    assert by_name["tokenizer/latest"].issym()
    assert by_name["tokenizer/latest"].linkname == "sub/weights.bin"
    assert contents["tokenizer/sub/weights.bin"] == bytes(range(256)) * 9
    assert contents[f"tokenizer/sub/{LONG}"] == b"a b\nc d\n"
    assert contents["tokenizer/sub/übersetzung.txt"] == "ü\n".encode()


def test_gnu_tar_reads_it(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("no tar on this machine")
    _tokenizer(tmp_path / "m")
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_bytes(archive(tmp_path / "m", "tokenizer")))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tar, "-xf", str(layer), "-C", str(out)], check=True)
    for name in ("vocab.json", f"sub/{LONG}", "sub/übersetzung.txt", "sub/weights.bin"):
        assert (out / "tokenizer" / name).read_bytes() == (
            tmp_path / "m" / "tokenizer" / name
        ).read_bytes()
    assert os.readlink(out / "tokenizer" / "latest") == "sub/weights.bin"


def test_same_files_give_the_same_digest_whatever_their_times_owners_and_modes(
    tmp_path: Path,
) -> None:
    _tokenizer(tmp_path / "a", mtime=1_600_000_000, mode=0o644)
    second = _tokenizer(tmp_path / "b", mtime=1_750_000_000, mode=0o600)
    (second / "run.sh").chmod(0o755)  # another executable mode: still "executable"
    second.chmod(0o700)
    (second / "sub").chmod(0o750)
    if os.geteuid() == 0:  # other owners, where the test may set them
        for path in [second, *second.rglob("*")]:
            os.lchown(path, 1234, 5678)
    a, b = archive(tmp_path / "a", "tokenizer"), archive(tmp_path / "b", "tokenizer")
    assert a.identity() != b.identity()  # the cache tells them apart ...
    assert a.size == b.size
    assert _bytes(a) == _bytes(b)  # ... the layer does not
    assert a.digest() == b.digest()


@pytest.mark.parametrize(
    "change",
    ["content", "rename", "executable", "new-file", "new-empty-folder", "link-target"],
)
def test_the_digest_changes_with_content_names_and_kinds(tmp_path: Path, change: str) -> None:
    root = _tokenizer(tmp_path)
    before = archive(tmp_path, "tokenizer").digest()
    if change == "content":
        (root / "vocab.json").write_bytes(b'{"a": 1, "b": 3}\n')  # same size
    elif change == "rename":
        (root / "vocab.json").rename(root / "vocab.jsom")
    elif change == "executable":
        (root / "vocab.json").chmod(0o744)
    elif change == "new-file":
        (root / "sub" / "extra.txt").write_bytes(b"")
    elif change == "new-empty-folder":
        (root / "more").mkdir()
    else:
        (root / "latest").unlink()
        (root / "latest").symlink_to("vocab.json")
    assert archive(tmp_path, "tokenizer").digest() != before


def test_the_folder_name_is_part_of_the_entries(tmp_path: Path) -> None:
    _tokenizer(tmp_path)
    shutil.copytree(tmp_path / "tokenizer", tmp_path / "models" / "tokenizer", symlinks=True)
    nested = archive(tmp_path, "models/tokenizer")
    with tarfile.open(fileobj=io.BytesIO(_bytes(nested))) as tar:
        assert tar.getnames()[:2] == ["models/tokenizer", "models/tokenizer/empty"]
    assert nested.digest() != archive(tmp_path, "tokenizer").digest()


@pytest.mark.parametrize("piece", [1, 7, 100, 511, 512, 513, 4095, 65537, 1 << 20])
def test_reading_in_odd_pieces_gives_the_same_bytes(tmp_path: Path, piece: int) -> None:
    _tokenizer(tmp_path)
    found = archive(tmp_path, "tokenizer")
    whole = _bytes(found)
    parts = []
    with found.open() as stream:
        while block := stream.read(piece):
            assert len(block) <= piece
            parts.append(block)
    assert b"".join(parts) == whole


def test_the_raw_stream_fills_any_buffer_and_seeks(tmp_path: Path) -> None:
    _tokenizer(tmp_path)
    found = archive(tmp_path, "tokenizer")
    whole = _bytes(found)
    for start in (0, 1, 511, 512, 700, 1536, found.size - 1030, found.size - 1):
        with found.open() as stream:
            assert stream.seek(start) == start
            assert stream.read(333) == whole[start : start + 333]
            assert stream.tell() == min(start + 333, found.size)
    with found.open() as stream:
        stream.seek(0, io.SEEK_END)
        assert stream.read(10) == b""


def test_each_open_is_a_fresh_stream(tmp_path: Path) -> None:
    _tokenizer(tmp_path)
    found = archive(tmp_path, "tokenizer")
    first = found.open()
    first.read(1000)
    with found.open() as second:
        assert second.read() == _bytes(found)
    assert first.read() == _bytes(found)[1000:]
    first.close()


def test_a_file_that_changes_size_while_packed_is_an_input_error(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    found = archive(tmp_path, "tokenizer")
    (root / "vocab.json").write_bytes(b"{}")
    with pytest.raises(InputError, match=r"'tokenizer/vocab.json' changed while its folder"):
        found.digest()


def test_a_file_that_becomes_a_symlink_is_not_followed(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    found = archive(tmp_path, "tokenizer")
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * (root / "vocab.json").stat().st_size)
    (root / "vocab.json").unlink()
    (root / "vocab.json").symlink_to(secret)
    with pytest.raises(InputError, match="cannot be read"):
        found.digest()


def _entry(name: str, size: int = 0, linkname: str = "") -> Entry:
    kind: Kind = "symlink" if linkname else "file"
    return Entry(name, kind, Path("/nonexistent"), size, 0o644, linkname)


def _parse(header: bytes) -> tarfile.TarInfo:
    with tarfile.open(fileobj=io.BytesIO(header + bytes(1024))) as tar:
        member = tar.next()
    assert member is not None
    return member


def test_plain_entries_get_one_ustar_header(tmp_path: Path) -> None:
    block = folder_archive.header(_entry("tokenizer/vocab.json", 17))
    assert len(block) == 512
    assert block[257:265] == b"ustar\x0000"
    member = _parse(block)
    assert (member.name, member.size, member.mode) == ("tokenizer/vocab.json", 17, 0o644)


@pytest.mark.parametrize(
    ("entry", "records"),
    [
        (_entry("t/" + "n" * 120), [b"path"]),
        (_entry("t/naïve.txt"), [b"path"]),
        (_entry("t/link", linkname="../" * 40 + "x"), [b"linkpath"]),
        (_entry("t/shard.bin", 9 * 1024**3), [b"size"]),
        (_entry("t/" + "n" * 120, 9 * 1024**3), [b"path", b"size"]),
    ],
    ids=["long-name", "non-ascii", "long-link", "over-8-gib", "both"],
)
def test_pax_records_only_where_ustar_cannot_hold_the_entry(
    entry: Entry, records: list[bytes]
) -> None:
    block = folder_archive.header(entry)
    assert len(block) == 3 * 512  # pax header, its records (one block), the entry's header
    assert block[156:157] == b"x"
    found = [
        line.split(b" ", 1)[1].split(b"=", 1)[0]
        for line in block[512:1024].rstrip(b"\0").splitlines()
    ]
    assert found == records
    for line in block[512:1024].rstrip(b"\0").splitlines(keepends=True):
        assert int(line.split(b" ", 1)[0]) == len(line)  # each record counts its own length
    member = _parse(block)
    assert member.name == entry.name
    assert member.size == (entry.size if entry.kind == "file" else 0)
    assert member.linkname == entry.linkname


def _problems(tmp_path: Path) -> dict[str, str]:
    found, problems = scan(tmp_path, "tokenizer")
    assert found is None
    return {p.entry: p.message for p in problems}


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    (tmp_path / "outside.txt").write_bytes(b"not the model's")
    (root / "sub" / "leak").symlink_to("../../outside.txt")
    (root / "abs").symlink_to(tmp_path / "tokenizer" / "vocab.json")
    (root / "gone").symlink_to("missing.json")
    assert _problems(tmp_path) == {
        "tokenizer/abs": f"is a symlink to the absolute path '{root / 'vocab.json'}'; only "
        "relative symlinks inside the folder are packed",
        "tokenizer/gone": "is a symlink to 'missing.json', which does not exist",
        "tokenizer/sub/leak": "is a symlink to '../../outside.txt', which leads outside the folder",
    }


def test_a_symlink_through_an_inner_link_that_leaves_is_refused(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (root / "hop").symlink_to("../elsewhere")
    assert _problems(tmp_path) == {
        "tokenizer/hop": "is a symlink to '../elsewhere', which leads outside the folder"
    }


def test_a_symlink_with_dotdot_that_stays_inside_is_kept(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    (root / "sub" / "up").symlink_to("../vocab.json")
    found = archive(tmp_path, "tokenizer")
    assert [e.linkname for e in found.entries if e.name == "tokenizer/sub/up"] == ["../vocab.json"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    os.mkfifo(root / "sub" / "pipe")
    assert _problems(tmp_path) == {
        "tokenizer/sub/pipe": "is a FIFO; a folder may hold only files, folders and symlinks inside it"
    }


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tokenizer(tmp_path)
    real_open = os.open

    def denying(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        if Path(path) == root / "vocab.json":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", denying)
    assert _problems(tmp_path) == {"tokenizer/vocab.json": "cannot be read (Permission denied)"}


def test_names_pull_would_refuse_are_refused(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    (root / "back\\slash.txt").write_bytes(b"")
    (root / "new\nline.txt").write_bytes(b"")
    problems = _problems(tmp_path)
    assert problems["tokenizer/back\\slash.txt"] == "has a name that use '/' as separator, not '\\'"
    assert "control character (U+000A, line feed)" in problems["tokenizer/new\nline.txt"]


def test_archive_names_the_first_problem(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path)
    (root / "a-leak").symlink_to("/etc/hostname")
    (root / "b-leak").symlink_to("/etc/hostname")
    with pytest.raises(
        InputError,
        match=r"folder 'tokenizer' cannot be packed: 'tokenizer/a-leak' is a symlink to the absolute path '/etc/hostname'.*\(and 1 more problem\(s\)\)",
    ):
        archive(tmp_path, "tokenizer")


def test_the_digest_cache_spares_rehashing_an_unchanged_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tokenizer(tmp_path / "m")
    cache_file = tmp_path / "cache" / "digests.json"
    hashed: list[str] = []
    real_digest = FolderArchive.digest

    def counting(self: FolderArchive) -> str:
        hashed.append(self.name)
        return real_digest(self)

    monkeypatch.setattr(FolderArchive, "digest", counting)
    cache = DigestCache(cache_file)
    first = folder_archive.folder_digest(archive(tmp_path / "m", "tokenizer"), cache)
    cache.save()
    again = DigestCache(cache_file)
    assert folder_archive.folder_digest(archive(tmp_path / "m", "tokenizer"), again) == first
    assert hashed == ["tokenizer"]
    os.utime(root / "sub" / "weights.bin", (1, 1))  # only a time changes: hashed again
    assert folder_archive.folder_digest(archive(tmp_path / "m", "tokenizer"), again) == first
    assert hashed == ["tokenizer", "tokenizer"]
    (root / "vocab.json").write_bytes(b"{}\n")
    changed = folder_archive.folder_digest(archive(tmp_path / "m", "tokenizer"), again)
    assert changed != first
    assert changed == _sha(_bytes(archive(tmp_path / "m", "tokenizer")))


def test_our_extraction_recreates_the_folder(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path / "m")
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_bytes(archive(tmp_path / "m", "tokenizer")))
    out = tmp_path / "out"
    out.mkdir()
    assert extract(layer, out, "test", None) == 9
    for path in root.rglob("*"):
        copy = out / path.relative_to(tmp_path / "m")
        if path.is_symlink():
            assert os.readlink(copy) == os.readlink(path)
        elif path.is_file():
            assert copy.read_bytes() == path.read_bytes()
        else:
            assert copy.is_dir()
    assert os.access(out / "tokenizer" / "run.sh", os.X_OK)
    # the files get the time of the pull, not the archive's zero
    assert (out / "tokenizer" / "vocab.json").stat().st_mtime > 1_000_000_000


def test_newest_mtime_looks_inside(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path, mtime=1_600_000_000)
    os.utime(root / "sub" / "weights.bin", (1_800_000_000, 1_800_000_000))
    os.utime(root / "sub", (1_600_000_000, 1_600_000_000))
    os.utime(root, (1_600_000_000, 1_600_000_000))
    assert folder_archive.newest_mtime(root) == 1_800_000_000


def test_extraction_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    root = _tokenizer(tmp_path / "m")
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_bytes(archive(tmp_path / "m", "tokenizer")))
    out = tmp_path / "out"
    (out / "tokenizer").mkdir(parents=True)
    (out / "tokenizer" / "vocab.json").symlink_to("run.sh")  # left by an earlier version, say
    (out / "tokenizer" / "sub").symlink_to("empty", target_is_directory=True)
    (out / "tokenizer" / "empty").mkdir()
    extract(layer, out, "test", None)
    assert not (out / "tokenizer" / "vocab.json").is_symlink()
    assert (out / "tokenizer" / "vocab.json").read_bytes() == (root / "vocab.json").read_bytes()
    assert (out / "tokenizer" / "run.sh").read_bytes() == (root / "run.sh").read_bytes()
    assert not (out / "tokenizer" / "sub").is_symlink()
    assert list((out / "tokenizer" / "empty").iterdir()) == []


def test_extraction_over_a_file_where_a_folder_belongs_is_an_input_error(tmp_path: Path) -> None:
    _tokenizer(tmp_path / "m")
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_bytes(archive(tmp_path / "m", "tokenizer")))
    out = tmp_path / "out"
    (out / "tokenizer").mkdir(parents=True)
    (out / "tokenizer" / "sub").write_bytes(b"in the way")
    # tarfile (3.11) passes over the folder entry and fails on the first file below it
    with pytest.raises(
        InputError,
        match=r"test: cannot unpack 'tokenizer/sub(/[^']*)?' into .*move what is in the way",
    ):
        extract(layer, out, "test", None)
    assert (out / "tokenizer" / "sub").read_bytes() == b"in the way"

"""A folder as one deterministic tar layer, built as a stream: never in memory, never on disk.

The archive is PAX (POSIX.1-2001): USTAR's 100-byte names, 100-byte link targets and 8 GiB
file sizes are too small for model folders (sharded weights pass 8 GiB, nested tokenizer paths
pass 100 bytes), and PAX extends exactly those fields with ``path``/``linkpath``/``size``
records that every reader knows (GNU tar, bsdtar, Python's tarfile, Go's archive/tar used by
modctl and KitOps). GNU's own extensions would do too, but they are not a standard.

Every header is written here, not by :mod:`tarfile`, so the bytes do not change with the
Python version: entries sorted by name (code-point order), mtime 0, uid/gid 0, empty user and
group names, mode 0o755 for folders and executables, 0o644 for other files and 0o777 for
symlinks; a PAX header only for an entry whose name or link is not ASCII or longer than 100
bytes, or whose size does not fit USTAR; the archive ends with two zero blocks. The same files
under the same names therefore always give the same bytes and digest.

Symlinks whose target lies inside the folder are stored as symlinks (their text as written);
one that is absolute, leads outside the folder or points to nothing is refused, as are FIFOs,
sockets, devices and anything that cannot be read.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from ci_modelver.adapters import cancel
from ci_modelver.adapters.folders import inside
from ci_modelver.adapters.hashcache import DigestCache
from ci_modelver.adapters.store import CHUNK
from ci_modelver.core.modelpack import canonical_json
from ci_modelver.core.validate import (
    CONTROL_CHARACTER,
    control_character_problem,
    relative_path_problem,
)
from ci_modelver.errors import InputError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Part of every cache identity: a change to the bytes written here must change it.
FORMAT = "modelver-folder-tar/1"
BLOCK = 512
_TRAILER = 2 * BLOCK
_USTAR_NAME = 100
_USTAR_MAX_SIZE = 0o77777777777  # 11 octal digits: 8 GiB - 1
DIR_MODE, EXECUTABLE_MODE, FILE_MODE, LINK_MODE = 0o755, 0o755, 0o644, 0o777
_TYPEFLAGS = {"dir": b"5", "file": b"0", "symlink": b"2"}
# The name of a PAX extended header entry itself; readers use it only if they ignore PAX.
_PAX_NAME = b"././@PaxHeader"

Kind = Literal["dir", "file", "symlink"]


@dataclass(frozen=True)
class Entry:
    """One member of a folder's archive; ``name`` is relative to the manifest's folder."""

    name: str
    kind: Kind
    source: Path
    size: int = 0
    mode: int = FILE_MODE
    linkname: str = ""
    # (size, mtime_ns, ctime_ns, inode, device): only to tell an unchanged folder (cache).
    stamp: tuple[int, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Why one entry of a folder cannot be packed (``entry`` relative to the manifest's folder)."""

    entry: str
    message: str


def _pad(size: int) -> int:
    return -size % BLOCK


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: bytes) -> bytes:
    # "<length> <key>=<value>\n", where <length> counts the whole record, its own digits too.
    body = b" " + key.encode("ascii") + b"=" + value + b"\n"
    length = len(body) + len(str(len(body)))
    if len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode("ascii") + body


def _ustar(name: bytes, mode: int, size: int, typeflag: bytes, linkname: bytes = b"") -> bytes:
    header = bytearray(BLOCK)
    header[0 : len(name)] = name
    header[100:108] = _octal(mode, 8)
    header[108:116] = _octal(0, 8)  # uid
    header[116:124] = _octal(0, 8)  # gid
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(0, 12)  # mtime
    header[148:156] = b" " * 8  # the checksum is computed with its own field as spaces
    header[156:157] = typeflag
    header[157 : 157 + len(linkname)] = linkname
    header[257:265] = b"ustar\x0000"
    # uname and gname (265:329) stay empty; devmajor and devminor are zero.
    header[329:337] = _octal(0, 8)
    header[337:345] = _octal(0, 8)
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _fits(text: bytes) -> bool:
    return len(text) <= _USTAR_NAME and text.isascii()


def _placeholder(text: str, *, folder: bool) -> bytes:
    """The USTAR field for a name a PAX record carries: ASCII, at most 100 bytes."""
    raw = text.encode("ascii", "replace")
    if len(raw) > _USTAR_NAME:
        raw = raw[: _USTAR_NAME - 1] + b"/" if folder else raw[:_USTAR_NAME]
    return raw


def header(entry: Entry) -> bytes:
    """The header blocks of one entry (a PAX extended header first when USTAR cannot hold it)."""
    folder = entry.kind == "dir"
    name = entry.name + ("/" if folder else "")
    raw_name, raw_link = name.encode(), entry.linkname.encode()
    records: dict[str, bytes] = {}
    if not _fits(raw_name):
        records["path"] = raw_name
        raw_name = _placeholder(name, folder=folder)
    if not _fits(raw_link):
        records["linkpath"] = raw_link
        raw_link = _placeholder(entry.linkname, folder=False)
    size = entry.size
    if size > _USTAR_MAX_SIZE:
        records["size"] = str(size).encode("ascii")
        size = 0
    main = _ustar(raw_name, entry.mode, size, _TYPEFLAGS[entry.kind], raw_link)
    if not records:
        return main
    data = b"".join(_pax_record(k, records[k]) for k in sorted(records))
    pax = _ustar(_PAX_NAME, FILE_MODE, len(data), b"x")
    return pax + data + bytes(_pad(len(data))) + main


def _span(entry: Entry) -> int:
    content = entry.size + _pad(entry.size) if entry.kind == "file" else 0
    return len(header(entry)) + content


@dataclass(frozen=True)
class FolderArchive:
    """The tar layer of one listed folder: its entries, their offsets and the exact size."""

    base: Path
    name: str  # the folder, relative to the manifest's folder, without a trailing '/'
    entries: tuple[Entry, ...]
    offsets: tuple[int, ...] = field(init=False)  # where each entry starts; last: the trailer
    size: int = field(init=False)

    def __post_init__(self) -> None:
        offsets, at = [], 0
        for entry in self.entries:
            offsets.append(at)
            at += _span(entry)
        offsets.append(at)
        object.__setattr__(self, "offsets", tuple(offsets))
        object.__setattr__(self, "size", at + _TRAILER)

    @property
    def root(self) -> Path:
        return self.base / self.name

    def identity(self) -> str:
        """A digest of everything the tar bytes depend on, plus each entry's times and inode."""
        listing = [[e.name, e.kind, e.mode, e.linkname, *e.stamp] for e in self.entries]
        return "sha256:" + hashlib.sha256(canonical_json([FORMAT, self.name, listing])).hexdigest()

    def open(self) -> BinaryIO:
        """A fresh, seekable binary stream of the tar bytes (read sequentially, any piece size)."""
        return io.BufferedReader(_TarStream(self), CHUNK)

    def digest(self) -> str:
        """``sha256:<hex>`` of the tar bytes, read once through :meth:`open`."""
        digest = hashlib.sha256()
        total = 0
        with self.open() as stream:
            while block := stream.read(CHUNK):
                digest.update(block)
                total += len(block)
        if total != self.size:  # the stream raises first; a last guard for the layer size
            raise InputError(f"{self.name}: the folder changed while it was packed; rerun")
        return "sha256:" + digest.hexdigest()


class _TarStream(io.RawIOBase):
    """The bytes of a FolderArchive, produced on demand from its entries."""

    def __init__(self, archive: FolderArchive) -> None:
        self._archive = archive
        self._pos = 0
        self._index = -1  # the entry whose header and file are at hand
        self._header = b""
        self._file: io.FileIO | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._archive.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def close(self) -> None:
        self._drop_file()
        super().close()

    def readinto(self, buffer: WriteableBuffer) -> int:
        cancel.check()
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._archive.size:
            count = self._fill(view[done:])
            done += count
            self._pos += count
        return done

    def _fill(self, view: memoryview) -> int:
        archive = self._archive
        index = bisect.bisect_right(archive.offsets, self._pos) - 1
        if index >= len(archive.entries):  # the two zero blocks at the end
            count = min(len(view), archive.size - self._pos)
            view[:count] = bytes(count)
            return count
        entry = archive.entries[index]
        if index != self._index:
            self._drop_file()
            self._index, self._header = index, header(entry)
        within = self._pos - archive.offsets[index]
        if within < len(self._header):
            count = min(len(view), len(self._header) - within)
            view[:count] = self._header[within : within + count]
            return count
        within -= len(self._header)
        if entry.kind == "file" and within < entry.size:
            return self._read_file(entry, within, view[: entry.size - within])
        count = min(len(view), archive.offsets[index + 1] - self._pos)
        view[:count] = bytes(count)
        return count

    def _read_file(self, entry: Entry, offset: int, view: memoryview) -> int:
        handle = self._file if self._file is not None else self._open(entry)
        if handle.tell() != offset:
            handle.seek(offset)
        count = handle.readinto(view) or 0
        if count == 0:
            raise InputError(_changed(entry, "it became shorter"))
        return count

    def _open(self, entry: Entry) -> io.FileIO:
        try:
            fd = os.open(entry.source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise InputError(_changed(entry, f"it cannot be read: {exc.strerror}")) from None
        handle = io.FileIO(fd, "rb", closefd=True)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
            handle.close()
            raise InputError(_changed(entry, f"{st.st_size} bytes, was {entry.size}"))
        self._file = handle
        return handle

    def _drop_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _changed(entry: Entry, why: str) -> str:
    return (
        f"'{entry.name}' changed while its folder was packed ({why}); "
        "rerun when nothing is writing to the folder"
    )


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _name_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8; rename it"
    problem = relative_path_problem(name)
    return f"has a name that {problem}" if problem else None


def _symlink(path: Path, name: str, real_root: str) -> tuple[str | None, str]:
    """(problem, link text) of a symlink inside the folder."""
    try:
        link = os.readlink(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})", ""
    shown = link.encode("utf-8", "backslashreplace").decode()
    if os.path.isabs(link):
        return (
            f"is a symlink to the absolute path '{shown}'; only relative symlinks inside the folder are packed",
            link,
        )
    try:
        link.encode("utf-8")
    except UnicodeEncodeError:
        return "is a symlink whose target is not valid UTF-8", link
    control = CONTROL_CHARACTER.search(link)
    if control:
        return f"is a symlink whose target {control_character_problem(control, 'paths')}", link
    if not inside(real_root, path):
        return f"is a symlink to '{shown}', which leads outside the folder", link
    if not os.path.exists(path):
        return f"is a symlink to '{shown}', which does not exist", link
    return None, link


def _readable(path: Path) -> str | None:
    try:
        os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _child(path: Path, name: str, real_root: str) -> tuple[Entry | None, Problem | None]:
    try:
        st = path.lstat()
    except OSError as exc:
        return None, Problem(name, f"cannot be read ({exc.strerror})")
    mode = st.st_mode
    problem: str | None
    if stat.S_ISDIR(mode):
        return Entry(name, "dir", path, 0, DIR_MODE, stamp=_stamp(st)), None
    if stat.S_ISREG(mode):
        problem = _readable(path)
        executable = EXECUTABLE_MODE if mode & 0o111 else FILE_MODE
        entry = Entry(name, "file", path, st.st_size, executable, stamp=_stamp(st))
        return (None, Problem(name, problem)) if problem else (entry, None)
    if stat.S_ISLNK(mode):
        problem, link = _symlink(path, name, real_root)
        entry = Entry(name, "symlink", path, 0, LINK_MODE, link, _stamp(st))
        return (None, Problem(name, problem)) if problem else (entry, None)
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return None, Problem(
        name, f"is {kind}; a folder may hold only files, folders and symlinks inside it"
    )


def scan(base: Path, name: str) -> tuple[FolderArchive | None, tuple[Problem, ...]]:
    """List ``base/name`` (a folder) with every check; the archive only when nothing is wrong.

    Nothing is followed: a symlinked folder inside is stored as a symlink, never descended.
    """
    root = base / name
    real_root = os.path.realpath(root)
    try:
        top = root.stat()
    except OSError as exc:
        return None, (Problem(name, f"cannot be read ({exc.strerror})"),)
    entries = [Entry(name, "dir", root, 0, DIR_MODE, stamp=_stamp(top))]
    problems: list[Problem] = []
    pending = [(root, name)]
    while pending:
        folder, prefix = pending.pop()
        cancel.check()
        try:
            children = sorted(os.listdir(folder))
        except OSError as exc:
            problems.append(Problem(prefix, f"cannot be read ({exc.strerror})"))
            continue
        for child in children:
            rel = f"{prefix}/{child}"
            wrong = _name_problem(rel)
            if wrong:
                problems.append(Problem(rel.encode("utf-8", "backslashreplace").decode(), wrong))
                continue
            entry, problem = _child(folder / child, rel, real_root)
            if problem is not None:
                problems.append(problem)
            elif entry is not None:
                entries.append(entry)
                if entry.kind == "dir":
                    pending.append((entry.source, rel))
    if problems:
        return None, tuple(sorted(problems, key=lambda p: p.entry))
    return FolderArchive(base, name, tuple(sorted(entries, key=lambda e: e.name))), ()


def archive(base: Path, name: str) -> FolderArchive:
    """The archive of ``base/name``; InputError naming the first problem when it has any."""
    found, problems = scan(base, name)
    if found is None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise InputError(
            f"folder '{name}' cannot be packed: '{first.entry}' {first.message}{more}; "
            "run 'ci-modelver validate'"
        )
    return found


def folder_digest(found: FolderArchive, cache: DigestCache) -> str:
    """The tar digest, from the cache when no entry changed since it was computed, else hashed.

    A digest is remembered only if the folder's listing is the same after hashing as before.
    """
    identity = found.identity()
    known = cache.cached_tree(found.root, identity)
    if known is not None:
        return known
    digest = found.digest()
    again, _problems = scan(found.base, found.name)
    if again is not None and again.identity() == identity:
        cache.store_tree(found.root, identity, digest)
    return digest


def newest_mtime(folder: Path) -> float | None:
    """The newest modification time of the folder and everything in it (symlinks not followed)."""
    newest: float | None = None
    for top, dirs, names in os.walk(folder):
        for name in [".", *dirs, *names]:
            try:
                mtime = os.lstat(os.path.join(top, name)).st_mtime
            except OSError:
                continue
            newest = mtime if newest is None else max(newest, mtime)
    return newest

"""Safe extraction of ModelPack ``.tar`` layers (folders), and listing their files for signing."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

from ci_modelver.adapters import cancel
from ci_modelver.adapters.folders import inside
from ci_modelver.adapters.store import CHUNK
from ci_modelver.core.signing import ArchiveEntry, entry_name
from ci_modelver.core.validate import relative_path_problem
from ci_modelver.errors import InputError, UnsafeArchive

# A files statement of more entries than this would pass the bundle size limit anyway.
MAX_LISTED_ENTRIES = 100_000


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member must not be unpacked, whatever the folder: an absolute or '..' name, a
    device or a FIFO (None when neither)."""
    name = member.name
    problem = relative_path_problem(name.rstrip("/")) if name not in (".", "./") else None
    if problem:
        return f"it {problem}"
    if member.isdev() or member.isfifo():
        return "device files and FIFOs are not allowed"
    return None


def check_members(
    archive: tarfile.TarFile, root: Path, source: str, max_total: int | None
) -> list[tarfile.TarInfo]:
    """Every member, checked before anything is extracted: no absolute or '..' names, no links
    leaving ``root``, no devices or FIFOs, and at most ``max_total`` bytes in all."""
    real_root = os.path.realpath(root)
    total = 0
    members = archive.getmembers()
    for member in members:
        name = member.name
        problem = member_problem(member)
        if problem:
            raise UnsafeArchive(f"{source}: refusing tar entry '{name}': {problem}")
        if member.issym() or member.islnk():
            base = os.path.join(real_root, os.path.dirname(name)) if member.issym() else real_root
            target = os.path.join(base, member.linkname)
            if os.path.isabs(member.linkname) or not inside(real_root, target):
                kind = "symlink" if member.issym() else "hardlink"
                raise UnsafeArchive(
                    f"{source}: refusing tar entry '{name}': {kind} to '{member.linkname}' leaves the folder"
                )
        total += max(member.size, 0)
        if max_total is not None and total > max_total:
            raise UnsafeArchive(
                f"{source}: tar layer unpacks to more than the {max_total}-byte limit (--max-size)"
            )
    return members


def _pulled(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter, and the time of the pull as modification time: like a raw
    layer's file, and unlike the zero mtime ci-modelver's own folder layers carry."""
    # mtime=None makes extract() leave the time alone (every tarfile with filters does so;
    # typeshed types the field as float only).
    return tarfile.data_filter(member, dest).replace(mtime=None, deep=False)  # type: ignore[arg-type]


def extract(tar_path: Path, root: Path, source: str, max_total: int | None) -> int:
    """Extract a verified tar blob under ``root``; returns the number of entries."""
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            members = check_members(archive, root, source, max_total)
            real_root = os.path.realpath(root)
            for member in members:
                # A symlink extracted earlier must not carry a later entry outside the folder.
                if not inside(real_root, os.path.join(real_root, os.path.dirname(member.name))):
                    raise UnsafeArchive(
                        f"{source}: refusing tar entry '{member.name}': its folder leads outside"
                    )
                _extract_one(archive, member, root, source)
            return len(members)
    except tarfile.TarError as exc:
        raise UnsafeArchive(f"{source}: the tar layer is not a valid archive ({exc})") from None


def _extract_one(
    archive: tarfile.TarFile, member: tarfile.TarInfo, root: Path, source: str
) -> None:
    target = root / member.name
    # A symlink where the archive has a file or folder (left by an earlier pull, say) is
    # replaced, never written through: the entry comes back as the archive holds it.
    if not member.issym() and target.is_symlink():
        target.unlink()
    try:
        if hasattr(tarfile, "data_filter"):
            archive.extract(member, root, filter=_pulled)
        else:  # Python < 3.10.12 / 3.11.4: our own checks above are the filter
            archive.extract(member, root)
    except OSError as exc:
        raise InputError(
            f"{source}: cannot unpack '{member.name}' into {root} ({exc.strerror or exc}); "
            "move what is in the way or pull into another folder (-o DIR)"
        ) from None


def _hash_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    digest = hashlib.sha256()
    handle = archive.extractfile(member)
    if handle is None:  # only for links and folders, never for a regular file
        raise tarfile.ReadError(f"cannot read '{member.name}'")
    with handle:
        while block := handle.read(CHUNK):
            cancel.check()
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _entry(archive: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> ArchiveEntry | None:
    if member.isreg():
        return ArchiveEntry(name, "file", _hash_member(archive, member))
    if member.isdir():
        return ArchiveEntry(name, "dir")
    if member.issym():
        return ArchiveEntry(name, "symlink", linkname=member.linkname)
    if member.islnk():
        return ArchiveEntry(name, "hardlink", linkname=entry_name(member.linkname))
    return None


def list_entries(tar_path: Path, source: str, declared: int) -> list[ArchiveEntry]:
    """Every member of a verified tar blob, each file with the sha256 of its content, read in
    one pass (stream mode). Nothing is written.

    Refused (UnsafeArchive): what :func:`check_members` refuses (absolute or '..' names,
    devices, FIFOs), sparse files, other member types, more than ``declared`` bytes of content
    in all (the layer's size: a compressed archive that unpacks to more), or more than
    ``MAX_LISTED_ENTRIES`` members.
    """
    out: list[ArchiveEntry] = []
    total = 0
    try:
        with tar_path.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as archive:
            for member in archive:
                cancel.check()
                problem = member_problem(member) or (
                    "sparse files are not allowed" if member.issparse() else None
                )
                if problem:
                    raise UnsafeArchive(f"{source}: refusing tar entry '{member.name}': {problem}")
                total += max(member.size, 0)
                if total > declared:
                    raise UnsafeArchive(
                        f"{source}: the tar layer unpacks to more than its declared size "
                        f"({declared:,} bytes)"
                    )
                if len(out) >= MAX_LISTED_ENTRIES:
                    raise UnsafeArchive(
                        f"{source}: the tar layer holds more than {MAX_LISTED_ENTRIES:,} entries, "
                        "more than a signed files statement can list"
                    )
                name = entry_name(member.name)
                if name == ".":
                    continue
                entry = _entry(archive, member, name)
                if entry is None:
                    raise UnsafeArchive(
                        f"{source}: refusing tar entry '{member.name}': it is neither a file, a "
                        "folder nor a link"
                    )
                out.append(entry)
    except tarfile.TarError as exc:
        raise UnsafeArchive(f"{source}: the tar layer is not a valid archive ({exc})") from None
    return out

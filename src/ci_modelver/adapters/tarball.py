"""Safe extraction of ModelPack ``.tar`` layers (directories packed by other tools)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from ci_modelver.adapters.folders import inside
from ci_modelver.core.validate import relative_path_problem
from ci_modelver.errors import InputError, UnsafeArchive


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
        problem = relative_path_problem(name.rstrip("/")) if name not in (".", "./") else None
        if problem:
            raise UnsafeArchive(f"{source}: refusing tar entry '{name}': it {problem}")
        if member.isdev() or member.isfifo():
            raise UnsafeArchive(
                f"{source}: refusing tar entry '{name}': device files and FIFOs are not allowed"
            )
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

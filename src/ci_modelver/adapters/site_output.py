"""Write the registry site into its output folder: only files whose bytes changed, never outside.

Each path is checked before anything is written (relative, no ``..``, only ``[A-Za-z0-9._-]``
parts, and the real path of its folder inside the output folder, symlinks resolved), so a name
from the registry cannot place a file elsewhere. A file is replaced by a temp file and a rename,
so a reader (or a deploy) never sees half a page.

The output folder keeps a record of the files the site wrote (``RECORD``). A page the registry
no longer gives (a pruned version, a removed model) is deleted on the next run, and only such
a page: a file the site never wrote (a ``CNAME``, a page of your own) is never touched. The
record is widened before anything is written and narrowed after the stale files are gone, so a
run stopped at any point leaves nothing the next run cannot find.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_modelver.adapters.store import file_mode
from ci_modelver.errors import InputError

_PART = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
# Hidden, so actions/upload-pages-artifact leaves it out of the deployed site by default.
RECORD = ".ci-modelver-site.json"


@dataclass(frozen=True)
class Written:
    """What writing the site did: files written (new or changed), left as they were, and
    removed (written by an earlier run, no longer part of the site)."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...] = ()


def _plain(relative: str) -> bool:
    return not relative.startswith("/") and all(_PART.match(p) for p in relative.split("/"))


def _checked(root: Path, relative: str) -> Path:
    parts = relative.split("/")
    if not _plain(relative):
        raise InputError(f"refusing to write '{relative}': not a plain relative path")
    target = root.joinpath(*parts)
    folder = target.parent
    # One folder at a time, each checked before the next is made in it: a symlinked folder
    # must not get even an empty folder created through it outside the output folder.
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise InputError(
                f"refusing to write '{relative}': {current} is a symlink or not a folder, so "
                f"its folder may lead outside {root}"
            )
        current.mkdir(exist_ok=True)
    real = Path(os.path.realpath(folder))
    if real != root and root not in real.parents:
        raise InputError(
            f"refusing to write '{relative}': its folder leads outside {root} (a symlink?)"
        )
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise InputError(f"refusing to write '{relative}': {target} is not a regular file")
    return real / parts[-1]


def write_files(output: Path, files: Mapping[str, bytes]) -> Written:
    """Write ``files`` (path relative to ``output`` → bytes); unchanged files are not touched."""
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output}: exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(output))
    targets = {relative: _checked(root, relative) for relative in sorted(files)}
    before = _recorded(root)
    _record(root, before | set(files))
    written: list[str] = []
    unchanged: list[str] = []
    for relative, target in targets.items():
        data = files[relative]
        with contextlib.suppress(OSError):
            if target.read_bytes() == data:
                unchanged.append(relative)
                continue
        _replace(target, data)
        written.append(relative)
    # On a case-insensitive file system a page renamed only in case (Foo/ → foo/) is the file
    # just written under its old name: it must not go.
    kept = {_identity(target) for target in targets.values()}
    stale = sorted(before - set(files))
    removed = [relative for relative in stale if _remove(root, relative, kept)]
    _record(root, set(files))
    return Written(tuple(written), tuple(unchanged), tuple(removed))


def _recorded(root: Path) -> set[str]:
    """The files an earlier run wrote; a record that is missing or not ours lists none."""
    try:
        data = json.loads((root / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and _plain(f) and f != RECORD}


def _record(root: Path, files: set[str]) -> None:
    body = (json.dumps({"files": sorted(files)}, indent=1) + "\n").encode()
    with contextlib.suppress(OSError):
        if (root / RECORD).read_bytes() == body:
            return  # an unchanged site leaves every file in the folder as it was
    _replace(root / RECORD, body)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _remove(root: Path, relative: str, kept: set[tuple[int, int] | None]) -> bool:
    """Delete one stale file of ours, then the folders it leaves empty; never through a symlink,
    never a file that is also one of the pages kept (``kept``: their device and inode)."""
    current = root
    parts = relative.split("/")
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return False
    target = current / parts[-1]
    if target.is_symlink() or not target.is_file() or _identity(target) in kept:
        return False
    try:
        target.unlink()
    except OSError as exc:
        raise InputError(
            f"{target}: cannot remove a page no longer in the site "
            f"({exc.strerror or type(exc).__name__}); check the permissions of --output"
        ) from None
    folder = target.parent
    while folder != root:
        try:
            folder.rmdir()  # only succeeds when empty: a file of yours keeps its folder
        except OSError:
            break
        folder = folder.parent
    return True


def _replace(target: Path, data: bytes) -> None:
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".partial-site-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temp, file_mode())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise InputError(
            f"{target}: cannot write ({exc.strerror or type(exc).__name__}); choose another --output"
        ) from None

"""Write the registry site into its output folder: only files whose bytes changed, never outside.

Each path is checked before anything is written (relative, no ``..``, only ``[A-Za-z0-9._-]``
parts, and the real path of its folder inside the output folder, symlinks resolved), so a name
from the registry cannot place a file elsewhere. A file is replaced by a temp file and a rename,
so a reader (or a deploy) never sees half a page.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_modelver.adapters.store import file_mode
from ci_modelver.errors import InputError

_PART = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Written:
    """What writing the site did: files written (new or changed) and files left as they were."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]


def _checked(root: Path, relative: str) -> Path:
    parts = relative.split("/")
    if relative.startswith("/") or not all(_PART.match(p) for p in parts):
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
    return Written(tuple(written), tuple(unchanged))


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

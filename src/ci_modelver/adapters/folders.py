"""Writing inside one folder: never through a symlink (or anything else) that leads outside it.

``pull`` (layer paths from a registry) and ``init`` (``.github/workflows`` of a folder someone
else may have prepared) share this rule: every folder on the way from ``root`` to a target must
be a folder that resolves inside ``root``; checked for every target before anything is written,
and again while the missing folders are created one by one.
"""

from __future__ import annotations

import os
from pathlib import Path

LEADS_OUTSIDE = "leads outside"


def inside(real_root: str, path: str | Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies within ``real_root`` (already resolved)."""
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def _problem(real_root: str, root: Path, folder: Path) -> str | None:
    if not inside(real_root, folder):
        return f"{LEADS_OUTSIDE} {root} (symlink)"
    if not os.path.isdir(folder):
        return "exists and is not a folder"
    return None


def parent_problem(root: Path, target: Path) -> tuple[Path, str] | None:
    """The first folder on the way to ``target`` that is unusable, and why; None when all are.

    ``target`` must be ``root / relative``. A folder on the way is unusable when it exists and
    resolves outside ``root`` (a symlink: ``"leads outside ROOT (symlink)"``) or is not a folder.
    Nothing is created.
    """
    real_root = os.path.realpath(root)
    current = root
    for part in target.relative_to(root).parts[:-1]:
        current = current / part
        if not os.path.lexists(current):
            return None  # nothing further down exists yet
        problem = _problem(real_root, root, current)
        if problem:
            return current, problem
    return None


def make_parents(root: Path, target: Path) -> tuple[Path, str] | None:
    """Create the missing folders between ``root`` (which must exist) and ``target``.

    Folders that exist are checked again on the way (something may have changed since the
    check); returns the first unusable one and why, like :func:`parent_problem`, having
    created only the folders before it. OSError when a folder cannot be created.
    """
    real_root = os.path.realpath(root)
    current = root
    for part in target.relative_to(root).parts[:-1]:
        current = current / part
        if not os.path.lexists(current):
            try:
                current.mkdir()
                continue
            except FileExistsError:  # created meanwhile: check what it is
                pass
        problem = _problem(real_root, root, current)
        if problem:
            return current, problem
    return None

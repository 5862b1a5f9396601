"""``ci-modelver pull``: download a version's files, verifying every digest, inside one folder."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.store import Progress, hash_file
from ci_modelver.commands.inspect import read_artifact, require_target
from ci_modelver.commands.stores import open_store
from ci_modelver.core.modelpack import LAYER_TYPES, ArtifactError, Descriptor, safe_layer_paths
from ci_modelver.core.refs import parse_ref
from ci_modelver.errors import InputError
from ci_modelver.settings import Settings


@dataclass(frozen=True)
class PullResult:
    """Where the files went and how many were fetched or already up to date."""

    digest: str
    output: Path
    files: tuple[tuple[str, int, bool], ...]  # path, size, downloaded

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "output": str(self.output),
            "files": [{"path": p, "size": s, "downloaded": d} for p, s, d in self.files],
        }


def parse_only(text: str | None) -> frozenset[str] | None:
    """``weight,doc`` → the file types to pull; InputError for unknown names."""
    if not text:
        return None
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(LAYER_TYPES))
    if unknown:
        raise InputError(
            f"--only: unknown file type(s) {', '.join(unknown)}; use {', '.join(LAYER_TYPES)}"
        )
    return frozenset(kinds)


def _prepare_parent(root: Path, dest: Path, source: str, path: str) -> None:
    """Create dest's folders one by one, refusing any symlink that leads outside ``root``."""
    real_root = os.path.realpath(root)
    current = root
    for part in dest.relative_to(root).parts[:-1]:
        current = current / part
        if current.is_symlink() or current.exists():
            real = os.path.realpath(current)
            if os.path.commonpath([real_root, real]) != real_root:
                raise ArtifactError(
                    f"{source}: refusing '{path}': {current} leads outside {root} (symlink)"
                )
            if not os.path.isdir(real):
                raise ArtifactError(
                    f"{source}: refusing '{path}': {current} exists and is not a folder"
                )
        else:
            current.mkdir()
    if dest.is_symlink():
        raise ArtifactError(f"{source}: refusing '{path}': {dest} is a symlink; remove it first")


def _up_to_date(dest: Path, layer: Descriptor) -> bool:
    try:
        if not dest.is_file() or dest.stat().st_size != layer.size:
            return False
    except OSError:
        return False
    return hash_file(dest)[0] == layer.digest


def pull(
    ref_text: str,
    settings: Settings,
    *,
    output: Path | None,
    only: frozenset[str] | None,
    progress: Progress,
) -> PullResult:
    """Download and verify REF's files into ``output`` (default ./<name>)."""
    ref = parse_ref(ref_text)
    target = require_target(ref, "pull")
    store = open_store(ref, settings, create=False)
    artifact, _config = read_artifact(store, ref, target)
    source = str(ref)
    paths = safe_layer_paths(artifact, source)
    root = output if output is not None else settings.cwd / ref.name
    if root.exists() and not root.is_dir():
        raise InputError(f"--output {root} exists and is not a folder")
    jobs: list[tuple[str, Descriptor, Path]] = []
    for layer, path in zip(artifact.layers, paths, strict=True):
        if only is not None and artifact.file_type(layer) not in only:
            continue
        dest = root / path
        jobs.append((path, layer, dest))
    root.mkdir(parents=True, exist_ok=True)
    for path, _layer, dest in jobs:
        _prepare_parent(root, dest, source, path)

    def fetch(job: tuple[str, Descriptor, Path]) -> tuple[str, int, bool]:
        path, layer, dest = job
        if _up_to_date(dest, layer):
            progress.finish(path, skipped=True)
            return path, layer.size, False
        store.fetch_blob(layer, dest, progress, path)
        return path, layer.size, True

    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        done = tuple(pool.map(fetch, jobs))
    return PullResult(artifact.digest, root, done)

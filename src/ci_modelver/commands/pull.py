"""``ci-modelver pull``: download a version's files, verifying every digest, inside one folder."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.store import Progress, hash_file
from ci_modelver.adapters.tarball import extract
from ci_modelver.commands.toolkit import (
    Invocation,
    Parents,
    open_store,
    parse_reference,
    read_artifact,
    require_target,
)
from ci_modelver.core.modelpack import LAYER_TYPES, Descriptor, is_tar_layer, safe_layer_paths
from ci_modelver.errors import ArtifactError, InputError
from ci_modelver.settings import Settings


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "pull",
        parents=[parents.common, parents.remote],
        help="download and verify a version",
        description="Download a version's files into a folder, verifying every digest.",
    )
    p.add_argument(
        "ref", metavar="REF", help="NAME:VERSION, REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
    )
    p.add_argument("--output", "-o", metavar="DIR", help="target folder (default ./<name>)")
    p.add_argument(
        "--only",
        metavar="TYPES",
        help="comma-separated file types: weight,weight-config,doc,code,dataset",
    )
    p.add_argument(
        "--max-size", metavar="SIZE", help="refuse versions larger than SIZE in all (e.g. 20G)"
    )
    p.add_argument(
        "--max-file-size", metavar="SIZE", help="refuse any single file larger than SIZE"
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> PullResult:
    return pull(
        args.ref,
        inv.settings,
        output=Path(args.output) if args.output else None,
        only=parse_only(args.only),
        progress=inv.progress("downloaded"),
        max_total=parse_size(args.max_size, "--max-size"),
        max_file=parse_size(args.max_file_size, "--max-file-size"),
    )


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
    if not kinds:
        raise InputError(f"--only '{text}': name at least one file type ({', '.join(LAYER_TYPES)})")
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


def parse_size(text: str | None, flag: str) -> int | None:
    """``500M`` / ``10G`` / ``1048576`` → bytes; InputError for anything else."""
    if not text:
        return None
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise InputError(
            f"{flag} '{text}': use a size such as 500M, 20G or a number of bytes"
        ) from None
    if not math.isfinite(value) or value > 2**62:
        raise InputError(f"{flag} '{text}': use a finite size such as 500M or 20G")
    if value <= 0:
        raise InputError(f"{flag} '{text}': must be positive")
    return int(value)


def _check_caps(
    jobs: list[tuple[str, Descriptor, Path]],
    source: str,
    max_total: int | None,
    max_file: int | None,
) -> None:
    """Refuse before writing anything when declared sizes exceed the caps."""
    for path, layer, _dest in jobs:
        if max_file is not None and layer.size > max_file:
            raise InputError(
                f"{source}: '{path}' declares {layer.size} bytes, over --max-file-size {max_file}"
            )
    total = sum(layer.size for _p, layer, _d in jobs)
    if max_total is not None and total > max_total:
        raise InputError(
            f"{source}: the files declare {total} bytes in all, over --max-size {max_total}"
        )


def pull(
    ref_text: str,
    settings: Settings,
    *,
    output: Path | None,
    only: frozenset[str] | None,
    progress: Progress,
    max_total: int | None = None,
    max_file: int | None = None,
) -> PullResult:
    """Download and verify REF's files into ``output`` (default ./<name>)."""
    ref = parse_reference(ref_text, settings)
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
    _check_caps(jobs, source, max_total, max_file)
    root.mkdir(parents=True, exist_ok=True)
    for path, _layer, dest in jobs:
        _prepare_parent(root, dest, source, path)

    def fetch(job: tuple[str, Descriptor, Path]) -> tuple[str, int, bool]:
        path, layer, dest = job
        if is_tar_layer(layer):
            return _fetch_tar(job)
        if _up_to_date(dest, layer):
            progress.finish(path, skipped=True)
            return path, layer.size, False
        store.fetch_blob(layer, dest, progress, path)
        return path, layer.size, True

    def _fetch_tar(job: tuple[str, Descriptor, Path]) -> tuple[str, int, bool]:
        # A directory packed as tar: verify the blob in a temp file, then extract it safely.
        path, layer, _dest = job
        with tempfile.TemporaryDirectory(prefix=".modelver-tar-", dir=root) as tmp:
            blob = Path(tmp) / "layer.tar"
            store.fetch_blob(layer, blob, progress, path)
            extract(blob, root, f"{source} ({path})", max_total)
        return path, layer.size, True

    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        done = tuple(pool.map(fetch, jobs))
    return PullResult(artifact.digest, root, done)

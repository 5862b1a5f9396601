"""Packing a candidate: hash its files and datasets, gather provenance, build the artifact."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ci_modelver.adapters import files, folder_archive
from ci_modelver.adapters.git import GitInfo, read_git
from ci_modelver.adapters.github import scrub
from ci_modelver.adapters.hashcache import DigestCache, cache_path
from ci_modelver.adapters.store import BlobSource
from ci_modelver.core.context import repository_url, rfc3339, run_url, source_date_epoch
from ci_modelver.core.manifest import FileEntry, FileType, Manifest
from ci_modelver.core.modelpack import Packed, PackedFile, Provenance, pack
from ci_modelver.core.provenance import (
    LockFile,
    build_record,
    ci_info,
    is_lockfile_name,
    lockfile_paths,
    redact_command,
    secret_values,
)
from ci_modelver.errors import InputError
from ci_modelver.settings import Settings


def created_time(
    env: Mapping[str, str], git: GitInfo, newest_mtime: float | None, now: Callable[[], float]
) -> str:
    """SOURCE_DATE_EPOCH, else the commit time of HEAD, else the newest file modification time.

    Outside git the clock would make every re-publish of unchanged files a new digest (and so
    exit 4); the files' own times keep it idempotent. The clock is the last resort only.
    """
    pinned = source_date_epoch(env)
    if pinned is not None:
        return rfc3339(pinned)
    if git.commit_time is not None:
        return rfc3339(git.commit_time)
    if newest_mtime is not None:
        return rfc3339(newest_mtime)
    return rfc3339(now())


def code_info(manifest: Manifest, settings: Settings, git: GitInfo) -> dict[str, Any]:
    """The manifest's ``code`` block, completed from GitHub Actions variables or git."""
    env = settings.env
    code: dict[str, Any] = {}
    if settings.in_github_actions and env.get("GITHUB_SHA"):
        code["commit"] = env["GITHUB_SHA"]
        repository, run = repository_url(env), run_url(env)
        if repository:
            code["repository"] = repository
        if run:
            code["runUrl"] = run
    else:
        if git.commit:
            code["commit"] = git.commit
        if git.repository:
            code["repository"] = git.repository
    if git.dirty is not None:
        code["dirty"] = git.dirty
    if git.path:
        code["path"] = git.path
    if manifest.code:
        declared = {
            "repository": manifest.code.repository,
            "commit": manifest.code.commit,
            "path": manifest.code.path,
        }
        code.update({k: v for k, v in declared.items() if v})
    return code


def python_version() -> str:
    """``CPython 3.12``: the interpreter running ci-modelver, to the minor version.

    Not the patch level: a security update of the publishing machine's Python must not turn an
    idempotent re-publish of unchanged files into a conflict (exit 4).
    """
    return f"{platform.python_implementation()} {sys.version_info.major}.{sys.version_info.minor}"


def machine_platform() -> str:
    """``linux-x86_64``, ``darwin-arm64``: operating system and machine type (no kernel release)."""
    system = platform.system() or sys.platform
    return f"{system}-{platform.machine() or 'unknown'}".lower()


def discover_lockfiles(base: Path) -> list[str]:
    """The environment lock files right next to the manifest (regular files only)."""
    try:
        names = sorted(entry.name for entry in os.scandir(base))
    except OSError:
        return []
    return [
        name
        for name in names
        if is_lockfile_name(name)
        and files.check_file(base, name, must_stay_inside=False).problem is None
    ]


def build_info(
    manifest: Manifest, base: Path, settings: Settings, cache: DigestCache
) -> dict[str, Any]:
    """The version record's ``build`` block: command, lock files, Python, platform, CI run."""
    spec = manifest.build
    paths = lockfile_paths(discover_lockfiles(base), spec.lockfiles if spec else ())
    lockfiles = [LockFile(path, *cache.digest(base / path)) for path in paths]
    command = spec.command if spec else None
    if command is not None:
        secrets = secret_values(settings.env)
        command = redact_command(command, lambda word: scrub(word, secrets))
    return build_record(
        command=command,
        lockfiles=lockfiles,
        python=python_version(),
        platform=machine_platform(),
        ci=ci_info(settings.env) if settings.in_github_actions else None,
    )


def _newest_mtime(base: Path, manifest: Manifest) -> float | None:
    times = []
    for rel in [*(f.path for f in manifest.files), *(d.path for d in manifest.data if d.path)]:
        path = base / rel
        try:
            if path.is_dir():  # a folder: its newest entry
                newest = folder_archive.newest_mtime(path)
                if newest is not None:
                    times.append(newest)
            else:
                times.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


@dataclass(frozen=True)
class PlannedFile:
    """One file of a candidate before upload; ``digest`` is None until it is hashed.

    A file without a digest is hashed while it is sent (``Store.push_stream``); ``opener``
    reads a layer that is not the file's bytes as they are on disk (a folder's tar stream).
    A folder (``folder``) is always hashed first: ``size`` and ``digest`` are its tar's.
    """

    path: str
    type: FileType
    source: Path
    size: int
    executable: bool
    digest: str | None
    opener: Callable[[], BinaryIO] | None = None
    folder: bool = False


@dataclass(frozen=True)
class Candidate:
    """A candidate with its provenance gathered and every file planned, nothing sent."""

    manifest: Manifest
    provenance: Provenance
    files: tuple[PlannedFile, ...]

    @property
    def unhashed(self) -> tuple[PlannedFile, ...]:
        return tuple(f for f in self.files if f.digest is None)


# Same length as any sha256 digest, so a manifest packed with it has the final size.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


def _plan_folder(entry: FileEntry, base: Path, cache: DigestCache) -> PlannedFile:
    # Listed and checked again: the folder may have changed since it was validated.
    found = folder_archive.archive(base, entry.path)
    digest = folder_archive.folder_digest(found, cache)
    return PlannedFile(
        entry.path, entry.type, found.root, found.size, False, digest, found.open, folder=True
    )


def _plan_file(
    entry: FileEntry, base: Path, cache: DigestCache, hash_first: Callable[[str, int], bool]
) -> PlannedFile:
    source = base / entry.path
    if source.is_dir() != entry.folder:
        was, now = ("folder", "file") if entry.folder else ("file", "folder")
        raise InputError(
            f"'{entry.path}' was a {was} when the manifest was validated and is a {now} now; "
            "rerun when nothing is changing the model's files"
        )
    if entry.folder:
        return _plan_folder(entry, base, cache)
    st = source.stat()
    size = st.st_size
    digest = cache.cached(source)
    if digest is None and hash_first(entry.path, size):
        digest, size = cache.digest(source)
    return PlannedFile(entry.path, entry.type, source, size, bool(st.st_mode & 0o111), digest)


def gather(
    manifest: Manifest,
    base: Path,
    settings: Settings,
    now: Callable[[], float],
    *,
    hash_first: Callable[[str, int], bool] = lambda _path, _size: True,
) -> Candidate:
    """Plan every file and gather provenance; files ``hash_first`` declines stay unhashed.

    A digest the cache knows is always used. The manifest is packed once with placeholder
    digests, so a candidate over the registries' manifest limit fails here, before any upload.
    """
    git = read_git(base)
    cache = DigestCache(cache_path(settings.env))

    def plan(entry: FileEntry) -> PlannedFile:
        return _plan_file(entry, base, cache, hash_first)

    # hashlib releases the GIL on large updates, so threads hash files in parallel.
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        planned = tuple(pool.map(plan, manifest.files))
    data: list[dict[str, str]] = []
    for dataset in manifest.data:
        entry = {"name": dataset.name, "uri": dataset.uri}
        if dataset.path:
            entry["path"] = dataset.path
            entry["digest"] = cache.digest(base / dataset.path)[0]
        elif dataset.digest:
            entry["digest"] = dataset.digest
        data.append(entry)
    provenance = Provenance(
        created=created_time(settings.env, git, _newest_mtime(base, manifest), now),
        code=code_info(manifest, settings, git),
        data=data,
        build=build_info(manifest, base, settings, cache),
    )
    cache.save()
    candidate = Candidate(manifest, provenance, planned)
    if candidate.unhashed:
        finish(candidate, {f.path: PLACEHOLDER_DIGEST for f in candidate.unhashed})
    return candidate


def finish(
    candidate: Candidate, digests: Mapping[str, str] | None = None
) -> tuple[Packed, list[BlobSource]]:
    """Pack the candidate once every file has a digest (``digests``: those hashed on upload)."""
    found = digests or {}
    files: list[PackedFile] = []
    for f in candidate.files:
        digest = f.digest or found.get(f.path)
        if digest is None:
            raise ValueError(f"{f.path}: packed before it was hashed")
        files.append(
            PackedFile(f.path, f.type, digest, f.size, executable=f.executable, folder=f.folder)
        )
    packed = pack(candidate.manifest, files, candidate.provenance)
    sources = [
        # A folder's layer is its tar stream, never the folder's path.
        BlobSource(layer, f.path, path=None if f.folder else f.source, opener=f.opener)
        for layer, f in zip(packed.layers, candidate.files, strict=True)
    ]
    sources.append(BlobSource(packed.config_descriptor, "config", data=packed.config))
    return packed, sources


def remember(settings: Settings, hashed: Mapping[Path, tuple[str, os.stat_result]]) -> None:
    """Keep digests computed during upload in the digest cache (for the next publish)."""
    cache = DigestCache(cache_path(settings.env))
    for path, (digest, st) in hashed.items():
        cache.store(path, digest, st)
    cache.save()


def prepare(
    manifest: Manifest, base: Path, settings: Settings, now: Callable[[], float]
) -> tuple[Packed, list[BlobSource]]:
    """Hash files and datasets, gather provenance, build the artifact (nothing is sent)."""
    return finish(gather(manifest, base, settings, now))

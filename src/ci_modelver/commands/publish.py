"""``ci-modelver publish``: validate, pack, push and tag a model version, immutably."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.git import GitInfo, read_git
from ci_modelver.adapters.github import write_outputs
from ci_modelver.adapters.hashcache import DigestCache, cache_path
from ci_modelver.adapters.store import BlobSource, Progress, Store
from ci_modelver.commands.stores import open_store, repository_for
from ci_modelver.commands.validate import ValidationResult, validate_manifest
from ci_modelver.core.audit import is_internal_tag
from ci_modelver.core.manifest import Manifest
from ci_modelver.core.modelpack import OCI_MANIFEST, Packed, PackedFile, Provenance, pack
from ci_modelver.core.refs import Reference, check_tag, is_version_tag
from ci_modelver.core.source import Finding
from ci_modelver.errors import ConflictError, InputError
from ci_modelver.settings import Settings


class InvalidManifest(InputError):
    """The manifest has findings; the CLI prints them like ``validate`` does."""

    def __init__(self, result: ValidationResult) -> None:
        super().__init__(
            f"{result.file}: {len(result.findings)} problem(s); run 'ci-modelver validate {result.file}'"
        )
        self.findings: tuple[Finding, ...] = result.findings


@dataclass(frozen=True)
class PublishResult:
    """What publish did; ``status`` is 'published' or 'unchanged' (already published)."""

    name: str
    version: str
    digest: str
    repository: Reference
    tags: tuple[str, ...]
    status: str
    uploaded: int
    present: int
    bytes_uploaded: int
    requests: int = 0
    retries: int = 0

    @property
    def ref(self) -> str:
        return str(self.repository.with_digest(self.digest))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "ref": self.ref,
            "repository": str(self.repository),
            "tags": list(self.tags),
            "status": self.status,
            "blobs": {
                "uploaded": self.uploaded,
                "present": self.present,
                "bytesUploaded": self.bytes_uploaded,
            },
            "http": {"requests": self.requests, "retries": self.retries},
        }


def rfc3339(epoch: float) -> str:
    """UTC, second precision, 'Z' suffix: the one timestamp format in our artifacts."""
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def created_time(
    env: Mapping[str, str], git: GitInfo, newest_mtime: float | None, now: Callable[[], float]
) -> str:
    """SOURCE_DATE_EPOCH, else the commit time of HEAD, else the newest file modification time.

    Outside git the clock would make every re-publish of unchanged files a new digest (and so
    exit 4); the files' own times keep it idempotent. The clock is the last resort only.
    """
    raw = env.get("SOURCE_DATE_EPOCH")
    if raw:
        if not (raw.isascii() and raw.isdigit()) or int(raw) > 253402300799:
            raise InputError(
                f"SOURCE_DATE_EPOCH={raw[:40]!r} is not a number of seconds since 1970 (up to the year 9999)"
            )
        return rfc3339(int(raw))
    if git.commit_time is not None:
        return rfc3339(git.commit_time)
    if newest_mtime is not None:
        return rfc3339(newest_mtime)
    return rfc3339(now())


def code_info(manifest: Manifest, env: Mapping[str, str], git: GitInfo) -> dict[str, Any]:
    """The manifest's ``code`` block, completed from GitHub Actions variables or git."""
    code: dict[str, Any] = {}
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_SHA"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repo = env.get("GITHUB_REPOSITORY", "")
        code["commit"] = env["GITHUB_SHA"]
        if repo:
            code["repository"] = f"{server}/{repo}"
            if env.get("GITHUB_RUN_ID"):
                code["runUrl"] = f"{server}/{repo}/actions/runs/{env['GITHUB_RUN_ID']}"
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


def _newest_mtime(base: Path, manifest: Manifest) -> float | None:
    times = []
    for rel in [*(f.path for f in manifest.files), *(d.path for d in manifest.data if d.path)]:
        try:
            times.append((base / rel).stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def _hash_all(
    cache: DigestCache, base: Path, paths: Sequence[str], workers: int
) -> list[tuple[str, int]]:
    # hashlib releases the GIL on large updates, so threads hash files in parallel.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: cache.digest(base / p), paths))


def prepare(
    manifest: Manifest, base: Path, settings: Settings, now: Callable[[], float]
) -> tuple[Packed, list[BlobSource]]:
    """Hash files and datasets, gather provenance, build the artifact (nothing is sent)."""
    git = read_git(base)
    cache = DigestCache(cache_path(settings.env))
    hashes = _hash_all(cache, base, [f.path for f in manifest.files], settings.concurrency)
    files = [
        PackedFile(
            f.path, f.type, digest, size, executable=bool((base / f.path).stat().st_mode & 0o111)
        )
        for f, (digest, size) in zip(manifest.files, hashes, strict=True)
    ]
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
        code=code_info(manifest, settings.env, git),
        data=data,
    )
    packed = pack(manifest, files, provenance)
    cache.save()
    sources = [
        BlobSource(layer, f.path, path=base / f.path)
        for layer, f in zip(packed.layers, files, strict=True)
    ]
    sources.append(BlobSource(packed.config_descriptor, "config", data=packed.config))
    return packed, sources


def _check_tag_free(store: Store, tag: str, digest: str) -> bool:
    """True when ``tag`` already holds ``digest``; ConflictError when it holds another."""
    existing = store.resolve(tag)
    if existing is None:
        return False
    if existing.digest == digest:
        return True
    raise ConflictError(
        f"{store.display}:{tag} already holds {existing.digest}, but this build is {digest}; "
        "version tags are immutable: bump 'version' in the manifest"
    )


def _put_version(
    store: Store,
    version: str,
    packed: Packed,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """PUT the version tag so that, of two racing publishers, at most one reports success.

    Registries have no conditional PUT. So: check the tag right before the PUT, PUT, wait twice
    as long as that check-and-PUT took (a rival that passed its own check before our PUT lands
    its PUT within about that time), then re-read. The rival's re-read, or its pre-PUT check,
    then sees our digest. A rival slower than that window can still overwrite the tag: the
    remaining race is documented in SECURITY.md.
    """
    started = clock()
    _check_tag_free(store, version, packed.digest)
    store.put_manifest(version, packed.manifest, OCI_MANIFEST)
    sleep(min(5.0, max(0.1, 2 * (clock() - started))))
    current = store.resolve(version)
    if current is None or current.digest != packed.digest:
        raise ConflictError(
            f"{store.display}:{version} was overwritten by another publisher with "
            f"{current.digest if current else 'nothing'} right after this build ({packed.digest}) "
            "was pushed; version tags are immutable: bump 'version' in the manifest"
        )


def publish(
    manifest_path: Path,
    settings: Settings,
    *,
    extra_tags: Sequence[str] = (),
    progress: Progress,
    now: Callable[[], float] = time.time,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Publish the manifest's version; idempotent for identical content, exit 4 on a conflict."""
    result = validate_manifest(manifest_path, str(manifest_path))
    if result.manifest is None:
        raise InvalidManifest(result)
    manifest = result.manifest
    for tag in extra_tags:
        check_tag(tag, "--tag")
        if is_internal_tag(tag):
            raise InputError(
                f"--tag '{tag}': uses a reserved prefix (sha256-, modelver-): such tags hold ci-modelver's own records"
            )
    repository = repository_for(settings, manifest.name)
    if repository.tag or repository.digest:
        raise InputError(
            f"--repository '{repository}' must not carry a tag or digest; the version tag is '{manifest.version}'"
        )
    packed, sources = prepare(manifest, manifest_path.parent, settings, now)
    store = open_store(repository, settings, create=True)
    already = _check_tag_free(store, manifest.version, packed.digest)
    for tag in extra_tags:
        if is_version_tag(tag):
            _check_tag_free(store, tag, packed.digest)  # before any upload: no half-published state
    uploaded = present = sent = 0
    if not already:
        with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
            flags = list(pool.map(lambda s: store.push_blob(s, progress), sources))
        uploaded = sum(flags)
        present = len(flags) - uploaded
        sent = sum(s.descriptor.size for s, f in zip(sources, flags, strict=True) if f)
        _put_version(store, manifest.version, packed, clock=clock, sleep=sleep)
    for tag in extra_tags:
        if is_version_tag(tag) and _check_tag_free(store, tag, packed.digest):
            continue
        store.put_manifest(tag, packed.manifest, OCI_MANIFEST)
    outcome = PublishResult(
        manifest.name,
        manifest.version,
        packed.digest,
        repository,
        (manifest.version, *extra_tags),
        "unchanged" if already else "published",
        uploaded,
        present,
        sent,
        **store.transfer_stats(),
    )
    output = settings.env.get("GITHUB_OUTPUT")
    if settings.in_github_actions and output:
        write_outputs(
            Path(output), {"digest": outcome.digest, "ref": outcome.ref, "version": outcome.version}
        )
    return outcome

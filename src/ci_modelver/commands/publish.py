"""``ci-modelver publish``: validate, pack, push and tag a model version, immutably."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.store import BlobSource, Progress, Store, UploadNote
from ci_modelver.core import json_bounds
from ci_modelver.core.audit import is_internal_tag
from ci_modelver.core.manifest import Manifest
from ci_modelver.core.modelpack import (
    ANN_FILEPATH,
    MAX_MANIFEST_BYTES,
    OCI_MANIFEST,
    Descriptor,
    Packed,
    parse_model_manifest,
)
from ci_modelver.core.provenance import check_command, with_command
from ci_modelver.core.refs import Reference, check_tag, is_version_tag, semver_key
from ci_modelver.core.registry_limits import check_layers
from ci_modelver.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    JSONRefused,
    RemoteError,
)
from ci_modelver.packing import Candidate, PlannedFile, finish, gather, remember
from ci_modelver.settings import Settings
from ci_modelver.signatures import (
    SignedRecord,
    SigningKey,
    load_signing_key,
    sign_version,
    signed_by,
)
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    add_signing_flags,
    load_manifest,
    move_tag,
    open_store,
    repository_for,
    store_exists,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "publish",
        parents=[parents.common, parents.remote],
        help="publish a model version",
        description="Validate, pack and push the manifest's version under an "
        "immutable version tag. Default store: oci:.modelver/<name>.",
    )
    p.add_argument("manifest", nargs="?", default="modelver.yaml", metavar="MANIFEST")
    p.add_argument(
        "--repository",
        metavar="REPO",
        help="HOST/PATH or oci:DIR (default: env MODELVER_REPOSITORY, else oci:.modelver/<name>)",
    )
    p.add_argument("--tag", action="append", metavar="EXTRA", help="also tag as EXTRA (repeatable)")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="PATCH chunk size for large files (default 64 MiB; at most 4 MiB on ghcr.io, "
        "which otherwise gets one PUT per file)",
    )
    p.add_argument(
        "--command",
        dest="training_command",  # 'command' is the subcommand's name
        metavar="COMMAND",
        help="the training command, recorded in the version record (overrides build.command)",
    )
    add_signing_flags(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> PublishResult:
    # The key is read (and refused) before the manifest is hashed or anything is sent.
    signer = load_signing_key(
        inv.settings, key=args.sign_key, cert=args.sign_cert, chain=args.sign_cert_chain
    )
    return publish(
        Path(args.manifest),
        inv.settings,
        extra_tags=args.tag or (),
        progress=inv.progress("uploaded"),
        command=args.training_command,
        signer=signer,
    )


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
    # The bundles stored by --sign-key (none when not signing, or when already signed by it).
    signatures: tuple[SignedRecord, ...] = ()
    signer: str | None = None
    # Uploads that continued an interrupted earlier run, or had to start again.
    resumed: tuple[UploadNote, ...] = ()
    restarted: tuple[UploadNote, ...] = ()
    # Files hashed while they were sent (their digest was not known before the upload).
    streamed: int = 0

    @property
    def ref(self) -> str:
        return str(self.repository.with_digest(self.digest))

    def outputs(self) -> dict[str, str]:
        return {
            "digest": self.digest,
            "ref": self.ref,
            "version": self.version,
            # What actions/attest-build-provenance takes (push-to-registry: true): the repository
            # without tag, and the manifest digest. Empty name for a layout: no registry to push to.
            "subject-name": str(self.repository) if self.repository.kind == "registry" else "",
            "subject-digest": self.digest,
        }

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
            "uploads": {
                "streamed": self.streamed,
                "resumed": [
                    {"file": n.name, "from": n.offset, "size": n.size} for n in self.resumed
                ],
                "restarted": [{"file": n.name, "reason": n.reason} for n in self.restarted],
            },
            "signer": self.signer,
            "signatures": [
                {"statement": r.kind, "record": r.record, "bundle": r.bundle}
                for r in self.signatures
            ],
        }


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


# The shortest settle window. A rival's check and PUT can be further apart than our own on a
# busy machine (a 2-core CI runner ran both publishers more than 0.1 s apart between their
# HEAD and PUT, and both reported success); 0.25 s covers such stalls at a small cost per
# publish.
SETTLE_MIN = 0.25


def _put_version(
    store: Store,
    version: str,
    packed: Packed,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """PUT the version tag so that, of two racing publishers, at most one reports success.

    Registries have no conditional PUT. So: check the tag right before the PUT, PUT, wait four
    times as long as that check-and-PUT took (a rival that passed its own check before our PUT
    lands its PUT within about that time; four, not two, because a busy machine stretches one
    publisher's gap between check and PUT more than the other's), then re-read. The rival's re-read, or its pre-PUT check,
    then sees our digest. A rival slower than that window can still overwrite the tag: the
    remaining race is documented in SECURITY.md.
    """
    started = clock()
    _check_tag_free(store, version, packed.digest)
    store.put_manifest(version, packed.manifest, OCI_MANIFEST)
    sleep(min(5.0, max(SETTLE_MIN, 4 * (clock() - started))))
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
    command: str | None = None,
    signer: SigningKey | None = None,
) -> PublishResult:
    """Publish the manifest's version; idempotent for identical content, exit 4 on a conflict."""
    manifest = load_manifest(manifest_path)
    if command is not None:  # --command wins over the manifest's build.command
        manifest = with_command(manifest, check_command(command, "--command"))
    return publish_manifest(
        manifest,
        manifest_path.parent,
        settings,
        extra_tags=extra_tags,
        progress=progress,
        now=now,
        clock=clock,
        sleep=sleep,
        signer=signer,
    )


def _sign(
    store: Store,
    packed: Packed,
    manifest: Manifest,
    signer: SigningKey,
    repository: Reference,
    now: Callable[[], float],
    *,
    again: bool,
) -> tuple[SignedRecord, ...]:
    """Sign the version (``again``: unless this key has signed it already)."""
    artifact = parse_model_manifest(packed.manifest, packed.digest, str(repository))
    if again and signed_by(store, artifact, signer, source=str(repository)):
        return ()
    return sign_version(
        store,
        artifact,
        len(packed.manifest),
        signer,
        name=manifest.name,
        version=manifest.version,
        source=str(repository),
        now=now,
    )


# Below this size a file is hashed before it is sent: that takes a few milliseconds, and the
# HEAD it allows can spare the upload altogether.
STREAM_MIN = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Existing:
    """What the store holds already that decides how the files are hashed."""

    taken: bool  # the version tag, or an extra version tag, exists
    sizes: Mapping[str, int]  # path → size in the newest version (latest), if any


def _existing(store: Store, version: str, extra_tags: Sequence[str]) -> _Existing:
    tags = [version, *(t for t in extra_tags if is_version_tag(t))]
    if any(store.resolve(tag) is not None for tag in tags):
        return _Existing(True, {})
    # The newest version by semver: what this candidate most likely shares files with.
    versions = sorted((t for t in store.tags() if is_version_tag(t)), key=semver_key)
    try:
        found = store.find_manifest(versions[-1]) if versions else None
    except (IntegrityError, InputError, RemoteError):
        found = None  # only a hint: a broken older version must not stop a new one
    return _Existing(False, _layer_sizes(found[0]) if found else {})


def _layer_sizes(manifest: bytes) -> dict[str, int]:
    """path → size of a stored version's layers (what the rule compares; a hint only)."""
    try:
        doc = json_bounds.parse(manifest, max_bytes=MAX_MANIFEST_BYTES)
    except JSONRefused:
        return {}
    layers = doc.get("layers") if isinstance(doc, dict) else None
    out: dict[str, int] = {}
    for layer in layers if isinstance(layers, list) else []:
        annotations = layer.get("annotations") if isinstance(layer, dict) else None
        path = annotations.get(ANN_FILEPATH) if isinstance(annotations, dict) else None
        size = layer.get("size") if isinstance(layer, dict) else None
        if isinstance(path, str) and isinstance(size, int):
            out[path] = size
    return out


def _hash_first_rule(streams: bool, existing: _Existing) -> Callable[[str, int], bool]:
    """Which files are hashed before they are sent; the others are hashed while being sent.

    Hash first when the digest decides everything (the version tag exists: unchanged or a
    conflict, and nothing must be sent either way), when the file is small, when the store
    cannot hash while sending, and when the file is probably unchanged since the newest
    version (same path and size there): its digest then lets a HEAD spare the upload. A new
    or changed large file is streamed, so its hashing costs no time of its own.
    """

    def rule(path: str, size: int) -> bool:
        if existing.taken or not streams or size < STREAM_MIN:
            return True
        return existing.sizes.get(path) == size

    return rule


def _planned_sizes(manifest: Manifest, base: Path) -> list[tuple[str, int]]:
    out = []
    for entry in manifest.files:
        try:
            out.append((entry.path, (base / entry.path).stat().st_size))
        except OSError:
            continue  # validation has reported it; the packing step names it again
    return out


def _upload_streaming(
    store: Store, candidate: Candidate, settings: Settings, progress: Progress
) -> tuple[dict[str, str], tuple[int, int, int]]:
    """Upload every file, hashing the unhashed ones as they go; their digests, and
    (uploaded, present, bytes sent)."""
    started = {f.path: f.source.stat() for f in candidate.unhashed}

    def one(f: PlannedFile) -> tuple[str, bool]:
        if f.digest is None:
            return store.push_stream(f.source, f.path, f.size, progress), True
        blob = BlobSource(
            Descriptor("application/octet-stream", f.digest, f.size),
            f.path,
            path=f.source,
            opener=f.opener,
        )
        return f.digest, store.push_blob(blob, progress)

    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        results = list(pool.map(one, candidate.files))
    digests = {f.path: d for f, (d, _sent) in zip(candidate.files, results, strict=True)}
    remember(settings, {f.source: (digests[f.path], started[f.path]) for f in candidate.unhashed})
    uploaded = sum(1 for _d, was_sent in results if was_sent)
    sent = sum(
        f.size for f, (_d, was_sent) in zip(candidate.files, results, strict=True) if was_sent
    )
    return digests, (uploaded, len(results) - uploaded, sent)


Counts = tuple[int, int, int]  # blobs uploaded, blobs already present, bytes sent


def _check_version_tags(store: Store, tags: Sequence[str], digest: str) -> bool:
    """Whether the version tag (first) already holds ``digest``; ConflictError for any version
    tag holding another."""
    already = _check_tag_free(store, tags[0], digest)
    for tag in tags[1:]:
        if is_version_tag(tag):
            _check_tag_free(store, tag, digest)
    return already


def _send_hashed(
    store: Store,
    candidate: Candidate,
    settings: Settings,
    progress: Progress,
    tags: Sequence[str],
) -> tuple[Packed, bool, Counts]:
    """Every digest is known: the tags are checked before any upload (nothing half-done)."""
    packed, sources = finish(candidate)
    if _check_version_tags(store, tags, packed.digest):
        return packed, True, (0, 0, 0)
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        flags = list(pool.map(lambda s: store.push_blob(s, progress), sources))
    sent = sum(s.descriptor.size for s, f in zip(sources, flags, strict=True) if f)
    return packed, False, (sum(flags), len(flags) - sum(flags), sent)


def _send_streaming(
    store: Store,
    candidate: Candidate,
    settings: Settings,
    progress: Progress,
    tags: Sequence[str],
) -> tuple[Packed, bool, Counts]:
    """Some files are hashed as they are sent. No version tag exists (else every file would
    have been hashed first), so the blobs may go before the manifest; the tags are checked
    once its digest is known."""
    digests, (uploaded, present, sent) = _upload_streaming(store, candidate, settings, progress)
    packed, sources = finish(candidate, digests)
    if store.push_blob(sources[-1], progress):  # the config
        uploaded, sent = uploaded + 1, sent + sources[-1].descriptor.size
    else:
        present += 1
    already = _check_version_tags(store, tags, packed.digest)
    return packed, already, (uploaded, present, sent)


def publish_manifest(
    manifest: Manifest,
    base: Path,
    settings: Settings,
    *,
    extra_tags: Sequence[str] = (),
    progress: Progress,
    now: Callable[[], float] = time.time,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    signer: SigningKey | None = None,
) -> PublishResult:
    """``publish`` for a manifest already validated (files relative to ``base``).

    With ``signer`` the version is signed before its tag is written: the manifest is stored by
    digest, its two bundles are attached, then the tag (a tag never names it unsigned). An
    unchanged version is signed only if this key has not signed it yet.
    """
    for tag in extra_tags:
        check_tag(tag, "--tag")
        if is_internal_tag(tag):
            raise InputError(
                f"--tag '{tag}': uses a reserved prefix (sha256-, modelver-): such tags hold ci-modelver's own records"
            )
    repository = repository_for(settings, manifest.name)
    if repository.tag or repository.digest:
        raise InputError(
            f"{settings.option('repository')} '{repository}' must not carry a tag or digest; the version tag is '{manifest.version}'"
        )
    if repository.kind == "registry":
        # Known limits of hosted registries: refused before the first byte is hashed or sent.
        check_layers(repository.host, _planned_sizes(manifest, base))
    # A layout that does not exist yet is created only once the files could all be read.
    found = (
        open_store(repository, settings, create=False)
        if store_exists(repository, settings)
        else None
    )
    existing = _existing(found, manifest.version, extra_tags) if found else _Existing(False, {})
    streams = found.streams if found else True
    candidate = gather(
        manifest, base, settings, now, hash_first=_hash_first_rule(streams, existing)
    )
    if repository.kind == "registry":
        # Again with the layer sizes: a folder's layer is its tar, known only now.
        check_layers(repository.host, [(f.path, f.size) for f in candidate.files])
    if found is None and not candidate.unhashed:
        finish(candidate)  # a manifest over the limit is refused before the layout is created
    store = found or open_store(repository, settings, create=True)
    sending = _send_streaming if candidate.unhashed else _send_hashed
    packed, already, (uploaded, present, sent) = sending(
        store, candidate, settings, progress, (manifest.version, *extra_tags)
    )
    signatures: tuple[SignedRecord, ...] = ()
    if not already:
        if signer is not None:
            store.put_manifest(None, packed.manifest, OCI_MANIFEST)
            signatures = _sign(store, packed, manifest, signer, repository, now, again=False)
        _put_version(store, manifest.version, packed, clock=clock, sleep=sleep)
    elif signer is not None:
        signatures = _sign(store, packed, manifest, signer, repository, now, again=True)
    for tag in extra_tags:
        if is_version_tag(tag) and _check_tag_free(store, tag, packed.digest):
            continue
        move_tag(store, tag, packed.manifest, OCI_MANIFEST, packed.digest)
    notes = store.transfer_notes()
    resumed = tuple(n for n in notes if n.kind == "resumed")
    sent -= sum(n.offset for n in resumed)
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
        signatures=signatures,
        signer=signer.shown if signer is not None and signatures else None,
        resumed=resumed,
        restarted=tuple(n for n in notes if n.kind == "restarted"),
        streamed=len(candidate.unhashed),
    )
    return outcome

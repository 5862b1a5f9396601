"""``ci-modelver publish``: validate, pack, push and tag a model version, immutably."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.store import Progress, Store
from ci_modelver.core.audit import is_internal_tag
from ci_modelver.core.manifest import Manifest
from ci_modelver.core.modelpack import OCI_MANIFEST, Packed, parse_model_manifest
from ci_modelver.core.provenance import check_command, with_command
from ci_modelver.core.refs import Reference, check_tag, is_version_tag
from ci_modelver.errors import ConflictError, InputError
from ci_modelver.packing import prepare
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
        help="upload in PATCH chunks of this size (e.g. 4194304 for ghcr.io); default one PUT",
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
    sleep(min(5.0, max(0.1, 4 * (clock() - started))))
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
    packed, sources = prepare(manifest, base, settings, now)
    store = open_store(repository, settings, create=True)
    already = _check_tag_free(store, manifest.version, packed.digest)
    for tag in extra_tags:
        if is_version_tag(tag):
            _check_tag_free(store, tag, packed.digest)  # before any upload: no half-published state
    uploaded = present = sent = 0
    signatures: tuple[SignedRecord, ...] = ()
    if not already:
        with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
            flags = list(pool.map(lambda s: store.push_blob(s, progress), sources))
        uploaded = sum(flags)
        present = len(flags) - uploaded
        sent = sum(s.descriptor.size for s, f in zip(sources, flags, strict=True) if f)
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
    )
    return outcome

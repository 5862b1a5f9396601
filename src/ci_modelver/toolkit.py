"""Steps every command shares: manifests, references, stores, artifacts, who and when, tag moves.

Command modules import this module, never each other.
"""

from __future__ import annotations

import argparse
import getpass
import re
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters import files
from ci_modelver.adapters.http import RegistryHTTP, RetryPolicy, find_credentials
from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.adapters.referrers import push_referrer
from ci_modelver.adapters.registry import RegistryStore
from ci_modelver.adapters.store import Progress, Store
from ci_modelver.adapters.upload_journal import UploadJournal, journal_dir
from ci_modelver.core import json_bounds
from ci_modelver.core.audit import (
    ALIAS_MOVE_TYPE,
    AliasMove,
    alias_of_audit_tag,
    audit_tag,
    move_manifest,
    parse_move,
)
from ci_modelver.core.context import precise_time, run_url
from ci_modelver.core.manifest import Manifest
from ci_modelver.core.modelpack import (
    ANN_VERSION,
    OCI_MANIFEST,
    Descriptor,
    ModelArtifact,
    parse_model_manifest,
    sha256_digest,
)
from ci_modelver.core.refs import Reference, is_loopback, parse_ref, split_model_ref
from ci_modelver.errors import (
    ArtifactError,
    ConflictError,
    InputError,
    InvalidManifest,
    ModelverError,
)
from ci_modelver.settings import Settings
from ci_modelver.validation import validate_manifest

DEFAULT_MANIFEST = Path("modelver.yaml")
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Parents:
    """Shared argparse parents: ``common`` (--debug) and ``remote`` (transfer flags)."""

    common: argparse.ArgumentParser
    remote: argparse.ArgumentParser


@dataclass(frozen=True)
class Invocation:
    """What a command's ``run(args, inv)`` gets besides its flags: settings and the progress sink."""

    settings: Settings
    progress: Callable[[str], Progress]  # a Progress for a verb ("uploaded", "downloaded")


# --- manifests ---------------------------------------------------------------------------


def load_manifest(path: Path) -> Manifest:
    """The validated manifest at ``path``; InvalidManifest (with every finding) otherwise."""
    result = validate_manifest(path, str(path))
    if result.manifest is None:
        raise InvalidManifest(result.file, result.findings)
    return result.manifest


def manifest_name(path: Path) -> str | None:
    """Only the ``name:`` of a manifest, without checking its files (they may not exist yet)."""
    if not path.is_file():
        return None
    data = files.load_document(path, str(path)).data
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and split_model_ref(name) == (name, None, None) else None


# --- references and stores ---------------------------------------------------------------


def default_repository(name: str) -> str:
    """The embedded default: an OCI layout under ./.modelver/<name>."""
    return f"oci:.modelver/{name}"


def repository_for(settings: Settings, name: str) -> Reference:
    """--repository, else MODELVER_REPOSITORY, else the embedded layout store."""
    return parse_ref(settings.repository or default_repository(name))


def parse_reference(text: str, settings: Settings) -> Reference:
    """A full reference, or a bare model name (``NAME[:TAG|@DIGEST]``) in the default store."""
    bare = split_model_ref(text.strip(" \t"))
    if bare is None:
        return parse_ref(text)
    name, tag, digest = bare
    repository = repository_for(settings, name).bare()
    if digest:
        return repository.with_digest(digest)
    return repository.with_tag(tag) if tag else repository


def require_target(ref: Reference, verb: str) -> str:
    """The tag or digest a command needs, or InputError saying how to name one."""
    target = ref.digest or ref.tag
    if not target:
        raise InputError(
            f"{verb}: '{ref}' names no version; add ':VERSION', ':ALIAS' or '@sha256:…'"
        )
    return target


def repository_argument(text: str | None, settings: Settings, verb: str) -> Reference:
    """A repository (or model name) without tag or digest; by default the ./modelver.yaml model."""
    if text is None:
        name = manifest_name(settings.cwd / DEFAULT_MANIFEST)
        if name is None:
            raise InputError(
                f"{verb}: give a repository (HOST/PATH, oci:DIR or a model name); "
                f"there is no usable {DEFAULT_MANIFEST} in {settings.cwd} to take the model from"
            )
        return repository_for(settings, name).bare()
    ref = parse_reference(text, settings)
    if ref.tag or ref.digest:
        raise InputError(f"{verb}: give the repository without tag or digest, e.g. '{ref.bare()}'")
    return ref


def _layout_root(ref: Reference, settings: Settings) -> Path:
    root = Path(ref.repository)
    return root if root.is_absolute() else settings.cwd / root


def store_exists(ref: Reference, settings: Settings) -> bool:
    """False for a layout folder that does not exist yet (a registry always counts as there)."""
    return ref.kind != "layout" or (_layout_root(ref, settings) / "index.json").is_file()


def open_store(ref: Reference, settings: Settings, *, create: bool) -> Store:
    """A Store for ``ref``'s repository; a layout is created only when ``create``."""
    if ref.kind == "layout":
        store = LayoutStore(_layout_root(ref, settings), create=create)
        store.display = f"oci:{ref.repository}"
        return store
    plain = settings.plain_http or is_loopback(ref.host)
    http = RegistryHTTP(
        ref.host,
        plain_http=plain,
        credentials=find_credentials(ref.host, settings.env),
        # A single request may take a quarter of the retry budget (at most a minute), so a stalled
        # registry still leaves room for retries within --timeout.
        policy=RetryPolicy(
            budget=settings.timeout,
            timeout=min(60.0, max(2.0, settings.timeout / 4)),
            hint=settings.wait_hint(),
            min_throughput=settings.min_throughput,
        ),
        pool_size=settings.concurrency + 2,
        env=settings.env,
        log=settings.log,
    )
    return RegistryStore(
        http,
        ref.path,
        chunk_size=settings.chunk_size,
        journal=UploadJournal(journal_dir(settings.env)),
    )


def open_existing(ref: Reference, settings: Settings) -> Store | None:
    """The store, or None for an embedded layout that was never created (nothing published)."""
    try:
        return open_store(ref, settings, create=False)
    except InputError:
        if ref.kind == "layout":
            return None
        raise


# --- artifacts ---------------------------------------------------------------------------


def version_target(ref_text: str, settings: Settings, verb: str) -> tuple[Reference, str]:
    """The reference (or model name) a command was given, and the tag or digest it must name."""
    ref = parse_reference(ref_text, settings)
    return ref, require_target(ref, verb)


def read_model(store: Store, source: str, target: str) -> tuple[bytes, ModelArtifact]:
    """The exact manifest bytes of ``target`` (digest verified) and the model artifact they are."""
    data, digest = store.get_manifest(target)
    return data, parse_model_manifest(data, digest, source)


def read_artifact(
    store: Store, ref: Reference, target: str
) -> tuple[ModelArtifact, dict[str, Any]]:
    """Manifest and config of ``target`` (digests verified), parsed as a model artifact."""
    _data, artifact = read_model(store, str(ref), target)
    raw = store.read_blob(artifact.config, MAX_CONFIG_BYTES)
    config = json_bounds.load(
        raw,
        source=f"{ref}: the config blob",
        error=ArtifactError,
        advice="this is not a model artifact ci-modelver can read",
    )
    if not isinstance(config, dict):
        raise InputError(f"{ref}: the config blob is not a JSON object")
    return artifact, config


def version_of(artifact: ModelArtifact) -> str | None:
    """The version a model artifact records (our record first, then the OCI annotation)."""
    record = artifact.record or {}
    version = record.get("version") or artifact.annotations.get(ANN_VERSION)
    return str(version) if version else None


def metrics_of(record: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Metrics of a version record; parse_model_manifest already kept only finite numbers."""
    metrics = record.get("metrics")
    return {s: dict(v) for s, v in metrics.items()} if isinstance(metrics, dict) else {}


def alias_log(store: Store, workers: int, alias: str | None = None) -> list[AliasMove]:
    """Every recorded alias move (optionally of one alias), oldest first."""
    tags = [t for t in store.tags() if alias_of_audit_tag(t) is not None]
    if alias is not None:
        tags = [t for t in tags if alias_of_audit_tag(t) == alias]

    def load(tag: str) -> AliasMove | None:
        found = store.find_manifest(tag)
        return parse_move(found[0], found[1]) if found else None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        moves = [m for m in pool.map(load, tags) if m is not None]
    return sorted(moves, key=lambda m: (m.time, m.record_digest or ""))


# --- tags --------------------------------------------------------------------------------


def move_tag(store: Store, tag: str, data: bytes, media_type: str, digest: str) -> None:
    """PUT the exact manifest bytes under ``tag``, then re-read it: ConflictError if a rival won.

    The bytes are never re-serialised, so the tag resolves to the very same digest. Registries
    have no conditional PUT; the re-read catches a concurrent move that landed in between.
    """
    store.put_manifest(tag, data, media_type)
    landed = store.resolve(tag)
    if landed is None or landed.digest != digest:
        raise ConflictError(
            f"{store.display}:{tag} resolves to {landed.digest if landed else 'nothing'} right after "
            f"it was moved to {digest}: another publish or promotion ran at the same time; "
            "check 'ci-modelver history'"
        )


def new_move(
    store: Store,
    settings: Settings,
    *,
    alias: str,
    to_digest: str,
    to_version: str | None,
    action: str,
    reason: str | None,
    now: Callable[[], float],
) -> AliasMove:
    """The record of moving ``alias`` (from where it points now) to ``to_digest``."""
    current = store.resolve(alias)
    from_version = None
    if current is not None:
        found = store.find_manifest(current.digest)
        if found is not None:
            try:
                from_version = version_of(parse_model_manifest(found[0], found[1], store.display))
            except ModelverError:
                from_version = None
    return AliasMove(
        alias=alias,
        to_digest=to_digest,
        time=precise_time(now()),
        actor=actor(settings.env),
        action=action,
        from_digest=current.digest if current else None,
        to_version=to_version,
        from_version=from_version,
        reason=reason,
        run_url=run_url(settings.env),
    )


@dataclass(frozen=True)
class MoveRecord:
    """An alias move's record manifest, made (and its tag checked) before anything is written."""

    move: AliasMove
    tag: str
    subject: Descriptor
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)


def move_record(move: AliasMove, size: int) -> MoveRecord:
    """The record of ``move`` about the ``size``-byte manifest it points the alias at."""
    tag = audit_tag(move.alias, move.time, secrets.token_hex(4))
    subject = Descriptor(OCI_MANIFEST, move.to_digest, size)
    return MoveRecord(move, tag, subject, move_manifest(move, subject))


def write_move(store: Store, record: MoveRecord, data: bytes, media_type: str) -> None:
    """Move the alias to ``data`` (the exact bytes of the version), then store its record.

    The alias moves first: a record never claims a move that did not land.
    """
    move = record.move
    move_tag(store, move.alias, data, media_type, move.to_digest)
    push_referrer(
        store, record.subject, record.data, ALIAS_MOVE_TYPE, tag=record.tag, created=move.time
    )


# --- who --------------------------------------------------------------------


def actor(env: Mapping[str, str]) -> str:
    """Who is acting: GITHUB_ACTOR in Actions, else the local user."""
    if env.get("GITHUB_ACTOR"):
        return env["GITHUB_ACTOR"]
    for key in ("USER", "LOGNAME", "USERNAME"):
        if env.get(key):
            return env[key]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def safe_file_part(text: str) -> str:
    """A string usable inside one file name (never a path separator)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


# --- signing and trust flags -------------------------------------------------------------------


def add_signing_flags(parser: argparse.ArgumentParser) -> None:
    """``--sign-key`` and certificate mode (``--sign-cert``, ``--sign-cert-chain``)."""
    parser.add_argument(
        "--sign-key",
        metavar="KEY",
        help="PEM private key (ECDSA P-256/P-384 or Ed25519) to sign with (env "
        "MODELVER_SIGNING_KEY holding the PEM, or MODELVER_SIGNING_KEY_FILE; passphrase in "
        "MODELVER_SIGNING_KEY_PASSWORD)",
    )
    parser.add_argument(
        "--sign-cert", metavar="CERT", help="PEM certificate of the signing key (certificate mode)"
    )
    parser.add_argument(
        "--sign-cert-chain",
        metavar="CHAIN",
        help="PEM intermediate certificates between --sign-cert and the root",
    )


def add_trust_flags(parser: argparse.ArgumentParser, key_flag: str = "--key") -> None:
    """Who is trusted: public keys, and/or certificate roots with the identity they must name."""
    parser.add_argument(
        key_flag,
        action="append",
        default=[],
        metavar="PUB",
        dest="trusted_keys",
        help="PEM public key of a trusted signer (repeatable)",
    )
    parser.add_argument(
        "--ca", metavar="ROOTS", help="PEM root certificates that signing certificates chain to"
    )
    parser.add_argument(
        "--cert-identity",
        metavar="NAME",
        help="the e-mail, URI or DNS name a signing certificate must name (with --ca)",
    )

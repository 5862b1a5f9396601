"""Signing versions and checking their signatures in a store.

The one place commands (``sign``, ``verify``, ``publish --sign-key``, ``pull --verify-key``, and
the promotion policy on top) get signatures from: keys and policies read from flags and the
environment, bundles stored as OCI referrers of the version (cosign's layout, through the
referrers API or the ``sha256-<hex>`` fallback index), and one verification function,
:func:`verify_version`, that returns every :class:`~ci_modelver.core.trust.SignatureCheck` and
raises :class:`~ci_modelver.errors.Untrusted` (exit 5) unless a trusted signer covers the version.
The files inside folder (tar) layers are read from their blobs, fetched into a temporary folder
of ours (:func:`tar_archives`), so the files statement names every file a pull unpacks.

Secrets: the signing key, its passphrase and the PEM text stay in memory; messages name where
they came from (a file, a variable), never their content.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from ci_modelver.adapters.referrers import list_referrers, push_referrer
from ci_modelver.adapters.store import BlobSource, NoProgress, Progress, Store, owned_temp_dir
from ci_modelver.adapters.tarball import list_entries
from ci_modelver.core import keys
from ci_modelver.core.context import precise_time
from ci_modelver.core.modelpack import (
    ANN_CREATED,
    OCI_MANIFEST,
    Descriptor,
    ModelArtifact,
    is_tar_layer,
    safe_layer_paths,
)
from ci_modelver.core.move_trust import (
    MOVE_PREDICATE,
    BundleCheck,
    MoveTrust,
    check_move_bundle,
    move_statement,
    move_trust,
)
from ci_modelver.core.signing import (
    BUNDLE_MEDIA_TYPE,
    FILES_PREDICATE,
    KIND_FILES,
    KIND_VERSION,
    MAX_BUNDLE_BYTES,
    VERSION_PREDICATE,
    ArchiveFiles,
    archive_files,
    bundle_descriptor,
    bundle_layer,
    bundle_manifest,
    certificate_material,
    files_statement,
    follows_symlinks,
    key_material,
    layer_files,
    sign_statement,
    version_statement,
)
from ci_modelver.core.trust import (
    MAX_KEYS,
    Policy,
    SignatureCheck,
    TrustedKey,
    Verdict,
    check_bundle,
    verdict,
)
from ci_modelver.errors import (
    ArtifactError,
    BadSignature,
    InputError,
    IntegrityError,
    UnsafeArchive,
    Untrusted,
)
from ci_modelver.settings import ACTION, Settings

SIGNING_KEY_VARIABLE = "MODELVER_SIGNING_KEY"
SIGNING_KEY_FILE_VARIABLE = "MODELVER_SIGNING_KEY_FILE"
MAX_KEY_FILE = 1024 * 1024  # a PEM key, certificate or root bundle
MAX_BUNDLES = 64  # signature referrers read per version, newest first


# --- reading keys, certificates and policies ---------------------------------------------------


def read_local(text: str, settings: Settings, what: str) -> bytes:
    """A small local file named by a flag (relative to the working folder); InputError otherwise."""
    path = Path(text)
    if not path.is_absolute():
        path = settings.cwd / path
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise InputError(f"{what} {text}: does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {text}: is a folder, not a PEM file") from None
    except OSError as exc:
        raise InputError(
            f"{what} {text}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(data) > MAX_KEY_FILE:
        raise InputError(f"{what} {text}: is over {MAX_KEY_FILE // 1024} KiB; give a PEM file")
    return data


@dataclass(frozen=True)
class SigningKey:
    """The private key that signs, and the certificate chain that names it (certificate mode)."""

    key: keys.PrivateKey = field(repr=False)
    chain: tuple[bytes, ...] = field(default=(), repr=False)  # DER, leaf first
    shown: str = ""

    @property
    def public(self) -> keys.PublicKey:
        return keys.public_key_of(self.key)

    def material(self) -> dict[str, object]:
        return certificate_material(self.chain) if self.chain else key_material(self.public)


def load_signing_key(
    settings: Settings,
    *,
    key: str | None,
    cert: str | None = None,
    chain: str | None = None,
) -> SigningKey | None:
    """The signing key from ``--sign-key`` or the environment; None when none is given.

    ``MODELVER_SIGNING_KEY`` holds the PEM itself, ``MODELVER_SIGNING_KEY_FILE`` names a file,
    ``MODELVER_SIGNING_KEY_PASSWORD`` the passphrase of an encrypted key.
    """
    env = settings.env
    flag = settings.option("sign-key")
    if key:
        pem, where = read_local(key, settings, flag), f"{flag} {key}"
    elif env.get(SIGNING_KEY_VARIABLE, "").strip():
        pem, where = env[SIGNING_KEY_VARIABLE].encode("utf-8", "replace"), SIGNING_KEY_VARIABLE
    elif env.get(SIGNING_KEY_FILE_VARIABLE, "").strip():
        name = env[SIGNING_KEY_FILE_VARIABLE].strip()
        pem, where = (
            read_local(name, settings, SIGNING_KEY_FILE_VARIABLE),
            f"{SIGNING_KEY_FILE_VARIABLE} {name}",
        )
    else:
        if cert or chain:
            raise InputError(
                f"{settings.option('sign-cert')}: needs the certificate's private key; give {flag} KEY"
            )
        return None
    raw_password = env.get(keys.PASSWORD_VARIABLE)
    password = raw_password.encode("utf-8") if raw_password else None
    private = keys.load_private_key(pem, password, where)
    public = keys.public_key_of(private)
    if chain and not cert:
        raise InputError(
            f"{settings.option('sign-cert-chain')}: needs the signing certificate; give "
            f"{settings.option('sign-cert')} CERT"
        )
    if not cert:
        return SigningKey(private, (), f"key {keys.fingerprint(public)[:19]}…")
    cert_flag = settings.option("sign-cert")
    leaf, *extra = keys.load_certificates(
        read_local(cert, settings, cert_flag), f"{cert_flag} {cert}"
    )
    if not keys.same_key(public, leaf.public_key()):
        raise InputError(
            f"{cert_flag} {cert}: the certificate is not for the signing key ({where}); give the "
            "certificate issued for this key"
        )
    chain_certs = list(extra)
    if chain:
        chain_flag = settings.option("sign-cert-chain")
        chain_certs += keys.load_certificates(
            read_local(chain, settings, chain_flag), f"{chain_flag} {chain}"
        )
    if 1 + len(chain_certs) > keys.MAX_CHAIN:
        raise InputError(f"{cert_flag}: at most {keys.MAX_CHAIN} certificates in the chain")
    names = keys.identities(leaf)
    ders = tuple(c.public_bytes(Encoding.DER) for c in (leaf, *chain_certs))
    return SigningKey(
        private, ders, f"certificate {names[0] if names else leaf.subject.rfc4514_string()}"
    )


def load_policy(
    settings: Settings,
    *,
    key_files: Sequence[str] = (),
    ca: str | None = None,
    identity: str | None = None,
    key_flag: str = "key",
    ca_flag: str = "ca",
    identity_flag: str = "cert-identity",
) -> Policy:
    """The trust policy from flags: public keys, and/or certificate roots with one identity."""
    flag = settings.option(key_flag)
    trusted = tuple(
        TrustedKey(
            Path(name).name,
            keys.load_public_key(read_local(name, settings, flag), f"{flag} {name}"),
        )
        for name in key_files
    )
    if bool(ca) != bool(identity):
        given, missing = (ca_flag, identity_flag) if ca else (identity_flag, ca_flag)
        raise InputError(
            f"{settings.option(given)}: needs {settings.option(missing)} too (certificates are "
            "trusted for one identity, from these roots)"
        )
    roots: tuple[object, ...] = ()
    if ca:
        ca_option = settings.option(ca_flag)
        roots = tuple(
            keys.load_certificates(read_local(ca, settings, ca_option), f"{ca_option} {ca}")
        )
    return Policy(trusted, roots, identity or None)  # type: ignore[arg-type]


# --- the files inside tar layers ---------------------------------------------------------------


def tar_blob_path(folder: Path, layer: Descriptor) -> Path:
    """Where :func:`tar_archives` puts a tar layer's blob inside ``folder``."""
    return folder / (layer.digest.removeprefix("sha256:") + ".tar")


def tar_archives(
    store: Store,
    artifact: ModelArtifact,
    *,
    source: str,
    folder: Path | None = None,
    progress: Progress | None = None,
    workers: int = 4,
) -> dict[str, ArchiveFiles]:
    """The files inside every tar layer of the version (layer digest → its files).

    Each tar blob is fetched into ``folder`` (its digest and size verified by the store) and
    read once, hashing every regular file; the blobs stay there for the caller (a pull unpacks
    them). Without ``folder`` they go to a temporary folder of ours under the system's temporary
    folder (TMPDIR), removed on return. Nothing is fetched for a version without tar layers. UnsafeArchive or
    ArtifactError, naming the entry, for a layer a files statement cannot describe.
    """
    paths = safe_layer_paths(artifact, source)
    wanted = {
        layer.digest: (layer, path)
        for layer, path in zip(artifact.layers, paths, strict=True)
        if is_tar_layer(layer)
    }
    if not wanted:
        return {}
    if folder is None:
        with owned_temp_dir(Path(tempfile.gettempdir())) as tmp:
            return tar_archives(
                store, artifact, source=source, folder=tmp, progress=progress, workers=workers
            )
    shown = progress or NoProgress()

    def read(item: tuple[Descriptor, str]) -> tuple[str, ArchiveFiles]:
        layer, path = item
        blob = tar_blob_path(folder, layer)
        store.fetch_blob(layer, blob, shown, path)
        where = f"{source} ({path})"
        return layer.digest, archive_files(list_entries(blob, where, layer.size), where)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(read, wanted.values()))


# --- signing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRecord:
    """One bundle stored as a referrer of the version."""

    kind: str  # version or files
    record: str  # the referrer manifest digest
    bundle: str  # the bundle blob digest


def sign_version(
    store: Store,
    artifact: ModelArtifact,
    manifest_size: int,
    signer: SigningKey,
    *,
    name: str,
    version: str | None,
    source: str,
    now: Callable[[], float] = time.time,
) -> tuple[SignedRecord, ...]:
    """Sign the version's files and its manifest digest; store both bundles as referrers.

    The files of tar layers are read from the store, once (see :func:`tar_archives`). The
    version's manifest is not touched: its digest never changes. Nothing is stored when a
    statement cannot be made (ArtifactError, UnsafeArchive).
    """
    archives = tar_archives(store, artifact, source=source)
    files = layer_files(artifact, source, archives)
    created = precise_time(now())
    statements = (
        (
            KIND_FILES,
            FILES_PREDICATE,
            files_statement(name, files, allow_symlinks=follows_symlinks(archives)),
        ),
        (
            KIND_VERSION,
            VERSION_PREDICATE,
            version_statement(
                name, artifact.digest, version=version, signed_at=created, files=files
            ),
        ),
    )
    bundles = [
        (kind, predicate, sign_statement(statement, signer.key, signer.material()))
        for kind, predicate, statement in statements
    ]
    for _kind, _predicate, data in bundles:
        if len(data) > MAX_BUNDLE_BYTES:
            raise ArtifactError(
                f"{source}: its signed files statement would take {len(data):,} bytes, over the "
                f"{MAX_BUNDLE_BYTES:,} a verifier reads ({len(files):,} files); nothing was signed"
            )
    out = []
    for kind, predicate, data in bundles:
        record = attach_bundle(store, artifact.digest, manifest_size, data, predicate, created)
        out.append(SignedRecord(kind, record, bundle_descriptor(data).digest))
    return tuple(out)


def attach_bundle(
    store: Store, digest: str, manifest_size: int, bundle: bytes, predicate_type: str, created: str
) -> str:
    """Store a Sigstore bundle as a referrer of the version ``digest``; the record's digest.

    The bundle blob first, then the referrer manifest (cosign's layout), then the referrers
    index (the registry's API, or the ``sha256-<hex>`` fallback tag).
    """
    subject = Descriptor(OCI_MANIFEST, digest, manifest_size)
    blob = bundle_descriptor(bundle)
    store.push_blob(BlobSource(blob, "signature", data=bundle), NoProgress())
    manifest = bundle_manifest(subject, blob, predicate_type, created)
    entry = push_referrer(store, subject, manifest, BUNDLE_MEDIA_TYPE, tag=None, created=created)
    return entry.digest


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a version's signatures against a policy."""

    verdict: Verdict
    files: Mapping[str, str] | None  # the version's files (path → digest), when coverable
    # The trusted files bundle (a model-signing signature) of the first trusted signer.
    files_bundle: bytes | None = field(default=None, repr=False)
    # The files inside each tar layer (layer digest → its files), as they were checked.
    archives: Mapping[str, ArchiveFiles] = field(default_factory=dict, repr=False)

    @property
    def trusted(self) -> bool:
        return self.verdict.trusted

    @property
    def checks(self) -> tuple[SignatureCheck, ...]:
        return self.verdict.checks


def _fetch_bundle(store: Store, entry: Descriptor, digest: str) -> bytes:
    """The bundle bytes behind one referrer entry; BadSignature when the record is broken.

    A registry that fails (RemoteError, exit 3) is not a bad signature and is raised as is.
    """
    try:
        found = store.find_manifest(entry.digest)
    except IntegrityError:
        raise BadSignature("its referrer manifest does not match its digest") from None
    if found is None:
        raise BadSignature("its referrer manifest is missing")
    layer = bundle_layer(found[0], digest)
    if not store.blob_exists(layer):
        raise BadSignature(f"its bundle blob {layer.digest} is missing")
    try:
        return store.read_blob(layer, layer.size)
    except IntegrityError:
        raise BadSignature("its bundle blob does not match its digest") from None


def _version_files(
    store: Store,
    artifact: ModelArtifact,
    *,
    source: str,
    tar_folder: Path | None,
    progress: Progress | None,
    workers: int,
) -> tuple[dict[str, str] | None, dict[str, ArchiveFiles]]:
    """The version's files as a files statement must list them (None when its paths are not
    safe), with the listing of each tar layer; Untrusted when a tar layer cannot be listed."""
    try:
        safe_layer_paths(artifact, source)
    except ArtifactError:
        return None, {}  # the checks say so: files that are not plain files
    try:
        archives = tar_archives(
            store, artifact, source=source, folder=tar_folder, progress=progress, workers=workers
        )
        return layer_files(artifact, source, archives), archives
    except (ArtifactError, UnsafeArchive) as exc:
        raise Untrusted(f"{exc}; so no files statement covers this version: untrusted") from None


def signature_checks(
    store: Store,
    artifact: ModelArtifact,
    policy: Policy,
    *,
    source: str,
    at: dt.datetime | None = None,
    workers: int = 4,
    tar_folder: Path | None = None,
    progress: Progress | None = None,
) -> Verification:
    """Every signature of the version checked against ``policy`` (nothing raised for them).

    The files inside tar layers are listed only when a signer the policy trusts made a files
    statement to check them against: each tar blob is then fetched into
    ``tar_folder`` and read there, see :func:`tar_archives`. Untrusted (exit 5) when such a
    tar layer cannot be listed at all.
    """
    when = at or dt.datetime.now(dt.timezone.utc)
    entries = list_referrers(store, artifact.digest, BUNDLE_MEDIA_TYPE)
    entries.sort(key=lambda e: e.annotations.get(ANN_CREATED, ""), reverse=True)
    entries = entries[:MAX_BUNDLES]
    has_tar = any(is_tar_layer(layer) for layer in artifact.layers)

    def version_files() -> tuple[dict[str, str] | None, dict[str, ArchiveFiles]]:
        return _version_files(
            store,
            artifact,
            source=source,
            tar_folder=tar_folder,
            progress=progress,
            workers=workers,
        )

    files: dict[str, str] | None
    if not has_tar:
        files, listed = version_files()
    else:
        files, listed = None, {}  # until a trusted files statement needs them (below)

    def fetch(entry: Descriptor) -> tuple[Descriptor, bytes | SignatureCheck]:
        try:
            return entry, _fetch_bundle(store, entry, artifact.digest)
        except BadSignature as exc:
            created = entry.annotations.get(ANN_CREATED)
            failed = SignatureCheck(
                entry.digest, "other", False, problem=exc.problem, created=created
            )
            return entry, failed

    def check(
        entry: Descriptor, data: bytes | SignatureCheck, files: Mapping[str, str] | None
    ) -> tuple[SignatureCheck, bytes | None]:
        if isinstance(data, SignatureCheck):
            return data, None
        created = entry.annotations.get(ANN_CREATED)
        result = check_bundle(
            data,
            entry.digest,
            digest=artifact.digest,
            files=files,
            policy=policy,
            at=when,
            created=created,
        )
        return result, data

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        bundles = list(pool.map(fetch, entries))
    done = [check(entry, data, files) for entry, data in bundles]
    # A folder layer's blob is fetched only for a files statement by a signer the policy trusts
    # (the check then names the signer): a stranger's or a broken bundle costs no download.
    # Only the files statements are checked again, against the listing.
    if has_tar and any(c.kind == KIND_FILES and c.signer_id for c, _ in done):
        files, listed = version_files()
        done = [
            check(entry, data, files) if first.kind == KIND_FILES else (first, raw)
            for (entry, data), (first, raw) in zip(bundles, done, strict=True)
        ]
    outcome = verdict(artifact.digest, [c for c, _ in done])
    trusted_ids = {c.signer_id for c in outcome.checks if c.signer in outcome.signers}
    files_bundle = next(
        (
            data
            for c, data in done
            if data is not None
            and c.trusted
            and c.kind == KIND_FILES
            and c.signer_id in trusted_ids
        ),
        None,
    )
    return Verification(outcome, files, files_bundle, listed)


def untrusted_message(source: str, verification: Verification, policy: Policy) -> str:
    return (
        f"{source}@{verification.verdict.digest}: untrusted: {verification.verdict.reason()}; "
        f"trusted: {policy.describe()}; a trusted signer can sign it with 'ci-modelver sign'"
    )


def verify_version(
    store: Store,
    artifact: ModelArtifact,
    policy: Policy,
    *,
    source: str,
    at: dt.datetime | None = None,
    workers: int = 4,
    tar_folder: Path | None = None,
    progress: Progress | None = None,
) -> Verification:
    """The version's signature checks; Untrusted (exit 5) unless one trusted signer signed both
    its manifest digest and files that match its layers (the files inside tar layers too, read
    as :func:`signature_checks` says)."""
    verification = signature_checks(
        store,
        artifact,
        policy,
        source=source,
        at=at,
        workers=workers,
        tar_folder=tar_folder,
        progress=progress,
    )
    if not verification.trusted:
        raise Untrusted(untrusted_message(source, verification, policy))
    return verification


def signed_by(store: Store, artifact: ModelArtifact, signer: SigningKey, *, source: str) -> bool:
    """Whether ``signer``'s key already signed both statements of this version."""
    policy = Policy((TrustedKey("signing key", signer.public),))
    return signature_checks(store, artifact, policy, source=source).trusted


# --- the trust policy on promotion, and signed alias moves ---------------------------------------

TRUSTED_KEYS_VARIABLE = "MODELVER_TRUSTED_KEYS"
_PUBLIC_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]{1,40}-----.*?-----END [A-Z0-9 ]{1,40}-----", re.S)


def trusted_keys_from_pem(pem: bytes, where: str) -> tuple[TrustedKey, ...]:
    """Every public key of PEM text holding one or more ``PUBLIC KEY`` blocks (an action input).

    The keys are named ``<where> #1``, ``#2``…; InputError when a block is not a public key.
    """
    blocks = _PUBLIC_PEM.findall(pem)
    if not blocks:
        raise InputError(f"{where}: holds no PEM public key; give PEM text or file paths")
    if len(blocks) > MAX_KEYS:
        raise InputError(f"{where}: at most {MAX_KEYS} trusted keys")
    return tuple(
        TrustedKey(f"#{i + 1}", keys.load_public_key(block, f"{where} (key #{i + 1})"))
        for i, block in enumerate(blocks)
    )


def _env_key_files(settings: Settings) -> list[str]:
    raw = settings.env.get(TRUSTED_KEYS_VARIABLE, "")
    return [p.strip() for part in raw.splitlines() for p in part.split(os.pathsep) if p.strip()]


def promotion_policy(
    settings: Settings,
    *,
    key_files: Sequence[str] = (),
    ca: str | None = None,
    identity: str | None = None,
    require: bool = False,
    pem: bytes | None = None,
    key_flag: str = "trusted-key",
) -> Policy | None:
    """Who must have signed a version before an alias may point at it; None when nobody is named.

    From flags (``--trusted-key`` repeatable, ``--ca``/``--cert-identity``), else the paths in
    ``MODELVER_TRUSTED_KEYS`` (one per line, or separated like PATH), and PEM text given by an
    action input: never from the version itself. Naming anyone trusted implies requiring a
    trusted signature; ``require`` with nobody named is a usage error (exit 2).
    """
    if len(key_files) > MAX_KEYS:
        raise InputError(f"{settings.option(key_flag)}: at most {MAX_KEYS} trusted keys")
    policy = load_policy(settings, key_files=key_files, ca=ca, identity=identity, key_flag=key_flag)
    extra: tuple[TrustedKey, ...] = ()
    if pem:
        extra = trusted_keys_from_pem(pem, settings.option(key_flag))
    elif not key_files:
        from_env = _env_key_files(settings)
        if len(from_env) > MAX_KEYS:
            raise InputError(f"{TRUSTED_KEYS_VARIABLE}: at most {MAX_KEYS} trusted keys")
        extra = tuple(
            TrustedKey(
                Path(name).name,
                keys.load_public_key(
                    read_local(name, settings, TRUSTED_KEYS_VARIABLE),
                    f"{TRUSTED_KEYS_VARIABLE} {name}",
                ),
            )
            for name in from_env
        )
    if extra:
        policy = Policy((*policy.keys, *extra), policy.roots, policy.identity)
    if policy.empty:
        if require:
            raise InputError(
                f"{settings.option('require-signature')}: name who is trusted: "
                f"{settings.option(key_flag)} PUB (or {TRUSTED_KEYS_VARIABLE})"
                + ("" if settings.surface == ACTION else ", or --ca ROOTS --cert-identity NAME")
            )
        return None
    return policy


def sign_move(record_digest: str, alias: str, signer: SigningKey, signed_at: str) -> bytes:
    """The bundle over one alias-move record (its manifest digest); nothing is stored yet."""
    return sign_statement(
        move_statement(record_digest, alias, signed_at), signer.key, signer.material()
    )


def attach_move_signature(
    store: Store, record_digest: str, record_size: int, bundle: bytes, created: str
) -> str:
    """Store a record's bundle as a referrer of the record; the bundle referrer's digest."""
    return attach_bundle(store, record_digest, record_size, bundle, MOVE_PREDICATE, created)


def move_signature(
    store: Store, record_digest: str, policy: Policy, *, at: dt.datetime | None = None
) -> MoveTrust:
    """What the bundles stored as referrers of one alias-move record prove under ``policy``.

    A broken bundle record is a problem on that record's check; a failing registry (exit 3) is
    raised as is.
    """
    when = at or dt.datetime.now(dt.timezone.utc)
    entries = list_referrers(store, record_digest, BUNDLE_MEDIA_TYPE)
    entries.sort(key=lambda e: e.annotations.get(ANN_CREATED, ""), reverse=True)
    checks = []
    for entry in entries[:MAX_BUNDLES]:
        try:
            data = _fetch_bundle(store, entry, record_digest)
        except BadSignature as exc:
            checks.append(BundleCheck(None, exc.problem))
            continue
        checks.append(check_move_bundle(data, record_digest, policy, when))
    return move_trust(checks)

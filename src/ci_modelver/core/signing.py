"""Signatures of versions: Sigstore bundles (v0.3) with a DSSE envelope around an in-toto
statement, and the OCI referrer manifests that carry them (pure: no I/O).

Two statements are signed for a version, each in a bundle of its own:

- the **files** statement, in the OpenSSF model-signing format (predicate type
  ``https://model_signing/signature/v1.0``): one resource per file, named by its path relative to
  the model folder, with its sha256. For a raw ModelPack layer the layer digest already is the
  file's sha256, so the statement is built from the manifest and nothing is hashed again. The
  ``model_signing`` tool (PyPI ``model-signing``) verifies a pulled folder against it.
- the **version** statement, whose subject is the OCI manifest digest: the manifest covers the
  config, every layer and the version record (code, data digests, hyperparameters, metrics).

Formats followed: DSSE v1 (the PAE encoding), in-toto Statement v1, the Sigstore bundle v0.3 JSON
mapping, and cosign's bundle layout in OCI registries (artifactType = the bundle media type, the
bundle as the one layer, ``subject`` = the version's manifest).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ci_modelver.core import json_bounds, keys
from ci_modelver.core.audit import EMPTY_DESCRIPTOR
from ci_modelver.core.modelpack import (
    ANN_CREATED,
    ANN_TITLE,
    OCI_MANIFEST,
    Descriptor,
    ModelArtifact,
    canonical_json,
    is_tar_layer,
    safe_layer_paths,
    sha256_digest,
)
from ci_modelver.errors import ArtifactError, BadSignature, JSONRefused

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# The same version, as older clients spell it in the bundle's own mediaType field.
# Sigstore bundle v0.3 as we and cosign store them.
BUNDLE_TYPES = (BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3")
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
FILES_PREDICATE = "https://model_signing/signature/v1.0"
VERSION_PREDICATE = "https://github.com/ci-modelver/ci-modelver/version-signature/v1"
ANN_BUNDLE_CONTENT = "dev.sigstore.bundle.content"
ANN_BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"
# A files statement lists every layer of a manifest of at most 4 MiB: base64 and the envelope
# keep it well under this.
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
MAX_SIGNATURES_PER_ENVELOPE = 16
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
KIND_FILES = "files"
KIND_VERSION = "version"
KIND_OTHER = "other"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII decimals of bytes.
    """
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadSignature(f"its {what} is missing or not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadSignature(f"its {what} is not base64") from None


# --- statements ---------------------------------------------------------------------------


def _path_key(path: str) -> tuple[str, ...]:
    # model_signing orders resources as POSIX paths, component by component.
    return tuple(path.split("/"))


def files_root(resources: Sequence[tuple[str, str]]) -> str:
    """The files statement's subject digest: sha256 over the raw resource digests, in order."""
    hasher = hashlib.sha256()
    for _name, hexdigest in resources:
        hasher.update(bytes.fromhex(hexdigest))
    return hasher.hexdigest()


def files_statement(
    name: str, files: Mapping[str, str], *, allow_symlinks: bool = False
) -> dict[str, Any]:
    """The model-signing statement for ``files`` (relative path → ``sha256:<hex>``).

    ``allow_symlinks`` records that the version unpacks symlinks (listed with their target's
    digest, as ``model_signing --allow_symlinks`` hashes them).
    """
    ordered = sorted(
        ((path, digest.removeprefix("sha256:")) for path, digest in files.items()),
        key=lambda item: _path_key(item[0]),
    )
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": files_root(ordered)}}],
        "predicateType": FILES_PREDICATE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": allow_symlinks,
            },
            "resources": [
                {"name": path, "algorithm": "sha256", "digest": hexdigest}
                for path, hexdigest in ordered
            ],
        },
    }


def version_statement(
    name: str, digest: str, *, version: str | None, signed_at: str, files: Mapping[str, str]
) -> dict[str, Any]:
    """The statement over the OCI manifest ``digest``: the whole version record."""
    ordered = sorted(
        ((p, d.removeprefix("sha256:")) for p, d in files.items()), key=lambda i: _path_key(i[0])
    )
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": VERSION_PREDICATE,
        "predicate": {
            "mediaType": OCI_MANIFEST,
            "name": name,
            "version": version,
            "signedAt": signed_at,
            "files": {"sha256": files_root(ordered), "count": len(ordered)},
        },
    }


# --- the files of tar layers ---------------------------------------------------------------

EntryKind = Literal["file", "dir", "symlink", "hardlink"]
MAX_SYMLINK_HOPS = 40  # as Linux: more links than this in one path is a loop


@dataclass(frozen=True)
class ArchiveEntry:
    """One member of a tar layer, as the archive holds it (read by an adapter).

    ``name`` is where pull unpacks it, relative to the pulled folder, normalised (no ``./``,
    no trailing ``/``); ``digest`` is the sha256 of a file's content; ``linkname`` is a
    symlink's text (relative to its own folder) or a hardlink's target (an archive name).
    """

    name: str
    kind: EntryKind
    digest: str = ""
    linkname: str = ""


@dataclass(frozen=True)
class ArchiveFiles:
    """What a files statement lists for one tar layer: every file it unpacks to."""

    files: Mapping[str, str]  # path relative to the pulled folder → ``sha256:<hex>``
    symlinks: tuple[str, ...] = ()  # followed (a file's digest) or to a folder (nothing listed)


def _refuse(where: str, name: str, why: str) -> ArtifactError:
    return ArtifactError(
        f"{where}: tar entry '{name}' cannot be listed in a signed files statement the way "
        f"model_signing hashes the pulled folder: {why}"
    )


def _resolve(
    start: str, link: str, kinds: Mapping[str, ArchiveEntry], folders: set[str]
) -> tuple[str | None, str]:
    """Where the symlink ``start`` (text ``link``) leads among the archive's entries, as the
    kernel resolves it component by component: (entry name or None, the path it reached)."""
    pending = list(reversed(link.split("/")))
    resolved = start.split("/")[:-1]
    hops = 1
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None, "/".join(["..", *pending[::-1]])
            resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        entry = kinds.get(candidate)
        if entry is not None and entry.kind == "symlink":
            hops += 1
            if hops > MAX_SYMLINK_HOPS or entry.linkname.startswith("/"):
                return None, candidate
            pending.extend(reversed(entry.linkname.split("/")))
            continue
        resolved.append(part)
    reached = "/".join(resolved)
    if reached in kinds or reached in folders:
        return reached, reached
    return None, reached


def _check_parents(final: Mapping[str, ArchiveEntry], where: str) -> set[str]:
    """Every folder of the archive (listed or implied by a name); ArtifactError for an entry
    below a symlink or a file (unpacking would write through the link, or fail)."""
    folders: set[str] = {name for name, e in final.items() if e.kind == "dir"}
    for name in final:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            above = final.get(parent)
            if above is not None and above.kind != "dir":
                what = "a symlink" if above.kind == "symlink" else "a file"
                raise _refuse(where, name, f"it lies below '{parent}', which is {what}")
            folders.add(parent)
    return folders


def _followed(
    entry: ArchiveEntry, final: Mapping[str, ArchiveEntry], folders: set[str], where: str
) -> str | None:
    """The digest a symlink is hashed with (its target file's), None for one to a folder."""
    if entry.linkname.startswith("/"):
        raise _refuse(where, entry.name, f"it is a symlink to the absolute '{entry.linkname}'")
    found, reached = _resolve(entry.name, entry.linkname, final, folders)
    if found is None:
        raise _refuse(
            where,
            entry.name,
            f"it is a symlink to '{entry.linkname}', which leads to '{reached}', not to a file "
            "or folder of this layer",
        )
    target = final.get(found)
    if target is not None and target.kind == "hardlink":
        target = final.get(target.linkname)
    return target.digest if target is not None and target.kind == "file" else None


def archive_files(entries: Sequence[ArchiveEntry], where: str) -> ArchiveFiles:
    """The files one tar layer unpacks to, as ``model_signing --allow_symlinks`` hashes them.

    A later entry of the same name replaces an earlier one (as unpacking does). A hardlink is
    its target's content; a symlink to a file is listed with that file's digest, one to a folder
    adds nothing (model_signing does not descend into it). ArtifactError, naming the entry, for
    what a statement cannot describe the same way: a symlink leading out of this layer's entries,
    to nothing or in a loop, an absolute symlink, or an entry below a symlink or a file.
    """
    final: dict[str, ArchiveEntry] = {}
    for entry in entries:
        final.pop(entry.name, None)  # keep the archive's order of last appearance
        final[entry.name] = entry
    folders = _check_parents(final, where)
    files: dict[str, str] = {}
    symlinks: list[str] = []
    for name, entry in final.items():
        digest: str | None = None
        if entry.kind == "file":
            digest = entry.digest
        elif entry.kind == "hardlink":
            target = final.get(entry.linkname)
            if target is None or target.kind != "file":
                raise _refuse(where, name, f"it is a hardlink to '{entry.linkname}', not a file")
            digest = target.digest
        elif entry.kind == "symlink":
            symlinks.append(name)
            digest = _followed(entry, final, folders, where)
        if digest is not None:
            files[name] = digest
    return ArchiveFiles(files, tuple(sorted(symlinks)))


def entry_name(raw: str) -> str:
    """A tar member name as the path it unpacks to: ``./a//b/`` → ``a/b``."""
    return posixpath.normpath(raw).lstrip("/") if raw not in ("", ".", "./") else "."


def layer_files(
    artifact: ModelArtifact, source: str, archives: Mapping[str, ArchiveFiles] | None = None
) -> dict[str, str]:
    """Every file of a version (path relative to the model folder → ``sha256:<hex>``).

    A raw layer is its file (the layer digest is the file's sha256); a tar layer contributes the
    files it unpacks to, from ``archives`` (layer digest → its files, read by the caller).
    ArtifactError when a tar layer has no listing there, or when two layers give the same path.
    """
    paths = safe_layer_paths(artifact, source)
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    for i, (layer, path) in enumerate(zip(artifact.layers, paths, strict=True)):
        if not is_tar_layer(layer):
            found: Mapping[str, str] = {path: layer.digest}
        elif archives is not None and layer.digest in archives:
            found = archives[layer.digest].files
        else:
            raise ArtifactError(
                f"{source}: layers[{i}] '{path}' is a tar layer whose files were not read; "
                "a signed files statement lists every file inside it"
            )
        for name, digest in found.items():
            if name in out:
                raise ArtifactError(
                    f"{source}: layers[{i}] '{path}' unpacks '{name}', which {origin[name]} "
                    "gives too; a signed files statement lists each path once"
                )
            out[name], origin[name] = digest, f"layer '{path}'"
    return out


def follows_symlinks(archives: Mapping[str, ArchiveFiles]) -> bool:
    """Whether any tar layer unpacks a symlink (``model_signing`` then needs
    ``--allow_symlinks``)."""
    return any(a.symlinks for a in archives.values())


@dataclass(frozen=True)
class Statement:
    """An in-toto statement read from a verified envelope."""

    predicate_type: str
    subjects: tuple[tuple[str, Mapping[str, str]], ...]
    predicate: Mapping[str, Any]

    @property
    def kind(self) -> str:
        if self.predicate_type == FILES_PREDICATE:
            return KIND_FILES
        if self.predicate_type == VERSION_PREDICATE:
            return KIND_VERSION
        return KIND_OTHER

    def only_subject(self) -> tuple[str, str]:
        """Name and sha256 hex of the statement's single subject; BadSignature otherwise."""
        if len(self.subjects) != 1:
            raise BadSignature(f"its statement has {len(self.subjects)} subjects, not one")
        name, digests = self.subjects[0]
        value = digests.get("sha256")
        if not isinstance(value, str) or not _HEX64.match(value):
            raise BadSignature("its statement's subject has no sha256 digest")
        return name, value

    def signed_at(self) -> str | None:
        value = self.predicate.get("signedAt")
        return value if isinstance(value, str) else None

    def subject_digest(self) -> str:
        return "sha256:" + self.only_subject()[1]

    def files(self) -> dict[str, str]:
        """The files a model-signing statement lists (path → ``sha256:<hex>``).

        Checked like ``model_signing verify`` checks them: file serialization with sha256, every
        resource a sha256, no path twice, and the subject digest equal to the digest over the
        resources in the listed order. BadSignature otherwise.
        """
        serialization = self.predicate.get("serialization")
        if not isinstance(serialization, dict) or serialization.get("method") != "files":
            raise BadSignature("its files statement does not use file serialization")
        if serialization.get("hash_type") != "sha256":
            raise BadSignature("its files statement does not hash files with sha256")
        resources = self.predicate.get("resources")
        if not isinstance(resources, list):
            raise BadSignature("its files statement has no resources list")
        listed: list[tuple[str, str]] = []
        for item in resources:
            if not isinstance(item, dict):
                raise BadSignature("its files statement has a resource that is not an object")
            name, algorithm, digest = item.get("name"), item.get("algorithm"), item.get("digest")
            if not isinstance(name, str) or algorithm != "sha256" or not isinstance(digest, str):
                raise BadSignature("its files statement has a resource without a sha256 digest")
            if not _HEX64.match(digest):
                raise BadSignature("its files statement has a resource digest that is not sha256")
            listed.append((name, digest))
        out = {name: "sha256:" + digest for name, digest in listed}
        if len(out) != len(listed):
            raise BadSignature("its files statement lists a path twice")
        if files_root(listed) != self.only_subject()[1]:
            raise BadSignature("its files statement's subject digest does not match its resources")
        return out


def parse_statement(payload: bytes) -> Statement:
    """The in-toto statement of a DSSE payload; BadSignature when it is not one."""
    try:
        doc = json_bounds.parse(payload, max_bytes=MAX_BUNDLE_BYTES)
    except JSONRefused as exc:
        raise BadSignature(f"its statement {exc.problem}") from None
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise BadSignature(f"its payload is not an in-toto statement ({STATEMENT_TYPE})")
    kind, predicate, raw_subjects = (
        doc.get("predicateType"),
        doc.get("predicate"),
        doc.get("subject"),
    )
    if not isinstance(kind, str) or not isinstance(predicate, dict):
        raise BadSignature("its statement has no predicateType or predicate")
    if not isinstance(raw_subjects, list):
        raise BadSignature("its statement has no subject list")
    subjects = []
    for raw in raw_subjects:
        if not isinstance(raw, dict) or not isinstance(raw.get("digest"), dict):
            raise BadSignature("its statement has a subject without digests")
        name = raw.get("name")
        digests = {str(k): v for k, v in raw["digest"].items() if isinstance(v, str)}
        subjects.append((name if isinstance(name, str) else "", digests))
    return Statement(kind, tuple(subjects), predicate)


def files_mismatch(
    signed: Mapping[str, str], actual: Mapping[str, str], limit: int = 3
) -> str | None:
    """How the signed files differ from the version's (None when they are the same)."""
    problems: list[str] = []
    for path in sorted(set(actual) - set(signed)):
        problems.append(f"'{path}' is not signed")
    for path in sorted(set(signed) - set(actual)):
        problems.append(f"'{path}' is signed but not in the version")
    for path in sorted(set(signed) & set(actual)):
        if signed[path] != actual[path]:
            problems.append(f"'{path}' is {actual[path]}, signed as {signed[path]}")
    if not problems:
        return None
    more = f" and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


# --- bundles ------------------------------------------------------------------------------


def key_material(public: keys.PublicKey) -> dict[str, Any]:
    """Verification material naming a key by its hint (the verifier brings the key)."""
    return {"publicKey": {"hint": keys.key_hint(public)}}


def certificate_material(chain: Sequence[bytes]) -> dict[str, Any]:
    """Verification material carrying the certificate chain (leaf first, DER)."""
    return {"x509CertificateChain": {"certificates": [{"rawBytes": _b64(c)} for c in chain]}}


def sign_statement(
    statement: Mapping[str, Any], key: keys.PrivateKey, material: Mapping[str, Any]
) -> bytes:
    """A Sigstore bundle (JSON bytes): the statement in a DSSE envelope signed by ``key``."""
    payload = canonical_json(dict(statement))
    signature = keys.sign(key, pae(INTOTO_PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {**material, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": _b64(payload),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": _b64(signature), "keyid": ""}],
        },
    }
    return canonical_json(bundle)


@dataclass(frozen=True)
class Bundle:
    """What a Sigstore bundle carries, read but not yet verified."""

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]
    key_hint: str | None = None
    certificates: tuple[bytes, ...] = ()  # DER, leaf first

    def signed_message(self) -> bytes:
        return pae(self.payload_type, self.payload)


def _material(raw: Any) -> tuple[str | None, tuple[bytes, ...]]:
    if not isinstance(raw, dict):
        raise BadSignature("it has no verificationMaterial")
    chain = raw.get("x509CertificateChain")
    single = raw.get("certificate")
    if isinstance(chain, dict):
        certificates = chain.get("certificates")
        if not isinstance(certificates, list) or not certificates:
            raise BadSignature("its certificate chain is empty")
        if len(certificates) > keys.MAX_CHAIN:
            raise BadSignature(f"its certificate chain has more than {keys.MAX_CHAIN} certificates")
        return None, tuple(
            _unb64(c.get("rawBytes") if isinstance(c, dict) else None, "certificate")
            for c in certificates
        )
    if isinstance(single, dict):
        return None, (_unb64(single.get("rawBytes"), "certificate"),)
    public = raw.get("publicKey")
    if isinstance(public, dict):
        hint = public.get("hint")
        return (hint if isinstance(hint, str) else None), ()
    raise BadSignature("its verificationMaterial names neither a public key nor a certificate")


def parse_bundle(data: bytes) -> Bundle:
    """A bundle's envelope and verification material; BadSignature when it is not a DSSE
    Sigstore bundle v0.3 (nothing is verified here)."""
    try:
        doc = json_bounds.parse(data, max_bytes=MAX_BUNDLE_BYTES)
    except JSONRefused as exc:
        raise BadSignature(f"its bundle {exc.problem}") from None
    if not isinstance(doc, dict):
        raise BadSignature("its bundle is not a JSON object")
    if doc.get("mediaType") not in BUNDLE_TYPES:
        raise BadSignature(f"its bundle is not a Sigstore bundle v0.3 ({BUNDLE_MEDIA_TYPE})")
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise BadSignature("its bundle has no DSSE envelope (only DSSE bundles are supported)")
    payload_type = envelope.get("payloadType")
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise BadSignature(f"its envelope's payloadType is not {INTOTO_PAYLOAD_TYPE}")
    raw_signatures = envelope.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise BadSignature("its envelope has no signatures")
    if len(raw_signatures) > MAX_SIGNATURES_PER_ENVELOPE:
        raise BadSignature(f"its envelope has more than {MAX_SIGNATURES_PER_ENVELOPE} signatures")
    signatures = tuple(
        _unb64(s.get("sig") if isinstance(s, dict) else None, "signature") for s in raw_signatures
    )
    hint, certificates = _material(doc.get("verificationMaterial"))
    return Bundle(
        payload_type,
        _unb64(envelope.get("payload"), "payload"),
        signatures,
        hint,
        certificates,
    )


# --- the referrer that carries a bundle ---------------------------------------------------


def bundle_descriptor(bundle: bytes) -> Descriptor:
    digest = sha256_digest(bundle)
    title = digest.replace(":", "-", 1) + ".sigstore.json"
    return Descriptor(BUNDLE_MEDIA_TYPE, digest, len(bundle), {ANN_TITLE: title})


def bundle_manifest(
    subject: Descriptor, bundle: Descriptor, predicate_type: str, created: str
) -> bytes:
    """The referrer manifest of one bundle, laid out as cosign's bundle spec says."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": EMPTY_DESCRIPTOR.to_json(),
        "layers": [bundle.to_json()],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": {
            ANN_BUNDLE_CONTENT: "dsse-envelope",
            ANN_BUNDLE_PREDICATE: predicate_type,
            ANN_CREATED: created,
        },
    }
    return canonical_json(document)


def bundle_layer(data: bytes, subject_digest: str) -> Descriptor:
    """The bundle descriptor of a referrer manifest; BadSignature unless it is one of ours to read:
    a bundle artifact about ``subject_digest`` with exactly one bundle layer."""
    try:
        doc = json_bounds.parse(data)
    except JSONRefused as exc:
        raise BadSignature(f"its referrer manifest {exc.problem}") from None
    if not isinstance(doc, dict) or doc.get("artifactType") != BUNDLE_MEDIA_TYPE:
        raise BadSignature("its referrer manifest is not a Sigstore bundle artifact")
    subject = doc.get("subject")
    if not isinstance(subject, dict) or subject.get("digest") != subject_digest:
        raise BadSignature("its referrer manifest refers to another manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise BadSignature("its referrer manifest does not have exactly one bundle layer")
    raw = layers[0]
    digest, size, media = raw.get("digest"), raw.get("size"), raw.get("mediaType")
    if (
        not isinstance(digest, str)
        or not re.match(r"^sha256:[0-9a-f]{64}$", digest)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or media not in BUNDLE_TYPES
    ):
        raise BadSignature("its referrer manifest's bundle layer is not a bundle descriptor")
    if size > MAX_BUNDLE_BYTES:
        raise BadSignature(f"its bundle is {size:,} bytes, over the {MAX_BUNDLE_BYTES:,} limit")
    return Descriptor(media, digest, size)

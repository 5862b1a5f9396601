"""Trust decisions over signature bundles already fetched (pure: no I/O).

A :class:`Policy` names who is trusted: public keys, and/or certificate roots with the one
identity a signing certificate must name. It comes from flags, environment or action inputs set
in the workflow, never from the candidate version itself (its author writes that).

Each bundle gets a :class:`SignatureCheck` (who signed what, when, and whether it is trusted);
a version is trusted when one trusted signer has signed both its version statement (the
manifest digest) and a files statement that matches the manifest's layers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ci_modelver.core import keys
from ci_modelver.core.signing import (
    KIND_FILES,
    KIND_OTHER,
    KIND_VERSION,
    Bundle,
    Statement,
    files_mismatch,
    parse_bundle,
    parse_statement,
)
from ci_modelver.errors import BadSignature, Untrusted

MAX_KEYS = 32  # trusted keys tried on a bundle whose hint names none of them


@dataclass(frozen=True)
class TrustedKey:
    """A public key the policy trusts, with the name it was given by (its file)."""

    name: str
    key: keys.PublicKey

    @property
    def fingerprint(self) -> str:
        return keys.fingerprint(self.key)


@dataclass(frozen=True)
class Policy:
    """Who is trusted: keys, or certificates that chain to ``roots`` and name ``identity``."""

    keys: tuple[TrustedKey, ...] = ()
    roots: tuple[x509.Certificate, ...] = ()
    identity: str | None = None

    def __post_init__(self) -> None:
        if bool(self.roots) != bool(self.identity):
            raise ValueError("certificate roots and an identity go together")

    @property
    def empty(self) -> bool:
        return not self.keys and not self.roots

    def describe(self) -> str:
        parts = [f"key {k.name}" for k in self.keys]
        if self.roots:
            parts.append(f"certificates for {self.identity}")
        return ", ".join(parts) or "nobody"


@dataclass(frozen=True)
class Signer:
    """Who made a signature: ``id`` pairs the bundles of one signer (the key's fingerprint)."""

    id: str
    shown: str


def _by_key(bundle: Bundle, policy: Policy) -> Signer:
    message = bundle.signed_message()
    hinted = [k for k in policy.keys if bundle.key_hint and keys.key_hint(k.key) == bundle.key_hint]
    candidates = hinted or list(policy.keys[:MAX_KEYS])
    for trusted in candidates:
        if any(keys.verifies(trusted.key, s, message) for s in bundle.signatures):
            return Signer(trusted.fingerprint, f"key {trusted.name} ({trusted.fingerprint[:19]}…)")
    if hinted:
        raise BadSignature(f"its signature does not verify with key {hinted[0].name}")
    if not policy.keys:
        raise Untrusted("it is signed by a key and no trusted key was given (--key)")
    hint = f" (key hint {bundle.key_hint[:16]}…)" if bundle.key_hint else ""
    raise Untrusted(f"it is signed by an unknown key{hint}: none of the trusted keys verifies it")


def _by_certificate(bundle: Bundle, policy: Policy, at: dt.datetime) -> Signer:
    if not policy.roots or policy.identity is None:
        raise Untrusted(
            "it is signed with a certificate and no certificate roots were given "
            "(--ca ROOTS --cert-identity NAME)"
        )
    key, identity = keys.verify_chain(bundle.certificates, policy.roots, policy.identity, at)
    if not any(keys.verifies(key, s, bundle.signed_message()) for s in bundle.signatures):
        raise BadSignature("its signature does not verify with its certificate's key")
    return Signer(keys.fingerprint(key), f"certificate {identity}")


def open_bundle(data: bytes, policy: Policy, at: dt.datetime) -> tuple[Signer, Statement]:
    """The trusted signer and statement of a bundle; BadSignature or Untrusted otherwise."""
    bundle = parse_bundle(data)
    if not bundle.certificates:
        signer = _by_key(bundle, policy)
    else:
        # A certificate's key that is itself trusted needs no chain: the signature is the key's.
        leaf = keys.certificate_key(bundle.certificates[0])
        known = tuple(k for k in policy.keys if keys.same_key(k.key, leaf))
        signer = _by_key(bundle, Policy(known)) if known else _by_certificate(bundle, policy, at)
    return signer, parse_statement(bundle.payload)


@dataclass(frozen=True)
class SignatureCheck:
    """One signature bundle of a version and what it proved."""

    record: str  # the referrer manifest's digest (where the bundle is stored)
    kind: str  # version, files or other (KIND_*); other when it could not be read
    trusted: bool
    signer: str | None = None
    signer_id: str | None = None
    signed_at: str | None = None
    problem: str | None = None
    created: str | None = None  # the referrer's (unsigned) creation time

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "kind": self.kind,
            "trusted": self.trusted,
            "signer": self.signer,
            "signerId": self.signer_id,
            "signedAt": self.signed_at,
            "created": self.created,
            "problem": self.problem,
        }


def check_bundle(
    data: bytes,
    record: str,
    *,
    digest: str,
    files: Mapping[str, str] | None,
    policy: Policy,
    at: dt.datetime,
    created: str | None = None,
) -> SignatureCheck:
    """Whether one bundle is a trusted statement about the version ``digest`` with ``files``.

    ``files`` is the version's path → digest map (None when it has layers a files statement
    cannot cover). Never raises for the bundle's content: problems land on the check.
    """
    try:
        signer, statement = open_bundle(data, policy, at)
    except Untrusted as exc:  # BadSignature too
        return SignatureCheck(record, KIND_OTHER, False, problem=str(exc), created=created)
    kind = statement.kind

    def result(problem: str | None) -> SignatureCheck:
        return SignatureCheck(
            record,
            kind,
            problem is None,
            signer.shown,
            signer.id,
            statement.signed_at(),
            problem,
            created,
        )

    try:
        if kind == KIND_VERSION:
            signed = statement.subject_digest()
            return result(
                None if signed == digest else f"its statement is for {signed}, not {digest}"
            )
        if kind == KIND_FILES:
            if files is None:
                return result("the version has layers that are not plain files")
            mismatch = files_mismatch(statement.files(), files)
            return result(None if mismatch is None else f"its files do not match: {mismatch}")
    except BadSignature as exc:
        return result(exc.problem)
    return result(f"its statement is of another type ({statement.predicate_type[:100]})")


def trusted_signers(checks: Sequence[SignatureCheck]) -> list[str]:
    """Signer ids with a trusted version statement and a trusted files statement."""
    kinds: dict[str, set[str]] = {}
    for check in checks:
        if check.trusted and check.signer_id:
            kinds.setdefault(check.signer_id, set()).add(check.kind)
    return [s for s, k in kinds.items() if {KIND_VERSION, KIND_FILES} <= k]


@dataclass(frozen=True)
class Verdict:
    """The checks of a version's signatures and who, in the end, vouches for it."""

    digest: str
    checks: tuple[SignatureCheck, ...]
    signers: tuple[str, ...] = field(default_factory=tuple)  # shown names, trusted for both

    @property
    def trusted(self) -> bool:
        return bool(self.signers)

    def reason(self) -> str:
        """Why the version is not trusted (one line)."""
        if not self.checks:
            return "it has no signatures"
        problems = [c.problem for c in self.checks if c.problem]
        kinds = {c.kind for c in self.checks if c.trusted}
        if not problems and kinds == {KIND_VERSION}:
            return "its trusted signature covers the version but no trusted files statement matches"
        if not problems and kinds == {KIND_FILES}:
            return "its trusted signature covers the files but not the version's manifest digest"
        if not problems:
            return "no one trusted signed both its version and its files"
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        return f"{len(self.checks)} signature(s), none trusted for both statements: {first}{more}"


def verdict(digest: str, checks: Sequence[SignatureCheck]) -> Verdict:
    ids = trusted_signers(checks)
    shown = [next(c.signer for c in checks if c.signer_id == i and c.signer) or i for i in ids]
    return Verdict(digest, tuple(checks), tuple(shown))

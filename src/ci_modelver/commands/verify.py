"""``ci-modelver verify``: does a trusted signer vouch for this version? Exit 5 when not."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.store import NoProgress, write_verified
from ci_modelver.core.refs import Reference
from ci_modelver.core.signing import bundle_descriptor
from ci_modelver.core.trust import Policy
from ci_modelver.errors import InputError, Untrusted
from ci_modelver.settings import Settings
from ci_modelver.signatures import Verification, load_policy, signature_checks, untrusted_message
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    add_trust_flags,
    open_store,
    read_model,
    version_of,
    version_target,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "verify",
        parents=[parents.common, parents.remote],
        help="check a version's signatures (exit 5 when untrusted)",
        description="Check that a trusted signer signed this version: its manifest digest (the "
        "whole record) and a files statement that matches its layers (for a folder layer, every "
        "file inside it, hashed from its blob). Prints who signed what and when; exit 5 when no "
        "trusted signature covers the version.",
    )
    p.add_argument(
        "ref", metavar="REF", help="NAME:VERSION, REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
    )
    add_trust_flags(p)
    p.add_argument(
        "--write-signature",
        metavar="FILE",
        help="write the trusted files signature (a Sigstore bundle) to FILE, for "
        "'model_signing verify key DIR --signature FILE' (add --allow_symlinks when a folder "
        "layer holds symlinks)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> VerifyResult:
    return verify(
        args.ref,
        inv.settings,
        key_files=args.trusted_keys,
        ca=args.ca,
        identity=args.cert_identity,
        write_signature=Path(args.write_signature) if args.write_signature else None,
    )


@dataclass(frozen=True)
class VerifyResult:
    """Every signature of the version, checked; ``failure()`` is exit 5 when none is trusted."""

    repository: Reference
    version: str | None
    verification: Verification
    policy: Policy
    written: Path | None = None

    @property
    def digest(self) -> str:
        return self.verification.verdict.digest

    @property
    def ref(self) -> str:
        return str(self.repository.with_digest(self.digest))

    def failure(self) -> Untrusted | None:
        if self.verification.trusted:
            return None
        return Untrusted(untrusted_message(str(self.repository), self.verification, self.policy))

    def outputs(self) -> dict[str, str]:
        return {"digest": self.digest, "ref": self.ref}

    def to_json(self) -> dict[str, Any]:
        verdict = self.verification.verdict
        return {
            "ref": self.ref,
            "digest": self.digest,
            "version": self.version,
            "trusted": verdict.trusted,
            "signers": list(verdict.signers),
            "files": len(self.verification.files or {}),
            "signatures": [c.to_json() for c in verdict.checks],
            "signatureFile": str(self.written) if self.written else None,
        }


def verify(
    ref_text: str,
    settings: Settings,
    *,
    key_files: list[str],
    ca: str | None = None,
    identity: str | None = None,
    write_signature: Path | None = None,
) -> VerifyResult:
    """Check REF's signatures against the policy the flags give (never the version's own)."""
    policy = load_policy(settings, key_files=key_files, ca=ca, identity=identity)
    if policy.empty:
        raise InputError(
            f"verify: name who is trusted: {settings.option('key')} PUB (repeatable), or "
            f"{settings.option('ca')} ROOTS {settings.option('cert-identity')} NAME"
        )
    ref, target = version_target(ref_text, settings, "verify")
    store = open_store(ref.bare(), settings, create=False)
    _data, artifact = read_model(store, str(ref), target)
    verification = signature_checks(
        store, artifact, policy, source=str(ref.bare()), workers=settings.concurrency
    )
    written = None
    if verification.trusted and write_signature is not None and verification.files_bundle:
        dest = write_signature if write_signature.is_absolute() else settings.cwd / write_signature
        bundle = verification.files_bundle
        write_verified(
            [bundle], dest, bundle_descriptor(bundle), NoProgress(), "signature", str(ref.bare())
        )
        written = dest
    return VerifyResult(ref.bare(), version_of(artifact), verification, policy, written)

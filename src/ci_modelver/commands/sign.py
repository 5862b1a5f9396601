"""``ci-modelver sign``: sign an existing version (a release manager's approval), digest unchanged."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ci_modelver.core.refs import Reference
from ci_modelver.errors import InputError
from ci_modelver.settings import Settings
from ci_modelver.signatures import SignedRecord, load_signing_key, sign_version
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    add_signing_flags,
    open_store,
    read_model,
    version_of,
    version_target,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "sign",
        parents=[parents.common, parents.remote],
        help="sign an existing version",
        description="Sign a published version's files (every file inside a folder layer too) "
        "and its manifest digest (two Sigstore bundles stored as referrers of the version); the "
        "version's digest does not change. Several signatures per version are allowed.",
    )
    p.add_argument(
        "ref", metavar="REF", help="NAME:VERSION, REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
    )
    add_signing_flags(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> SignResult:
    return sign(
        args.ref,
        inv.settings,
        key=args.sign_key,
        cert=args.sign_cert,
        chain=args.sign_cert_chain,
    )


@dataclass(frozen=True)
class SignResult:
    """Which version was signed, by whom, and where the two bundles are stored."""

    repository: Reference
    digest: str
    version: str | None
    signer: str
    records: tuple[SignedRecord, ...]

    @property
    def ref(self) -> str:
        return str(self.repository.with_digest(self.digest))

    def outputs(self) -> dict[str, str]:
        return {"digest": self.digest, "ref": self.ref}

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "version": self.version,
            "signer": self.signer,
            "signatures": [
                {"statement": r.kind, "record": r.record, "bundle": r.bundle} for r in self.records
            ],
        }


def sign(
    ref_text: str,
    settings: Settings,
    *,
    key: str | None,
    cert: str | None = None,
    chain: str | None = None,
) -> SignResult:
    """Sign the version ``ref_text`` names; the key is read before the store is touched."""
    signer = load_signing_key(settings, key=key, cert=cert, chain=chain)
    if signer is None:
        raise InputError(
            f"sign: give the signing key: {settings.option('sign-key')} KEY, or "
            "MODELVER_SIGNING_KEY / MODELVER_SIGNING_KEY_FILE"
        )
    ref, target = version_target(ref_text, settings, "sign")
    store = open_store(ref.bare(), settings, create=False)
    data, artifact = read_model(store, str(ref), target)
    record_name = (artifact.record or {}).get("name")
    name = record_name if isinstance(record_name, str) and record_name else ref.name
    version = version_of(artifact)
    records = sign_version(
        store, artifact, len(data), signer, name=name, version=version, source=str(ref)
    )
    return SignResult(ref.bare(), artifact.digest, version, signer.shown, records)

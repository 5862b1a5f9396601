"""Signed alias moves: the statement over an audit record, and what a record's bundles prove (pure).

An alias move's audit record is a small OCI manifest (see :mod:`ci_modelver.core.audit`). When a
signing key is given, the record is signed like a version: an in-toto statement whose subject is
the record manifest's digest, in a Sigstore bundle stored as a referrer *of the record* (so the
record itself, and its digest, never change). The digest covers every field of the move (alias,
from, to, actor, time, reason, run URL), so a signature over it vouches for all of them.

Each record is then ``trusted`` (a bundle signed by a trusted signer names this record's digest),
``unknown-signer`` (it has bundles, none of them trusted: an unknown key, a signature that does
not verify, a statement for another record) or ``unsigned`` (no bundle at all).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ci_modelver.core.audit import ALIAS_MOVE_TYPE
from ci_modelver.core.modelpack import OCI_MANIFEST
from ci_modelver.core.signing import STATEMENT_TYPE
from ci_modelver.core.text import one_line
from ci_modelver.core.trust import Policy, open_bundle
from ci_modelver.errors import BadSignature, Untrusted

MOVE_PREDICATE = "https://github.com/ci-modelver/ci-modelver/alias-move-signature/v1"
TRUSTED = "trusted"
UNKNOWN_SIGNER = "unknown-signer"
UNSIGNED = "unsigned"


def move_statement(record_digest: str, alias: str, signed_at: str) -> dict[str, Any]:
    """The statement over one alias-move record manifest (its digest is the subject)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": f"alias-move/{alias}", "digest": {"sha256": record_digest.split(":", 1)[1]}}
        ],
        "predicateType": MOVE_PREDICATE,
        "predicate": {
            "mediaType": OCI_MANIFEST,
            "artifactType": ALIAS_MOVE_TYPE,
            "alias": alias,
            "signedAt": signed_at,
        },
    }


@dataclass(frozen=True)
class BundleCheck:
    """One bundle of a record: who signed it when trusted, else why not."""

    signer: str | None
    problem: str | None


def check_move_bundle(
    data: bytes, record_digest: str, policy: Policy, at: dt.datetime
) -> BundleCheck:
    """Whether one bundle is a trusted statement about the record ``record_digest``.

    Never raises for the bundle's content: its problems land on the check.
    """
    try:
        signer, statement = open_bundle(data, policy, at)
    except Untrusted as exc:  # BadSignature too
        return BundleCheck(None, str(exc))
    if statement.predicate_type != MOVE_PREDICATE:
        kind = one_line(statement.predicate_type, 100)
        return BundleCheck(None, f"its statement is not about an alias move ({kind})")
    try:
        signed = statement.subject_digest()
    except BadSignature as exc:
        return BundleCheck(None, exc.problem)
    if signed != record_digest:
        return BundleCheck(None, f"its statement is for record {signed}, not {record_digest}")
    return BundleCheck(signer.shown, None)


@dataclass(frozen=True)
class MoveTrust:
    """What the bundles of one alias-move record prove."""

    status: str  # TRUSTED, UNKNOWN_SIGNER or UNSIGNED
    signer: str | None = None
    problem: str | None = None
    signatures: int = 0

    @property
    def trusted(self) -> bool:
        return self.status == TRUSTED

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signer": self.signer,
            "signatures": self.signatures,
            "problem": self.problem,
        }

    def shown(self) -> str:
        if self.status == TRUSTED:
            return f"trusted ({self.signer})"
        return self.status


def move_trust(checks: Sequence[BundleCheck]) -> MoveTrust:
    """The record's status from its bundles' checks (the first trusted signer wins)."""
    if not checks:
        return MoveTrust(UNSIGNED)
    for check in checks:
        if check.signer is not None and check.problem is None:
            return MoveTrust(TRUSTED, check.signer, None, len(checks))
    problem = next((c.problem for c in checks if c.problem), None)
    return MoveTrust(UNKNOWN_SIGNER, None, problem, len(checks))

"""``promote`` and ``rollback``: move an alias to an existing version, with an audit record.

With a trust policy (``--trusted-key``, ``--ca``/``--cert-identity``, ``MODELVER_TRUSTED_KEYS`` or
the action's ``trusted-keys``) the target version must carry a trusted signature before the alias
moves (exit 5 otherwise, and nothing is written). With a signing key the move's audit record is
signed: a bundle over the record manifest's digest, stored as a referrer of the record.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.store import Store
from ci_modelver.core.audit import (
    AliasMove,
    check_alias,
    last_move,
)
from ci_modelver.core.modelpack import (
    OCI_MANIFEST,
)
from ci_modelver.core.refs import Reference, check_digest, parse_ref
from ci_modelver.core.trust import Policy
from ci_modelver.errors import InputError
from ci_modelver.settings import Settings
from ci_modelver.signatures import (
    SigningKey,
    attach_move_signature,
    load_signing_key,
    promotion_policy,
    sign_move,
    verify_version,
)
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    add_signing_flags,
    add_trust_flags,
    alias_log,
    move_record,
    new_move,
    open_store,
    read_model,
    repository_argument,
    version_of,
    version_target,
    write_move,
)


def _add_policy_flags(p: argparse.ArgumentParser) -> None:
    add_trust_flags(p, key_flag="--trusted-key")
    p.add_argument(
        "--require-signature",
        action="store_true",
        help="refuse (exit 5) a target version without a trusted signature; naming a trusted "
        "key (--trusted-key, MODELVER_TRUSTED_KEYS) or --ca implies it",
    )
    add_signing_flags(p)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "promote",
        parents=[parents.common, parents.remote],
        help="move an alias to a version",
        description="Point an alias (production, staging, champion, …) at an existing "
        "version by re-PUTting its exact manifest bytes, and record the move.",
    )
    p.add_argument(
        "ref", metavar="REF", help="NAME:VERSION, REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
    )
    p.add_argument("--alias", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _add_policy_flags(p)
    p.set_defaults(run=run_promote)

    p = sub.add_parser(
        "rollback",
        parents=[parents.common, parents.remote],
        help="move an alias back",
        description="Move an alias back to where it pointed before its last move, or --to a version.",
    )
    p.add_argument(
        "repository_ref",
        nargs="?",
        metavar="REPO",
        help="HOST/PATH, oci:DIR or a model name (default: the model of ./modelver.yaml)",
    )
    p.add_argument("--alias", required=True, metavar="NAME")
    p.add_argument("--to", metavar="REF", help="version, alias or sha256:… to move the alias to")
    p.add_argument("--reason", metavar="TEXT")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _add_policy_flags(p)
    p.set_defaults(run=run_rollback)


def _policy_and_signer(
    args: argparse.Namespace, settings: Settings
) -> tuple[Policy | None, SigningKey | None]:
    """The trust policy and the signing key, both read (and checked) before the store is touched."""
    policy = promotion_policy(
        settings,
        key_files=args.trusted_keys,
        ca=args.ca,
        identity=args.cert_identity,
        require=args.require_signature,
    )
    signer = load_signing_key(
        settings, key=args.sign_key, cert=args.sign_cert, chain=args.sign_cert_chain
    )
    return policy, signer


def run_promote(args: argparse.Namespace, inv: Invocation) -> MoveResult:
    policy, signer = _policy_and_signer(args, inv.settings)
    return promote(
        args.ref, args.alias, inv.settings, reason=args.reason, policy=policy, signer=signer
    )


def run_rollback(args: argparse.Namespace, inv: Invocation) -> MoveResult:
    policy, signer = _policy_and_signer(args, inv.settings)
    return rollback(
        args.repository_ref,
        args.alias,
        inv.settings,
        to=args.to,
        reason=args.reason,
        policy=policy,
        signer=signer,
    )


@dataclass(frozen=True)
class MoveResult:
    """What promote/rollback did."""

    repository: Reference
    move: AliasMove
    changed: bool
    record_tag: str | None
    trusted_by: tuple[str, ...] = ()  # who signed the target version (with a trust policy)
    record_digest: str | None = None
    record_signature: str | None = None  # the bundle referrer of the record (with a signing key)
    record_signer: str | None = None

    def outputs(self) -> dict[str, str]:
        return {
            "digest": self.move.to_digest,
            "version": self.move.to_version or "",
            "ref": str(self.repository.with_digest(self.move.to_digest)),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": str(self.repository),
            "changed": self.changed,
            "recordTag": self.record_tag,
            "record": self.record_digest,
            "trustedBy": list(self.trusted_by),
            "recordSignature": self.record_signature,
            "recordSigner": self.record_signer,
            **self.move.to_json(),
        }


def move_alias(
    store: Store,
    repository: Reference,
    alias: str,
    target: str,
    settings: Settings,
    *,
    action: str,
    reason: str | None,
    now: Callable[[], float] = time.time,
    policy: Policy | None = None,
    signer: SigningKey | None = None,
) -> MoveResult:
    """PUT the target's exact manifest bytes under ``alias`` and record the move.

    With ``policy`` the target must carry a trusted signature first (Untrusted, exit 5, and
    nothing written otherwise); with ``signer`` the record gets a bundle over its digest.
    """
    check_alias(alias)
    data, artifact = read_model(store, str(repository), target)
    trusted_by: tuple[str, ...] = ()
    if policy is not None:
        verification = verify_version(
            store, artifact, policy, source=str(repository), workers=settings.concurrency
        )
        trusted_by = verification.verdict.signers
    move = new_move(
        store,
        settings,
        alias=alias,
        to_digest=artifact.digest,
        to_version=version_of(artifact),
        action=action,
        reason=reason,
        now=now,
    )
    if move.from_digest == artifact.digest:
        return MoveResult(repository, move, False, None, trusted_by)
    # The record's tag is made (and checked) first: an alias never moves without its record.
    record = move_record(move, len(data))
    # Signed in memory before anything is written: a key that cannot sign fails before the move.
    bundle = sign_move(record.digest, alias, signer, move.time) if signer else None
    write_move(store, record, data, OCI_MANIFEST)
    signature = (
        attach_move_signature(store, record.digest, len(record.data), bundle, move.time)
        if bundle is not None
        else None
    )
    return MoveResult(
        repository,
        move,
        True,
        record.tag,
        trusted_by,
        record.digest,
        signature,
        signer.shown if signer and bundle is not None else None,
    )


def promote(
    ref_text: str,
    alias: str,
    settings: Settings,
    *,
    reason: str | None,
    now: Callable[[], float] = time.time,
    policy: Policy | None = None,
    signer: SigningKey | None = None,
) -> MoveResult:
    """``promote REPO:VERSION|REPO:ALIAS|REPO@sha256:… --alias NAME``."""
    check_alias(alias)
    ref, target = version_target(ref_text, settings, "promote")
    store = open_store(ref.bare(), settings, create=False)
    return move_alias(
        store,
        ref.bare(),
        alias,
        target,
        settings,
        action="promote",
        reason=reason,
        now=now,
        policy=policy,
        signer=signer,
    )


def rollback(
    repo_text: str | None,
    alias: str,
    settings: Settings,
    *,
    to: str | None,
    reason: str | None,
    now: Callable[[], float] = time.time,
    policy: Policy | None = None,
    signer: SigningKey | None = None,
) -> MoveResult:
    """Move ``alias`` back to where it pointed before its last move (or to ``--to``)."""
    check_alias(alias)
    ref = repository_argument(repo_text, settings, "rollback")
    store = open_store(ref, settings, create=False)
    if to is None:
        last = last_move(alias_log(store, settings.concurrency, alias), alias)
        if last is None or last.from_digest is None:
            why = "has no recorded moves" if last is None else "had no target before its first move"
            raise InputError(
                f"rollback: {ref}:{alias} {why}; name the target with {settings.option('to')} VERSION (or sha256:…)"
            )
        target = check_digest(last.from_digest)  # read from the store: untrusted
    else:
        target = (
            check_digest(to) if to.startswith("sha256:") else (parse_ref(f"{ref}:{to}").tag or to)
        )
    return move_alias(
        store,
        ref,
        alias,
        target,
        settings,
        action="rollback",
        reason=reason,
        now=now,
        policy=policy,
        signer=signer,
    )

"""``promote`` and ``rollback``: move an alias to an existing version, with an audit record."""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.referrers import push_referrer
from ci_modelver.adapters.store import Store
from ci_modelver.commands.toolkit import (
    Invocation,
    Parents,
    actor,
    alias_log,
    move_tag,
    open_store,
    parse_reference,
    repository_argument,
    require_target,
    version_of,
)
from ci_modelver.core.audit import (
    ALIAS_MOVE_TYPE,
    AliasMove,
    audit_tag,
    check_alias,
    last_move,
    move_manifest,
)
from ci_modelver.core.context import precise_time, run_url
from ci_modelver.core.modelpack import OCI_MANIFEST, Descriptor, parse_model_manifest
from ci_modelver.core.refs import Reference, check_digest, parse_ref
from ci_modelver.errors import InputError, ModelverError
from ci_modelver.settings import Settings


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
    p.set_defaults(run=run_rollback)


def run_promote(args: argparse.Namespace, inv: Invocation) -> MoveResult:
    return promote(args.ref, args.alias, inv.settings, reason=args.reason)


def run_rollback(args: argparse.Namespace, inv: Invocation) -> MoveResult:
    return rollback(args.repository_ref, args.alias, inv.settings, to=args.to, reason=args.reason)


@dataclass(frozen=True)
class MoveResult:
    """What promote/rollback did."""

    repository: Reference
    move: AliasMove
    changed: bool
    record_tag: str | None

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
) -> MoveResult:
    """PUT the target's exact manifest bytes under ``alias`` and record the move."""
    check_alias(alias)
    data, digest = store.get_manifest(target)
    artifact = parse_model_manifest(data, digest, str(repository))
    current = store.resolve(alias)
    from_version = None
    if current is not None:
        found = store.find_manifest(current.digest)
        if found is not None:
            try:
                from_version = version_of(parse_model_manifest(found[0], found[1], str(repository)))
            except ModelverError:
                from_version = None
    move = AliasMove(
        alias=alias,
        to_digest=artifact.digest,
        time=precise_time(now()),
        actor=actor(settings.env),
        action=action,
        from_digest=current.digest if current else None,
        to_version=version_of(artifact),
        from_version=from_version,
        reason=reason,
        run_url=run_url(settings.env),
    )
    if current is not None and current.digest == artifact.digest:
        return MoveResult(repository, move, False, None)
    # The record's tag is made (and checked) first: an alias never moves without its record.
    tag = audit_tag(alias, move.time, secrets.token_hex(4))
    move_tag(store, alias, data, OCI_MANIFEST, artifact.digest)
    subject = Descriptor(OCI_MANIFEST, artifact.digest, len(data))
    push_referrer(
        store, subject, move_manifest(move, subject), ALIAS_MOVE_TYPE, tag=tag, created=move.time
    )
    return MoveResult(repository, move, True, tag)


def promote(
    ref_text: str,
    alias: str,
    settings: Settings,
    *,
    reason: str | None,
    now: Callable[[], float] = time.time,
) -> MoveResult:
    """``promote REPO:VERSION|REPO:ALIAS|REPO@sha256:… --alias NAME``."""
    check_alias(alias)
    ref = parse_reference(ref_text, settings)
    target = require_target(ref, "promote")
    store = open_store(ref.bare(), settings, create=False)
    return move_alias(
        store, ref.bare(), alias, target, settings, action="promote", reason=reason, now=now
    )


def rollback(
    repo_text: str | None,
    alias: str,
    settings: Settings,
    *,
    to: str | None,
    reason: str | None,
    now: Callable[[], float] = time.time,
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
        store, ref, alias, target, settings, action="rollback", reason=reason, now=now
    )

"""``promote`` and ``rollback``: move an alias to an existing version, with an audit record."""

from __future__ import annotations

import datetime as dt
import getpass
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.github import write_outputs
from ci_modelver.adapters.referrers import push_referrer
from ci_modelver.adapters.store import Store
from ci_modelver.commands.stores import open_store
from ci_modelver.core.audit import (
    ALIAS_MOVE_TYPE,
    AliasMove,
    alias_of_audit_tag,
    audit_tag,
    check_alias,
    last_move,
    move_manifest,
    parse_move,
)
from ci_modelver.core.modelpack import Descriptor, ModelArtifact, parse_model_manifest
from ci_modelver.core.refs import Reference, check_digest, parse_ref
from ci_modelver.errors import ConflictError, InputError, ModelverError
from ci_modelver.settings import Settings


def precise_time(epoch: float) -> str:
    """RFC 3339 UTC with microseconds: audit records sort by it."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def run_url(env: Mapping[str, str]) -> str | None:
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


@dataclass(frozen=True)
class MoveResult:
    """What promote/rollback did."""

    repository: Reference
    move: AliasMove
    changed: bool
    record_tag: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": str(self.repository),
            "changed": self.changed,
            "recordTag": self.record_tag,
            **self.move.to_json(),
        }


def _version_of(artifact: ModelArtifact) -> str | None:
    record = artifact.record or {}
    version = record.get("version") or artifact.annotations.get("org.opencontainers.image.version")
    return str(version) if version else None


def _target(store: Store, ref: Reference, target: str) -> tuple[bytes, ModelArtifact, str]:
    data, digest = store.get_manifest(target)
    artifact = parse_model_manifest(data, digest, str(ref))
    media = "application/vnd.oci.image.manifest.v1+json"
    return data, artifact, media


def _write_outputs(settings: Settings, repository: Reference, move: AliasMove) -> None:
    output = settings.env.get("GITHUB_OUTPUT")
    if settings.in_github_actions and output:
        ref = str(repository.with_digest(move.to_digest))
        write_outputs(
            Path(output), {"digest": move.to_digest, "version": move.to_version or "", "ref": ref}
        )


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
    data, artifact, media = _target(store, repository, target)
    current = store.resolve(alias)
    from_version = None
    if current is not None:
        found = store.find_manifest(current.digest)
        if found is not None:
            try:
                from_version = _version_of(
                    parse_model_manifest(found[0], found[1], str(repository))
                )
            except ModelverError:
                from_version = None
    move = AliasMove(
        alias=alias,
        to_digest=artifact.digest,
        time=precise_time(now()),
        actor=actor(settings.env),
        action=action,
        from_digest=current.digest if current else None,
        to_version=_version_of(artifact),
        from_version=from_version,
        reason=reason,
        run_url=run_url(settings.env),
    )
    if current is not None and current.digest == artifact.digest:
        _write_outputs(settings, repository, move)
        return MoveResult(repository, move, False, None)
    # The exact bytes, never re-serialised: the alias must resolve to the very same digest.
    store.put_manifest(alias, data, media)
    landed = store.resolve(alias)
    if landed is None or landed.digest != artifact.digest:
        raise ConflictError(
            f"{repository}:{alias} resolves to {landed.digest if landed else 'nothing'} right after it was "
            f"moved to {artifact.digest}: another promotion ran at the same time; check 'ci-modelver history'"
        )
    tag = audit_tag(alias, move.time, secrets.token_hex(4))
    subject = Descriptor(media, artifact.digest, len(data))
    push_referrer(
        store, subject, move_manifest(move, subject), ALIAS_MOVE_TYPE, tag=tag, created=move.time
    )
    _write_outputs(settings, repository, move)
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
    ref = parse_ref(ref_text)
    target = ref.digest or ref.tag
    if not target:
        raise InputError(
            f"promote: '{ref_text}' names no version; write REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
        )
    store = open_store(ref.bare(), settings, create=False)
    return move_alias(
        store, ref.bare(), alias, target, settings, action="promote", reason=reason, now=now
    )


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


def rollback(
    repo_text: str,
    alias: str,
    settings: Settings,
    *,
    to: str | None,
    reason: str | None,
    now: Callable[[], float] = time.time,
) -> MoveResult:
    """Move ``alias`` back to where it pointed before its last move (or to ``--to``)."""
    check_alias(alias)
    ref = parse_ref(repo_text)
    if ref.tag or ref.digest:
        raise InputError(
            f"rollback: give the repository without tag or digest, e.g. '{ref.bare()}'"
        )
    store = open_store(ref, settings, create=False)
    if to is None:
        last = last_move(alias_log(store, settings.concurrency, alias), alias)
        if last is None or last.from_digest is None:
            why = "has no recorded moves" if last is None else "had no target before its first move"
            raise InputError(
                f"rollback: {ref}:{alias} {why}; name the target with --to VERSION (or --to sha256:…)"
            )
        target = check_digest(last.from_digest)  # read from the store: untrusted
    else:
        target = (
            check_digest(to) if to.startswith("sha256:") else (parse_ref(f"{ref}:{to}").tag or to)
        )
    return move_alias(
        store, ref, alias, target, settings, action="rollback", reason=reason, now=now
    )

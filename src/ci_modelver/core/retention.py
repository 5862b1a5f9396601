"""Which versions ``prune`` deletes, what else goes with them, and the bytes that frees (pure).

Rules keep versions (their union): ``keep_last`` the N highest in SemVer order, ``newer_than``
those created less than that long ago (``org.opencontainers.image.created``; a version without
a readable creation time is kept), ``patterns`` those whose version matches one of the
fnmatch patterns. Protections keep a version whatever the rules say: an alias points to it now;
an alias pointed to it before one of its last ``protect_rollback`` moves (the ``from`` and ``to``
of each of those moves); a kept tag shares its digest. Audit records are never deleted.

Deleting a version deletes its manifest (by digest), its referrers other than audit records
(evaluations, signatures, …, and theirs) and its ``sha256-<hex>`` fallback index. Fallback
indexes whose subject no longer exists (an interrupted prune) go too, with the same referrers.
The bytes freed are those of the deleted manifests and of the blobs they name that nothing kept
(kept tags, their blobs, indexes and referrers, transitively) still needs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ci_modelver.core.audit import AliasMove, referrers_tag
from ci_modelver.core.inventory import AUDIT, Inventory
from ci_modelver.core.modelpack import ANN_CREATED
from ci_modelver.errors import InputError

DEFAULT_PROTECT_ROLLBACK = 3
MAX_DAYS = 100_000  # about 270 years; beyond it the time arithmetic overflows


@dataclass(frozen=True)
class Rules:
    keep_last: int | None = None
    newer_than_days: float | None = None
    patterns: tuple[str, ...] = ()
    protect_rollback: int = DEFAULT_PROTECT_ROLLBACK

    def check(self) -> Rules:
        """InputError for a negative number, or for no rule at all (everything would go)."""
        if self.keep_last is not None and self.keep_last < 0:
            raise InputError(f"prune: --keep-last must be 0 or more, got {self.keep_last}")
        if self.newer_than_days is not None and not 0 <= self.newer_than_days <= MAX_DAYS:
            raise InputError(
                f"prune: --keep-newer-than must be 0 or more days (at most {MAX_DAYS}), got "
                f"{self.newer_than_days:g}"
            )
        if self.protect_rollback < 0:
            raise InputError(
                f"prune: --protect-rollback must be 0 or more moves, got {self.protect_rollback}"
            )
        for pattern in self.patterns:
            if not pattern:
                raise InputError("prune: --keep needs a pattern such as '1.*'")
        if self.keep_last is None and self.newer_than_days is None and not self.patterns:
            raise InputError(
                "prune: give at least one rule (--keep-last N, --keep-newer-than DAYS or "
                "--keep PATTERN); without one every version no alias protects would be deleted"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "keepLast": self.keep_last,
            "keepNewerThanDays": self.newer_than_days,
            "keep": list(self.patterns),
            "protectRollback": self.protect_rollback,
        }


@dataclass(frozen=True)
class Decision:
    """One version tag: kept (and why) or deleted (and the bytes only its deletion frees)."""

    version: str
    digest: str
    created: str | None
    size: int
    keep: bool
    reasons: tuple[str, ...]
    frees: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "created": self.created,
            "size": self.size,
            "action": "keep" if self.keep else "delete",
            "reasons": list(self.reasons),
            "frees": self.frees,
        }


@dataclass(frozen=True)
class Deletion:
    """What goes for one deleted manifest digest, in the order it goes.

    ``referrers`` first (evaluations, signatures; never audit records), then the manifest
    itself (``manifest`` is False for an orphaned fallback index whose subject is gone), then
    the fallback index tag ``index`` with its digest.
    """

    subject: str
    versions: tuple[str, ...]
    referrers: tuple[tuple[str, str], ...]  # (digest, kind)
    manifest: bool
    index: tuple[str, str] | None  # (tag, digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.subject,
            "versions": list(self.versions),
            "referrers": [{"digest": d, "kind": k} for d, k in self.referrers],
            "manifest": self.manifest,
            "index": {"tag": self.index[0], "digest": self.index[1]} if self.index else None,
        }


@dataclass(frozen=True)
class PrunePlan:
    rules: Rules
    decisions: tuple[Decision, ...]
    deletions: tuple[Deletion, ...]
    freed: int

    @property
    def deleted_versions(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.keep)

    def counts(self) -> dict[str, int]:
        return {
            "versions": len(self.deleted_versions),
            "manifests": sum(1 for d in self.deletions if d.manifest),
            "referrers": sum(len(d.referrers) for d in self.deletions),
            "indexes": sum(1 for d in self.deletions if d.index),
        }


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as an aware datetime (naive times are UTC), or None."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _fmt_days(days: float) -> str:
    return f"{days:g} day{'' if days == 1 else 's'}"


def _rule_reasons(
    versions: Sequence[str], created: Mapping[str, str | None], rules: Rules, now: datetime
) -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = {v: [] for v in versions}
    if rules.keep_last:
        for version in versions[-rules.keep_last :]:
            reasons[version].append(f"one of the last {rules.keep_last}")
    if rules.newer_than_days is not None:
        limit = timedelta(days=rules.newer_than_days)
        for version in versions:
            when = parse_time(created.get(version))
            if when is None:
                reasons[version].append("no readable creation time (--keep-newer-than keeps it)")
            elif now - when < limit:
                reasons[version].append(f"newer than {_fmt_days(rules.newer_than_days)}")
    for pattern in rules.patterns:
        for version in versions:
            if fnmatch.fnmatchcase(version, pattern):
                reasons[version].append(f"matches {pattern}")
    return reasons


def _protections(
    inventory: Inventory, moves: Sequence[AliasMove], protect_rollback: int
) -> dict[str, list[str]]:
    """Digest -> why no rule may delete it: alias targets now, and recent rollback targets."""
    out: dict[str, list[str]] = {}
    for alias, digest in sorted(inventory.aliases().items()):
        out.setdefault(digest, []).append(f"alias {alias} points to it")
    if protect_rollback > 0:
        by_alias: dict[str, list[AliasMove]] = {}
        for move in moves:
            by_alias.setdefault(move.alias, []).append(move)
        for alias, mine in sorted(by_alias.items()):
            recent = mine[-protect_rollback:]
            why = f"rollback target of {alias} (last {protect_rollback} moves)"
            for move in recent:
                for target in (move.to_digest, move.from_digest):
                    if target is not None and why not in out.setdefault(target, []):
                        out[target].append(why)
    return out


def plan_prune(
    inventory: Inventory, moves: Sequence[AliasMove], rules: Rules, now: datetime
) -> PrunePlan:
    """Decide every version, list what goes with the deleted ones, count the bytes freed.

    ``moves`` is the audit log, oldest first (``toolkit.alias_log``).
    """
    versions = inventory.versions()
    digest_of = {v: inventory.tags[v] for v in versions}
    created = {v: inventory.manifests[digest_of[v]].annotations.get(ANN_CREATED) for v in versions}
    reasons = _rule_reasons(versions, created, rules, now)
    protected = _protections(inventory, moves, rules.protect_rollback)
    for version in versions:
        reasons[version].extend(protected.get(digest_of[version], []))
    kept = {v for v in versions if reasons[v]}
    # A manifest is deleted by digest: a version sharing it with a kept version stays too.
    kept_digests = {digest_of[v] for v in kept}
    for version in versions:
        if version not in kept and digest_of[version] in kept_digests:
            twin = min((k for k in kept if digest_of[k] == digest_of[version]), key=str)
            reasons[version].append(f"same digest as kept version {twin}")
            kept.add(version)
    doomed = [v for v in versions if v not in kept]
    deletions = _deletions(inventory, doomed, digest_of)
    freed, per_version = _freed(inventory, deletions, doomed, digest_of)
    decisions = tuple(
        Decision(
            v,
            digest_of[v],
            created[v],
            sum(b.size for b in inventory.manifests[digest_of[v]].blobs),
            v in kept,
            tuple(reasons[v]),
            per_version.get(v, 0),
        )
        for v in versions
    )
    return PrunePlan(rules, decisions, tuple(deletions), freed)


def _doomed_referrers(inventory: Inventory, subject: str) -> tuple[tuple[str, str], ...]:
    """Referrers of ``subject`` (and theirs) other than audit records, deepest first."""
    out: list[tuple[str, str]] = []
    seen: set[str] = {subject}

    def visit(digest: str) -> None:
        for entry in inventory.referrers_of(digest):
            kind = inventory.kind_of(entry)
            if kind == AUDIT or entry.digest in seen:
                continue
            seen.add(entry.digest)
            visit(entry.digest)
            out.append((entry.digest, kind))

    visit(subject)
    return tuple(out)


def _index_of(inventory: Inventory, subject: str) -> tuple[str, str] | None:
    tag = referrers_tag(subject)
    digest = inventory.tags.get(tag)
    return (tag, digest) if digest else None


def _deletions(
    inventory: Inventory, doomed: Sequence[str], digest_of: Mapping[str, str]
) -> list[Deletion]:
    out: list[Deletion] = []
    done: set[str] = set()
    for version in doomed:
        digest = digest_of[version]
        if digest in done:
            continue
        done.add(digest)
        twins = tuple(v for v in doomed if digest_of[v] == digest)
        out.append(
            Deletion(
                digest,
                twins,
                _doomed_referrers(inventory, digest),
                True,
                _index_of(inventory, digest),
            )
        )
    for subject in sorted(inventory.missing):
        index = _index_of(inventory, subject)
        if index is not None:
            out.append(Deletion(subject, (), _doomed_referrers(inventory, subject), False, index))
    return out


def _freed(
    inventory: Inventory,
    deletions: Sequence[Deletion],
    doomed: Sequence[str],
    digest_of: Mapping[str, str],
) -> tuple[int, dict[str, int]]:
    """Total bytes freed, and per deleted version the part first freed by it (SemVer order)."""
    deleted_tags = {v for v in doomed} | {d.index[0] for d in deletions if d.index}
    roots = [d for t, d in inventory.tags.items() if t not in deleted_tags]
    kept = inventory.closure(roots, with_referrers=True)
    sizes = inventory.size_of()
    taken: set[str] = set()
    per_version: dict[str, int] = {}
    total = 0
    for deletion in deletions:
        group = [d for d, _ in deletion.referrers]
        if deletion.manifest:
            group.append(deletion.subject)
        if deletion.index:
            group.append(deletion.index[1])
        reach = inventory.closure(group, with_referrers=False) - kept - taken
        # Only what the inventory knows a size of (a missing child is not counted).
        freed = sum(sizes.get(d, 0) for d in reach)
        taken |= reach
        total += freed
        if deletion.versions:
            per_version[deletion.versions[0]] = freed
    return total, per_version

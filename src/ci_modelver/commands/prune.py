"""``ci-modelver prune``: delete old versions by retention rules (dry run by default)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ci_modelver.adapters.github_packages import PackageVersions
from ci_modelver.adapters.inventory_scan import scan
from ci_modelver.adapters.layout import Collected, LayoutStore
from ci_modelver.adapters.store import Store
from ci_modelver.core.refs import Reference
from ci_modelver.core.retention import (
    DEFAULT_PROTECT_ROLLBACK,
    Deletion,
    PrunePlan,
    Rules,
    plan_prune,
)
from ci_modelver.errors import InputError, ModelverError
from ci_modelver.settings import Settings
from ci_modelver.toolkit import Invocation, Parents, open_store, repository_argument

DEFAULT_GRACE_MINUTES = 60.0
GHCR = "ghcr.io"


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "prune",
        parents=[parents.common, parents.remote],
        help="delete old versions by retention rules (dry run by default)",
        description="Delete versions that no retention rule keeps; never a version an alias "
        "points to or pointed to within the last moves, never an audit record. A dry run "
        "unless --yes. The rules add up: a version any of them keeps stays.",
    )
    p.add_argument(
        "repository_ref",
        nargs="?",
        metavar="REPO",
        help="HOST/PATH, oci:DIR or a model name (default: the model of ./modelver.yaml)",
    )
    p.add_argument(
        "--keep-last", type=int, metavar="N", help="keep the N highest versions (SemVer order)"
    )
    p.add_argument(
        "--keep-newer-than",
        type=float,
        metavar="DAYS",
        help="keep versions created less than DAYS days ago (org.opencontainers.image.created)",
    )
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep versions matching this fnmatch pattern, e.g. '1.*' (repeatable)",
    )
    p.add_argument(
        "--protect-rollback",
        type=int,
        default=DEFAULT_PROTECT_ROLLBACK,
        metavar="K",
        help="keep every version an alias pointed to within its last K moves "
        f"(default {DEFAULT_PROTECT_ROLLBACK})",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_MINUTES,
        metavar="MINUTES",
        help="OCI layouts: leave unreferenced blobs written in the last MINUTES before the "
        f"prune started, for publishes running meanwhile (default {DEFAULT_GRACE_MINUTES:g})",
    )
    p.add_argument("--yes", action="store_true", help="delete (without it: a dry run)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


@dataclass(frozen=True)
class Done:
    """What a ``--yes`` run deleted (already-gone manifests count as deleted)."""

    manifests: int = 0
    referrers: int = 0
    indexes: int = 0

    def to_json(self) -> dict[str, int]:
        return {"manifests": self.manifests, "referrers": self.referrers, "indexes": self.indexes}


@dataclass(frozen=True)
class PruneResult:
    repository: Reference
    plan: PrunePlan
    dry_run: bool
    registry: bool  # a registry reclaims blob space only in its own garbage collection
    done: Done = field(default_factory=Done)
    collected: Collected | None = None  # an OCI layout's own collection (with --yes)

    def to_json(self) -> dict[str, Any]:
        collected = self.collected
        return {
            "repository": str(self.repository),
            "dryRun": self.dry_run,
            "rules": self.plan.rules.to_json(),
            "versions": [d.to_json() for d in self.plan.decisions],
            "delete": [d.to_json() for d in self.plan.deletions],
            "planned": self.plan.counts(),
            "bytesFreed": self.plan.freed,
            "deleted": None if self.dry_run else self.done.to_json(),
            "layoutCollected": None
            if collected is None
            else {
                "blobs": collected.blobs,
                "bytes": collected.bytes,
                "youngBlobs": collected.young,
                "youngBytes": collected.young_bytes,
            },
            "registryGarbageCollection": self.registry,
        }


def run(args: argparse.Namespace, inv: Invocation) -> PruneResult:
    rules = Rules(
        keep_last=args.keep_last,
        newer_than_days=args.keep_newer_than,
        patterns=tuple(args.keep),
        protect_rollback=args.protect_rollback,
    )
    return prune(args.repository_ref, inv.settings, rules, yes=args.yes, grace=args.grace)


def prune(
    repo_text: str | None,
    settings: Settings,
    rules: Rules,
    *,
    yes: bool,
    grace: float = DEFAULT_GRACE_MINUTES,
    now: Callable[[], float] = time.time,
    store: Store | None = None,
) -> PruneResult:
    """Plan (and with ``yes`` carry out) the deletion of the versions no rule keeps.

    Rerunning after an interruption finishes the job: what was deleted is no longer planned,
    fallback indexes left without their version are deleted, and a layout's collection runs
    on every ``--yes``. ``store`` replaces the one ``REPO`` names (tests: a local registry
    standing in for ghcr.io).
    """
    rules.check()
    if not math.isfinite(grace) or grace < 0:
        raise InputError(f"prune: --grace must be 0 or more minutes, got {grace:g}")
    ref = repository_argument(repo_text, settings, "prune")
    if store is None:
        store = open_store(ref, settings, create=False)
    started = now()
    inventory = scan(store, settings.concurrency)  # its alias moves too: one read of the tags
    plan = plan_prune(
        inventory, list(inventory.moves), rules, datetime.fromtimestamp(started, timezone.utc)
    )
    registry = not isinstance(store, LayoutStore)
    if not yes:
        return PruneResult(ref, plan, True, registry)
    delete = _deleter(ref, store, settings)
    done = _carry_out(plan, delete, str(ref))
    collected = None
    if isinstance(store, LayoutStore):
        collected = store.collect_garbage(started - grace * 60)
    return PruneResult(ref, plan, False, registry, done, collected)


def _deleter(ref: Reference, store: Store, settings: Settings) -> Callable[[str], None]:
    """How a manifest is deleted here: GitHub's Packages API on ghcr.io, else the store."""
    if ref.kind == "registry" and ref.host == GHCR:
        versions = PackageVersions.for_repository(
            ref.path,
            settings.env,
            timeout=settings.timeout,
            wait_hint=settings.wait_hint(),
            log=settings.log,
        )

        def delete(digest: str) -> None:
            versions.delete_version(digest)  # False: already gone, which is as good

        return delete
    return store.delete_manifest


def _carry_out(plan: PrunePlan, delete: Callable[[str], None], where: str) -> Done:
    """Delete in plan order: per version its referrers, then it, then its fallback index.

    That order never leaves a referrer nobody can find: until the index goes, it lists them.
    """
    counts = {"manifests": 0, "referrers": 0, "indexes": 0}

    def step(digest: str, key: str) -> None:
        try:
            delete(digest)
        except ModelverError as exc:
            done = ", ".join(f"{n} {k}" for k, n in counts.items())
            raise _with_progress(exc, f"prune of {where}: deleted so far {done}") from None
        counts[key] += 1

    for deletion in plan.deletions:
        _carry_out_one(deletion, step)
    return Done(counts["manifests"], counts["referrers"], counts["indexes"])


def _carry_out_one(deletion: Deletion, step: Callable[[str, str], None]) -> None:
    for digest, _kind in deletion.referrers:
        step(digest, "referrers")
    if deletion.manifest:
        step(deletion.subject, "manifests")
    if deletion.index is not None:
        step(deletion.index[1], "indexes")


def _with_progress(exc: ModelverError, progress: str) -> ModelverError:
    """The same error (class, exit code, details) with how far the prune got, and what to do."""
    try:
        wrapped = type(exc)(f"{exc} ({progress}; rerun the prune to finish)")
    except TypeError:  # a class that needs more than a message: keep it as it is
        return exc
    wrapped.__dict__.update(exc.__dict__)
    return wrapped

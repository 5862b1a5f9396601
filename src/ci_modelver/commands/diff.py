"""``ci-modelver diff A B``: what changed between any two versions, in any stores (a report)."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.referrers import evaluations_of
from ci_modelver.adapters.store import Store
from ci_modelver.core.audit import is_internal_tag, overlay
from ci_modelver.core.refs import is_version_tag
from ci_modelver.core.version_diff import VersionDiff, VersionInput, diff_versions, version_input
from ci_modelver.settings import Settings
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    metrics_of,
    open_store,
    read_artifact,
    version_of,
    version_target,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "diff",
        parents=[parents.common, parents.remote],
        help="what changed between two versions",
        description="Show what changed from version A to version B (any references, in any "
        "stores): files, data, hyperparameters, metrics with deltas, framework, code and "
        "aliases. A report: exit 0 whatever differs.",
    )
    for name in ("A", "B"):
        p.add_argument(
            name.lower(),
            metavar=name,
            help="NAME:VERSION, REPO:VERSION, REPO:ALIAS, REPO@sha256:… or oci:DIR:TAG",
        )
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.set_defaults(run=run)


@dataclass(frozen=True)
class DiffResult:
    """The differences between two versions; ``to_json()`` is the document ``--format json`` prints."""

    diff: VersionDiff

    def to_json(self) -> dict[str, Any]:
        return self.diff.to_json()


def run(args: argparse.Namespace, inv: Invocation) -> DiffResult:
    return diff(args.a, args.b, inv.settings)


def aliases_of(store: Store, digest: str, workers: int) -> list[str]:
    """The aliases (tags that are neither versions nor our bookkeeping) pointing at ``digest`` now."""
    tags = [t for t in store.tags() if not is_version_tag(t) and not is_internal_tag(t)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = list(pool.map(store.resolve, tags))
    return sorted(
        tag for tag, d in zip(tags, found, strict=True) if d is not None and d.digest == digest
    )


def read_side(ref_text: str, settings: Settings) -> VersionInput:
    """One version as a diff side: its record and files (no weights), evaluations and aliases."""
    ref, target = version_target(ref_text, settings, "diff")
    store = open_store(ref, settings, create=False)
    artifact, config = read_artifact(store, ref, target)
    evaluations = evaluations_of(store, artifact.digest)
    raw = config.get("descriptor")
    descriptor: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name, version = descriptor.get("name"), descriptor.get("version")
    return version_input(
        artifact,
        str(ref.with_digest(artifact.digest)),
        name=name if isinstance(name, str) and name else ref.name,
        version=version_of(artifact) or (version if isinstance(version, str) and version else None),
        aliases=aliases_of(store, artifact.digest, settings.concurrency),
        metrics=overlay(metrics_of(artifact.record or {}), evaluations),
        evaluations=len(evaluations),
    )


def diff(a_text: str, b_text: str, settings: Settings) -> DiffResult:
    """What changed from A to B, reading only manifests, configs and referrers (never weights)."""
    return DiffResult(diff_versions(read_side(a_text, settings), read_side(b_text, settings)))

"""Text rendering of ``ci-modelver prune`` results (JSON comes from their ``to_json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ci_modelver.commands.prune import PruneResult
from ci_modelver.core.text import human_size, one_line, short_digest, text_table

REGISTRY_GC = (
    "the registry reclaims the blob space only in its own garbage collection (CNCF "
    "distribution: 'docker-registry garbage-collect CONFIG' while it is stopped or read-only; "
    "GHCR and Docker Hub collect on their own)"
)


def _what(counts: Mapping[str, int]) -> str:
    return (
        f"{counts['manifests']} manifest(s), {counts['referrers']} referrer(s) (evaluations, "
        f"signatures), {counts['indexes']} referrer index(es)"
    )


def prune_lines(result: PruneResult) -> list[str]:
    """A row per version (keep or delete, and why), then what was or would be deleted."""
    plan = result.plan
    mode = "dry run, nothing deleted" if result.dry_run else "--yes"
    lines = [f"Prune {result.repository} ({mode})"]
    if plan.decisions:
        rows = [
            [
                d.version,
                short_digest(d.digest),
                d.created or "—",
                human_size(d.size),
                "keep" if d.keep else "delete",
                "; ".join(d.reasons) if d.keep else f"frees {human_size(d.frees)}",
            ]
            for d in plan.decisions
        ]
        lines += text_table(["version", "digest", "created", "size", "action", "why"], rows)
    else:
        lines.append("  no versions")
    counts = plan.counts()
    orphans = sum(1 for d in plan.deletions if not d.versions)
    extra = f" and {orphans} referrer index(es) whose version is gone" if orphans else ""
    lines.append("")
    if result.dry_run:
        lines.append(
            f"would delete {counts['versions']} version(s){extra}: {_what(counts)}; frees "
            f"{human_size(plan.freed)}"
        )
        if counts["versions"] or orphans:
            lines.append("rerun with --yes to delete")
    else:
        lines.append(
            f"deleted {counts['versions']} version(s){extra}: {_what(result.done.to_json())}; "
            f"frees {human_size(plan.freed)}"
        )
        if result.registry:
            lines.append(f"note: {REGISTRY_GC}")
    collected = result.collected
    if collected is not None:
        lines.append(
            f"layout: removed {collected.blobs} unreferenced blob(s) "
            f"({human_size(collected.bytes)})"
        )
        if collected.young:
            lines.append(
                f"layout: left {collected.young} unreferenced blob(s) "
                f"({human_size(collected.young_bytes)}) written within the grace period; a "
                "later prune removes them"
            )
    # Versions and aliases come from the store: one line each, control characters escaped.
    return [one_line(line) for line in lines]


def _prune(result: PruneResult, fmt: str, in_actions: bool, lines: Any) -> None:
    lines.out(*prune_lines(result))


# Result type → renderer(result, fmt, in_actions, lines); merged into edges/terminal.py's map.
RENDERERS: Mapping[type, Callable[[Any, str, bool, Any], None]] = {PruneResult: _prune}

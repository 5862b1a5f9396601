"""Text rendering of ``ci-modelver copy`` results (JSON comes from their ``to_json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ci_modelver.commands.copy import CopyResult
from ci_modelver.core.text import human_size, one_line


def _copy(result: CopyResult, fmt: str, in_actions: bool, lines: Any) -> None:
    written = sum(1 for v in result.versions if v.status == "copied")
    lines.out(
        one_line(
            f"copied {len(result.versions)} version(s) from {result.source} to "
            f"{result.destination}: {written} written, "
            f"{len(result.versions) - written} already there; digests unchanged"
        )
    )
    width = max((len(v.version or "-") for v in result.versions), default=1)
    for v in result.versions:
        state = "copied" if v.status == "copied" else "already there"
        lines.out(
            one_line(
                f"  {v.version or '-':<{width}}  {v.digest}  {state}, {v.referrers} referrer(s)"
            )
        )
    lines.out(
        f"  referrers: {result.referrers_copied} copied, {result.referrers_present} already there",
        f"  blobs:     {result.blobs_mounted} mounted, {result.blobs_streamed} streamed "
        f"({human_size(result.bytes_sent)} sent), {result.blobs_present} already there",
    )
    for a in result.aliases:
        target = f"{a.version or '?'} ({a.digest})"
        if a.changed:
            lines.out(
                one_line(
                    f"  alias {a.alias} -> {target}, recorded as {result.destination}:{a.record_tag}"
                )
            )
        else:
            lines.out(one_line(f"  alias {a.alias} already points at {target}"))
    for note in result.skipped:
        lines.out(one_line(f"  skipped: {note}"))


# Result type → renderer(result, fmt, in_actions, lines); merged into edges/terminal.py's map.
RENDERERS: Mapping[type, Callable[[Any, str, bool, Any], None]] = {CopyResult: _copy}

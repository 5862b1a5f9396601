"""Text rendering of ``ci-modelver storage`` results (JSON comes from their ``to_json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ci_modelver.commands.storage import StorageResult
from ci_modelver.core.storage import CONFIG, Usage
from ci_modelver.core.text import human_size, natural_key, one_line, text_table


def _types(by_type: Mapping[str, int]) -> str:
    # Model file types first (natural order), the config last.
    order = sorted((k for k in by_type if k != CONFIG), key=natural_key)
    order += [CONFIG] if CONFIG in by_type else []
    return ", ".join(f"{kind} {human_size(by_type[kind])}" for kind in order)


def _referrers(doc: Mapping[str, Any]) -> str:
    names = (
        ("auditRecords", "audit record(s)"),
        ("evaluations", "evaluation(s)"),
        ("signatures", "signature(s)"),
        ("other", "other referrer(s)"),
        ("indexes", "referrer index(es) sha256-…"),
    )
    return ", ".join(
        f"{doc[key]['count']} {label} ({human_size(doc[key]['bytes'])})" for key, label in names
    )


def storage_lines(result: StorageResult) -> list[str]:
    """The report for terminals: a row per version, then the repository's totals."""
    report = result.report
    doc = report.to_json()
    lines = [f"Storage of {result.repository}"]
    if not report.versions:
        lines.append("  no versions published yet")
    else:
        rows = [
            [
                v.version,
                human_size(v.size),
                human_size(v.new),
                _types(v.by_type),
                ", ".join(v.aliases),
            ]
            for v in report.versions
        ]
        lines += text_table(["version", "size", "new", "by file type", "aliases"], rows)
    totals = doc["totals"]
    percent = f" ({totals['savingRatio'] * 100:.1f}%)" if report.logical else ""
    lines += [
        "",
        f"{len(report.versions)} version(s): logical {human_size(report.logical)}, unique "
        f"{human_size(report.unique)}, saved by shared layers {human_size(report.saving)}{percent}",
    ]
    if report.by_type:
        lines.append(
            "by file type (logical / unique): "
            + ", ".join(
                f"{kind} {human_size(logical)} / {human_size(unique)}"
                for kind, (logical, unique) in sorted(
                    report.by_type.items(), key=lambda item: natural_key(item[0])
                )
            )
        )
    if report.versions:
        lines.append(
            "largest: " + ", ".join(f"{v.version} ({human_size(v.size)})" for v in report.largest)
        )
    usage: Mapping[str, Usage] = report.referrers
    if any(u.count for u in usage.values()) or report.indexes.count:
        lines.append("referrers (apart from the versions): " + _referrers(doc["referrers"]))
    for tag, digest in sorted(report.other_tags.items()):
        lines.append(f"tag {tag} names no version: {digest}")
    # Tags, types and aliases come from the store: one line each, control characters escaped.
    return [one_line(line) for line in lines]


def _storage(result: StorageResult, fmt: str, in_actions: bool, lines: Any) -> None:
    lines.out(*storage_lines(result))


# Result type → renderer(result, fmt, in_actions, lines); merged into edges/terminal.py's map.
RENDERERS: Mapping[type, Callable[[Any, str, bool, Any], None]] = {StorageResult: _storage}

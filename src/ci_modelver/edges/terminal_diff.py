"""Text and Markdown rendering of ``ci-modelver diff`` (JSON comes from ``DiffResult.to_json``).

Everything shown comes from the two stores: in text every line goes through ``one_line``
(control characters escaped), in Markdown every value through ``compare_report.md`` (no HTML,
no table break, no mention, no link), the escaping ``compare`` uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ci_modelver.commands.diff import DiffResult
from ci_modelver.core.compare_report import md, num, signed
from ci_modelver.core.refs import DIGEST_RE
from ci_modelver.core.text import human_size, one_line, short_digest
from ci_modelver.core.version_diff import (
    ADDED,
    REMOVED,
    DataChange,
    FileChange,
    MetricDelta,
    ValueChange,
    VersionDiff,
    VersionSummary,
)

_SIGN = {ADDED: "+", REMOVED: "-"}


def _sign(change: str) -> str:
    return _SIGN.get(change, "~")


def _value(value: Any) -> str:
    """A recorded value as people read it: text as is, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _version(side: VersionSummary) -> str:
    return f"{side.name} {side.version or '(no version)'}"


def _counts(changes: Sequence[Any], unchanged: int | None = None) -> str:
    parts = [
        f"{sum(1 for c in changes if c.change == kind)} {kind}"
        for kind in (ADDED, REMOVED, "changed")
        if any(c.change == kind for c in changes)
    ]
    if unchanged:
        parts.append(f"{unchanged} unchanged")
    return ", ".join(parts) or "no change"


def _verdict(row: MetricDelta) -> str:
    return row.verdict + (f" ({row.reason})" if row.reason else "")


def _gate_note(diff: VersionDiff) -> str:
    if diff.gates_from is None:
        return "no gates recorded"
    return f"gates from {diff.gates_from.upper()}'s record"


# --- text ---------------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]], indent: str) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _sizes(a: int, b: int) -> str:
    """``1.0 KiB → 1.5 KiB``; in bytes when the rounded sizes would read the same."""
    if a == b:
        return human_size(a)
    if human_size(a) == human_size(b):
        return f"{a:,} B → {b:,} B"
    return f"{human_size(a)} → {human_size(b)}"


def _file_text(change: FileChange) -> str:
    a, b = change.a, change.b
    if a is None or b is None:
        state = a or b
        assert state is not None
        kind = state.type + (" folder" if state.folder else "")
        path = change.path + ("/" if state.folder else "")
        return (
            f"  {_sign(change.change)} {path}  {kind}  {human_size(state.size)}  "
            f"{short_digest(state.digest)}"
        )
    kind = a.type if a.type == b.type else f"{a.type} → {b.type}"
    if a.media_type != b.media_type and a.type == b.type:
        kind += f" ({a.media_type} → {b.media_type})"
    path = change.path + ("/" if b.folder else "")
    return f"  ~ {path}  {kind}  {_sizes(a.size, b.size)}  {short_digest(a.digest)} → {short_digest(b.digest)}"


def _data_state(state: Any) -> str:
    return f"{state.uri or '—'} {short_digest(state.digest) if state.digest else ''}".rstrip()


def _data_text(change: DataChange) -> str:
    if change.a is None or change.b is None:
        state = change.a or change.b
        return f"  {_sign(change.change)} {change.name}: {_data_state(state)}"
    return f"  ~ {change.name}: {_data_state(change.a)} → {_data_state(change.b)}"


def _value_text(change: ValueChange) -> str:
    if change.change == ADDED:
        return f"  + {change.key}: {_value(change.b)}"
    if change.change == REMOVED:
        return f"  - {change.key}: {_value(change.a)}"
    return f"  ~ {change.key}: {_value(change.a)} → {_value(change.b)}"


def _metrics_text(diff: VersionDiff) -> list[str]:
    if not diff.metrics:
        return []
    lines = [f"metrics (B against A; {_gate_note(diff)}):"]
    by_set: dict[str, list[MetricDelta]] = {}
    for row in diff.metrics:
        by_set.setdefault(row.set, []).append(row)
    for set_name, rows in by_set.items():
        lines.append(f"  {set_name}")
        lines += _table(
            [
                [
                    row.metric + (f" [gated, {row.direction}]" if row.gated else ""),
                    num(row.a),
                    "→",
                    num(row.b),
                    signed(row.delta),
                    signed(row.delta_percent, "%"),
                    _verdict(row),
                ]
                for row in rows
            ],
            "    ",
        )
    return lines


def _side_text(label: str, side: VersionSummary) -> list[str]:
    aliases = ", ".join(side.aliases) or "none"
    evaluations = (
        f"  (metrics include {side.evaluations} attached evaluation(s))" if side.evaluations else ""
    )
    return [
        f"  {label}: {side.ref}",
        f"     created {side.created or '—'}  aliases: {aliases}{evaluations}",
    ]


def _code_text(diff: VersionDiff) -> list[str]:
    if not diff.code.changes:
        return []
    commit_a, commit_b = diff.code.commits
    lines = [f"code: commit {commit_a or '—'} → {commit_b or '—'}"]
    if diff.code.compare_url:
        lines.append(f"  compare: {diff.code.compare_url}")
    return lines + [_value_text(c) for c in diff.code.changes if c.key != "commit"]


def diff_text(diff: VersionDiff) -> list[str]:
    """The diff for terminals, one line per entry."""
    lines = [f"{_version(diff.a)} → {_version(diff.b)}"]
    lines += _side_text("A", diff.a) + _side_text("B", diff.b)
    if diff.identical:
        lines.append(f"identical: A and B are the same version ({diff.a.digest})")
    elif not diff.changed:
        lines.append(
            "no differences in files, data, hyperparameters, metrics, framework, code or record "
            "(the digests differ: creation time or annotations)"
        )
    if diff.files:
        lines.append(f"files: {_counts(diff.files, diff.unchanged_files)}")
        lines += [_file_text(c) for c in diff.files]
    if diff.data:
        lines.append(f"data: {_counts(diff.data)}")
        lines += [_data_text(c) for c in diff.data]
    if diff.hyperparameters:
        lines.append(f"hyperparameters: {_counts(diff.hyperparameters)}")
        lines += [_value_text(c) for c in diff.hyperparameters]
    if not diff.identical:
        lines += _metrics_text(diff)
    if diff.framework:
        lines.append("framework:")
        lines += [_value_text(c) for c in diff.framework]
    lines += _code_text(diff)
    for title, changes in (("record", diff.record), ("build", diff.build)):
        if changes:
            lines.append(f"{title}:")
            lines += [_value_text(c) for c in changes]
    return [one_line(line) for line in lines]


# --- Markdown -----------------------------------------------------------------------------------


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    rule = align or "|" + "---|" * len(head)
    return [_md_row(head), rule, *(_md_row(r) for r in rows), ""]


def _md_or_dash(value: Any) -> str:
    return "—" if value is None else md(_value(value))


def _md_file(change: FileChange) -> list[str]:
    a, b = change.a, change.b
    state = b or a

    def pair(get: Callable[[Any], str]) -> str:
        if a is None or b is None:
            return get(a or b)
        before, after = get(a), get(b)
        return before if before == after else f"{before} → {after}"

    return [
        md(change.path) + ("/" if state is not None and state.folder else ""),
        change.change,
        pair(lambda s: md(s.type + (" folder" if s.folder else ""))),
        _sizes(a.size, b.size) if a and b else human_size(state.size) if state else "—",
        pair(lambda s: f"`{s.digest}`"),
    ]


def _md_data(change: DataChange) -> list[str]:
    def cell(state: Any) -> str:
        if state is None:
            return "—"
        digest = (
            f" `{state.digest}`"
            if state.digest and DIGEST_RE.match(state.digest)
            else (f" {md(state.digest)}" if state.digest else "")
        )
        return f"{md(state.uri or '—')}{digest}"

    return [md(change.name), change.change, cell(change.a), cell(change.b)]


def _md_values(title: str, changes: Sequence[ValueChange]) -> list[str]:
    if not changes:
        return []
    return [
        f"#### {title}: {_counts(changes)}",
        "",
        *_md_table(
            ["key", "change", "A", "B"],
            [[md(c.key), c.change, _md_or_dash(c.a), _md_or_dash(c.b)] for c in changes],
        ),
    ]


def _md_metrics(diff: VersionDiff) -> list[str]:
    if not diff.metrics or diff.identical:
        return []
    rows = [
        [
            md(r.set),
            md(r.metric) + (" 🔒" if r.gated else ""),
            num(r.a),
            num(r.b),
            signed(r.delta),
            signed(r.delta_percent, "%"),
            md(_verdict(r)),
        ]
        for r in diff.metrics
    ]
    return [
        f"#### Metrics (B against A; {_gate_note(diff)}; 🔒 = gated)",
        "",
        *_md_table(
            ["set", "metric", "A", "B", "Δ", "Δ%", "verdict"],
            rows,
            "|---|---|---:|---:|---:|---:|---|",
        ),
    ]


def diff_markdown(diff: VersionDiff) -> list[str]:
    """The diff as GitHub-flavoured Markdown; every value from the stores escaped."""
    a, b = diff.a, diff.b
    lines = [f"### {md(_version(a))} → {md(_version(b))}", ""]
    lines += _md_table(
        ["", "A", "B"],
        [
            ["version", md(a.version or "—"), md(b.version or "—")],
            ["reference", md(a.ref, 400), md(b.ref, 400)],
            ["digest", f"`{a.digest}`", f"`{b.digest}`"],
            ["created", md(a.created or "—"), md(b.created or "—")],
            ["aliases", md(", ".join(a.aliases) or "—"), md(", ".join(b.aliases) or "—")],
        ],
    )
    if diff.identical:
        lines += ["**Identical**: A and B are the same version (same digest).", ""]
    elif not diff.changed:
        lines += [
            "No differences in files, data, hyperparameters, metrics, framework, code or record "
            "(the digests differ: creation time or annotations).",
            "",
        ]
    if diff.files:
        lines += [
            f"#### Files: {_counts(diff.files, diff.unchanged_files)}",
            "",
            *_md_table(
                ["path", "change", "type", "size", "digest"], [_md_file(c) for c in diff.files]
            ),
        ]
    if diff.data:
        lines += [
            f"#### Data: {_counts(diff.data)}",
            "",
            *_md_table(["dataset", "change", "A", "B"], [_md_data(c) for c in diff.data]),
        ]
    lines += _md_values("Hyperparameters", diff.hyperparameters)
    lines += _md_metrics(diff)
    lines += _md_values("Framework", diff.framework)
    if diff.code.changes:
        commit_a, commit_b = diff.code.commits
        lines += ["#### Code", "", f"commit {md(commit_a or '—')} → {md(commit_b or '—')}", ""]
        if diff.code.compare_url:
            lines += [f"[compare the code]({diff.code.compare_url})", ""]
        others = [c for c in diff.code.changes if c.key != "commit"]
        if others:
            lines += _md_table(
                ["key", "change", "A", "B"],
                [[md(c.key), c.change, _md_or_dash(c.a), _md_or_dash(c.b)] for c in others],
            )
    lines += _md_values("Record", diff.record)
    lines += _md_values("Build", diff.build)
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _diff(result: DiffResult, fmt: str, in_actions: bool, lines: Any) -> None:
    render = diff_markdown if fmt == "markdown" else diff_text
    lines.out(*render(result.diff))


# Result type → renderer(result, fmt, in_actions, lines); merged into edges/terminal.py's map.
RENDERERS: Mapping[type, Callable[[Any, str, bool, Any], None]] = {DiffResult: _diff}

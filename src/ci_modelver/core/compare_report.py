"""Comparison reports: Markdown (sticky PR comment, step summary), text and JSON.

Every user-provided string (metric and set names, hyperparameter keys and values, dataset URIs,
descriptions) is escaped before it reaches a template, so custom templates are safe too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ci_modelver.core.compare import (
    CHANGED,
    FAILED,
    IMPROVED,
    MISSING,
    NEW,
    UNCHANGED,
    WORSE_OK,
    Change,
    Comparison,
    MetricRow,
    Side,
)
from ci_modelver.core.text import one_line
from ci_modelver.errors import TemplateError

COMMENT_LIMIT = 65_536  # GitHub's maximum issue comment body (characters)
SUMMARY_LIMIT = 1024 * 1024  # GitHub's maximum job summary size (bytes), the one definition
MAX_CHARTS = 8
TREND_POINTS = 10

_ICONS = {
    FAILED: "❌ failed",
    MISSING: "⚠️ missing",
    WORSE_OK: "⚠️ worse, within tolerance",
    IMPROVED: "✅ improved",
    UNCHANGED: "➖ unchanged",
    CHANGED: "↕️ changed (no gate)",
    NEW: "🆕 new",
}
_MD_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "&#124;",
    "`": "&#96;",
    "@": "&#64;",
    "[": "&#91;",
    "]": "&#93;",
    "*": "&#42;",
    "_": "&#95;",
    "~": "&#126;",
    "\\": "&#92;",
    "#": "&#35;",
    "$": "&#36;",
}
_MD_SPECIAL = re.compile("[" + re.escape("".join(_MD_ENTITIES)) + "]")


def md(value: Any, limit: int = 300) -> str:
    """Escape text for a Markdown table cell: no HTML, no table break, no mention, one line."""
    text = one_line(str(value), limit)
    text = re.sub(r"\\[nrt]", " ", text)
    return _MD_SPECIAL.sub(lambda m: _MD_ENTITIES[m.group(0)], text)


def num(value: float | None) -> str:
    """Metric values with 4 decimals (integers of any size as they are)."""
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4f}"


def signed(value: float | None, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:+.4f}{suffix}" if not suffix else f"{value:+.2f}{suffix}"


def marker_for(name: str, key: str | None = None) -> str:
    """The hidden HTML comment that identifies our sticky comment for a model (and job key)."""
    safe = re.sub(r"[^A-Za-z0-9._/-]", "_", name)
    suffix = f" key={re.sub(r'[^A-Za-z0-9._/-]', '_', key)}" if key else ""
    return f"<!-- ci-modelver:report name={safe}{suffix} -->"


def headline(comparison: Comparison, escape: Callable[[Any], str]) -> str:
    cand = comparison.candidate
    name = f"{escape(cand.name)} {escape(cand.version)}"
    if comparison.baseline is None:
        return f"🆕 {name}: first version, nothing to compare" + (
            f" — {len(comparison.failures)} gate(s) failed" if comparison.failed else ""
        )
    base = comparison.baseline
    against = f"{escape(base.label or base.version)}" + (
        f" ({escape(base.version)})" if base.label and base.label != base.version else ""
    )
    if comparison.failed:
        return f"❌ {name} vs {against}: {len(comparison.failures)} gate(s) failed"
    worse = sum(1 for r in comparison.rows if r.verdict == WORSE_OK)
    tail = f", {worse} metric(s) slightly worse within tolerance" if worse else ""
    return f"✅ {name} vs {against}: no regression{tail}"


def _row_view(row: MetricRow, escape: Callable[[Any], str]) -> dict[str, str]:
    return {
        "metric": escape(row.metric) + (" 🔒" if row.gate is not None and escape is md else ""),
        "baseline": num(row.baseline),
        "candidate": num(row.candidate),
        "delta": signed(row.delta),
        "delta_pct": signed(row.delta_pct, "%"),
        "verdict": (_ICONS[row.verdict] if escape is md else row.verdict)
        + (f" — {escape(row.reason)}" if row.reason and escape is md else ""),
        "reason": escape(row.reason) if escape is not md else "",
    }


def _side_view(side: Side | None, escape: Callable[[Any], str], code: bool) -> dict[str, str]:
    if side is None:
        return {"version": "—", "digest": "—", "ref": "—"}
    digest = side.digest or "(not published)"
    ref = side.ref or "—"
    if code:
        digest = f"`{digest}`" if side.digest else digest
        ref = f"`{one_line(ref, 400).replace('`', '')}`" if side.ref else ref
    return {"version": escape(side.version), "digest": digest, "ref": ref}


def _mermaid_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9 ._/+()-]", "_", text)[:60]


def trend_charts(comparison: Comparison) -> list[str]:
    """Mermaid xychart-beta blocks for gated metrics over the last published versions + candidate."""
    points = comparison.trend[-TREND_POINTS:]
    if len(points) < 2:
        return []
    charts = []
    gated = [r for r in comparison.rows if r.gate is not None and r.candidate is not None]
    for row in gated[:MAX_CHARTS]:
        series = [(p.version, p.metrics.get(row.set, {}).get(row.metric)) for p in points]
        known = [(v, x) for v, x in series if x is not None]
        if len(known) < 2:
            continue
        assert row.candidate is not None
        known.append((f"{comparison.candidate.version} (candidate)", row.candidate))
        values = [x for _, x in known]
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or abs(high) * 0.05 or 1.0
        labels = ", ".join(f'"{_mermaid_label(v)}"' for v, _ in known)
        title = _mermaid_label(f"{row.set}/{row.metric}")
        charts.append(
            "xychart-beta\n"
            f'    title "{title}"\n'
            f"    x-axis [{labels}]\n"
            f'    y-axis "{_mermaid_label(row.metric)}" {low - pad:.6g} --> {high + pad:.6g}\n'
            f"    line [{', '.join(f'{x:.6g}' for x in values)}]"
        )
    return charts


@dataclass(frozen=True)
class _Level:
    details: bool
    charts: bool
    only_bad: bool
    max_rows: int | None


_LEVELS = (
    _Level(True, True, False, None),
    _Level(False, True, False, None),
    _Level(False, False, False, None),
    _Level(False, False, True, None),
)


def _change_rows(changes: Sequence[Change], escape: Callable[[Any], str]) -> list[list[str]]:
    return [
        [
            escape(c.key),
            c.kind,
            escape(c.before if c.before is not None else "—"),
            escape(c.after if c.after is not None else "—"),
        ]
        for c in changes
    ]


def _details(comparison: Comparison, escape: Callable[[Any], str]) -> list[dict[str, Any]]:
    """Collapsible diff sections; only the ones with something to say."""
    if comparison.baseline is None:
        return []
    sections: list[dict[str, Any]] = []
    for title, first, changes in (
        ("Hyperparameters", "key", comparison.hyperparameters),
        ("Data", "dataset", comparison.data),
        ("Files", "path", comparison.files),
    ):
        if changes:
            sections.append(
                {
                    "title": f"{title}: {len(changes)} change(s)",
                    "columns": [first, "change", "baseline", "candidate"],
                    "rows": _change_rows(changes, escape),
                    "lines": [],
                }
            )
    before, after = comparison.code_change
    if before or after:
        lines = [f"commit {escape(before or '—')} → {escape(after or '—')}"]
        if comparison.compare_url:
            url = comparison.compare_url
            lines.append(
                f"[compare the code]({url.replace(')', '%29').replace(' ', '%20')})"
                if escape is md
                else url
            )
        title = "Code: same commit" if before == after else "Code: changed"
        sections.append({"title": title, "columns": [], "rows": [], "lines": lines})
    return sections


def build_view(
    comparison: Comparison,
    *,
    markdown: bool,
    level: _Level = _LEVELS[0],
    marker: str = "",
    version: str = "",
) -> dict[str, Any]:
    """The values templates see; strings are already escaped for the target format."""
    escape: Callable[[Any], str] = md if markdown else (lambda v: one_line(str(v)))
    sets: dict[str, list[MetricRow]] = {}
    for row in comparison.rows:
        sets.setdefault(row.set, []).append(row)
    set_views = []
    budget = level.max_rows
    for name, rows in sets.items():
        shown = [
            r for r in rows if not level.only_bad or r.fails or r.verdict in (WORSE_OK, MISSING)
        ]
        if budget is not None:
            shown = shown[: max(0, budget)]
            budget -= len(shown)
        set_views.append(
            {
                "name": escape(name),
                "rows": [_row_view(r, escape) for r in shown],
                "hidden": len(rows) - len(shown),
            }
        )
    counts = comparison.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return {
        "marker": marker,
        "headline": headline(comparison, escape),
        "baseline": _side_view(comparison.baseline, escape, markdown),
        "candidate": _side_view(comparison.candidate, escape, markdown),
        "note": escape(comparison.note) if comparison.note else "",
        "sets": set_views,
        "charts": trend_charts(comparison) if level.charts else [],
        "details": _details(comparison, escape) if level.details else [],
        "footer": f"ci-modelver {version} · {summary or 'no metrics'} · 🔒 = gated metric",
        "failed": comparison.failed,
    }


def render(template: str, view: dict[str, Any]) -> str:
    """Render a Jinja2 template string with a view (no autoescape: values are pre-escaped)."""
    import jinja2  # here, not at the top: only reports need it (12 ms of every start-up)

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        rendered: str = env.from_string(template).render(**view)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"line {exc.lineno}: {one_line(exc.message or 'syntax error', 200)}"
        ) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(one_line(str(exc), 200)) from None
    return rendered


def render_markdown(
    comparison: Comparison, template: str, *, marker: str, version: str, limit: int = COMMENT_LIMIT
) -> str:
    """Markdown that fits ``limit``: details go first, then the trend, then good rows; never a cut row."""
    for level in _LEVELS:
        text = render(
            template,
            build_view(comparison, markdown=True, level=level, marker=marker, version=version),
        )
        if len(text) <= limit:
            return text
    low, high = 0, len(comparison.rows)
    best = render(
        template,
        build_view(
            comparison,
            markdown=True,
            level=_Level(False, False, True, 0),
            marker=marker,
            version=version,
        ),
    )
    while low <= high:
        middle = (low + high) // 2
        text = render(
            template,
            build_view(
                comparison,
                markdown=True,
                level=_Level(False, False, True, middle),
                marker=marker,
                version=version,
            ),
        )
        if len(text) <= limit:
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best


def render_text(comparison: Comparison, template: str, *, version: str) -> str:
    return render(template, build_view(comparison, markdown=False, version=version))


def _side_json(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "name": side.name,
        "version": side.version,
        "digest": side.digest,
        "ref": side.ref,
        "label": side.label or None,
    }


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """Stable keys for machines (documented in the README)."""
    return {
        "regression": comparison.failed,
        "candidate": _side_json(comparison.candidate),
        "baseline": _side_json(comparison.baseline),
        "note": comparison.note or None,
        "counts": comparison.counts(),
        "metrics": [
            {
                "set": r.set,
                "metric": r.metric,
                "baseline": r.baseline,
                "candidate": r.candidate,
                "delta": r.delta,
                "deltaPercent": r.delta_pct,
                "verdict": r.verdict,
                "gated": r.gate is not None,
                "fails": r.fails,
                "reason": r.reason or None,
            }
            for r in comparison.rows
        ],
        "hyperparameters": [
            {"key": c.key, "change": c.kind, "baseline": c.before, "candidate": c.after}
            for c in comparison.hyperparameters
        ],
        "data": [
            {"name": c.key, "change": c.kind, "baseline": c.before, "candidate": c.after}
            for c in comparison.data
        ],
        "files": [
            {"path": c.key, "change": c.kind, "baseline": c.before, "candidate": c.after}
            for c in comparison.files
        ],
        "code": {
            "baseline": comparison.code_change[0],
            "candidate": comparison.code_change[1],
            "compareUrl": comparison.compare_url,
        },
    }

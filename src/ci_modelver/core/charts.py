"""SVG charts for the registry site, drawn as text (pure): trend lines and sparklines.

Every text node that can carry outside text (version names, metric and alias names) is
XML-escaped here and attributes hold only numbers and sanitised ids, so the markup can be
inserted into an HTML page as it is. No
``xmlns`` (inline SVG in HTML needs none) and no ``style`` attributes (the page's CSP forbids
inline styles): presentation attributes and CSS classes only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56
SPARK_WIDTH, SPARK_HEIGHT = 120, 28
MAX_X_LABELS = 12


@dataclass(frozen=True)
class ChartPoint:
    """One value on a chart: its x label (a version), the value and the aliases marking it."""

    label: str
    value: float
    markers: tuple[str, ...] = ()


def text(value: str) -> str:
    """Escape a text node (``&``, ``<``, ``>``)."""
    return escape(value)


def number(value: float) -> str:
    """A metric value for people: up to 6 significant digits, integers without a point."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _coord(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low``…``high`` (at least two)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while value < high + step * 0.5 and len(ticks) < 20:
        ticks.append(round(value, 12))
        value += step
    if len(ticks) < 2:
        ticks.append(round(start + step, 12))
    return ticks


def trend_chart(
    chart_id: str, title: str, points: Sequence[ChartPoint], *, y_label: str, direction: str = ""
) -> str:
    """A line chart of ``points`` (oldest first): axes, tick labels, a ``<title>`` per point.

    ``chart_id`` must be unique in the page (it names the title and description elements).
    Alias markers are drawn as labelled rings on the points they mark.
    """
    ident = "".join(c if c.isalnum() or c in "-_" else "-" for c in chart_id)
    values = [p.value for p in points]
    ticks = nice_ticks(min(values), max(values)) if values else [0.0, 1.0]
    low, high = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_at(i: int) -> float:
        return LEFT + (plot_w / 2 if len(points) == 1 else plot_w * i / (len(points) - 1))

    def y_at(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    better = {"higher": "higher is better", "lower": "lower is better"}.get(direction, "")
    desc = f"{y_label} of {len(points)} version(s)" + (f", {better}" if better else "")
    if points:
        desc += f"; from {number(points[0].value)} ({points[0].label}) to "
        desc += f"{number(points[-1].value)} ({points[-1].label})"
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{text(title)}</title>',
        f'<desc id="{ident}-desc">{text(desc)}</desc>',
    ]
    for tick in ticks:
        y = _coord(y_at(tick))
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" '
            'stroke="#d0d0d0" stroke-width="1"/>'
        )
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle" font-size="11" fill="#333">{text(number(tick))}</text>'
        )
    bottom = TOP + plot_h
    out.append(
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" '
        'stroke="#333" stroke-width="1"/>'
    )
    out.append(
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" '
        'stroke="#333" stroke-width="1"/>'
    )
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    for i, point in enumerate(points):
        if i % every and i != len(points) - 1:
            continue
        out.append(
            f'<text class="tick" x="{_coord(x_at(i))}" y="{bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="#333">{text(_short(point.label))}</text>'
        )
    out.append(
        f'<text class="label" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle" '
        'font-size="12" fill="#333">version</text>'
    )
    if len(points) > 1:
        path = " ".join(f"{_coord(x_at(i))},{_coord(y_at(p.value))}" for i, p in enumerate(points))
        out.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="#1f5fa8" '
            'stroke-width="2"/>'
        )
    for i, point in enumerate(points):
        x, y = _coord(x_at(i)), _coord(y_at(point.value))
        marked = f" ({', '.join(point.markers)})" if point.markers else ""
        label = f"{point.label}: {y_label} = {number(point.value)}{marked}"
        out.append('<g class="point">')
        if point.markers:
            out.append(
                f'<circle class="marker" cx="{x}" cy="{y}" r="8" fill="none" stroke="#a33000" '
                'stroke-width="2"/>'
            )
            out.append(
                f'<text class="marker-label" x="{x}" y="{_coord(y_at(point.value) - 12)}" '
                f'text-anchor="middle" font-size="11" fill="#a33000">'
                f"{text(_short(', '.join(point.markers)))}</text>"
            )
        out.append(
            f'<circle cx="{x}" cy="{y}" r="4" fill="#1f5fa8"><title>{text(label)}</title></circle>'
        )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def sparkline(chart_id: str, label: str, values: Sequence[float]) -> str:
    """A small line of ``values`` (oldest first) with an accessible name; empty for no values."""
    if not values:
        return ""
    ident = "".join(c if c.isalnum() or c in "-_" else "-" for c in chart_id)
    low, high = min(values), max(values)
    span = (high - low) or 1.0

    def xy(i: int, v: float) -> str:
        x = 2 + (SPARK_WIDTH - 4) * (i / (len(values) - 1) if len(values) > 1 else 0.5)
        y = 2 + (SPARK_HEIGHT - 4) * (1 - (v - low) / span if high != low else 0.5)
        return f"{_coord(x)},{_coord(y)}"

    shown = ", ".join(number(v) for v in values)
    out = [
        f'<svg class="sparkline" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" '
        f'width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title">',
        f'<title id="{ident}-title">{text(f"{label}: {shown}")}</title>',
    ]
    if len(values) > 1:
        points = " ".join(xy(i, v) for i, v in enumerate(values))
        out.append(f'<polyline points="{points}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>')
    last = xy(len(values) - 1, values[-1]).split(",")
    out.append(f'<circle cx="{last[0]}" cy="{last[1]}" r="2.5" fill="#1f5fa8"/>')
    out.append("</svg>")
    return "\n".join(out)


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"

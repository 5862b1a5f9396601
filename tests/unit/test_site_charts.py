"""SVG charts drawn in Python: points, a title per point, axes, escaping, no inline styles."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ci_modelver.core.charts import ChartPoint, nice_ticks, number, sparkline, trend_chart

HOSTILE = "</script><script>alert(1)</script>"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, so every text was escaped


def test_a_point_and_a_title_per_value() -> None:
    points = [
        ChartPoint("1.0.0", 0.8),
        ChartPoint("1.1.0", 0.82, ("production",)),
        ChartPoint("1.2.0", 0.81),
    ]
    root = _parse(
        trend_chart(
            "c1", "validation / accuracy", points, y_label="validation/accuracy", direction="higher"
        )
    )
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find("title") is not None and root.find("title").text == "validation / accuracy"  # type: ignore[union-attr]
    dots = [c for c in root.iter("circle") if c.find("title") is not None]
    assert [c.find("title").text for c in dots] == [  # type: ignore[union-attr]
        "1.0.0: validation/accuracy = 0.8",
        "1.1.0: validation/accuracy = 0.82 (production)",
        "1.2.0: validation/accuracy = 0.81",
    ]
    assert len(root.findall("polyline")) == 1
    labels = [t.text for t in root.iter("text")]
    assert {"1.0.0", "1.1.0", "1.2.0", "version", "production"} <= set(labels)
    assert "higher is better" in (root.find("desc").text or "")  # type: ignore[union-attr]


def test_higher_values_are_drawn_higher() -> None:
    root = _parse(trend_chart("c", "t", [ChartPoint("a", 1.0), ChartPoint("b", 2.0)], y_label="m"))
    dots = [c for c in root.iter("circle") if c.find("title") is not None]
    assert float(dots[1].get("cy", "0")) < float(dots[0].get("cy", "0"))
    assert float(dots[1].get("cx", "0")) > float(dots[0].get("cx", "0"))


def test_outside_text_is_escaped() -> None:
    svg = trend_chart("x", HOSTILE, [ChartPoint(HOSTILE, 1.0, (HOSTILE,))], y_label=HOSTILE)
    assert "<script" not in svg and "&lt;/script&gt;" in svg
    root = _parse(svg)
    assert root.find("title").text == HOSTILE  # type: ignore[union-attr]
    spark = sparkline("s", '"><svg onload=alert(1)>', [1.0, 2.0])
    assert "<svg onload" not in spark and "&lt;svg onload=alert(1)&gt;" in spark
    _parse(spark)


def test_ids_are_sanitised_and_no_style_or_namespace_urls() -> None:
    svg = trend_chart('a" onload="x', "t", [ChartPoint("1", 1.0)], y_label="m")
    assert 'onload="' not in svg
    root = _parse(svg)
    assert root.get("aria-labelledby") == "a--onload--x-title a--onload--x-desc"
    assert "style=" not in svg and "http" not in svg and "xmlns" not in svg


def test_one_point_and_equal_values() -> None:
    root = _parse(trend_chart("c", "t", [ChartPoint("1.0.0", 5.0)], y_label="m"))
    assert len([c for c in root.iter("circle")]) == 1 and not root.findall("polyline")
    flat = _parse(trend_chart("c", "t", [ChartPoint("a", 3.0), ChartPoint("b", 3.0)], y_label="m"))
    ys = {c.get("cy") for c in flat.iter("circle")}
    assert len(ys) == 1


def test_many_versions_keep_the_x_labels_readable() -> None:
    points = [ChartPoint(f"1.{i}.0", float(i)) for i in range(40)]
    root = _parse(trend_chart("c", "t", points, y_label="m"))
    version_labels = [
        t.text for t in root.iter("text") if t.text and re.match(r"1\.\d+\.0", t.text)
    ]
    assert 2 <= len(version_labels) <= 14 and version_labels[-1] == "1.39.0"
    assert len([c for c in root.iter("circle") if c.find("title") is not None]) == 40


def test_ticks_and_numbers() -> None:
    ticks = nice_ticks(0.8, 0.82)
    assert ticks[0] <= 0.8 and ticks[-1] >= 0.82 and len(ticks) >= 2
    assert nice_ticks(1.0, 1.0)[0] < 1.0 < nice_ticks(1.0, 1.0)[-1]
    assert number(3.0) == "3" and number(0.123456789) == "0.123457" and number(1e20) == "1e+20"


def test_sparkline() -> None:
    assert sparkline("s", "m", []) == ""
    root = _parse(sparkline("s", "validation/accuracy by version", [0.8, 0.82, 0.81]))
    assert root.find("title").text == "validation/accuracy by version: 0.8, 0.82, 0.81"  # type: ignore[union-attr]
    assert root.get("aria-labelledby") == "s-title"

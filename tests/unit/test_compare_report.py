"""Compare reports: golden Markdown, escaping of hostile names, size limits, trend charts, JSON."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ci_modelver.commands.compare import report_json, report_markdown, report_text
from ci_modelver.core.compare import Comparison, FileInfo, Side, TrendPoint, compare
from ci_modelver.core.compare_report import COMMENT_LIMIT, marker_for, md
from ci_modelver.core.manifest import Gate, Tolerance

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
D = "sha256:" + "1" * 64


def _gate(
    key: str,
    direction: str = "higher",
    tol: float = 0.0,
    pct: bool = False,
    lo: float | None = None,
) -> Gate:
    return Gate(key, direction, Tolerance(tol, pct), lo, None)  # type: ignore[arg-type]


def _comparison(*, worse: bool = False, trend: bool = True) -> Comparison:
    base = Side(
        "churn",
        "1.0.0",
        "sha256:" + "a" * 64,
        "ghcr.io/acme/churn@sha256:" + "a" * 64,
        {
            "validation": {"accuracy": 0.80, "log_loss": 0.40, "f1": 0.7},
            "shifted": {"accuracy": 0.75},
        },
        {"lr": 0.1, "epochs": 300},
        [{"name": "train", "uri": "s3://b/train.csv", "digest": "sha256:" + "c" * 64}],
        {"commit": "a" * 40, "repository": "https://github.com/acme/churn"},
        [FileInfo("model.safetensors", "weight", "sha256:" + "d" * 64, 1000)],
        label="production",
    )
    cand_acc = 0.77 if worse else 0.82
    cand = Side(
        "churn",
        "1.1.0",
        "sha256:" + "b" * 64,
        None,
        {
            "validation": {"accuracy": cand_acc, "log_loss": 0.41, "f1": 0.72},
            "shifted": {"accuracy": 0.76},
        },
        {"lr": 0.05, "epochs": 300},
        [{"name": "train", "uri": "s3://b/train.csv", "digest": "sha256:" + "c" * 64}],
        {"commit": "b" * 40, "repository": "https://github.com/acme/churn"},
        [FileInfo("model.safetensors", "weight", "sha256:" + "e" * 64, 1004)],
        label="candidate",
    )
    gates = [_gate("accuracy", tol=0.01), _gate("validation/log_loss", "lower", 5, True)]
    points = [
        TrendPoint("0.9.0", {"validation": {"accuracy": 0.78, "log_loss": 0.45}}),
        TrendPoint("1.0.0", {"validation": {"accuracy": 0.80, "log_loss": 0.40}}),
    ]
    return compare(cand, base, gates, points if trend else [])


@pytest.mark.parametrize(("name", "worse"), [("compare-pass.md", False), ("compare-fail.md", True)])
def test_markdown_matches_golden(name: str, worse: bool) -> None:
    text = report_markdown(_comparison(worse=worse), None, None).replace(
        "ci-modelver 0.1.0", "ci-modelver VERSION"
    )
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_headline_and_first_line_marker() -> None:
    passing = report_markdown(_comparison(), None, "matrix-1")
    assert passing.splitlines()[0] == "<!-- ci-modelver:report name=churn key=matrix-1 -->"
    assert "### ✅ churn 1.1.0 vs production (1.0.0): no regression" in passing
    failing = report_markdown(_comparison(worse=True), None, None)
    assert "### ❌ churn 1.1.0 vs production (1.0.0): 1 gate(s) failed" in failing
    assert "❌ failed — worse by 0.03, more than the tolerance 0.01" in failing


def test_trend_chart_needs_two_published_versions() -> None:
    with_trend = report_markdown(_comparison(), None, None)
    assert (
        with_trend.count("```mermaid") == 2
    )  # validation accuracy and log_loss; shifted has no history
    assert 'x-axis ["0.9.0", "1.0.0", "1.1.0 (candidate)"]' in with_trend
    assert "line [0.78, 0.8, 0.82]" in with_trend
    assert "```mermaid" not in report_markdown(_comparison(trend=False), None, None)


HOSTILE = [
    "a|b",
    "x\ny",
    "`code`",
    "<img src=x onerror=alert(1)>",
    "@octocat",
    "[link](https://evil.example)",
    "**bold**",
    "</details><script>",
    "```",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_metric_and_set_names_are_escaped(name: str) -> None:
    base = Side("m", "1.0.0", D, None, {name: {name: 1.0}}, {name: name})
    cand = Side("m", "1.1.0", D, None, {name: {name: 0.5}}, {name: name + "!"})
    text = report_markdown(compare(cand, base, [_gate(name, tol=0.1)]), None, None)
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
            assert line.count("|") - line.count("\\|") in (4, 5, 7), (
                line
            )  # no extra cell separators
    for bad in ("<img", "<script", "@octocat", "](https://evil", "**bold**", "`code`"):
        assert bad not in text
    assert text.count("<details>") == text.count("</details>")
    assert md("a\nb") == "a b"


def test_size_limit_drops_details_then_good_rows_and_never_cuts_a_row() -> None:
    metrics_base = {
        f"set{s}": {f"metric_{i}_{'x' * 40}": 0.5 for i in range(300)} for s in range(5)
    }
    metrics_cand = {
        k: {m: (0.4 if i % 50 == 0 else 0.6) for i, m in enumerate(v)}
        for k, v in metrics_base.items()
    }
    hyper_b = {f"param_{i}": "y" * 100 for i in range(500)}
    hyper_c = {f"param_{i}": "z" * 100 for i in range(500)}
    base = Side("m", "1.0.0", D, None, metrics_base, hyper_b)
    cand = Side("m", "1.1.0", D, None, metrics_cand, hyper_c)
    gates = [_gate(m, tol=0.01) for m in list(metrics_base["set0"])[:300]]
    comparison = compare(cand, base, gates)
    text = report_markdown(comparison, None, None)
    assert len(text) <= COMMENT_LIMIT
    assert "<details>" not in text
    assert "more row(s) improved, unchanged or ungated" in text
    failing_rows = [ln for ln in text.splitlines() if "❌ failed" in ln]
    assert len(failing_rows) == len(comparison.failures)  # every failure stays visible
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")


def test_many_failures_still_fit() -> None:
    base = Side("m", "1.0.0", D, None, {"s": {f"m{i:05d}" + "q" * 60: 1.0 for i in range(3000)}})
    cand = Side("m", "1.1.0", D, None, {"s": {f"m{i:05d}" + "q" * 60: 0.0 for i in range(3000)}})
    comparison = compare(cand, base, [_gate(f"m{i:05d}" + "q" * 60) for i in range(3000)])
    text = report_markdown(comparison, None, None)
    assert len(text) <= COMMENT_LIMIT
    assert text.splitlines()[0].startswith("<!-- ci-modelver:report")
    assert all(ln.endswith("|") for ln in text.splitlines() if ln.startswith("|"))
    assert re.search(r"_\d+ more row\(s\)", text)


def test_text_and_json_reports() -> None:
    comparison = _comparison(worse=True)
    text = report_text(comparison, None)
    assert "accuracy" in text and "failed (worse by 0.03, more than the tolerance 0.01)" in text
    doc = json.loads(report_json(comparison))
    assert doc["regression"] is True
    assert doc["baseline"]["label"] == "production"
    assert set(doc) == {
        "regression",
        "candidate",
        "baseline",
        "note",
        "counts",
        "metrics",
        "hyperparameters",
        "data",
        "files",
        "code",
    }
    row = next(m for m in doc["metrics"] if m["set"] == "validation" and m["metric"] == "accuracy")
    assert row == {
        "set": "validation",
        "metric": "accuracy",
        "baseline": 0.8,
        "candidate": 0.77,
        "delta": pytest.approx(-0.03),
        "deltaPercent": pytest.approx(-3.75),
        "verdict": "failed",
        "gated": True,
        "fails": True,
        "reason": "worse by 0.03, more than the tolerance 0.01",
    }
    assert (
        doc["code"]["compareUrl"]
        == f"https://github.com/acme/churn/compare/{'a' * 40}...{'b' * 40}"
    )


def test_custom_template_gets_escaped_values() -> None:
    base = Side("m", "1.0.0", D, None, {"s": {"<b>x</b>": 1.0}})
    cand = Side("m", "1.1.0", D, None, {"s": {"<b>x</b>": 2.0}})
    out = report_markdown(
        compare(cand, base, []),
        "{{ marker }}\n{% for s in sets %}{% for r in s.rows %}{{ r.metric }}{% endfor %}{% endfor %}",
        None,
    )
    assert out == f"{marker_for('m')}\n&lt;b&gt;x&lt;/b&gt;"


def test_first_version_report() -> None:
    cand = Side("m", "1.0.0", D, None, {"s": {"acc": 0.5}})
    text = report_markdown(
        compare(
            cand, None, [_gate("acc", lo=0.7)], note="No 'production' and no earlier version in r."
        ),
        None,
        None,
    )
    assert "first version, nothing to compare — 1 gate(s) failed" in text
    assert "0.5 is below the minimum 0.7" in text

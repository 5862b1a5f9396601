"""Gate arithmetic and diffs: verdicts by direction, tolerance (absolute and %), bounds, missing/new."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ci_modelver.core.compare import (
    CHANGED,
    FAILED,
    IMPROVED,
    MISSING,
    NEW,
    UNCHANGED,
    WORSE_OK,
    FileInfo,
    Side,
    compare,
    compare_metrics,
    compare_url,
    diff_mappings,
    gate_for,
    judge,
)
from ci_modelver.core.manifest import Gate, Tolerance


def g(
    key: str = "acc",
    direction: str = "higher",
    tol: float = 0.0,
    pct: bool = False,
    lo: float | None = None,
    hi: float | None = None,
) -> Gate:
    return Gate(key, direction, Tolerance(tol, pct), lo, hi)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base", "cand", "gate", "verdict"),
    [
        (0.80, 0.82, g(), IMPROVED),
        (0.80, 0.80, g(), UNCHANGED),
        (0.80, 0.795, g(tol=0.01), WORSE_OK),
        (0.80, 0.79, g(tol=0.01), WORSE_OK),  # exactly at the tolerance passes
        (0.80, 0.78, g(tol=0.01), FAILED),
        (0.80, 0.79, g(tol=0.0), FAILED),
        (0.50, 0.49, g(tol=2, pct=True), WORSE_OK),  # 2% of 0.5 = 0.01
        (0.50, 0.48, g(tol=2, pct=True), FAILED),
        (0.30, 0.25, g(direction="lower"), IMPROVED),
        (0.30, 0.31, g(direction="lower", tol=5, pct=True), WORSE_OK),  # 5% of 0.3 = 0.015
        (0.30, 0.32, g(direction="lower", tol=5, pct=True), FAILED),
        (0.60, 0.65, g(lo=0.7), FAILED),  # improved, yet below the absolute minimum
        (0.30, 0.20, g(direction="lower", hi=0.1), FAILED),
        (-2.0, -2.1, g(tol=5, pct=True), WORSE_OK),  # percent of |baseline| for negative values
    ],
)
def test_verdicts(base: float, cand: float, gate: Gate, verdict: str) -> None:
    row = judge("validation", "acc", base, cand, gate)
    assert row.verdict == verdict, row.reason
    assert row.fails == (verdict == FAILED)


def test_missing_new_and_ungated() -> None:
    assert judge("v", "acc", 0.8, None, g()).verdict == MISSING
    assert judge("v", "acc", 0.8, None, g()).fails
    assert not judge("v", "f1", 0.8, None, None).fails
    assert judge("v", "acc", None, 0.8, g()).verdict == NEW
    assert judge("v", "acc", None, 0.5, g(lo=0.7)).verdict == FAILED
    assert judge("v", "f1", 0.5, 0.1, None).verdict == CHANGED
    assert not judge("v", "f1", 0.5, 0.1, None).fails
    assert judge("v", "f1", 0.5, 0.5, None).verdict == UNCHANGED


def test_gate_lookup_prefers_set_specific_key() -> None:
    gates = [g("acc", tol=0.5), g("validation/acc", tol=0.0)]
    assert gate_for(gates, "validation", "acc") is gates[1]
    assert gate_for(gates, "test", "acc") is gates[0]
    assert gate_for(gates, "test", "f1") is None


def test_compare_metrics_covers_both_sides_sorted() -> None:
    rows = compare_metrics(
        {"validation": {"acc": 0.9, "new": 1.0}, "extra": {"x": 1.0}},
        {"validation": {"acc": 0.8, "gone": 2.0}, "old": {"y": 1.0}},
        [g("acc")],
    )
    assert [(r.set, r.metric, r.verdict) for r in rows] == [
        ("extra", "x", NEW),
        ("old", "y", MISSING),
        ("validation", "acc", IMPROVED),
        ("validation", "gone", MISSING),
        ("validation", "new", NEW),
    ]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    base=finite,
    cand=finite,
    tol=st.floats(min_value=0, max_value=1e3),
    direction=st.sampled_from(["higher", "lower"]),
)
def test_property_absolute_tolerance(base: float, cand: float, tol: float, direction: str) -> None:
    row = judge("s", "m", base, cand, g(direction=direction, tol=tol))
    worsening = base - cand if direction == "higher" else cand - base
    assume(not math.isclose(worsening, tol, rel_tol=1e-9, abs_tol=1e-9))
    assume(not math.isclose(base, cand, rel_tol=1e-9, abs_tol=1e-9))
    if worsening < 0:
        assert row.verdict == IMPROVED
    elif worsening <= tol:
        assert row.verdict == WORSE_OK
    else:
        assert row.verdict == FAILED


@given(
    base=finite,
    cand=finite,
    pct=st.floats(min_value=0, max_value=100),
    direction=st.sampled_from(["higher", "lower"]),
)
def test_property_flipping_direction_swaps_better_and_worse(
    base: float, cand: float, pct: float, direction: str
) -> None:
    assume(not math.isclose(base, cand, rel_tol=1e-9, abs_tol=1e-9))
    higher = judge("s", "m", base, cand, g(direction="higher", tol=pct, pct=True))
    lower = judge("s", "m", base, cand, g(direction="lower", tol=pct, pct=True))
    # exactly one direction sees an improvement
    assert (higher.verdict == IMPROVED) != (lower.verdict == IMPROVED)
    # a failure is never an improvement; the delta is direction independent
    assert higher.delta == lower.delta == cand - base


@given(base=finite, cand=finite)
def test_property_larger_tolerance_never_fails_more(base: float, cand: float) -> None:
    strict = judge("s", "m", base, cand, g(tol=0.1))
    loose = judge("s", "m", base, cand, g(tol=10.0))
    assert not (loose.fails and not strict.fails)


def test_diff_mappings_flattens_and_classifies() -> None:
    changes = diff_mappings(
        {"lr": 0.1, "opt": {"name": "adam", "beta": 0.9}, "gone": 1},
        {"lr": 0.2, "opt": {"name": "adam"}, "new": [1, 2]},
    )
    assert [(c.key, c.kind, c.before, c.after) for c in changes] == [
        ("gone", "removed", "1", None),
        ("lr", "changed", "0.1", "0.2"),
        ("new", "added", None, "[1, 2]"),
        ("opt.beta", "removed", "0.9", None),
    ]


def test_compare_links_and_file_changes() -> None:
    assert (
        compare_url("https://github.com/acme/m", "a" * 40, "b" * 40)
        == f"https://github.com/acme/m/compare/{'a' * 40}...{'b' * 40}"
    )
    assert compare_url("/local/path", "a", "b") is None
    assert compare_url("https://github.com/acme/m", "a", "a") is None
    base = Side(
        "m",
        "1.0.0",
        "sha256:" + "1" * 64,
        "r@x",
        {"v": {"acc": 0.8}},
        {"lr": 1},
        [{"name": "train", "uri": "s3://x", "digest": "sha256:" + "a" * 64}],
        {"commit": "a" * 40, "repository": "https://github.com/acme/m"},
        [
            FileInfo("w.bin", "weight", "sha256:" + "2" * 64, 10),
            FileInfo("README.md", "doc", "sha256:" + "3" * 64, 5),
        ],
    )
    cand = Side(
        "m",
        "1.1.0",
        "sha256:" + "4" * 64,
        None,
        {"v": {"acc": 0.7}},
        {"lr": 2},
        [{"name": "train", "uri": "s3://x", "digest": "sha256:" + "b" * 64}],
        {"commit": "b" * 40},
        [
            FileInfo("w.bin", "weight", "sha256:" + "5" * 64, 11),
            FileInfo("README.md", "doc", "sha256:" + "3" * 64, 5),
        ],
    )
    result = compare(cand, base, [g()])
    assert result.failed
    assert [c.key for c in result.files] == ["w.bin"]
    assert [c.key for c in result.data] == ["train"]
    assert [c.key for c in result.hyperparameters] == ["lr"]
    assert result.compare_url is not None and result.compare_url.endswith("...b" + "b" * 39)

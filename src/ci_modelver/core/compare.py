"""Metric deltas, gate verdicts and the diffs between a candidate and its baseline (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci_modelver.core.manifest import Gate, Metrics
from ci_modelver.core.text import natural_key

IMPROVED = "improved"
UNCHANGED = "unchanged"
WORSE_OK = "worse-within-tolerance"
FAILED = "failed"
NEW = "new"
MISSING = "missing"
CHANGED = "changed"  # an ungated metric moved: no direction is known, so no judgement

VERDICTS = (FAILED, MISSING, WORSE_OK, IMPROVED, UNCHANGED, CHANGED, NEW)


@dataclass(frozen=True)
class MetricRow:
    """One metric on one evaluation set, judged."""

    set: str
    metric: str
    baseline: float | None
    candidate: float | None
    verdict: str
    gate: Gate | None = None
    reason: str = ""

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline

    @property
    def delta_pct(self) -> float | None:
        delta = self.delta
        if delta is None or self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return delta / abs(self.baseline) * 100.0

    @property
    def fails(self) -> bool:
        """Whether this row fails the check: a failed gate, or a gated metric that disappeared."""
        return self.verdict == FAILED or (self.verdict == MISSING and self.gate is not None)


def gate_for(gates: Sequence[Gate], set_name: str, metric: str) -> Gate | None:
    """The gate judging ``set/metric``: a set-specific key wins over a bare metric name."""
    bare = None
    for gate in gates:
        if gate.key == f"{set_name}/{metric}":
            return gate
        if gate.key == metric:
            bare = gate
    return bare


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def allowed_worsening(gate: Gate, baseline: float) -> float:
    """The tolerance in the metric's own unit: absolute, or a percentage of |baseline|."""
    if gate.tolerance.percent:
        return abs(baseline) * gate.tolerance.value / 100.0
    return gate.tolerance.value


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _bounds(gate: Gate, value: float) -> str | None:
    if gate.min is not None and value < gate.min:
        return f"{_fmt(value)} is below the minimum {_fmt(gate.min)}"
    if gate.max is not None and value > gate.max:
        return f"{_fmt(value)} is above the maximum {_fmt(gate.max)}"
    return None


def judge(
    set_name: str, metric: str, baseline: float | None, candidate: float | None, gate: Gate | None
) -> MetricRow:
    """The verdict for one metric (see VERDICTS); pure arithmetic, no I/O."""
    if candidate is None:
        reason = "gated metric missing from the candidate" if gate else "no longer reported"
        return MetricRow(set_name, metric, baseline, None, MISSING, gate, reason)
    if gate is None:
        if baseline is None:
            return MetricRow(set_name, metric, None, candidate, NEW)
        verdict = UNCHANGED if _close(candidate, baseline) else CHANGED
        return MetricRow(set_name, metric, baseline, candidate, verdict)
    out_of_bounds = _bounds(gate, candidate)
    if baseline is None:
        if out_of_bounds:
            return MetricRow(set_name, metric, None, candidate, FAILED, gate, out_of_bounds)
        return MetricRow(set_name, metric, None, candidate, NEW, gate, "no baseline value")
    worsening = baseline - candidate if gate.direction == "higher" else candidate - baseline
    allowed = allowed_worsening(gate, baseline)
    if _close(candidate, baseline):
        verdict, reason = UNCHANGED, ""
    elif worsening < 0:
        verdict, reason = IMPROVED, ""
    elif worsening <= allowed or _close(worsening, allowed):
        verdict, reason = WORSE_OK, f"worse by {_fmt(worsening)}, within tolerance {_fmt(allowed)}"
    else:
        verdict, reason = (
            FAILED,
            f"worse by {_fmt(worsening)}, more than the tolerance {_fmt(allowed)}",
        )
    if out_of_bounds:
        verdict, reason = FAILED, out_of_bounds
    return MetricRow(set_name, metric, baseline, candidate, verdict, gate, reason)


def _ordered_union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    return sorted(set(first) | set(second), key=natural_key)


def compare_metrics(
    candidate: Metrics, baseline: Metrics | None, gates: Sequence[Gate]
) -> tuple[MetricRow, ...]:
    """Every metric of every evaluation set in either version, judged by its gate if any."""
    base = baseline or {}
    rows: list[MetricRow] = []
    for set_name in _ordered_union(candidate, base):
        cand_values = candidate.get(set_name, {})
        base_values = base.get(set_name, {})
        for metric in _ordered_union(cand_values, base_values):
            rows.append(
                judge(
                    set_name,
                    metric,
                    base_values.get(metric),
                    cand_values.get(metric),
                    gate_for(gates, set_name, metric),
                )
            )
    return tuple(rows)


@dataclass(frozen=True)
class Change:
    """One changed entry of a diff: key, before, after (None = absent)."""

    key: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key in value:
            out.update(_flatten(value[key], f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value} if prefix else {}


def _json(value: Any) -> str:
    return (
        value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )


def diff_mappings(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """Changed, added and removed keys of two (flattened, dotted) mappings."""
    flat_before, flat_after = _flatten(before), _flatten(after)
    changes = []
    for key in _ordered_union(flat_before, flat_after):
        b, a = flat_before.get(key), flat_after.get(key)
        if b is None and a is None:
            continue
        if b is None or a is None or _json(b) != _json(a):
            changes.append(
                Change(key, None if b is None else _json(b), None if a is None else _json(a))
            )
    return tuple(changes)


@dataclass(frozen=True)
class FileInfo:
    """A model file as the comparison sees it."""

    path: str
    type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a published baseline or the candidate."""

    name: str
    version: str
    digest: str | None
    ref: str | None
    metrics: Metrics
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    data: Sequence[Mapping[str, Any]] = ()
    code: Mapping[str, Any] = field(default_factory=dict)
    files: Sequence[FileInfo] = ()
    label: str = ""


@dataclass(frozen=True)
class TrendPoint:
    """Metric values of one published version, for the trend chart."""

    version: str
    metrics: Metrics


@dataclass(frozen=True)
class Comparison:
    """Everything a report shows."""

    candidate: Side
    baseline: Side | None
    rows: tuple[MetricRow, ...]
    hyperparameters: tuple[Change, ...]
    data: tuple[Change, ...]
    files: tuple[Change, ...]
    code_change: tuple[str | None, str | None]
    compare_url: str | None
    trend: tuple[TrendPoint, ...] = ()
    note: str = ""

    @property
    def failed(self) -> bool:
        return any(row.fails for row in self.rows)

    @property
    def failures(self) -> tuple[MetricRow, ...]:
        return tuple(row for row in self.rows if row.fails)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for row in self.rows:
            out[row.verdict] += 1
        return out


def _file_changes(before: Sequence[FileInfo], after: Sequence[FileInfo]) -> tuple[Change, ...]:
    b = {f.path: f for f in before}
    a = {f.path: f for f in after}
    out = []
    for path in _ordered_union(b, a):
        old, new = b.get(path), a.get(path)
        if old and new and old.digest == new.digest:
            continue
        out.append(
            Change(
                path,
                f"{old.digest} ({old.size} B)" if old else None,
                f"{new.digest} ({new.size} B)" if new else None,
            )
        )
    return tuple(out)


def _data_map(data: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {str(d.get("name")): f"{d.get('uri')} {d.get('digest', '')}".strip() for d in data}


def compare_url(repository: str | None, before: str | None, after: str | None) -> str | None:
    """A GitHub/GitLab-style compare link when both commits and an http(s) repository are known."""
    if not repository or not before or not after or before == after:
        return None
    if not repository.startswith(("https://", "http://")):
        return None
    return f"{repository.rstrip('/')}/compare/{before}...{after}"


def compare(
    candidate: Side,
    baseline: Side | None,
    gates: Sequence[Gate],
    trend: Sequence[TrendPoint] = (),
    note: str = "",
) -> Comparison:
    """Judge every metric and diff hyperparameters, data, code and files."""
    rows = compare_metrics(candidate.metrics, baseline.metrics if baseline else None, gates)
    if baseline is None:
        return Comparison(
            candidate,
            None,
            rows,
            (),
            (),
            (),
            (None, candidate.code.get("commit")),
            None,
            tuple(trend),
            note,
        )
    before_commit = baseline.code.get("commit")
    after_commit = candidate.code.get("commit")
    repository = candidate.code.get("repository") or baseline.code.get("repository")
    return Comparison(
        candidate,
        baseline,
        rows,
        diff_mappings(baseline.hyperparameters, candidate.hyperparameters),
        diff_mappings(_data_map(baseline.data), _data_map(candidate.data)),
        _file_changes(baseline.files, candidate.files),
        (before_commit, after_commit),
        compare_url(repository, before_commit, after_commit),
        tuple(trend),
        note,
    )

"""What changed between two published versions (pure): files, data, hyperparameters, metrics,
framework, code, record fields, aliases.

The inputs are version records read from a store, so everything in them is untrusted: shapes
are checked here, and a link is built only from a plain ``https://github.com/OWNER/REPO`` URL
and hexadecimal commits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci_modelver.core.compare import MISSING, NEW, UNCHANGED, compare_metrics
from ci_modelver.core.manifest import Direction, Gate, Metrics, Tolerance
from ci_modelver.core.modelpack import ANN_CREATED, ModelArtifact, is_tar_layer
from ci_modelver.core.text import natural_key

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"

# Fields of the version record shown as "record" changes (the others have sections of their own).
RECORD_FIELDS = ("description", "license", "baseline")
# build.ci names the CI run: it differs for every publish, so it is not a change worth showing.
_BUILD_SKIPPED = ("ci",)

_GITHUB_PREFIX = "https://github.com/"
_GITHUB_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")


@dataclass(frozen=True)
class FileState:
    """One layer of a version as the diff sees it."""

    path: str
    type: str
    media_type: str
    folder: bool
    size: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "mediaType": self.media_type,
            "folder": self.folder,
            "size": self.size,
            "digest": self.digest,
        }


@dataclass(frozen=True)
class VersionInput:
    """One side of a diff: a version read from its store (record, files, current aliases)."""

    ref: str  # the full reference with its digest
    digest: str
    name: str
    version: str | None
    created: str | None
    record: Mapping[str, Any]
    files: Sequence[FileState] = ()
    metrics: Metrics | None = None  # the record's metrics with later evaluations on top
    aliases: Sequence[str] = ()
    evaluations: int = 0


def version_input(
    artifact: ModelArtifact,
    ref: str,
    *,
    name: str,
    version: str | None = None,
    aliases: Iterable[str] = (),
    metrics: Metrics | None = None,
    evaluations: int = 0,
) -> VersionInput:
    """A diff side from a parsed model artifact; ``name``/``version`` are fallbacks for
    artifacts without a ci-modelver record (published by kit or modctl)."""
    record = dict(artifact.record or {})
    recorded_name = record.get("name")
    recorded_version = record.get("version")
    created = record.get("created") or artifact.annotations.get(ANN_CREATED)
    files = tuple(
        FileState(
            artifact.file_path(layer),
            artifact.file_type(layer),
            layer.media_type,
            is_tar_layer(layer),
            layer.size,
            layer.digest,
        )
        for layer in artifact.layers
    )
    return VersionInput(
        ref=ref,
        digest=artifact.digest,
        name=recorded_name if isinstance(recorded_name, str) and recorded_name else name,
        version=recorded_version
        if isinstance(recorded_version, str) and recorded_version
        else version,
        created=created if isinstance(created, str) and created else None,
        record=record,
        files=files,
        metrics=metrics,
        aliases=tuple(sorted(set(aliases))),
        evaluations=evaluations,
    )


@dataclass(frozen=True)
class VersionSummary:
    """Who the two sides are: reference, digest, creation time, aliases pointing at it now."""

    ref: str
    digest: str
    name: str
    version: str | None
    created: str | None
    aliases: tuple[str, ...]
    evaluations: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "aliases": list(self.aliases),
            "evaluations": self.evaluations,
        }


@dataclass(frozen=True)
class FileChange:
    """A file (or folder layer) added, removed or changed, by path."""

    path: str
    change: str
    a: FileState | None
    b: FileState | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "a": self.a.to_json() if self.a else None,
            "b": self.b.to_json() if self.b else None,
        }


@dataclass(frozen=True)
class DataState:
    """A dataset of a version: where it is and its content digest."""

    uri: str | None
    digest: str | None

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "digest": self.digest}


@dataclass(frozen=True)
class DataChange:
    """A dataset added, removed, or with another URI or digest, by name."""

    name: str
    change: str
    a: DataState | None
    b: DataState | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.change,
            "a": self.a.to_json() if self.a else None,
            "b": self.b.to_json() if self.b else None,
        }


@dataclass(frozen=True)
class ValueChange:
    """A value added, removed or changed at a dotted key (``optimizer.lr``); values as recorded."""

    key: str
    change: str
    a: Any
    b: Any

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "change": self.change, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class MetricDelta:
    """One metric on one evaluation set in either version: values, deltas, gate and verdict."""

    set: str
    metric: str
    a: float | None
    b: float | None
    gated: bool
    direction: Direction | None
    verdict: str  # core.compare's vocabulary, B judged against A
    reason: str = ""

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def delta_percent(self) -> float | None:
        delta = self.delta
        if delta is None or self.a is None or self.a == 0:
            return None
        return delta / abs(self.a) * 100.0

    @property
    def change(self) -> str:
        if self.verdict == NEW:
            return ADDED
        if self.verdict == MISSING:
            return REMOVED
        return "unchanged" if self.verdict == UNCHANGED else CHANGED

    def to_json(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "deltaPercent": self.delta_percent,
            "change": self.change,
            "gated": self.gated,
            "direction": self.direction,
            "verdict": self.verdict,
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class CodeDiff:
    """The code each version was built from, what differs, and a GitHub compare link."""

    a: Mapping[str, Any]
    b: Mapping[str, Any]
    changes: tuple[ValueChange, ...]
    compare_url: str | None

    @property
    def commits(self) -> tuple[str | None, str | None]:
        return _text(self.a.get("commit")), _text(self.b.get("commit"))

    def to_json(self) -> dict[str, Any]:
        return {
            "a": dict(self.a),
            "b": dict(self.b),
            "changes": [c.to_json() for c in self.changes],
            "compareUrl": self.compare_url,
        }


@dataclass(frozen=True)
class VersionDiff:
    """Everything that differs between version A and version B (B is the newer side)."""

    a: VersionSummary
    b: VersionSummary
    files: tuple[FileChange, ...]
    unchanged_files: int
    data: tuple[DataChange, ...]
    hyperparameters: tuple[ValueChange, ...]
    metrics: tuple[MetricDelta, ...]
    gates_from: str | None  # "b", "a", or None when neither record has gates
    framework: tuple[ValueChange, ...]
    code: CodeDiff
    record: tuple[ValueChange, ...]
    build: tuple[ValueChange, ...] = field(default=())

    @property
    def identical(self) -> bool:
        """The same manifest digest: the very same version (perhaps under two references)."""
        return self.a.digest == self.b.digest

    @property
    def metric_changes(self) -> tuple[MetricDelta, ...]:
        return tuple(m for m in self.metrics if m.change != "unchanged")

    @property
    def changed(self) -> bool:
        """Whether any section differs (two digests can differ in their creation time alone)."""
        return bool(
            self.files
            or self.data
            or self.hyperparameters
            or self.metric_changes
            or self.framework
            or self.code.changes
            or self.record
            or self.build
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "changed": self.changed,
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "files": [f.to_json() for f in self.files],
            "unchangedFiles": self.unchanged_files,
            "data": [d.to_json() for d in self.data],
            "hyperparameters": [h.to_json() for h in self.hyperparameters],
            "metrics": [m.to_json() for m in self.metrics],
            "gatesFrom": self.gates_from,
            "framework": [f.to_json() for f in self.framework],
            "code": self.code.to_json(),
            "record": [r.to_json() for r in self.record],
            "build": [b.to_json() for b in self.build],
        }


# --- values ----------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _flatten(value: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Nested mappings as {path tuple: leaf}; lists and empty mappings are leaves (values)."""
    out: dict[tuple[str, ...], Any] = {}
    for key, item in value.items():
        path = (*prefix, str(key))
        if isinstance(item, Mapping) and item:
            out.update(_flatten(item, path))
        else:
            out[path] = item
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as recorded values: numbers by value (``1`` and ``1.0``), the rest as JSON."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        if isinstance(a, bool) or isinstance(b, bool):
            return a is b
        return a == b or (
            isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        )
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _path_key(path: tuple[str, ...]) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    return tuple(natural_key(part) for part in path)


def diff_values(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[ValueChange, ...]:
    """Added, removed and changed leaves of two nested mappings, keys as dotted paths.

    Paths are compared as tuples, so ``{"a.b": 1}`` and ``{"a": {"b": 1}}`` stay two entries;
    a key present with the value null is present (it differs from a missing key).
    """
    flat_a, flat_b = _flatten(a), _flatten(b)
    out = []
    for path in sorted(set(flat_a) | set(flat_b), key=_path_key):
        key = ".".join(path)
        if path not in flat_b:
            out.append(ValueChange(key, REMOVED, flat_a[path], None))
        elif path not in flat_a:
            out.append(ValueChange(key, ADDED, None, flat_b[path]))
        elif not _same(flat_a[path], flat_b[path]):
            out.append(ValueChange(key, CHANGED, flat_a[path], flat_b[path]))
    return tuple(out)


# --- sections ----------------------------------------------------------------------------------


def _by_key(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The first entry per key: a record from another tool may list a path or name twice."""
    out: dict[str, Any] = {}
    for key, item in items:
        out.setdefault(key, item)
    return out


def diff_files(
    a: Sequence[FileState], b: Sequence[FileState]
) -> tuple[tuple[FileChange, ...], int]:
    """Files added, removed or changed (digest, size or media type), and how many are the same."""
    files_a = _by_key((f.path, f) for f in a)
    files_b = _by_key((f.path, f) for f in b)
    out, same = [], 0
    for path in sorted(set(files_a) | set(files_b), key=natural_key):
        old, new = files_a.get(path), files_b.get(path)
        if old is None:
            out.append(FileChange(path, ADDED, None, new))
        elif new is None:
            out.append(FileChange(path, REMOVED, old, None))
        elif (old.digest, old.size, old.media_type) != (new.digest, new.size, new.media_type):
            out.append(FileChange(path, CHANGED, old, new))
        else:
            same += 1
    return tuple(out), same


def _datasets(record: Mapping[str, Any]) -> dict[str, DataState]:
    raw = record.get("data")
    entries = raw if isinstance(raw, list) else []
    return _by_key(
        (str(d.get("name")), DataState(_text(d.get("uri")), _text(d.get("digest"))))
        for d in entries
        if isinstance(d, Mapping) and _text(d.get("name"))
    )


def diff_data(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[DataChange, ...]:
    """Datasets (by name) added, removed, or with another URI or digest."""
    data_a, data_b = _datasets(a), _datasets(b)
    out = []
    for name in sorted(set(data_a) | set(data_b), key=natural_key):
        old, new = data_a.get(name), data_b.get(name)
        if old is None:
            out.append(DataChange(name, ADDED, None, new))
        elif new is None:
            out.append(DataChange(name, REMOVED, old, None))
        elif old != new:
            out.append(DataChange(name, CHANGED, old, new))
    return tuple(out)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _tolerance(raw: Any) -> Tolerance:
    if isinstance(raw, str) and raw.endswith("%"):
        try:
            value = float(raw[:-1])
        except ValueError:
            return Tolerance(0.0)
        return (
            Tolerance(value, percent=True)
            if math.isfinite(value) and value >= 0
            else Tolerance(0.0)
        )
    number = _number(raw)
    return Tolerance(number) if number is not None and number >= 0 else Tolerance(0.0)


def record_gates(record: Mapping[str, Any]) -> tuple[Gate, ...]:
    """The gates a version record declares; entries of the wrong shape are left out."""
    gates = []
    for key, spec in _mapping(record.get("gates")).items():
        if not isinstance(key, str) or not isinstance(spec, Mapping):
            continue
        direction = spec.get("direction")
        if direction not in ("higher", "lower"):
            continue
        gates.append(
            Gate(
                key,
                "higher" if direction == "higher" else "lower",
                _tolerance(spec.get("tolerance")),
                _number(spec.get("min")),
                _number(spec.get("max")),
            )
        )
    return tuple(gates)


def _metrics_of(side: VersionInput) -> Metrics:
    if side.metrics is not None:
        return side.metrics
    raw = _mapping(side.record.get("metrics"))
    return {
        str(s): {str(m): v for m, v in _mapping(values).items() if _number(v) is not None}
        for s, values in raw.items()
        if isinstance(values, Mapping)
    }


def diff_metrics(a: Metrics, b: Metrics, gates: Sequence[Gate]) -> tuple[MetricDelta, ...]:
    """Every metric of every evaluation set in either version, B judged against A by its gate."""
    return tuple(
        MetricDelta(
            row.set,
            row.metric,
            row.baseline,
            row.candidate,
            row.gate is not None,
            row.gate.direction if row.gate is not None else None,
            row.verdict,
            row.reason,
        )
        for row in compare_metrics(b, a, gates)
    )


def github_repository(url: Any) -> tuple[str, str] | None:
    """``(owner, repo)`` of a plain ``https://github.com/OWNER/REPO[.git][/]`` URL, else None.

    Nothing else qualifies: no other host or scheme, no user, port, query, fragment or deeper
    path, and owner and repository made of ``[A-Za-z0-9_.-]`` only (never ``.`` or ``..``).
    """
    if not isinstance(url, str) or not url.startswith(_GITHUB_PREFIX):
        return None
    rest = url[len(_GITHUB_PREFIX) :]
    rest = rest[:-1] if rest.endswith("/") else rest
    parts = rest.split("/")
    if len(parts) != 2:
        return None
    owner, repo = parts
    repo = repo[: -len(".git")] if repo.endswith(".git") else repo
    for part in (owner, repo):
        if not _GITHUB_NAME.fullmatch(part) or set(part) == {"."}:
            return None
    return owner, repo


def github_compare_url(
    repository_a: Any, repository_b: Any, commit_a: Any, commit_b: Any
) -> str | None:
    """``https://github.com/OWNER/REPO/compare/A...B`` when both versions name the same GitHub
    repository and two different hexadecimal commits; otherwise None."""
    repo_a, repo_b = github_repository(repository_a), github_repository(repository_b)
    if repo_a is None or repo_b is None:
        return None
    if (repo_a[0].lower(), repo_a[1].lower()) != (repo_b[0].lower(), repo_b[1].lower()):
        return None
    if not isinstance(commit_a, str) or not isinstance(commit_b, str):
        return None
    if not _COMMIT.fullmatch(commit_a) or not _COMMIT.fullmatch(commit_b):
        return None
    if commit_a.lower() == commit_b.lower():
        return None
    owner, repo = repo_b
    return f"{_GITHUB_PREFIX}{owner}/{repo}/compare/{commit_a}...{commit_b}"


def diff_code(a: Mapping[str, Any], b: Mapping[str, Any]) -> CodeDiff:
    """What differs in the code records, with a GitHub compare link when one can be built."""
    code_a, code_b = dict(_mapping(a)), dict(_mapping(b))
    url = github_compare_url(
        code_a.get("repository"),
        code_b.get("repository"),
        code_a.get("commit"),
        code_b.get("commit"),
    )
    return CodeDiff(code_a, code_b, diff_values(code_a, code_b), url)


def _framework(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(record.get("framework"))


def _record_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in RECORD_FIELDS if k in record}


def _build(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _mapping(record.get("build")).items() if k not in _BUILD_SKIPPED}


def _summary(side: VersionInput) -> VersionSummary:
    return VersionSummary(
        side.ref,
        side.digest,
        side.name,
        side.version,
        side.created,
        tuple(side.aliases),
        side.evaluations,
    )


def diff_versions(a: VersionInput, b: VersionInput) -> VersionDiff:
    """What changed from version A to version B; gates come from B's record, else A's."""
    gates_b, gates_a = record_gates(b.record), record_gates(a.record)
    gates, gates_from = (gates_b, "b") if gates_b else (gates_a, "a") if gates_a else ((), None)
    files, unchanged = diff_files(a.files, b.files)
    return VersionDiff(
        a=_summary(a),
        b=_summary(b),
        files=files,
        unchanged_files=unchanged,
        data=diff_data(a.record, b.record),
        hyperparameters=diff_values(
            _mapping(a.record.get("hyperparameters")), _mapping(b.record.get("hyperparameters"))
        ),
        metrics=diff_metrics(_metrics_of(a), _metrics_of(b), gates),
        gates_from=gates_from,
        framework=diff_values(_framework(a.record), _framework(b.record)),
        code=diff_code(_mapping(a.record.get("code")), _mapping(b.record.get("code"))),
        record=diff_values(_record_fields(a.record), _record_fields(b.record)),
        build=diff_values(_build(a.record), _build(b.record)),
    )

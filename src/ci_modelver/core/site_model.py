"""The registry site's view model (pure): what each page shows, built from what a store holds.

Input: per repository the version manifests (records from annotations, no blobs), their attached
evaluations, the aliases and the alias log. Output: plain values, ordered deterministically, that
the templates show and ``models.json`` serialises. Names from the store become file and URL
parts only through :func:`slug` (no separators, no dot names, unique per folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from ci_modelver.core import charts
from ci_modelver.core.audit import AliasMove, Evaluation, overlay
from ci_modelver.core.compare import gate_for
from ci_modelver.core.modelpack import ANN_CREATED, ANN_DESCRIPTION, ModelArtifact
from ci_modelver.core.refs import semver_key
from ci_modelver.core.text import human_size, natural_key
from ci_modelver.core.version_diff import (
    VersionDiff,
    VersionInput,
    diff_versions,
    record_gates,
    version_input,
)

RESERVED = frozenset({"assets", "models.json", "index.html"})
_COMMIT_HOSTS = ("github.com", "gitlab.com", "codeberg.org")
_HEX = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class TrustStatus:
    """A version's signatures checked against the trust policy given to ``site`` (never one
    from the registry): who vouches for it, or why no one does."""

    trusted: bool
    signers: tuple[str, ...] = ()
    reason: str = ""  # why not trusted; empty when trusted

    def to_json(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "signers": list(self.signers),
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class VersionSnapshot:
    """One version as read from a store: its manifest, later evaluations, signature count and,
    when a trust policy was given, what checking the signatures against it found."""

    version: str
    artifact: ModelArtifact
    evaluations: tuple[Evaluation, ...] = ()
    signatures: int = 0
    trust: TrustStatus | None = None


@dataclass(frozen=True)
class RepoSnapshot:
    """One repository as read from a store."""

    repository: str
    versions: tuple[VersionSnapshot, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias → digest
    moves: tuple[AliasMove, ...] = ()


def slug(text: str, taken: set[str], fallback: str) -> str:
    """A file-name part for ``text``: ``[A-Za-z0-9._-]`` only, never a dot name, unique in ``taken``.

    ``taken`` holds the case-folded slugs already used in the same folder (case-insensitive file
    systems); the chosen slug is added to it.
    """
    base = re.sub(r"[^A-Za-z0-9._-]", "_", text).strip(".")[:80] or fallback
    if base.casefold() in RESERVED:
        base = f"{base}-"
    candidate, n = base, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate.casefold())
    return candidate


def plain_https(url: Any) -> str | None:
    """``url`` when it is a plain ``https://host/path`` (no credentials, query, odd characters)."""
    if not isinstance(url, str) or len(url) > 500 or not url.isprintable():
        return None
    if any(c in url for c in " \"'<>\\`{}|^"):
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return None
    if parts.query or parts.fragment:
        return None
    return url


def commit_url(repository: str | None, commit: str | None) -> str | None:
    """A link to the commit on GitHub, GitLab or Codeberg (plain https repositories only)."""
    repo = plain_https(repository)
    if repo is None or not isinstance(commit, str) or not _HEX.match(commit):
        return None
    if urlsplit(repo).hostname not in _COMMIT_HOSTS:
        return None
    base = repo.rstrip("/").removesuffix(".git")
    return f"{base}/-/commit/{commit}" if "gitlab.com" in base else f"{base}/commit/{commit}"


def value_text(value: Any) -> str:
    """A hyperparameter or record value as text (JSON for everything but strings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return charts.number(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings as dotted keys, sorted naturally."""
    rows: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, f"{name}."))
        else:
            rows.append((name, value_text(value)))
    return sorted(rows, key=lambda r: natural_key(r[0]))


@dataclass(frozen=True)
class FileView:
    path: str
    type: str
    size: int
    digest: str

    @property
    def size_text(self) -> str:
        return human_size(self.size)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class MetricView:
    set: str
    metric: str
    value: float
    gated: bool
    direction: str | None
    source: str  # "published" or "evaluation"

    @property
    def text(self) -> str:
        return charts.number(self.value)


@dataclass(frozen=True)
class EvaluationView:
    time: str
    actor: str
    source: str | None
    record: str | None
    metrics: tuple[tuple[str, str, str], ...]  # set, metric, value text

    def to_json(self) -> dict[str, Any]:
        grouped: dict[str, dict[str, str]] = {}
        for set_name, metric, value in self.metrics:
            grouped.setdefault(set_name, {})[metric] = value
        return {
            "time": self.time,
            "actor": self.actor,
            "source": self.source,
            "record": self.record,
            "metrics": grouped,
        }


@dataclass(frozen=True)
class CodeView:
    repository: str | None
    repository_url: str | None
    commit: str | None
    commit_url: str | None
    dirty: bool
    path: str | None
    run_url: str | None
    run_link: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "commit": self.commit,
            "commitUrl": self.commit_url,
            "dirty": self.dirty,
            "path": self.path,
            "runUrl": self.run_url,
        }


@dataclass(frozen=True)
class VersionView:
    version: str
    slug: str
    digest: str
    created: str | None
    description: str | None
    license: str | None
    aliases: tuple[str, ...]
    files: tuple[FileView, ...]
    code: CodeView | None
    data: tuple[tuple[str, str, str, str], ...]  # name, uri, digest, path
    hyperparameters: tuple[tuple[str, str], ...]
    metrics: tuple[MetricView, ...]
    evaluations: tuple[EvaluationView, ...]
    framework: str | None
    baseline: str | None
    baseline_slug: str | None
    parent: str | None
    parent_slug: str | None
    signatures: int
    has_record: bool
    changes: VersionDiff | None = None  # against the previous version (SemVer order)
    trust: TrustStatus | None = None  # None: no trust policy was given

    @property
    def gated(self) -> tuple[MetricView, ...]:
        return tuple(m for m in self.metrics if m.gated)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def size_text(self) -> str:
        return human_size(self.size)

    def to_json(self) -> dict[str, Any]:
        metrics: dict[str, dict[str, float]] = {}
        for m in self.metrics:
            metrics.setdefault(m.set, {})[m.metric] = m.value
        return {
            "version": self.version,
            "path": f"{self.slug}/",
            "digest": self.digest,
            "created": self.created,
            "description": self.description,
            "license": self.license,
            "aliases": list(self.aliases),
            "files": [f.to_json() for f in self.files],
            "code": self.code.to_json() if self.code else None,
            "data": [
                {"name": n, "uri": u, "digest": d or None, "path": p or None}
                for n, u, d, p in self.data
            ],
            "hyperparameters": dict(self.hyperparameters),
            "metrics": metrics,
            "gatedMetrics": {f"{m.set}/{m.metric}": m.value for m in self.gated},
            "evaluations": [e.to_json() for e in self.evaluations],
            "framework": self.framework,
            "baseline": self.baseline,
            "parent": self.parent,
            "signatures": self.signatures,
            "trust": self.trust.to_json() if self.trust else None,
            "changesFromParent": self.changes.to_json() if self.changes else None,
        }


@dataclass(frozen=True)
class AliasView:
    alias: str
    digest: str
    version: str | None
    slug: str | None


@dataclass(frozen=True)
class ChartView:
    ident: str
    set: str
    metric: str
    direction: str | None
    points: tuple[charts.ChartPoint, ...]
    svg: str


@dataclass(frozen=True)
class ModelView:
    name: str
    slug: str
    repository: str
    versions: tuple[VersionView, ...]  # newest first
    aliases: tuple[AliasView, ...]
    moves: tuple[AliasMove, ...]  # newest first
    charts: tuple[ChartView, ...]
    main_metric: str | None
    sparkline: str

    @property
    def checked(self) -> bool:
        """Whether the signatures were checked against a trust policy (a column of its own)."""
        return any(v.trust is not None for v in self.versions)

    @property
    def latest(self) -> VersionView | None:
        return self.versions[0] if self.versions else None

    @property
    def last_move(self) -> AliasMove | None:
        return self.moves[0] if self.moves else None

    def version_slug(self, version: str | None) -> str | None:
        return next((v.slug for v in self.versions if v.version == version), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": f"{self.slug}/",
            "repository": self.repository,
            "latest": self.latest.version if self.latest else None,
            "aliases": {a.alias: {"version": a.version, "digest": a.digest} for a in self.aliases},
            "mainMetric": self.main_metric,
            "versions": [v.to_json() for v in self.versions],
            "aliasLog": [m.to_json() for m in self.moves],
        }


@dataclass(frozen=True)
class SiteView:
    title: str
    generated: str | None
    models: tuple[ModelView, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "generated": self.generated,
            "models": [m.to_json() for m in self.models],
        }


def _metrics(record: Mapping[str, Any], evaluations: Sequence[Evaluation]) -> list[MetricView]:
    published = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    assert isinstance(published, dict)
    merged = overlay(published, evaluations)
    later = {s for e in evaluations for s in e.metrics}
    # The same gates, read the same way, as the changes section's (version_diff): a metric is
    # never "gated" in one table and not in the other.
    gates = record_gates(record)
    rows: list[MetricView] = []
    for set_name in sorted(merged, key=natural_key):
        for metric in sorted(merged[set_name], key=natural_key):
            gate = gate_for(gates, set_name, metric)
            rows.append(
                MetricView(
                    set_name,
                    metric,
                    merged[set_name][metric],
                    gate is not None,
                    gate.direction if gate is not None else None,
                    "evaluation" if set_name in later else "published",
                )
            )
    return rows


def _evaluation(evaluation: Evaluation) -> EvaluationView:
    rows = tuple(
        (s, m, charts.number(evaluation.metrics[s][m]))
        for s in sorted(evaluation.metrics, key=natural_key)
        for m in sorted(evaluation.metrics[s], key=natural_key)
    )
    return EvaluationView(
        evaluation.time, evaluation.actor, evaluation.source, evaluation.record_digest, rows
    )


def _code(record: Mapping[str, Any]) -> CodeView | None:
    raw = record.get("code")
    if not isinstance(raw, dict) or not raw:
        return None

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) and value else None

    repository, commit, run = text("repository"), text("commit"), text("runUrl")
    return CodeView(
        repository,
        plain_https(repository),
        commit,
        commit_url(repository, commit),
        raw.get("dirty") is True,
        text("path"),
        run,
        plain_https(run),
    )


def _framework(record: Mapping[str, Any]) -> str | None:
    raw = record.get("framework")
    if not isinstance(raw, dict) or not raw.get("name"):
        return None
    return f"{raw.get('name')} {raw.get('version') or ''}".strip()


def _data(record: Mapping[str, Any]) -> tuple[tuple[str, str, str, str], ...]:
    items = record.get("data")
    if not isinstance(items, list):
        return ()
    return tuple(
        (
            str(d.get("name", "")),
            str(d.get("uri", "")),
            str(d.get("digest", "")),
            str(d.get("path", "")),
        )
        for d in items
        if isinstance(d, dict)
    )


def _version_view(
    snap: VersionSnapshot,
    version_slug: str,
    aliases: tuple[str, ...],
    parent: tuple[str, str] | None,
    slugs: Mapping[str, str],
    digests: Mapping[str, str],
) -> VersionView:
    art = snap.artifact
    record = dict(art.record or {})
    created = record.get("created") or art.annotations.get(ANN_CREATED)
    description = record.get("description") or art.annotations.get(ANN_DESCRIPTION)
    baseline = record.get("baseline")
    baseline_version = None
    if isinstance(baseline, str):
        tail = baseline.rsplit("@", 1)[-1] if "@sha256:" in baseline else None
        baseline_version = digests.get(tail) if tail else baseline.rsplit(":", 1)[-1]
    params = record.get("hyperparameters")
    return VersionView(
        version=snap.version,
        slug=version_slug,
        digest=art.digest,
        created=created if isinstance(created, str) else None,
        description=description if isinstance(description, str) else None,
        license=record.get("license"),
        aliases=aliases,
        files=tuple(
            FileView(art.file_path(layer), art.file_type(layer), layer.size, layer.digest)
            for layer in art.layers
        ),
        code=_code(record),
        data=_data(record),
        hyperparameters=tuple(flatten(params)) if isinstance(params, dict) else (),
        metrics=tuple(_metrics(record, snap.evaluations)),
        evaluations=tuple(_evaluation(e) for e in snap.evaluations),
        framework=_framework(record),
        baseline=baseline if isinstance(baseline, str) else None,
        baseline_slug=slugs.get(baseline_version) if baseline_version else None,
        parent=parent[0] if parent else None,
        parent_slug=parent[1] if parent else None,
        signatures=snap.signatures,
        has_record=bool(record),
        trust=snap.trust,
    )


def _charts(model_slug: str, oldest_first: Sequence[VersionView]) -> list[ChartView]:
    pairs: dict[tuple[str, str], str | None] = {}
    for version in oldest_first:
        for m in version.gated:
            pairs[(m.set, m.metric)] = m.direction or pairs.get((m.set, m.metric))
    out: list[ChartView] = []
    for n, (set_name, metric) in enumerate(
        sorted(pairs, key=lambda p: (natural_key(p[0]), natural_key(p[1])))
    ):
        points = tuple(
            charts.ChartPoint(v.version, m.value, v.aliases)
            for v in oldest_first
            for m in v.metrics
            if (m.set, m.metric) == (set_name, metric)
        )
        ident = f"chart-{n + 1}"
        direction = pairs[(set_name, metric)]
        svg = charts.trend_chart(
            f"{model_slug}-{ident}",
            f"{set_name} / {metric} by version",
            points,
            y_label=f"{set_name}/{metric}",
            direction=direction or "",
        )
        out.append(ChartView(ident, set_name, metric, direction, points, svg))
    return out


def _main_metric(latest: VersionView | None, chart_list: Sequence[ChartView]) -> ChartView | None:
    """The latest version's gated metric charted over the most versions (ties: chart order)."""
    gated = {(m.set, m.metric) for m in latest.gated} if latest is not None else set()
    candidates = [c for c in chart_list if (c.set, c.metric) in gated] or list(chart_list)
    if not candidates:
        return None
    most = max(len(c.points) for c in candidates)
    return next(c for c in candidates if len(c.points) == most)


def _diff_side(
    snap: VersionSnapshot, repository: str, name: str, by_digest: Mapping[str, Sequence[str]]
) -> VersionInput:
    art = snap.artifact
    record = dict(art.record or {})
    published = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    assert isinstance(published, dict)
    return version_input(
        art,
        f"{repository}@{art.digest}",
        name=name,
        version=snap.version,
        aliases=by_digest.get(art.digest, ()),
        metrics=overlay(published, snap.evaluations),
        evaluations=len(snap.evaluations),
    )


def model_view(snapshot: RepoSnapshot, model_slug_taken: set[str]) -> ModelView:
    """The pages of one repository: versions newest first, aliases, the alias log, charts."""
    ordered = sorted(snapshot.versions, key=lambda v: semver_key(v.version))
    latest_record = dict(ordered[-1].artifact.record or {}) if ordered else {}
    name = latest_record.get("name")
    if not isinstance(name, str) or not name:
        name = snapshot.repository.rstrip("/").rsplit("/", 1)[-1].removeprefix("oci:")
    model_slug = slug(name, model_slug_taken, "model")
    taken: set[str] = set()
    slugs = {v.version: slug(v.version, taken, "version") for v in ordered}
    digests = {v.artifact.digest: v.version for v in ordered}
    by_digest: dict[str, list[str]] = {}
    for alias, digest in snapshot.aliases.items():
        by_digest.setdefault(digest, []).append(alias)
    views: list[VersionView] = []
    previous: tuple[str, str] | None = None
    before: VersionSnapshot | None = None
    for snap in ordered:
        aliases = tuple(sorted(by_digest.get(snap.artifact.digest, []), key=natural_key))
        view = _version_view(snap, slugs[snap.version], aliases, previous, slugs, digests)
        if before is not None:
            changes = diff_versions(
                _diff_side(before, snapshot.repository, name, by_digest),
                _diff_side(snap, snapshot.repository, name, by_digest),
            )
            view = replace(view, changes=changes)
        views.append(view)
        previous, before = (snap.version, slugs[snap.version]), snap
    chart_list = _charts(model_slug, views)
    main = _main_metric(views[-1] if views else None, chart_list)
    spark = (
        charts.sparkline(
            f"spark-{model_slug}",
            f"{main.set}/{main.metric} by version",
            [p.value for p in main.points],
        )
        if main
        else ""
    )
    alias_views = tuple(
        AliasView(alias, digest, digests.get(digest), slugs.get(digests.get(digest) or ""))
        for alias, digest in sorted(snapshot.aliases.items(), key=lambda a: natural_key(a[0]))
    )
    moves = tuple(
        sorted(snapshot.moves, key=lambda m: (m.time, m.record_digest or ""), reverse=True)
    )
    return ModelView(
        name,
        model_slug,
        snapshot.repository,
        tuple(reversed(views)),
        alias_views,
        moves,
        tuple(chart_list),
        f"{main.set}/{main.metric}" if main else None,
        spark,
    )


def site_view(title: str, generated: str | None, snapshots: Sequence[RepoSnapshot]) -> SiteView:
    """The whole site: one model per repository, in the order given."""
    taken: set[str] = set()
    return SiteView(title, generated, tuple(model_view(s, taken) for s in snapshots))

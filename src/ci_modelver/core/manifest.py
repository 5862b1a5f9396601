"""The typed version manifest, built from data that already passed validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ci_modelver.core.validate import normalise_relative

FileType = Literal["weight", "weight-config", "doc", "code", "dataset"]
Direction = Literal["higher", "lower"]
Metrics = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class FileEntry:
    """One file (or folder, packed as one tar layer) of the model, relative to the manifest's
    folder; a glob pattern in the manifest has become one entry per matching file."""

    path: str
    type: FileType
    description: str | None = None
    folder: bool = False


@dataclass(frozen=True)
class Framework:
    """The framework that produced the model."""

    name: str
    version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CodeInfo:
    """Where the training code lives."""

    repository: str | None = None
    commit: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class BuildSpec:
    """How the model was built, as the manifest (or ``publish --command``) says."""

    command: str | tuple[str, ...] | None = None
    lockfiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A dataset: URI plus a digest, or a local path hashed at publish time."""

    name: str
    uri: str
    digest: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Tolerance:
    """Allowed worsening: absolute, or relative to the baseline value (percent)."""

    value: float
    percent: bool = False


@dataclass(frozen=True)
class Gate:
    """How one metric (on every set, or on one set) is judged against the baseline."""

    key: str
    direction: Direction
    tolerance: Tolerance = Tolerance(0.0)
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated ``modelver.yaml``."""

    name: str
    version: str
    files: tuple[FileEntry, ...]
    description: str | None = None
    license: str | None = None
    framework: Framework | None = None
    code: CodeInfo | None = None
    data: tuple[Dataset, ...] = ()
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=dict)
    metrics_file: str | None = None
    gates: tuple[Gate, ...] = ()
    baseline: str | None = None
    build: BuildSpec | None = None


def parse_tolerance(raw: Any) -> Tolerance:
    """``0.01`` → absolute 0.01; ``"2%"`` → 2 percent of the baseline value."""
    if raw is None:
        return Tolerance(0.0)
    if isinstance(raw, str):
        return Tolerance(float(raw.rstrip("%")), percent=True)
    return Tolerance(float(raw))


def build_manifest(
    data: Mapping[str, Any], metrics: Metrics, files: Sequence[FileEntry] | None = None
) -> Manifest:
    """Build the typed manifest from validated data; ``metrics`` is inline or file content.

    ``files``: the entries as validation resolved them on disk (patterns expanded, folders
    marked); without it, ``data["files"]`` is taken as written.
    """
    framework = data.get("framework")
    code = data.get("code")
    metrics_ref = data.get("metrics")
    build = data.get("build")
    return Manifest(
        name=data["name"],
        version=data["version"],
        description=data.get("description"),
        license=data.get("license"),
        files=tuple(files)
        if files is not None
        else tuple(
            FileEntry(normalise_relative(f["path"]), f["type"], f.get("description"))
            for f in data["files"]
        ),
        framework=(
            Framework(framework["name"], framework.get("version"), framework.get("extra", {}))
            if framework
            else None
        ),
        code=CodeInfo(code.get("repository"), code.get("commit"), code.get("path"))
        if code
        else None,
        data=tuple(
            Dataset(d["name"], d["uri"], d.get("digest"), d.get("path"))
            for d in data.get("data", [])
        ),
        hyperparameters=data.get("hyperparameters", {}),
        metrics={s: {m: float(v) for m, v in values.items()} for s, values in metrics.items()},
        metrics_file=metrics_ref if isinstance(metrics_ref, str) else None,
        gates=tuple(
            Gate(
                key,
                gate["direction"],
                parse_tolerance(gate.get("tolerance")),
                gate.get("min"),
                gate.get("max"),
            )
            for key, gate in data.get("gates", {}).items()
        ),
        baseline=data.get("baseline"),
        build=_build_spec(build) if isinstance(build, dict) else None,
    )


def _build_spec(build: Mapping[str, Any]) -> BuildSpec:
    command = build.get("command")
    return BuildSpec(
        command=tuple(command) if isinstance(command, list) else command,
        lockfiles=tuple(build.get("lockfiles", ())),
    )

"""Manifest validation with the file system: every problem of a manifest (and its metrics file) at once."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters import files, folder_archive
from ci_modelver.core.manifest import FileEntry, Manifest, build_manifest
from ci_modelver.core.provenance import lockfile_path_problem, normal_lockfile_path
from ci_modelver.core.source import Finding, SourceDoc
from ci_modelver.core.text import one_line
from ci_modelver.core.validate import (
    CONTROL_CHARACTER,
    RECURSIVE,
    ClashKind,
    gate_findings,
    is_pattern,
    license_problem,
    metric_value_findings,
    name_matches,
    normalise_relative,
    path_clashes,
    relative_path_problem,
    schema_findings,
)
from ci_modelver.errors import InputError, ModelverError


@dataclass(frozen=True)
class ValidationResult:
    """Findings of one manifest; ``manifest`` is set only when there are none."""

    file: str
    findings: tuple[Finding, ...]
    manifest: Manifest | None

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file": self.file,
            "valid": self.ok,
            "findings": [f.to_json() for f in self.findings],
        }
        if self.manifest:
            doc.update(name=self.manifest.name, version=self.manifest.version)
        return doc

    def failure(self) -> ModelverError | None:
        if self.ok:
            return None
        return InputError(f"{self.file}: {len(self.findings)} problem(s); fix them and rerun")


def validate_manifest(path: Path, display: str | None = None) -> ValidationResult:
    """Validate ``path``; raises InputError only when the file cannot be read at all."""
    shown = display if display is not None else str(path)
    doc = files.load_document(path, shown)
    findings = list(doc.problems)
    metrics: dict[str, Any] = {}
    listed: list[tuple[_Listed, bool]] = []
    if doc.data is None and not doc.problems:
        findings.append(
            doc.finding((), "the manifest is empty (null); write name, version and files")
        )
    elif doc.data is not None and not isinstance(doc.data, dict):
        findings.append(
            doc.finding(
                (),
                "a manifest must be a mapping (name: …, version: …, files: …), "
                f"got {'a list' if isinstance(doc.data, list) else 'a single value'}",
            )
        )
    elif isinstance(doc.data, dict):
        findings.extend(schema_findings(doc, files.bundled_schema("modelver")))
        findings.extend(_license(doc))
        file_findings, listed = _model_files(doc, path.parent)
        findings.extend(file_findings)
        findings.extend(_datasets(doc, path.parent))
        findings.extend(_lockfiles(doc, path.parent))
        metric_findings, metrics, where, usable = _metrics(doc, path.parent)
        findings.extend(metric_findings)
        if usable:
            findings.extend(_gates(doc, metrics, where))
    ordered = tuple(sorted(set(findings), key=lambda f: (f.file != shown, *f.sort_key())))
    manifest = build_manifest(doc.data, metrics, _resolved(doc, listed)) if not ordered else None
    return ValidationResult(shown, ordered, manifest)


def _license(doc: SourceDoc) -> Iterator[Finding]:
    value = doc.data.get("license")
    if isinstance(value, str) and value:
        problem = license_problem(value)
        if problem:
            yield doc.finding(("license",), f"{problem}; e.g. 'Apache-2.0' or 'MIT OR Apache-2.0'")


def _entries(doc: SourceDoc, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    value = doc.data.get(key)
    if isinstance(value, list):
        for i, entry in enumerate(value):
            if isinstance(entry, dict):
                yield i, entry


@dataclass(frozen=True)
class _Listed:
    """One path of ``files[index]``: as written, or one file its pattern matched."""

    index: int
    path: str
    pattern: str | None = None

    @property
    def shown(self) -> str:
        """``'path'``, and the pattern it matched: ``'a.bin' (matched by '*.bin')``."""
        matched = f" (matched by '{one_line(self.pattern)}')" if self.pattern else ""
        return f"'{one_line(self.path)}'{matched}"


def _model_files(doc: SourceDoc, base: Path) -> tuple[list[Finding], list[tuple[_Listed, bool]]]:
    """Findings of ``files``, and every path it names on disk (with whether it is a folder).

    Patterns are expanded first, so every matched path meets the rules of a listed one: clean
    and relative, no clash with another, inside the manifest's folder, a regular file.
    """
    findings, listed = _listed_paths(doc, base)
    folders = {n for n, item in enumerate(listed) if _is_folder(base, item.path)}
    # pull's own rule: a version whose files clash can never be pulled, so it is not published.
    clashes = {c.index: c for c in path_clashes([item.path for item in listed])}
    for n, item in enumerate(listed):
        where = ("files", item.index, "path")
        clash = clashes.get(n)
        if clash is not None:
            other = listed[clash.other]
            message = _clash_message(
                item, other, clash.kind, (n in folders, clash.other in folders)
            )
            findings.append(doc.finding(where, message))
        elif n in folders:
            findings.extend(doc.finding(where, m) for m in _folder_problems(base, item))
        else:
            check = files.check_file(base, normalise_relative(item.path), must_stay_inside=True)
            if check.problem:
                findings.append(doc.finding(where, f"file {item.shown} {check.problem.value}"))
    return findings, [(item, n in folders) for n, item in enumerate(listed)]


def _listed_paths(doc: SourceDoc, base: Path) -> tuple[list[Finding], list[_Listed]]:
    """The well-formed paths of ``files`` in manifest order, each pattern replaced by its
    matches (sorted), and the findings of the others."""
    findings: list[Finding] = []
    listed: list[_Listed] = []
    for i, entry in _entries(doc, "files"):
        raw = entry.get("path")
        if not isinstance(raw, str) or not raw:
            continue
        if CONTROL_CHARACTER.search(raw):
            continue  # the schema's printable rule reports it, once
        where = ("files", i, "path")
        problem = relative_path_problem(raw)
        if problem:
            findings.append(doc.finding(where, f"file path '{raw}' {problem}"))
            continue
        if not is_pattern(raw):
            listed.append(_Listed(i, raw))
            continue
        matches = expand_pattern(base, raw)
        if not matches:
            findings.append(doc.finding(where, _no_match(raw)))
        for match in matches:
            problem = relative_path_problem(match)
            if problem:
                message = f"file path '{one_line(match)}' (matched by '{raw}') {problem}"
                findings.append(doc.finding(where, message))
            else:
                listed.append(_Listed(i, match, raw))
    return findings, listed


def _resolved(doc: SourceDoc, listed: list[tuple[_Listed, bool]]) -> list[FileEntry]:
    """The manifest's files as found on disk; only for a manifest without findings."""
    specs = doc.data["files"]
    return [
        FileEntry(
            normalise_relative(item.path),
            specs[item.index]["type"],
            specs[item.index].get("description"),
            folder,
        )
        for item, folder in listed
    ]


def expand_pattern(base: Path, pattern: str) -> list[str]:
    """The files (not folders) below ``base`` that ``pattern`` matches, sorted by path.

    Component by component with :func:`name_matches`; ``**`` alone is zero or more folders
    (a trailing ``**``: every file below). A component with a wildcard never descends into a
    symlinked folder (no loops, nothing outside reached by a wildcard); literal components
    are taken as written, like a listed path.
    """
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if parts and parts[-1] == RECURSIVE:
        parts.append("*")
    found: set[str] = set()

    def walk(folder: Path, prefix: str, rest: list[str]) -> None:
        head, tail = rest[0], rest[1:]
        if head == RECURSIVE:
            walk(folder, prefix, tail)
            for name in _names(folder):
                if name_matches("*", name) and _real_folder(folder / name):
                    walk(folder / name, prefix + name + "/", rest)
            return
        names = (
            [head] if not is_pattern(head) else [n for n in _names(folder) if name_matches(head, n)]
        )
        for name in names:
            child = folder / name
            if tail:
                if _real_folder(child) if is_pattern(head) else child.is_dir():
                    walk(child, prefix + name + "/", tail)
            elif os.path.lexists(child) and not child.is_dir():
                found.add(prefix + name)

    if parts:
        walk(base, "", parts)
    return sorted(found)


def _names(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []  # an unreadable folder holds no match, as for glob


def _real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _no_match(pattern: str) -> str:
    return (
        f"file pattern '{one_line(pattern)}' matches no file; a pattern matches files only "
        "(list a folder by its name), and '*' skips names that start with '.'"
    )


def _is_folder(base: Path, path: str) -> bool:
    try:
        return (base / normalise_relative(path)).is_dir()
    except (OSError, ValueError):
        return False


# Findings per folder at most: one bad tree must not bury the others.
MAX_FOLDER_FINDINGS = 20


def _folder_problems(base: Path, item: _Listed) -> list[str]:
    """Why the folder ``item`` cannot be packed as one tar layer (nothing when it can)."""
    name = normalise_relative(item.path)
    real_base = os.path.realpath(base)
    if os.path.commonpath([real_base, os.path.realpath(base / name)]) != real_base:
        return [f"folder {item.shown} {files.PathProblem.ESCAPES.value}"]
    _archive, problems = folder_archive.scan(base, name)
    out = [
        f"folder {item.shown} cannot be packed: '{one_line(p.entry)}' {p.message}"
        for p in problems[:MAX_FOLDER_FINDINGS]
    ]
    if len(problems) > MAX_FOLDER_FINDINGS:
        out.append(
            f"folder {item.shown}: {len(problems) - MAX_FOLDER_FINDINGS} more entries "
            "cannot be packed"
        )
    return out


_FOLDING = " on file systems that ignore case or Unicode normalisation (macOS, Windows)"


def _clash_message(
    item: _Listed, first: _Listed, kind: ClashKind, folders: tuple[bool, bool]
) -> str:
    """The finding on the later of two clashing files; ``first`` is the earlier one, and
    ``folders`` says which of the two (item, first) is a listed folder."""
    shown, other, j = item.shown, first.shown, first.index
    if kind == "duplicate":
        return f"file {shown} is listed twice (also files[{j}])"
    refused = "'pull' would refuse this version; rename or drop one of them"
    if kind == "same-name":
        return f"file {shown} is the same file as files[{j}] {other}{_FOLDING}; {refused}"
    a, b = normalise_relative(item.path), normalise_relative(first.path)
    literal = a.startswith(b + "/") if kind == "below-a-file" else b.startswith(a + "/")
    folding = "" if literal else _FOLDING
    if kind == "below-a-file":
        if folders[1]:
            return (
                f"file {shown} lies inside files[{j}] {other}, a folder packed as one "
                f"layer{folding}: it would be in the version twice; drop one of them"
            )
        return (
            f"file {shown} lies inside files[{j}] {other}, which is a file{folding}: "
            f"a path cannot be both a file and a folder; {refused}"
        )
    if folders[0]:
        return (
            f"folder {shown} holds files[{j}] {other}{folding}, and a folder is packed as one "
            "layer: it would be in the version twice; drop one of them"
        )
    return (
        f"file {shown} is also the folder that holds files[{j}] {other}{folding}: "
        f"a path cannot be both a file and a folder; {refused}"
    )


def _datasets(doc: SourceDoc, base: Path) -> Iterator[Finding]:
    names: dict[str, int] = {}
    for i, entry in _entries(doc, "data"):
        name = entry.get("name")
        if isinstance(name, str):
            if name in names:
                yield doc.finding(
                    ("data", i, "name"),
                    f"dataset name '{name}' is used twice (also data[{names[name]}])",
                )
            names.setdefault(name, i)
        raw = entry.get("path")
        if not isinstance(raw, str) or not raw or CONTROL_CHARACTER.search(raw):
            continue  # a control character is the schema's finding
        problem = _local_path_problem(raw)
        if problem:
            yield doc.finding(("data", i, "path"), f"dataset path '{raw}' {problem}")
            continue
        check = files.check_file(base, raw, must_stay_inside=False)
        if check.problem:
            yield doc.finding(("data", i, "path"), f"dataset file '{raw}' {check.problem.value}")


def _lockfiles(doc: SourceDoc, base: Path) -> Iterator[Finding]:
    """``build.lockfiles``: the dataset rule (relative, '/', may lie above the folder), once each."""
    build = doc.data.get("build")
    listed = build.get("lockfiles") if isinstance(build, dict) else None
    if not isinstance(listed, list):
        return
    seen: dict[str, int] = {}
    for i, raw in enumerate(listed):
        if not isinstance(raw, str) or not raw or CONTROL_CHARACTER.search(raw):
            continue  # the schema reports it
        where = ("build", "lockfiles", i)
        problem = lockfile_path_problem(raw)
        if problem:
            yield doc.finding(where, f"lock file path '{raw}' {problem}")
            continue
        normal = normal_lockfile_path(raw)
        if normal in seen:
            yield doc.finding(
                where, f"lock file '{raw}' is listed twice (also build.lockfiles[{seen[normal]}])"
            )
            continue
        seen[normal] = i
        check = files.check_file(base, normal, must_stay_inside=False)
        if check.problem:
            yield doc.finding(where, f"lock file '{raw}' {check.problem.value}")


def _metrics(doc: SourceDoc, base: Path) -> tuple[list[Finding], dict[str, Any], str, bool]:
    """Findings, the metrics, where they came from, and whether gates can be checked against them."""
    value = doc.data.get("metrics")
    if isinstance(value, dict):
        return metric_value_findings(doc, value, ("metrics",)), value, "metrics", True
    if not isinstance(value, str) or not value:
        return [], {}, "metrics", not isinstance(value, (list, int, float, bool))
    where = ("metrics",)
    if CONTROL_CHARACTER.search(value):
        return [], {}, value, False  # the schema's printable rule reports it
    problem = _local_path_problem(value)
    if problem:
        return [doc.finding(where, f"metrics path '{value}' {problem}")], {}, value, False
    check = files.check_file(base, value, must_stay_inside=False)
    if check.problem:
        return (
            [doc.finding(where, f"metrics file '{value}' {check.problem.value}")],
            {},
            value,
            False,
        )
    shown = os.path.join(os.path.dirname(doc.file), value)
    try:
        mdoc = files.load_document(base / value, shown)
    except InputError as exc:
        return [doc.finding(where, str(exc))], {}, value, False
    found = list(mdoc.problems)
    if mdoc.data is None:
        if not found:
            found.append(
                mdoc.finding((), "the metrics file is empty (null); write {set: {metric: number}}")
            )
        return found, {}, value, False
    found.extend(schema_findings(mdoc, files.bundled_schema("metrics")))
    found.extend(metric_value_findings(mdoc, mdoc.data, ()))
    data = mdoc.data if isinstance(mdoc.data, dict) else {}
    return found, data, value, isinstance(mdoc.data, dict)


def _local_path_problem(path: str) -> str | None:
    """Dataset and metrics files may live outside the manifest's folder, but must be relative."""
    if path.startswith("/") or "\\" in path:
        return "must be relative to the manifest's folder, using '/'"
    return None


def _gates(doc: SourceDoc, metrics: dict[str, Any], where: str) -> list[Finding]:
    gates = doc.data.get("gates")
    if not isinstance(gates, dict) or not gates:
        return []
    if "metrics" not in doc.data:
        return [
            doc.finding(
                ("gates",),
                "gates need metrics to judge: add 'metrics' (inline or a file)",
                key=True,
            )
        ]
    return gate_findings(doc, gates, metrics, where)

"""``show`` and ``versions``: read version records and tags without downloading weights."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.referrers import evaluations_of
from ci_modelver.core.audit import Evaluation, is_internal_tag, overlay
from ci_modelver.core.modelpack import ANN_RECORD, ANN_VERSION, ModelArtifact
from ci_modelver.core.refs import Reference, is_version_tag, semver_key
from ci_modelver.settings import Settings
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    open_store,
    read_artifact,
    repository_argument,
    version_target,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "show",
        parents=[parents.common, parents.remote],
        help="show a version record (no weights)",
        description="Print a version's files, code, data, hyperparameters and metrics "
        "without downloading its weights.",
    )
    p.add_argument(
        "ref", metavar="REF", help="NAME:VERSION, REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run_show)

    p = sub.add_parser(
        "versions",
        parents=[parents.common, parents.remote],
        help="list versions in SemVer order",
        description="List the version tags of a repository in SemVer order, with digests.",
    )
    p.add_argument(
        "repository_ref",
        nargs="?",
        metavar="REPO",
        help="HOST/PATH, oci:DIR or a model name (default: the model of ./modelver.yaml)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run_versions)


def run_show(args: argparse.Namespace, inv: Invocation) -> Shown:
    return show(args.ref, inv.settings)


def run_versions(args: argparse.Namespace, inv: Invocation) -> VersionList:
    return versions(args.repository_ref, inv.settings)


@dataclass(frozen=True)
class Shown:
    """A version as read from its store: manifest, config and version record."""

    ref: Reference
    artifact: ModelArtifact
    config: dict[str, Any]
    evaluations: tuple[Evaluation, ...] = ()

    def to_json(self) -> dict[str, Any]:
        art = self.artifact
        record = dict(art.record or {})
        if self.evaluations:
            record["metrics"] = overlay(record.get("metrics") or {}, self.evaluations)
        raw_descriptor = self.config.get("descriptor")
        descriptor: dict[str, Any] = raw_descriptor if isinstance(raw_descriptor, dict) else {}
        return {
            "ref": str(self.ref.with_digest(art.digest)),
            "digest": art.digest,
            "name": record.get("name") or descriptor.get("name") or self.ref.name,
            "version": record.get("version")
            or descriptor.get("version")
            or art.annotations.get(ANN_VERSION)
            or "(no version)",
            "files": [
                {
                    "path": art.file_path(layer),
                    "type": art.file_type(layer),
                    "digest": layer.digest,
                    "size": layer.size,
                }
                for layer in art.layers
            ],
            "record": record,
            "config": self.config,
            "annotations": {k: v for k, v in art.annotations.items() if k != ANN_RECORD},
            "evaluations": [{"record": e.record_digest, **e.to_json()} for e in self.evaluations],
        }


def show(ref_text: str, settings: Settings) -> Shown:
    """The version record of REF, reading only the manifest and the small config blob."""
    ref, target = version_target(ref_text, settings, "show")
    store = open_store(ref, settings, create=False)
    artifact, config = read_artifact(store, ref, target)
    return Shown(ref, artifact, config, tuple(evaluations_of(store, artifact.digest)))


@dataclass(frozen=True)
class VersionRow:
    """One version tag, its digest, and the other tags (aliases) that point at it."""

    version: str
    digest: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class VersionList:
    """The version tags of one repository, SemVer order."""

    repository: Reference
    rows: tuple[VersionRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": str(self.repository),
            "versions": [
                {"version": r.version, "digest": r.digest, "aliases": list(r.aliases)}
                for r in self.rows
            ],
        }


def versions(repo_text: str | None, settings: Settings) -> VersionList:
    """Version tags in SemVer order (not lexical) with their digests and aliases."""
    ref = repository_argument(repo_text, settings, "versions")
    store = open_store(ref, settings, create=False)
    tags = [t for t in store.tags() if not is_internal_tag(t)]
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        found = list(pool.map(store.resolve, tags))
    digests = {tag: d.digest for tag, d in zip(tags, found, strict=True) if d is not None}
    aliases: dict[str, list[str]] = {}
    for tag, digest in digests.items():
        if not is_version_tag(tag):
            aliases.setdefault(digest, []).append(tag)
    rows = [
        VersionRow(tag, digest, tuple(sorted(aliases.get(digest, []))))
        for tag, digest in digests.items()
        if is_version_tag(tag)
    ]
    rows.sort(key=lambda r: semver_key(r.version))
    return VersionList(ref, tuple(rows))

"""``show`` and ``versions``: read version records and tags without downloading weights."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.referrers import evaluations_of
from ci_modelver.adapters.store import Store
from ci_modelver.commands.stores import open_store
from ci_modelver.core.audit import Evaluation, is_internal_tag, overlay
from ci_modelver.core.modelpack import ModelArtifact, parse_model_manifest
from ci_modelver.core.refs import Reference, is_version_tag, parse_ref, semver_key
from ci_modelver.errors import InputError
from ci_modelver.settings import Settings

MAX_CONFIG_BYTES = 1024 * 1024


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
            or art.annotations.get("org.opencontainers.image.version")
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
            "annotations": {
                k: v for k, v in art.annotations.items() if k != "dev.ci-modelver.record"
            },
            "evaluations": [{"record": e.record_digest, **e.to_json()} for e in self.evaluations],
        }


def require_target(ref: Reference, verb: str) -> str:
    """The tag or digest a command needs, or InputError saying how to name one."""
    target = ref.digest or ref.tag
    if not target:
        raise InputError(
            f"{verb}: '{ref}' names no version; add ':VERSION', ':ALIAS' or '@sha256:…'"
        )
    return target


def read_artifact(
    store: Store, ref: Reference, target: str
) -> tuple[ModelArtifact, dict[str, Any]]:
    """Manifest and config of ``target`` (digests verified), parsed as a model artifact."""
    data, digest = store.get_manifest(target)
    artifact = parse_model_manifest(data, digest, str(ref))
    raw = store.read_blob(artifact.config, MAX_CONFIG_BYTES)
    try:
        config = json.loads(raw)
    except ValueError:
        raise InputError(
            f"{ref}: the config blob is not JSON; this is not a model artifact"
        ) from None
    if not isinstance(config, dict):
        raise InputError(f"{ref}: the config blob is not a JSON object")
    return artifact, config


def show(ref_text: str, settings: Settings) -> Shown:
    """The version record of REF, reading only the manifest and the small config blob."""
    ref = parse_ref(ref_text)
    target = require_target(ref, "show")
    store = open_store(ref, settings, create=False)
    artifact, config = read_artifact(store, ref, target)
    return Shown(ref, artifact, config, tuple(evaluations_of(store, artifact.digest)))


@dataclass(frozen=True)
class VersionRow:
    """One version tag, its digest, and the other tags (aliases) that point at it."""

    version: str
    digest: str
    aliases: tuple[str, ...]


def versions(repo_text: str, settings: Settings) -> tuple[Reference, list[VersionRow]]:
    """Version tags in SemVer order (not lexical) with their digests and aliases."""
    ref = parse_ref(repo_text)
    if ref.tag or ref.digest:
        raise InputError(f"versions: give a repository without tag or digest, e.g. '{ref.bare()}'")
    store = open_store(ref, settings, create=False)
    tags = [t for t in store.tags() if not is_internal_tag(t)]
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        found = list(pool.map(store.resolve, tags))
    digests = {tag: d.digest for tag, d in zip(tags, found, strict=True) if d is not None}
    aliases: dict[str, list[str]] = {}
    for tag, digest in digests.items():
        if not is_version_tag(tag) and not is_internal_tag(tag):
            aliases.setdefault(digest, []).append(tag)
    rows = [
        VersionRow(tag, digest, tuple(sorted(aliases.get(digest, []))))
        for tag, digest in digests.items()
        if is_version_tag(tag)
    ]
    rows.sort(key=lambda r: semver_key(r.version))
    return ref, rows

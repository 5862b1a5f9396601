"""Alias moves and attached evaluations as OCI artifacts that refer to a version (pure).

Both are small manifests whose ``subject`` is the version's manifest, so they never change the
version's digest. Alias moves also get a tag of their own (``modelver-audit-<alias>-<time>-<id>``):
every move is a separate tag, so two racing promotions cannot overwrite each other's record,
and the per-alias log is simply those tags in time order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci_modelver.core import json_bounds
from ci_modelver.core.modelpack import (
    ANN_CREATED,
    OCI_INDEX,
    OCI_MANIFEST,
    PREFIX,
    Descriptor,
    canonical_json,
    metric_values,
    sha256_digest,
)
from ci_modelver.core.refs import check_tag, is_version_tag
from ci_modelver.errors import InputError, JSONRefused

ALIAS_MOVE_TYPE = "application/vnd.ci-modelver.alias-move.v1+json"
EVALUATION_TYPE = "application/vnd.ci-modelver.evaluation.v1+json"
EMPTY_MEDIA = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
EMPTY_DESCRIPTOR = Descriptor(EMPTY_MEDIA, sha256_digest(EMPTY_DATA), len(EMPTY_DATA))
ANN_MOVE = PREFIX + "alias-move"
ANN_EVALUATION = PREFIX + "evaluation"
AUDIT_TAG_PREFIX = "modelver-audit-"
RESERVED_PREFIXES = ("sha256-", "modelver-")
MAX_ALIAS = 64


def check_alias(alias: str) -> str:
    """Aliases are movable tags that can never be mistaken for a version or our own tags."""
    check_tag(alias, "alias")
    if is_version_tag(alias) or re.match(r"^v?\d+(\.\d+)*([-+].*)?\Z", alias):
        raise InputError(
            f"alias '{alias}' looks like a version; version tags are immutable and aliases must be "
            "names such as production, staging or champion"
        )
    if alias.startswith(RESERVED_PREFIXES):
        raise InputError(
            f"alias '{alias}' starts with a reserved prefix ({', '.join(RESERVED_PREFIXES)})"
        )
    if len(alias) > MAX_ALIAS:
        raise InputError(f"alias '{alias[:80]}' is longer than {MAX_ALIAS} characters")
    return alias


def is_internal_tag(tag: str) -> bool:
    """Tags ci-modelver uses for bookkeeping (referrer indexes, audit records)."""
    return tag.startswith(RESERVED_PREFIXES)


@dataclass(frozen=True)
class AliasMove:
    """One alias move: who moved which alias from where to where, when and why."""

    alias: str
    to_digest: str
    time: str
    actor: str
    action: str = "promote"
    from_digest: str | None = None
    to_version: str | None = None
    from_version: str | None = None
    reason: str | None = None
    run_url: str | None = None
    record_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "action": self.action,
            "from": self.from_digest,
            "fromVersion": self.from_version,
            "to": self.to_digest,
            "toVersion": self.to_version,
            "actor": self.actor,
            "time": self.time,
            "reason": self.reason,
            "runUrl": self.run_url,
        }


def audit_tag(alias: str, time: str, nonce: str) -> str:
    """``modelver-audit-<alias>-<yyyymmddThhmmssffffff>-<nonce>``: sortable by time, unique."""
    compact = re.sub(r"[^0-9T]", "", time)
    return check_tag(f"{AUDIT_TAG_PREFIX}{alias}-{compact}-{nonce}", "audit tag")


def alias_of_audit_tag(tag: str) -> str | None:
    match = re.match(rf"^{re.escape(AUDIT_TAG_PREFIX)}(.+)-\d{{8}}T\d+-[0-9a-f]+$", tag)
    return match.group(1) if match else None


def _referrer_manifest(
    artifact_type: str, subject: Descriptor, annotations: Mapping[str, str]
) -> bytes:
    # Image-spec 1.1 guidance for artifacts without content: the empty descriptor as config
    # and as the single layer (some registries, distribution 2.8 among them, want a layer).
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_DESCRIPTOR.to_json(),
        "layers": [EMPTY_DESCRIPTOR.to_json()],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": dict(annotations),
    }
    return canonical_json(document)


def move_manifest(move: AliasMove, subject: Descriptor) -> bytes:
    """The audit record of an alias move, referring to the version it now points at."""
    return _referrer_manifest(
        ALIAS_MOVE_TYPE,
        subject,
        {
            ANN_MOVE: canonical_json(move.to_json()).decode(),
            ANN_CREATED: move.time,
        },
    )


def _parse_annotation(data: bytes, key: str) -> dict[str, Any] | None:
    # A record that is not bounded JSON is not one of ours: skipped, like any foreign referrer.
    try:
        doc = json_bounds.parse(data)
        raw = doc.get("annotations", {}).get(key)
        parsed = json_bounds.parse(raw) if isinstance(raw, str) else None
    except (JSONRefused, AttributeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def parse_move(data: bytes, digest: str) -> AliasMove | None:
    """An alias move from its record manifest, or None if it is not one."""
    raw = _parse_annotation(data, ANN_MOVE)
    if raw is None or not isinstance(raw.get("alias"), str) or not isinstance(raw.get("to"), str):
        return None

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    return AliasMove(
        alias=raw["alias"],
        to_digest=raw["to"],
        time=text("time") or "",
        actor=text("actor") or "unknown",
        action=text("action") or "promote",
        from_digest=text("from"),
        to_version=text("toVersion"),
        from_version=text("fromVersion"),
        reason=text("reason"),
        run_url=text("runUrl"),
        record_digest=digest,
    )


def last_move(moves: Sequence[AliasMove], alias: str) -> AliasMove | None:
    """The most recent move of ``alias`` (ties broken by record digest, deterministically)."""
    mine = [m for m in moves if m.alias == alias]
    return max(mine, key=lambda m: (m.time, m.record_digest or "")) if mine else None


@dataclass(frozen=True)
class Evaluation:
    """Metrics measured after release, attached to a version."""

    metrics: Mapping[str, Mapping[str, float]]
    time: str
    actor: str
    source: str | None = None
    record_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": {s: dict(v) for s, v in self.metrics.items()},
            "time": self.time,
            "actor": self.actor,
            "source": self.source,
        }


def evaluation_manifest(evaluation: Evaluation, subject: Descriptor) -> bytes:
    return _referrer_manifest(
        EVALUATION_TYPE,
        subject,
        {
            ANN_EVALUATION: canonical_json(evaluation.to_json()).decode(),
            ANN_CREATED: evaluation.time,
        },
    )


def parse_evaluation(data: bytes, digest: str) -> Evaluation | None:
    raw = _parse_annotation(data, ANN_EVALUATION)
    if raw is None or not isinstance(raw.get("metrics"), dict):
        return None
    metrics = {str(s): metric_values(v) for s, v in raw["metrics"].items() if isinstance(v, dict)}
    time, actor, source = raw.get("time"), raw.get("actor"), raw.get("source")
    return Evaluation(
        metrics,
        time if isinstance(time, str) else "",
        actor if isinstance(actor, str) else "unknown",
        source if isinstance(source, str) else None,
        digest,
    )


def overlay(
    metrics: Mapping[str, Mapping[str, float]], evaluations: Sequence[Evaluation]
) -> dict[str, dict[str, float]]:
    """Published metrics with attached evaluations on top: per set, the latest evaluation wins."""
    out = {s: dict(v) for s, v in metrics.items()}
    for evaluation in sorted(evaluations, key=lambda e: (e.time, e.record_digest or "")):
        for set_name, values in evaluation.metrics.items():
            out[set_name] = dict(values)
    return out


def referrers_tag(digest: str) -> str:
    """The distribution spec's fallback tag for the referrers of ``digest``: ``sha256-<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"[:128]


@dataclass(frozen=True)
class ReferrerIndex:
    """The referrers index behind the fallback tag."""

    entries: tuple[Descriptor, ...] = field(default_factory=tuple)

    def with_entry(self, entry: Descriptor) -> ReferrerIndex:
        if any(e.digest == entry.digest for e in self.entries):
            return self
        return ReferrerIndex((*self.entries, entry))

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [e.to_json() for e in self.entries],
            }
        )

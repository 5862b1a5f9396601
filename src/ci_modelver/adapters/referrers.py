"""Referrers of a manifest: the registry's referrers API when it has one, else the tag fallback.

Registries without the API (CNCF distribution 2.8/3.x, GHCR, Docker Hub) and OCI layouts keep
an image index under the tag ``sha256-<hex>`` (distribution spec, "Unavailable Referrers API").
Updating it is read-modify-write on a mutable tag, so every update is re-read and retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ci_modelver.adapters.store import BlobSource, NoProgress, Store, index_descriptors
from ci_modelver.core import json_bounds
from ci_modelver.core.audit import (
    EMPTY_DATA,
    EMPTY_DESCRIPTOR,
    EVALUATION_TYPE,
    Evaluation,
    ReferrerIndex,
    parse_evaluation,
    referrers_tag,
)
from ci_modelver.core.modelpack import ANN_CREATED, OCI_INDEX, OCI_MANIFEST, Descriptor
from ci_modelver.errors import JSONRefused, RemoteError

FALLBACK_ATTEMPTS = 8


def _fallback_index(store: Store, subject_digest: str) -> ReferrerIndex:
    found = store.find_manifest(referrers_tag(subject_digest))
    if found is None:
        return ReferrerIndex()
    try:
        body = json_bounds.parse(found[0])
    except JSONRefused:  # find_manifest refuses such answers already; an empty index is safe
        return ReferrerIndex()
    return ReferrerIndex(tuple(index_descriptors(body)))


def list_referrers(
    store: Store, subject_digest: str, artifact_type: str | None = None
) -> list[Descriptor]:
    """Descriptors of the manifests referring to ``subject_digest`` (optionally of one type)."""
    found = store.referrers_api(subject_digest)
    entries = found if found is not None else list(_fallback_index(store, subject_digest).entries)
    return [d for d in entries if artifact_type is None or d.artifact_type == artifact_type]


def push_referrer(
    store: Store,
    subject: Descriptor,
    data: bytes,
    artifact_type: str,
    *,
    tag: str | None,
    created: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Descriptor:
    """Store a manifest whose ``subject`` is ``subject`` and make it discoverable as a referrer."""
    store.push_blob(BlobSource(EMPTY_DESCRIPTOR, "empty", data=EMPTY_DATA), NoProgress())
    digest = store.put_manifest(tag, data, OCI_MANIFEST)
    entry = Descriptor(
        OCI_MANIFEST,
        digest,
        len(data),
        {ANN_CREATED: created},
        artifact_type,
    )
    add_referrers(store, subject.digest, [entry], sleep=sleep)
    return entry


def add_referrers(
    store: Store,
    subject_digest: str,
    entries: Sequence[Descriptor],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Make manifests already stored discoverable as referrers of ``subject_digest``.

    On a store with the referrers API the registry indexes them itself (nothing to do). Else the
    ``sha256-<hex>`` fallback index gets the entries it lacks; an index that lists them all
    already is left alone (no PUT). Another writer may read the index before our PUT and
    overwrite it after, so it is re-read after a short wait and the entries appended again if
    they were lost. Returns how many entries were added.
    """
    if not entries or store.referrers_api(subject_digest) is not None:
        return 0
    fallback = referrers_tag(subject_digest)
    wanted = {e.digest for e in entries}
    added: int | None = None
    for attempt in range(FALLBACK_ATTEMPTS):
        index = _fallback_index(store, subject_digest)
        present = {i.digest for i in index.entries}
        missing = [e for e in entries if e.digest not in present]
        if not missing:
            return added or 0
        added = len(missing) if added is None else added
        for entry in missing:
            index = index.with_entry(entry)
        store.put_manifest(fallback, index.to_bytes(), OCI_INDEX)
        sleep(random.uniform(0.02, 0.1) * (attempt + 1))
        listed = {e.digest for e in _fallback_index(store, subject_digest).entries}
        if wanted <= listed:
            return added
    raise RemoteError(
        f"{store.display}:{fallback}: could not record {len(wanted)} referrer(s) after "
        f"{FALLBACK_ATTEMPTS} attempts (concurrent writers); rerun the command"
    )


def evaluations_of(store: Store, digest: str, workers: int = 4) -> list[Evaluation]:
    """Evaluations attached to a version, oldest first."""
    entries = list_referrers(store, digest, EVALUATION_TYPE)

    def load(entry: Descriptor) -> Evaluation | None:
        found = store.find_manifest(entry.digest)
        return parse_evaluation(found[0], found[1]) if found else None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = [e for e in pool.map(load, entries) if e is not None]
    return sorted(found, key=lambda e: (e.time, e.record_digest or ""))

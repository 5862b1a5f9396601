"""Read a repository's inventory from its manifests: tags, what they name, referrers.

Only manifests are fetched (``tags``, ``find_manifest``, the referrers API): never a config or
layer blob, so a storage report of a repository with terabytes of weights stays a few requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.adapters.store import Store
from ci_modelver.core.audit import AliasMove, alias_of_audit_tag, parse_move
from ci_modelver.core.inventory import (
    Inventory,
    ManifestInfo,
    fallback_subject,
    parse_manifest_info,
)
from ci_modelver.core.modelpack import Descriptor

T = TypeVar("T")
R = TypeVar("R")
MAX_REFERRER_DEPTH = 4  # version -> evaluation/audit record -> signature -> …


def _map(workers: int, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(work, items))


class _Scan:
    """One scan's state: what has been read so far."""

    def __init__(self, store: Store, workers: int) -> None:
        self.store = store
        self.workers = workers
        self.tags: dict[str, str] = {}
        self.manifests: dict[str, ManifestInfo] = {}
        self.referrers: dict[str, list[Descriptor]] = {}
        self.moves: list[AliasMove] = []  # read from the audit tags with the other tags

    def load(self, reference: str) -> tuple[str, tuple[bytes, str] | None]:
        return reference, self.store.find_manifest(reference)

    def read_tags(self) -> None:
        for tag, found in _map(self.workers, self.load, self.store.tags()):
            if found is None:
                continue  # deleted between the tag list and the GET
            data, digest = found
            self.tags[tag] = digest
            self.manifests.setdefault(digest, parse_manifest_info(data, digest))
            if alias_of_audit_tag(tag) is not None:
                move = parse_move(data, digest)
                if move is not None:
                    self.moves.append(move)
        for tag, digest in self.tags.items():
            subject = fallback_subject(tag)
            if subject is not None:
                self.referrers.setdefault(subject, []).extend(self.manifests[digest].children)

    def add_referrers(self, subjects: list[str]) -> None:
        """Ask the referrers API about ``subjects`` (the registry has one)."""
        found = _map(self.workers, self.store.referrers_api, subjects)
        for subject, entries in zip(subjects, found, strict=True):
            mine = self.referrers.setdefault(subject, [])
            known = {e.digest for e in mine}
            mine.extend(e for e in entries or [] if e.digest not in known)

    def read_referrers(self) -> None:
        """Read every referrer manifest, and (with the API) the referrers of those too."""
        subjects = [d for t, d in self.tags.items() if fallback_subject(t) is None]
        api = bool(subjects) and self.store.referrers_api(subjects[0]) is not None
        queried: set[str] = set()
        for _depth in range(MAX_REFERRER_DEPTH):
            if api:
                todo = sorted(set(subjects) - queried)
                queried.update(todo)
                self.add_referrers(todo)
            known = {e.digest for entries in self.referrers.values() for e in entries}
            wanted = sorted(known - set(self.manifests))
            if not wanted:
                return
            for digest, found in _map(self.workers, self.load, wanted):
                if found is not None:
                    self.manifests[digest] = parse_manifest_info(found[0], digest)
            subjects = [d for d in wanted if d in self.manifests]

    def missing_subjects(self) -> frozenset[str]:
        """Subjects of fallback indexes that no longer exist (an untagged subject is read).

        In an OCI layout a manifest whose tags are gone is garbage until its blob is collected:
        a subject that nothing tagged reaches counts as gone there too.
        """
        gone: set[str] = set()
        untagged = sorted(s for s in self.referrers if s not in self.manifests)
        if isinstance(self.store, LayoutStore):
            live = self.inventory(frozenset()).closure(self.tags.values(), with_referrers=True)
            gone = {s for s in untagged if s not in live}
            untagged = [s for s in untagged if s not in gone]
        for subject, found in _map(self.workers, self.load, untagged):
            if found is None:
                gone.add(subject)  # deleted by a prune that did not get to its index
            else:
                self.manifests[subject] = parse_manifest_info(found[0], subject)
        return frozenset(gone)

    def inventory(self, missing: frozenset[str]) -> Inventory:
        return Inventory(
            dict(self.tags),
            dict(self.manifests),
            {s: tuple(e) for s, e in self.referrers.items()},
            missing,
            tuple(sorted(self.moves, key=lambda m: (m.time, m.record_digest or ""))),
        )


def scan(store: Store, workers: int) -> Inventory:
    """Every tag and its manifest, every referrer of those manifests (and of the referrers)."""
    state = _Scan(store, workers)
    state.read_tags()
    state.read_referrers()
    return state.inventory(state.missing_subjects())

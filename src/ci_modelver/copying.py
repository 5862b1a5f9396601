"""The copy engine: read a version's manifests and referrers at a source store, write them at a
destination with the same bytes (so the same digests), and move the blobs they need.

Blobs are checked at the destination first (HEAD: a rerun sends only what is missing), mounted
across repositories of one registry when it can, else streamed from the source into the
destination, which verifies them as it writes (no temporary file, bounded memory).
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from ci_modelver.adapters.referrers import add_referrers, list_referrers
from ci_modelver.adapters.store import CHUNK, BlobSource, CancellableReader, Progress, Store
from ci_modelver.core.audit import alias_of_audit_tag, parse_move
from ci_modelver.core.copy_plan import (
    MAX_DEPTH,
    MAX_NODES,
    Node,
    manifest_parts,
    record_tag_candidates,
    referrer_entry,
    write_order,
)
from ci_modelver.core.modelpack import Descriptor
from ci_modelver.core.refs import DIGEST_RE
from ci_modelver.core.text import one_line
from ci_modelver.errors import ArtifactError, IntegrityError, RemoteError, TooSlow


def _source_stream(src: Store, blob: Descriptor) -> BinaryIO:
    # open_blob gives a buffered stream; BufferedReader only needs its readinto.
    return CancellableReader(src.open_blob(blob), CHUNK)  # type: ignore[arg-type]


@dataclass
class BlobTally:
    """What happened to the blobs of a copy (thread-safe counters)."""

    mounted: int = 0
    streamed: int = 0
    present: int = 0
    bytes_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)

    def claim(self, digest: str) -> bool:
        """True the first time a digest is seen: a blob shared by versions moves once."""
        with self._lock:
            if digest in self._seen:
                return False
            self._seen.add(digest)
            return True

    def add(self, kind: str, size: int = 0) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            self.bytes_sent += size


@dataclass(frozen=True)
class Tree:
    """A version and everything that refers to it, read at the source."""

    root: Node
    nodes: dict[str, Node]
    skipped: tuple[str, ...] = ()

    @functools.cached_property
    def order(self) -> list[Node]:
        """Referred-to first, the version's own manifest last (computed once)."""
        return write_order(self.nodes, self.root.digest)

    def blobs(self) -> list[Descriptor]:
        seen: dict[str, Descriptor] = {}
        for node in self.order:
            for blob in node.parts.blobs:
                seen.setdefault(blob.digest, blob)
        return list(seen.values())

    def referrers(self) -> list[Node]:
        return [n for n in self.order if n.is_referrer]


def read_node(store: Store, digest: str, source: str, media_type: str) -> Node | None:
    """A manifest by digest (verified by the store), or None when the source lacks it."""
    found = store.find_manifest(digest)
    if found is None:
        return None
    return Node(digest, manifest_parts(found[0], f"{source}@{digest}", media_type), found[0])


def audit_tags(tags: Iterable[str]) -> list[str]:
    """The alias-move record tags among a tag list."""
    return [t for t in tags if alias_of_audit_tag(t) is not None]


class _TreeReader:
    """Reads what refers to a version at an untrusted source; see :func:`read_tree`."""

    def __init__(self, src: Store, record_tags: Sequence[str]) -> None:
        self.src = src
        self.record_tags = record_tags
        self.skipped: list[str] = []
        self._lock = threading.Lock()

    def note(self, text: str) -> None:
        with self._lock:
            self.skipped.append(one_line(text, 300))

    def _record_tags(self, data: bytes, digest: str) -> tuple[str, ...]:
        move = parse_move(data, digest)
        if move is None:
            return ()
        candidates = record_tag_candidates(move, self.record_tags)
        return tuple(
            t for t in candidates if (d := self.src.resolve(t)) is not None and d.digest == digest
        )

    def referrer(self, subject: str, found: Descriptor) -> Node | None:
        where = f"{self.src.display}@{found.digest}"
        if not DIGEST_RE.match(found.digest):
            self.note(f"{self.src.display}: a referrer of {subject} has an invalid digest; skipped")
            return None
        try:
            node = read_node(self.src, found.digest, self.src.display, found.media_type)
        except (ArtifactError, IntegrityError) as exc:
            self.note(f"{exc}; skipped")
            return None
        if node is None:
            self.note(f"{where}: listed as a referrer of {subject} but missing; skipped")
            return None
        if node.parts.subject != subject:
            self.note(
                f"{where}: listed as a referrer of {subject}, but its subject differs; skipped"
            )
            return None
        entry = referrer_entry(found, node.parts, len(node.data))
        return replace(node, entry=entry, tags=self._record_tags(node.data, found.digest))

    def listed(self, parent: Node, known: set[str]) -> list[Node]:
        """The manifests ``parent`` lists (an index) and its referrers, not yet in ``known``."""
        out: list[Node] = []
        for child in parent.parts.children:
            if child.digest in known:
                continue
            node = read_node(self.src, child.digest, self.src.display, child.media_type)
            if node is None:
                raise ArtifactError(
                    f"{self.src.display}@{parent.digest}: lists manifest {child.digest}, which "
                    "the source does not have; the source is incomplete"
                )
            out.append(node)
        for found in list_referrers(self.src, parent.digest):
            if found.digest not in known:
                node = self.referrer(parent.digest, found)
                if node is not None:
                    out.append(node)
        return out


def read_tree(src: Store, root: Node, *, record_tags: Sequence[str], workers: int) -> Tree:
    """``root`` with its referrers, their referrers (to ``MAX_DEPTH``) and what indexes list.

    Entries the source lists that are missing, broken or about another subject are skipped and
    named in ``Tree.skipped``; the source is untrusted, so nothing it lists is used as a path or
    URL before it passed ``DIGEST_RE``.
    """
    reader = _TreeReader(src, record_tags)
    nodes: dict[str, Node] = {root.digest: root}
    frontier = [root]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _depth in range(MAX_DEPTH):
            known = set(nodes)
            batches = pool.map(reader.listed, frontier, itertools.repeat(known))
            frontier = []
            for node in (n for batch in batches for n in batch):
                if node.digest not in nodes:
                    nodes[node.digest] = node
                    frontier.append(node)
            if len(nodes) > MAX_NODES:
                raise RemoteError(
                    f"{src.display}@{root.digest}: over {MAX_NODES} manifests refer to this "
                    "version; this is not a source ci-modelver copies"
                )
            if not frontier:
                break
    return Tree(root, nodes, tuple(reader.skipped))


def copy_blobs(
    src: Store,
    dst: Store,
    blobs: Sequence[Descriptor],
    *,
    mount_from: str | None,
    workers: int,
    progress: Progress,
    tally: BlobTally,
) -> int:
    """Make every blob present at ``dst``: HEAD, mount (same registry), else stream. Returns
    how many were not there before."""

    def one(blob: Descriptor) -> bool:
        if not tally.claim(blob.digest):
            return False
        if dst.blob_exists(blob):
            tally.add("present")
            return False
        if mount_from is not None:
            try:
                if dst.mount_blob(blob, mount_from):
                    tally.add("mounted")
                    return True
            except TooSlow:
                raise
            except RemoteError:
                pass  # a registry that refuses the mount (scope, policy) may still take the bytes
        name = blob.digest[:19]
        sent = dst.push_blob(
            BlobSource(blob, name, opener=lambda: _source_stream(src, blob)), progress
        )
        tally.add("streamed" if sent else "present", blob.size if sent else 0)
        return sent

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(one, blobs))


@dataclass
class Written:
    """Manifests and tags a tree wrote at the destination."""

    manifests: int = 0
    referrers_copied: int = 0
    referrers_present: int = 0
    index_entries: int = 0


def _present(dst: Store, digest: str) -> bool:
    # By digest, whatever tags it has: a registry's GET, a layout's own file.
    return dst.find_manifest(digest) is not None


def write_tree(
    dst: Store,
    tree: Tree,
    *,
    tags_needed: Callable[[str, str], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> Written:
    """Store every manifest of ``tree`` except the root's tags: exact bytes, after what it names.

    ``tags_needed(tag, digest)`` says whether a tag must still be written (and raises on a
    conflict). Referrers are then listed in their subjects' fallback indexes where ``dst`` has no
    referrers API.
    """
    done = Written()
    by_subject: dict[str, list[Descriptor]] = {}
    for node in tree.order:
        wrote = False
        tags = [t for t in node.tags if tags_needed(t, node.digest)]
        for tag in tags:
            dst.put_manifest(tag, node.data, node.parts.media_type)
            wrote = True
        if not tags and not _present(dst, node.digest):
            dst.put_manifest(None, node.data, node.parts.media_type)
            wrote = True
        done.manifests += int(wrote)
        if node.entry is not None and node.parts.subject is not None:
            if wrote:
                done.referrers_copied += 1
            by_subject.setdefault(node.parts.subject, []).append(node.entry)
    for subject, entries in by_subject.items():
        done.index_entries += add_referrers(dst, subject, entries, sleep=sleep)
    done.referrers_present = len(tree.referrers()) - done.referrers_copied
    return done

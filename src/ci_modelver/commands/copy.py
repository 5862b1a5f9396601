"""``ci-modelver copy``: copy versions between stores with every referrer, digests unchanged.

What is copied: the version manifests (exact bytes), their blobs, every referrer (alias-move
records with their tags, evaluations, signatures, referrers of referrers). Version tags stay
immutable at the destination (exit 4 before anything is written); aliases move only with
``--aliases``, each move recorded at the destination like a promotion.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.store import Progress, Store
from ci_modelver.copying import (
    BlobTally,
    Tree,
    Written,
    audit_tags,
    copy_blobs,
    read_tree,
    write_tree,
)
from ci_modelver.core.audit import (
    check_alias,
    is_internal_tag,
)
from ci_modelver.core.copy_plan import (
    Node,
    alias_history,
    aliases_to_move,
    manifest_parts,
    select_versions,
    tag_needed,
)
from ci_modelver.core.modelpack import OCI_MANIFEST, ModelArtifact, parse_model_manifest
from ci_modelver.core.refs import Reference, is_version_tag
from ci_modelver.errors import InputError, ModelverError
from ci_modelver.settings import Settings
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    alias_log,
    move_record,
    move_tag,
    new_move,
    open_store,
    parse_reference,
    read_model,
    repository_argument,
    version_of,
    write_move,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "copy",
        parents=[parents.common, parents.remote],
        help="copy versions between stores with every referrer",
        description="Copy one version, several, or an alias with its history, with every "
        "referrer (audit records, evaluations, signatures), digests unchanged.",
    )
    p.add_argument(
        "source",
        metavar="SRC",
        help="REPO:VERSION, REPO@sha256:…, REPO:ALIAS, or REPO with --all / --keep-last N",
    )
    p.add_argument(
        "destination", metavar="DST", help="HOST/PATH, oci:DIR or a model name (default store)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every version of SRC")
    which.add_argument(
        "--keep-last", type=int, metavar="N", help="the N newest versions of SRC (SemVer order)"
    )
    p.add_argument(
        "--aliases",
        action="store_true",
        help="also move the destination's aliases to the copied versions the source's aliases "
        "point at (each move recorded); with SRC an alias: every version in its history",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> CopyResult:
    return copy(
        args.source,
        args.destination,
        inv.settings,
        all_versions=args.all,
        keep_last=args.keep_last,
        aliases=args.aliases,
        progress=inv.progress("copied"),
    )


@dataclass(frozen=True)
class CopiedVersion:
    """One version at the destination: ``copied`` (something was written) or ``present``."""

    version: str | None
    digest: str
    status: str
    referrers: int

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "status": self.status,
            "referrers": self.referrers,
        }


@dataclass(frozen=True)
class AliasCopy:
    """An alias moved (or found in place) at the destination."""

    alias: str
    digest: str
    version: str | None
    changed: bool
    from_digest: str | None = None
    record_tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "to": self.digest,
            "toVersion": self.version,
            "from": self.from_digest,
            "changed": self.changed,
            "recordTag": self.record_tag,
        }


@dataclass(frozen=True)
class CopyResult:
    """What ``copy`` did: versions, referrers, blobs (mounted, streamed, present), aliases."""

    source: Reference
    destination: Reference
    versions: tuple[CopiedVersion, ...]
    referrers_copied: int
    referrers_present: int
    blobs_mounted: int
    blobs_streamed: int
    blobs_present: int
    bytes_sent: int
    aliases: tuple[AliasCopy, ...] = ()
    skipped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "destination": str(self.destination),
            "versions": [v.to_json() for v in self.versions],
            "referrers": {"copied": self.referrers_copied, "present": self.referrers_present},
            "blobs": {
                "mounted": self.blobs_mounted,
                "streamed": self.blobs_streamed,
                "present": self.blobs_present,
                "bytesSent": self.bytes_sent,
            },
            "aliases": [a.to_json() for a in self.aliases],
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class _Root:
    """A version to copy: its tree at the source, and the version tag it gets (if any)."""

    tree: Tree
    tag: str | None


def _version_tag(src: Store, artifact: ModelArtifact, tags: set[str]) -> str | None:
    """The version tag that holds the version at the source: the one its record names."""
    version = version_of(artifact)
    if version is None or not is_version_tag(version) or version not in tags:
        return None
    found = src.resolve(version)
    return version if found is not None and found.digest == artifact.digest else None


def _root(src: Store, source: Reference, reference: str) -> tuple[bytes, ModelArtifact]:
    """Exact bytes of a version at the source and the model artifact they must be."""
    return read_model(
        src, f"{source}{'@' if reference.startswith('sha256:') else ':'}{reference}", reference
    )


def _targets(
    src: Store,
    source: Reference,
    ref: Reference,
    tags: set[str],
    *,
    selecting: bool,
    keep_last: int | None,
    aliases: bool,
    workers: int,
) -> tuple[list[tuple[bytes, str, str | None]], list[str]]:
    """The versions to copy as ``(bytes, digest, version tag)``, and what was skipped."""
    skipped: list[str] = []
    out: list[tuple[bytes, str, str | None]] = []
    if selecting:
        for version in select_versions(tags, keep_last):
            data, artifact = _root(src, source, version)
            out.append((data, artifact.digest, version))
        return out, skipped
    target = ref.digest or ref.tag
    assert target is not None
    if ref.tag and not is_version_tag(ref.tag) and aliases:
        check_alias(ref.tag)
        current = src.resolve(ref.tag)
        history = alias_history(
            alias_log(src, workers, ref.tag), current.digest if current else None
        )
        for digest in history:
            found = src.find_manifest(digest)
            if found is None:
                skipped.append(
                    f"{source}@{digest}: {ref.tag} pointed at it, but the source no longer has it"
                )
                continue
            try:
                artifact = parse_model_manifest(found[0], digest, f"{source}@{digest}")
            except ModelverError as exc:
                skipped.append(f"{exc}; skipped")
                continue
            out.append((found[0], digest, _version_tag(src, artifact, tags)))
        if not out:
            raise InputError(
                f"copy: {ref} has no version to copy: the alias and its history point at nothing the source has"
            )
        return out, skipped
    data, artifact = _root(src, source, target)
    tag = ref.tag if ref.tag and is_version_tag(ref.tag) else None
    return [(data, artifact.digest, tag or _version_tag(src, artifact, tags))], skipped


def _source_aliases(src: Store, tags: set[str]) -> dict[str, str]:
    """Alias → digest at the source (version tags, our own tags and names that are no alias left out)."""
    out: dict[str, str] = {}
    for tag in sorted(tags):
        if is_version_tag(tag) or is_internal_tag(tag):
            continue
        try:
            check_alias(tag)
        except InputError:
            continue
        found = src.resolve(tag)
        if found is not None:
            out[tag] = found.digest
    return out


def _move_alias(
    dst: Store,
    alias: str,
    root: _Root,
    settings: Settings,
    *,
    reason: str,
    now: Callable[[], float],
) -> AliasCopy:
    """Point ``alias`` at the copied version at the destination and record it as a promotion."""
    node = root.tree.root
    move = new_move(
        dst,
        settings,
        alias=alias,
        to_digest=node.digest,
        to_version=root.tag,
        action="promote",
        reason=reason,
        now=now,
    )
    if move.from_digest == node.digest:
        return AliasCopy(alias, node.digest, root.tag, False, move.from_digest)
    record = move_record(move, len(node.data))  # made (and its tag checked) first
    write_move(dst, record, node.data, node.parts.media_type)
    return AliasCopy(alias, node.digest, root.tag, True, move.from_digest, record.tag)


def _check_tags(dst: Store, roots: list[_Root]) -> dict[tuple[str, str], bool]:
    """Every tag the copy would write, checked at the destination before anything is written:
    True to write, False when it holds the digest already; ConflictError otherwise."""
    wanted: list[tuple[str, str]] = []
    for root in roots:
        if root.tag is not None:
            wanted.append((root.tag, root.tree.root.digest))
        wanted.extend((t, n.digest) for n in root.tree.nodes.values() for t in n.tags)
    decisions: dict[tuple[str, str], bool] = {}
    for tag, digest in wanted:
        existing = dst.resolve(tag)
        decisions[(tag, digest)] = tag_needed(
            dst.display, tag, digest, existing.digest if existing else None
        )
    return decisions


def _check_arguments(
    ref: Reference, destination: Reference, all_versions: bool, keep_last: int | None
) -> bool:
    """Usage problems before any store is touched; whether SRC selects several versions."""
    source = ref.bare()
    selecting = all_versions or keep_last is not None
    if selecting and (ref.tag or ref.digest):
        flag = "--all" if all_versions else "--keep-last"
        raise InputError(
            f"copy {flag}: give SRC as a repository without tag or digest, e.g. '{source}'"
        )
    if not selecting and not (ref.tag or ref.digest):
        raise InputError(
            f"copy: '{ref}' names no version; add ':VERSION', ':ALIAS' or '@sha256:…', or copy "
            "several with --all or --keep-last N"
        )
    if keep_last is not None and keep_last < 1:
        raise InputError(f"copy: --keep-last must be 1 or more, got {keep_last}")
    if source == destination:
        raise InputError(f"copy: SRC and DST are the same repository ({source}); name another DST")
    return selecting


def _copy_version(
    src: Store,
    dst: Store,
    root: _Root,
    *,
    mount_from: str | None,
    workers: int,
    progress: Progress,
    tally: BlobTally,
    needed: Callable[[str, str], bool],
    sleep: Callable[[float], None],
) -> tuple[CopiedVersion, Written]:
    """Blobs, then manifests and referrers, then the version tag (last: a version shows up at
    the destination only once everything it needs is there)."""
    node = root.tree.root
    new_blobs = copy_blobs(
        src,
        dst,
        root.tree.blobs(),
        mount_from=mount_from,
        workers=workers,
        progress=progress,
        tally=tally,
    )
    written = write_tree(dst, root.tree, tags_needed=needed, sleep=sleep)
    wrote_tag = False
    if root.tag is not None:
        current = dst.resolve(root.tag)  # again, right before the PUT
        if tag_needed(dst.display, root.tag, node.digest, current.digest if current else None):
            move_tag(dst, root.tag, node.data, node.parts.media_type, node.digest)
            wrote_tag = True
    changed = bool(new_blobs or written.manifests or written.index_entries or wrote_tag)
    status = "copied" if changed else "present"
    return CopiedVersion(root.tag, node.digest, status, len(root.tree.referrers())), written


def copy(
    source_text: str,
    destination_text: str,
    settings: Settings,
    *,
    all_versions: bool = False,
    keep_last: int | None = None,
    aliases: bool = False,
    progress: Progress,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> CopyResult:
    """Copy versions from SRC to DST with every referrer; idempotent, resumable (HEAD first)."""
    ref = parse_reference(source_text, settings)
    destination = repository_argument(destination_text, settings, "copy")
    source = ref.bare()
    selecting = _check_arguments(ref, destination, all_versions, keep_last)
    src = open_store(source, settings, create=False)
    tags = set(src.tags())
    found, skipped = _targets(
        src,
        source,
        ref,
        tags,
        selecting=selecting,
        keep_last=keep_last,
        aliases=aliases,
        workers=settings.concurrency,
    )
    if not found:
        raise InputError(f"copy: {source} has no versions to copy")
    record_tags = audit_tags(tags)
    roots: list[_Root] = []
    for data, digest, tag in found:
        node = Node(digest, manifest_parts(data, f"{source}@{digest}", OCI_MANIFEST), data)
        tree = read_tree(src, node, record_tags=record_tags, workers=settings.concurrency)
        skipped.extend(tree.skipped)
        roots.append(_Root(tree, tag))
    dst = open_store(destination, settings, create=True)
    decisions = _check_tags(dst, roots)  # exit 4 before anything is written

    def needed(tag: str, digest: str) -> bool:
        return decisions.get((tag, digest), True)

    same_registry = (
        source.kind == destination.kind == "registry" and source.host == destination.host
    )
    mount_from = source.path if same_registry else None
    tally = BlobTally()
    versions: list[CopiedVersion] = []
    copied = present = 0
    for root in roots:
        version, written = _copy_version(
            src,
            dst,
            root,
            mount_from=mount_from,
            workers=settings.concurrency,
            progress=progress,
            tally=tally,
            needed=needed,
            sleep=sleep,
        )
        versions.append(version)
        copied += written.referrers_copied
        present += written.referrers_present
    moved: list[AliasCopy] = []
    if aliases:
        by_digest = {r.tree.root.digest: r for r in roots}
        for alias, digest in aliases_to_move(_source_aliases(src, tags), by_digest):
            moved.append(
                _move_alias(
                    dst, alias, by_digest[digest], settings, reason=f"copied from {source}", now=now
                )
            )
    return CopyResult(
        source,
        destination,
        tuple(versions),
        copied,
        present,
        tally.mounted,
        tally.streamed,
        tally.present,
        tally.bytes_sent,
        tuple(moved),
        tuple(dict.fromkeys(skipped)),
    )

"""``ci-modelver pull``: download a version's files, verifying every digest, inside one folder."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import stat
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters import cancel, folders
from ci_modelver.adapters.store import (
    Progress,
    Store,
    file_mode,
    hash_file,
    owned_temp_dir,
    sweep_stale,
)
from ci_modelver.adapters.tarball import extract
from ci_modelver.core import json_bounds
from ci_modelver.core.modelpack import (
    ANN_FILE_METADATA,
    LAYER_TYPES,
    Descriptor,
    ModelArtifact,
    is_tar_layer,
    safe_layer_paths,
)
from ci_modelver.core.signing import ArchiveFiles
from ci_modelver.core.trust import Policy
from ci_modelver.errors import ArtifactError, InputError, JSONRefused, Untrusted
from ci_modelver.settings import Settings
from ci_modelver.signatures import load_policy, tar_blob_path, verify_version
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    add_trust_flags,
    open_store,
    read_artifact,
    version_target,
)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "pull",
        parents=[parents.common, parents.remote],
        help="download and verify a version",
        description="Download a version's files into a folder, verifying every digest.",
    )
    p.add_argument(
        "ref", metavar="REF", help="NAME:VERSION, REPO:VERSION, REPO:ALIAS or REPO@sha256:…"
    )
    p.add_argument("--output", "-o", metavar="DIR", help="target folder (default ./<name>)")
    p.add_argument(
        "--only",
        metavar="TYPES",
        help="comma-separated file types: weight,weight-config,doc,code,dataset",
    )
    p.add_argument(
        "--max-size", metavar="SIZE", help="refuse versions larger than SIZE in all (e.g. 20G)"
    )
    p.add_argument(
        "--max-file-size", metavar="SIZE", help="refuse any single file larger than SIZE"
    )
    add_trust_flags(p, "--verify-key")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> PullResult:
    # The trust policy comes from the flags (never from the version), read before the store.
    policy = load_policy(
        inv.settings,
        key_files=args.trusted_keys,
        ca=args.ca,
        identity=args.cert_identity,
        key_flag="verify-key",
    )
    return pull(
        args.ref,
        inv.settings,
        output=Path(args.output) if args.output else None,
        only=parse_only(args.only),
        progress=inv.progress("downloaded"),
        max_total=parse_size(args.max_size, "--max-size"),
        max_file=parse_size(args.max_file_size, "--max-file-size"),
        policy=None if policy.empty else policy,
    )


@dataclass(frozen=True)
class PullResult:
    """Where the files went, how many were fetched or already up to date, which were replaced."""

    digest: str
    output: Path
    files: tuple[tuple[str, int, bool], ...]  # path, size, downloaded
    # Files that existed with other content and were overwritten by the version's file.
    replaced: tuple[str, ...] = ()
    # With --verify-key (or --ca): the trusted signers that cover the version and its files.
    signers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "output": str(self.output),
            "files": [
                {"path": p, "size": s, "downloaded": d, "replaced": p in self.replaced}
                for p, s, d in self.files
            ],
            "replaced": list(self.replaced),
            "signers": list(self.signers),
        }


def parse_only(text: str | None) -> frozenset[str] | None:
    """``weight,doc`` → the file types to pull; InputError for unknown names."""
    if not text:
        return None
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    if not kinds:
        raise InputError(f"--only '{text}': name at least one file type ({', '.join(LAYER_TYPES)})")
    unknown = sorted(kinds - set(LAYER_TYPES))
    if unknown:
        raise InputError(
            f"--only: unknown file type(s) {', '.join(unknown)}; use {', '.join(LAYER_TYPES)}"
        )
    return frozenset(kinds)


def _check_target(root: Path, dest: Path, source: str, path: str, *, tar: bool) -> None:
    """Refuse, before anything is written, a target that cannot or must not be written.

    Its folders must stay inside ``root`` (no symlink leading out, nothing that is not a
    folder); the target itself must not be a symlink, and (for a file) not be a folder, FIFO,
    socket or device: such a thing is never replaced by a downloaded file.
    """
    problem = folders.parent_problem(root, dest)
    if problem is not None:
        where, why = problem
        raise ArtifactError(f"{source}: refusing '{path}': {where} {why}")
    try:
        st = dest.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ArtifactError(
            f"{source}: refusing '{path}': {dest} cannot be checked ({exc.strerror})"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise ArtifactError(f"{source}: refusing '{path}': {dest} is a symlink; remove it first")
    if tar and stat.S_ISDIR(st.st_mode):
        return  # a directory layer unpacks into its folder: tarball.extract checks each entry
    if tar:
        raise ArtifactError(
            f"{source}: refusing '{path}': {dest} exists and is not a folder, and this layer "
            "is a folder; move it away or pull into another folder (-o DIR); nothing was written"
        )
    if stat.S_ISDIR(st.st_mode):
        raise ArtifactError(
            f"{source}: refusing '{path}': {dest} is a folder; move it away or pull into "
            "another folder (-o DIR); nothing was written"
        )
    if not stat.S_ISREG(st.st_mode):
        raise ArtifactError(
            f"{source}: refusing '{path}': {dest} exists and is not a regular file (a FIFO, "
            "socket or device); remove it first; nothing was written"
        )


def _make_parents(root: Path, dest: Path, source: str, path: str) -> None:
    try:
        problem = folders.make_parents(root, dest)
    except OSError as exc:
        raise InputError(
            f"{source}: cannot create the folder for '{path}' in {root} ({exc.strerror})"
        ) from None
    if problem is not None:
        where, why = problem
        raise ArtifactError(f"{source}: refusing '{path}': {where} {why}")


def _prepare(root: Path, jobs: list[tuple[str, Descriptor, Path]], source: str) -> None:
    """Check every target before anything is written, create the folders, sweep stale temps."""
    for path, layer, dest in jobs:
        _check_target(root, dest, source, path, tar=is_tar_layer(layer))
    root.mkdir(parents=True, exist_ok=True)
    for path, _layer, dest in jobs:
        _make_parents(root, dest, source, path)
    # What an earlier pull left when it was killed: only our own temp files, and only those
    # that no running process holds.
    for folder in dict.fromkeys([root, *(dest.parent for _p, _l, dest in jobs)]):
        sweep_stale(folder)


def recorded_executable(layer: Descriptor) -> bool:
    """Whether the layer's file metadata (``org.cncf.model.file.metadata+json``) records an
    executable bit. Only that bit is honoured: setuid, setgid, sticky or world-writable modes
    from a registry never reach the disk; missing or malformed metadata means a plain file."""
    raw = layer.annotations.get(ANN_FILE_METADATA)
    if not raw:
        return False
    try:
        meta = json_bounds.parse(raw, max_bytes=64 * 1024)
    except JSONRefused:
        return False
    mode = meta.get("mode") if isinstance(meta, dict) else None
    return isinstance(mode, int) and not isinstance(mode, bool) and bool(mode & 0o111)


def _up_to_date(dest: Path, layer: Descriptor) -> bool:
    try:
        if not dest.is_file() or dest.stat().st_size != layer.size:
            return False
    except OSError:
        return False
    return hash_file(dest)[0] == layer.digest


def parse_size(text: str | None, flag: str) -> int | None:
    """``500M`` / ``10G`` / ``1048576`` → bytes; InputError for anything else."""
    if not text:
        return None
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise InputError(
            f"{flag} '{text}': use a size such as 500M, 20G or a number of bytes"
        ) from None
    if not math.isfinite(value) or value > 2**62:
        raise InputError(f"{flag} '{text}': use a finite size such as 500M or 20G")
    if value <= 0:
        raise InputError(f"{flag} '{text}': must be positive")
    return int(value)


def _check_caps(
    jobs: list[tuple[str, Descriptor, Path]],
    source: str,
    max_total: int | None,
    max_file: int | None,
) -> None:
    """Refuse before writing anything when declared sizes exceed the caps."""
    for path, layer, _dest in jobs:
        if max_file is not None and layer.size > max_file:
            raise InputError(
                f"{source}: '{path}' declares {layer.size} bytes, over --max-file-size {max_file}"
            )
    total = sum(layer.size for _p, layer, _d in jobs)
    if max_total is not None and total > max_total:
        raise InputError(
            f"{source}: the files declare {total} bytes in all, over --max-size {max_total}"
        )


@dataclass(frozen=True)
class _Signed:
    """What a trust policy established before anything was written (empty without a policy)."""

    signers: tuple[str, ...] = ()
    files: Mapping[str, str] | None = None  # the signed files; None: no policy
    archives: Mapping[str, ArchiveFiles] | None = None  # files inside each tar layer, checked
    # Where the tar blobs that were checked wait to be unpacked (see signatures.tar_archives).
    tar_folder: Path | None = None


def _signed_files(
    store: Store,
    artifact: ModelArtifact,
    policy: Policy | None,
    source: str,
    settings: Settings,
    tar_folder: Path | None,
    progress: Progress,
) -> _Signed:
    """The trusted signers and the signed files (nothing without a policy); Untrusted (exit 5)
    before anything is written when no trusted signer covers the version.

    Every tar layer is fetched into ``tar_folder`` (ours, outside the output) and the files in
    it hashed and checked against the signed statement here, before anything is written.
    """
    if policy is None:
        return _Signed()
    verification = verify_version(
        store,
        artifact,
        policy,
        source=source,
        workers=settings.concurrency,
        tar_folder=tar_folder,
        progress=progress,
    )
    return _Signed(
        verification.verdict.signers,
        dict(verification.files or {}),
        dict(verification.archives),
        tar_folder,
    )


def _check_signed_folder(
    path: str, layer: Descriptor, signed: Mapping[str, str], found: ArchiveFiles | None, source: str
) -> None:
    """Every file the tar layer unpacks to is signed with its digest, and every signed file
    below its folder is in it; Untrusted otherwise (nothing written yet)."""
    if found is None:
        raise Untrusted(
            f"{source}: the files of the folder layer '{path}' ({layer.digest}) were not checked "
            "against the signed files statement; nothing was written"
        )
    for name, digest in sorted(found.files.items()):
        if signed.get(name) != digest:
            raise Untrusted(
                f"{source}: '{name}' in the folder layer '{path}' is {digest}, but the signed "
                f"files statement says {signed.get(name, 'nothing')}; nothing was written"
            )
    missing = sorted(n for n in signed if n.startswith(path + "/") and n not in found.files)
    if missing:
        raise Untrusted(
            f"{source}: the signed files statement names '{missing[0]}', which the folder layer "
            f"'{path}' does not hold; nothing was written"
        )


def _check_signed(jobs: list[tuple[str, Descriptor, Path]], trust: _Signed, source: str) -> None:
    """Every file to write is the one the signed statement names (its digest is what each
    download is verified against; a folder's files were hashed from its verified blob)."""
    signed = trust.files
    if signed is None:
        return
    for path, layer, _dest in jobs:
        if is_tar_layer(layer):
            found = (trust.archives or {}).get(layer.digest)
            _check_signed_folder(path, layer, signed, found, source)
        elif signed.get(path) != layer.digest:
            raise Untrusted(
                f"{source}: '{path}' is {layer.digest} in the manifest, but the signed files "
                f"statement says {signed.get(path, 'nothing')}; nothing was written"
            )


def pull(
    ref_text: str,
    settings: Settings,
    *,
    output: Path | None,
    only: frozenset[str] | None,
    progress: Progress,
    max_total: int | None = None,
    max_file: int | None = None,
    policy: Policy | None = None,
) -> PullResult:
    """Download and verify REF's files into ``output`` (default ./<name>).

    With ``policy``, the version's signatures are verified before anything is written (exit 5
    when no trusted signer covers it), and every file is checked against the signed statement:
    a folder layer's files are hashed from its verified blob, fetched into a temporary folder of
    ours (TMPDIR), before anything is written, and that blob is what is unpacked.
    """
    ref, target = version_target(ref_text, settings, "pull")
    store = open_store(ref, settings, create=False)
    artifact, _config = read_artifact(store, ref, target)
    with contextlib.ExitStack() as stack:
        tar_folder = None
        if policy is not None and any(is_tar_layer(layer) for layer in artifact.layers):
            tar_folder = stack.enter_context(owned_temp_dir(Path(tempfile.gettempdir())))
        return _pull(
            str(ref),
            store,
            artifact,
            settings,
            output=output if output is not None else settings.cwd / ref.name,
            only=only,
            progress=progress,
            max_total=max_total,
            max_file=max_file,
            policy=policy,
            tar_folder=tar_folder,
            source_bare=str(ref.bare()),
        )


def _pull(
    source: str,
    store: Store,
    artifact: ModelArtifact,
    settings: Settings,
    *,
    output: Path,
    only: frozenset[str] | None,
    progress: Progress,
    max_total: int | None,
    max_file: int | None,
    policy: Policy | None,
    tar_folder: Path | None,
    source_bare: str,
) -> PullResult:
    paths = safe_layer_paths(artifact, source)
    root = output
    if root.exists() and not root.is_dir():
        raise InputError(f"--output {root} exists and is not a folder")
    jobs: list[tuple[str, Descriptor, Path]] = []
    for layer, path in zip(artifact.layers, paths, strict=True):
        if only is not None and artifact.file_type(layer) not in only:
            continue
        dest = root / path
        jobs.append((path, layer, dest))
    # The caps are checked first: a folder layer is fetched to check its signed files.
    _check_caps(jobs, source, max_total, max_file)
    trust = _signed_files(store, artifact, policy, source_bare, settings, tar_folder, progress)
    _check_signed(jobs, trust, source)
    _prepare(root, jobs, source)

    def fetch(job: tuple[str, Descriptor, Path]) -> tuple[str, int, bool, bool]:
        path, layer, dest = job
        cancel.check()
        if is_tar_layer(layer):
            return _fetch_tar(job)
        if _up_to_date(dest, layer):
            progress.finish(path, skipped=True)
            return path, layer.size, False, False
        existed = dest.is_file()
        store.fetch_blob(layer, dest, progress, path)
        if recorded_executable(layer):
            os.chmod(dest, file_mode(executable=True))
        return path, layer.size, True, existed

    def _fetch_tar(job: tuple[str, Descriptor, Path]) -> tuple[str, int, bool, bool]:
        path, layer, _dest = job
        where = f"{source} ({path})"
        if trust.tar_folder is not None:
            # Under a trust policy the blob was fetched (digest verified) and every file in it
            # hashed and checked against the signed statement before anything was written;
            # that same blob, in our locked temp folder, is what is unpacked.
            extract(tar_blob_path(trust.tar_folder, layer), root, where, max_total)
            return path, layer.size, True, False
        # A directory packed as tar: verify the blob in a temp folder of ours, then extract it.
        with owned_temp_dir(root) as tmp:
            blob = tmp / "layer.tar"
            store.fetch_blob(layer, blob, progress, path)
            extract(blob, root, where, max_total)
        return path, layer.size, True, False

    # On any failure (a signal included) the jobs not started yet are dropped; running ones stop
    # at their next block once cancelled.
    pool = ThreadPoolExecutor(max_workers=settings.concurrency)
    try:
        done = tuple(pool.map(fetch, jobs))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return PullResult(
        artifact.digest,
        root,
        tuple((p, s, d) for p, s, d, _r in done),
        tuple(p for p, _s, _d, replaced in done if replaced),
        trust.signers,
    )

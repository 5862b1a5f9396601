"""``ci-modelver site``: a static model-registry website generated from one or more repositories."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci_modelver.adapters.site_output import write_files
from ci_modelver.adapters.site_source import ManifestReader, read_repository
from ci_modelver.adapters.store import Store
from ci_modelver.core.context import source_date_epoch
from ci_modelver.core.site_model import RepoSnapshot, TrustStatus, VersionSnapshot, site_view
from ci_modelver.core.trust import Policy
from ci_modelver.errors import InputError, Untrusted
from ci_modelver.settings import Settings
from ci_modelver.signatures import load_policy, signature_checks
from ci_modelver.toolkit import (
    Invocation,
    Parents,
    add_trust_flags,
    open_store,
    repository_argument,
)

DEFAULT_TITLE = "Model registry"


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "site",
        parents=[parents.common, parents.remote],
        help="generate a static model-registry website",
        description="Write static pages (HTML, one CSS file, models.json) for one or more "
        "repositories: models with their latest version and aliases, per model the versions, the "
        "alias timeline and a trend chart per gated metric, per version its full record. Reads "
        "manifests only (with a trust policy, also the signature bundles, and a folder layer's blob "
        "for a trusted signer's files statement); the pages load nothing from anywhere else.",
    )
    p.add_argument(
        "repositories",
        nargs="+",
        metavar="REPO",
        help="HOST/PATH, oci:DIR or a model name (repeatable)",
    )
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="the folder to write")
    p.add_argument(
        "--base-url",
        metavar="PATH",
        help="the path the site is served under, e.g. /my-repo/ (default: relative links, "
        "which work from file:// and any path)",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="keep fetched manifests here by digest and read them from here next time",
    )
    p.add_argument("--title", default=DEFAULT_TITLE, metavar="TEXT", help="the site's title")
    # Who is trusted comes from these flags only, never from the registry being shown.
    add_trust_flags(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


@dataclass(frozen=True)
class ModelPages:
    """The pages written for one repository."""

    repository: str
    name: str
    path: str
    versions: int
    pages: int
    trusted: int | None = None  # versions a trusted signer vouches for; None: no policy given


@dataclass(frozen=True)
class SiteResult:
    output: Path
    models: tuple[ModelPages, ...]
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    fetched: int
    cached: int

    def to_json(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "models": [
                {
                    "repository": m.repository,
                    "name": m.name,
                    "path": m.path,
                    "versions": m.versions,
                    "pages": m.pages,
                    "trusted": m.trusted,
                }
                for m in self.models
            ],
            "written": list(self.written),
            "unchanged": list(self.unchanged),
            "removed": list(self.removed),
            "manifests": {"fetched": self.fetched, "fromCache": self.cached},
        }


def run(args: argparse.Namespace, inv: Invocation) -> SiteResult:
    return site(
        args.repositories,
        Path(args.output),
        inv.settings,
        base_url=args.base_url,
        cache=Path(args.cache) if args.cache else None,
        title=args.title,
        key_files=args.trusted_keys,
        ca=args.ca,
        identity=args.cert_identity,
    )


def _generated(pinned: int | None) -> str | None:
    """The generation time only when SOURCE_DATE_EPOCH pins it (else the bytes would change)."""
    return None if pinned is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pinned))


def _checked(
    store: Store, snap: RepoSnapshot, policy: Policy, at: dt.datetime, workers: int
) -> RepoSnapshot:
    """Each version with its signatures checked against ``policy``, as ``verify`` checks them."""

    def one(version: VersionSnapshot) -> VersionSnapshot:
        if not version.signatures:
            return replace(version, trust=TrustStatus(False, reason="it has no signatures"))
        try:
            found = signature_checks(
                store, version.artifact, policy, source=snap.repository, at=at, workers=workers
            )
        except Untrusted as exc:  # a folder layer that cannot be listed for a files statement
            return replace(version, trust=TrustStatus(False, reason=str(exc)))
        verdict = found.verdict
        status = TrustStatus(
            verdict.trusted, verdict.signers, "" if verdict.trusted else verdict.reason()
        )
        return replace(version, trust=status)

    return replace(snap, versions=tuple(one(v) for v in snap.versions))


def site(
    repositories: list[str],
    output: Path,
    settings: Settings,
    *,
    base_url: str | None = None,
    cache: Path | None = None,
    title: str = DEFAULT_TITLE,
    key_files: list[str] | None = None,
    ca: str | None = None,
    identity: str | None = None,
) -> SiteResult:
    """Read every repository, render the site and write the files whose bytes changed.

    With a trust policy (keys, or roots and an identity), each version's signatures are checked
    against it and the pages say who vouches for the version or why no one does.
    """
    # Here, not at the top: Jinja2 costs every other command's start-up about 15 ms.
    from ci_modelver.site_render import check_base_url, render_site

    base = check_base_url(base_url)
    policy = load_policy(settings, key_files=key_files or [], ca=ca, identity=identity)
    pinned = source_date_epoch(settings.env)
    at = dt.datetime.fromtimestamp(pinned if pinned is not None else time.time(), dt.timezone.utc)
    if not title.strip():
        raise InputError("--title: give a non-empty title")
    output = output if output.is_absolute() else settings.cwd / output
    if cache is not None and not cache.is_absolute():
        cache = settings.cwd / cache
    snapshots: list[RepoSnapshot] = []
    fetched = cached = 0
    seen: set[str] = set()
    for text in repositories:
        ref = repository_argument(text, settings, "site")
        if str(ref) in seen:
            continue
        seen.add(str(ref))
        store = open_store(ref, settings, create=False)
        reader = ManifestReader(store, cache)
        snapshot = read_repository(reader, str(ref), settings.concurrency)
        if not policy.empty:
            snapshot = _checked(store, snapshot, policy, at, settings.concurrency)
        snapshots.append(snapshot)
        fetched, cached = fetched + reader.fetched, cached + reader.cached
    view = site_view(title, _generated(pinned), snapshots)
    files = render_site(view, base_url=base)
    done = write_files(output, files)
    models = tuple(
        ModelPages(
            m.repository,
            m.name,
            f"{m.slug}/",
            len(m.versions),
            1 + len(m.versions),
            None if policy.empty else sum(1 for v in m.versions if v.trust and v.trust.trusted),
        )
        for m in view.models
    )
    return SiteResult(output, models, done.written, done.unchanged, done.removed, fetched, cached)

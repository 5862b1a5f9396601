"""``ci-modelver site``: a static model-registry website generated from one or more repositories."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.adapters.site_output import write_files
from ci_modelver.adapters.site_source import ManifestReader, read_repository
from ci_modelver.core.site_model import RepoSnapshot, site_view
from ci_modelver.errors import InputError
from ci_modelver.settings import Settings
from ci_modelver.site_render import check_base_url, render_site
from ci_modelver.toolkit import Invocation, Parents, open_store, repository_argument

DEFAULT_TITLE = "Model registry"


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "site",
        parents=[parents.common, parents.remote],
        help="generate a static model-registry website",
        description="Write static pages (HTML, one CSS file, models.json) for one or more "
        "repositories: models with their latest version and aliases, per model the versions, the "
        "alias timeline and a trend chart per gated metric, per version its full record. Reads "
        "manifests only; the pages load nothing from anywhere else.",
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
    )


def _generated(settings: Settings) -> str | None:
    """The generation time only when SOURCE_DATE_EPOCH pins it (else the bytes would change)."""
    raw = settings.env.get("SOURCE_DATE_EPOCH")
    if not raw:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(raw)))
    except (ValueError, OverflowError, OSError):
        raise InputError(f"SOURCE_DATE_EPOCH={raw!r}: not a number of seconds") from None


def site(
    repositories: list[str],
    output: Path,
    settings: Settings,
    *,
    base_url: str | None = None,
    cache: Path | None = None,
    title: str = DEFAULT_TITLE,
) -> SiteResult:
    """Read every repository, render the site and write the files whose bytes changed."""
    base = check_base_url(base_url)
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
        reader = ManifestReader(open_store(ref, settings, create=False), cache)
        snapshots.append(read_repository(reader, str(ref), settings.concurrency))
        fetched, cached = fetched + reader.fetched, cached + reader.cached
    view = site_view(title, _generated(settings), snapshots)
    files = render_site(view, base_url=base)
    done = write_files(output, files)
    models = tuple(
        ModelPages(m.repository, m.name, f"{m.slug}/", len(m.versions), 1 + len(m.versions))
        for m in view.models
    )
    return SiteResult(output, models, done.written, done.unchanged, done.removed, fetched, cached)

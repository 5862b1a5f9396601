"""``ci-modelver storage``: storage report: sizes per version, what shared layers save."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.inventory_scan import scan
from ci_modelver.core.refs import Reference
from ci_modelver.core.storage import StorageReport, storage_report
from ci_modelver.settings import Settings
from ci_modelver.toolkit import Invocation, Parents, open_store, repository_argument


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "storage",
        parents=[parents.common, parents.remote],
        help="storage report: sizes per version, what shared layers save",
        description="Report a repository's storage: per version its logical size, the bytes new "
        "in it (in no earlier version) and its size per file type; for the repository the "
        "logical and unique totals, the saving from shared layers, the largest versions, and "
        "the referrers (audit records, evaluations, signatures) apart. Reads manifests only.",
    )
    p.add_argument(
        "repository_ref",
        nargs="?",
        metavar="REPO",
        help="HOST/PATH, oci:DIR or a model name (default: the model of ./modelver.yaml)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


@dataclass(frozen=True)
class StorageResult:
    repository: Reference
    report: StorageReport

    def to_json(self) -> dict[str, Any]:
        return {"repository": str(self.repository), **self.report.to_json()}


def run(args: argparse.Namespace, inv: Invocation) -> StorageResult:
    return storage(args.repository_ref, inv.settings)


def storage(repo_text: str | None, settings: Settings) -> StorageResult:
    """The storage report of a repository, from its manifests (no blob is read)."""
    ref = repository_argument(repo_text, settings, "storage")
    store = open_store(ref, settings, create=False)
    return StorageResult(ref, storage_report(scan(store, settings.concurrency)))

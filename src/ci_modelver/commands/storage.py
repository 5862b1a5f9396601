"""``ci-modelver storage``: storage report: sizes per version, what shared layers save."""

from __future__ import annotations

import argparse
from typing import Any

from ci_modelver.errors import InputError
from ci_modelver.toolkit import Invocation, Parents


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "storage",
        parents=[parents.common, parents.remote],
        help="storage report: sizes per version, what shared layers save",
        description="Report a repository's storage: per version its logical size, the bytes new in it and its size per file type; for the repository the logical and unique totals and the saving from shared layers. Reads manifests only.",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> object:
    raise InputError("ci-modelver storage: not available yet")

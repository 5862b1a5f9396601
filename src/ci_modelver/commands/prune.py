"""``ci-modelver prune``: delete old versions by retention rules (dry run by default)."""

from __future__ import annotations

import argparse
from typing import Any

from ci_modelver.errors import InputError
from ci_modelver.toolkit import Invocation, Parents


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "prune",
        parents=[parents.common, parents.remote],
        help="delete old versions by retention rules (dry run by default)",
        description="Delete versions that no retention rule keeps; never a version an alias points to or pointed to within the last moves, never an audit record. A dry run unless --yes.",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> object:
    raise InputError("ci-modelver prune: not available yet")

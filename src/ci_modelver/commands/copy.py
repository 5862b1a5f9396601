"""``ci-modelver copy``: copy versions between stores with every referrer."""

from __future__ import annotations

import argparse
from typing import Any

from ci_modelver.errors import InputError
from ci_modelver.toolkit import Invocation, Parents


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "copy",
        parents=[parents.common, parents.remote],
        help="copy versions between stores with every referrer",
        description="Copy one version, several, or an alias with its history, with every referrer (audit records, evaluations, signatures), digests unchanged.",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> object:
    raise InputError("ci-modelver copy: not available yet")

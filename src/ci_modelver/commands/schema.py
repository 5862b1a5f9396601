"""``ci-modelver schema``: print a bundled JSON Schema."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ci_modelver.adapters.files import bundled_schema
from ci_modelver.toolkit import Invocation, Parents


@dataclass(frozen=True)
class SchemaDocument:
    """One bundled schema, as shipped."""

    name: str
    schema: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.schema


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "schema",
        parents=[parents.common],
        help="print a bundled JSON Schema",
        description="Print the JSON Schema of the manifest or of a metrics file.",
    )
    p.add_argument("which", nargs="?", choices=["modelver", "metrics"], default="modelver")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> SchemaDocument:
    return SchemaDocument(args.which, bundled_schema(args.which))

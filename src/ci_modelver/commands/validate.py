"""``ci-modelver validate``: every problem of a manifest (and its metrics file) at once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.errors import ExitCode, ModelverError, Reported
from ci_modelver.toolkit import Invocation, Parents
from ci_modelver.validation import ValidationResult, validate_manifest


@dataclass(frozen=True)
class Validated:
    """The findings of ``validate``, and whether the one-line summary is printed too."""

    result: ValidationResult
    summarise: bool  # text format: "FILE: N problem(s)" on stderr; json/github: findings only

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()

    def failure(self) -> ModelverError | None:
        problem = self.result.failure()
        if problem is None or self.summarise:
            return problem
        return Reported(ExitCode.INVALID_INPUT)


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "validate",
        parents=[parents.common],
        help="check a version manifest",
        description="Check a version manifest and its metrics file; "
        "report every problem as FILE:LINE:COL: message (JSON path).",
    )
    p.add_argument(
        "manifest",
        nargs="?",
        default="modelver.yaml",
        metavar="MANIFEST",
        help="path of the manifest (default: ./modelver.yaml)",
    )
    p.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="output format; 'github' annotations are added to text inside GitHub Actions",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> Validated:
    return Validated(validate_manifest(Path(args.manifest), args.manifest), args.format == "text")

"""Shared test helpers."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_modelver.cli import main

pytest_plugins = ["tests.support.github_fixtures"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "churn"


@dataclass(frozen=True)
class Run:
    """Exit code and the two output streams of one in-process CLI run."""

    code: int
    out: str
    err: str


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> Run:
    """Run the CLI in-process with its own streams and environment."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), env=dict(env or {}), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())

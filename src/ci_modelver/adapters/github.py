"""GitHub Actions files: step outputs (``$GITHUB_OUTPUT``)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path


def write_outputs(path: Path, values: Mapping[str, str]) -> None:
    """Append outputs with a random heredoc delimiter so no value can inject another output."""
    lines = []
    for key, value in values.items():
        delimiter = f"ghadelim_{secrets.token_hex(16)}"
        while delimiter in value:
            delimiter = f"ghadelim_{secrets.token_hex(16)}"
        lines.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
    with path.open("a", encoding="utf-8") as out:
        out.write("".join(lines))

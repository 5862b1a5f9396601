"""A parsed document together with where each value came from (line, column)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_modelver.core.text import one_line

JsonPath = tuple["str | int", ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def format_path(path: JsonPath) -> str:
    """Render a path as a JSONPath-like string: ``$.files[0].path``, ``$.gates['val/auc']``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}"
        else:
            escaped = one_line(part.replace("\\", "\\\\").replace("'", "\\'"))
            out += f"['{escaped}']"
    return out


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a source file."""

    line: int
    column: int


@dataclass(frozen=True)
class Finding:
    """One problem in one file: where it is and what to do about it."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.path, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


@dataclass(frozen=True)
class SourceDoc:
    """Parsed data plus the positions of its keys and values, and problems found while parsing."""

    file: str
    data: Any
    keys: Mapping[JsonPath, Position] = field(default_factory=dict)
    values: Mapping[JsonPath, Position] = field(default_factory=dict)
    problems: tuple[Finding, ...] = ()

    def position(self, path: JsonPath, *, key: bool = False) -> Position:
        """Where ``path`` is written; falls back to the closest enclosing value, then line 1."""
        if key and path in self.keys:
            return self.keys[path]
        probe = path
        while True:
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return Position(1, 1)
            if probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]

    def finding(self, path: JsonPath, message: str, *, key: bool = False) -> Finding:
        """A finding located at ``path`` (at its key when ``key`` and the key is known)."""
        pos = self.position(path, key=key)
        return Finding(self.file, pos.line, pos.column, format_path(path), message)

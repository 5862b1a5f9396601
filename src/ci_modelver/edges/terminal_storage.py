"""Text rendering of ``ci-modelver storage`` results (JSON comes from their ``to_json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Result type → renderer(result, fmt, in_actions, lines); merged into edges/terminal.py's map.
RENDERERS: Mapping[type, Callable[[Any, str, bool, Any], None]] = {}

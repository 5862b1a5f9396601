"""Make untrusted text safe for one-line messages."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(text: str, limit: int | None = None) -> str:
    """Escape control characters (``\\n`` → ``\\\\n``) and optionally cut to ``limit`` characters."""
    escaped = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    if limit is not None and len(escaped) > limit:
        return escaped[: max(0, limit - 1)] + "…"
    return escaped

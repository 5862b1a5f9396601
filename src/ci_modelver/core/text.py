"""Make untrusted text safe for one-line messages."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, limit: int | None = None) -> str:
    """Escape control characters (``\\n`` → ``\\\\n``) and optionally cut to ``limit`` characters."""
    escaped = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    if limit is not None and len(escaped) > limit:
        return escaped[: max(0, limit - 1)] + "…"
    return escaped


_SECRET_PARAMS = {
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "secret",
    "_state",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
}


def redact_url(url: str) -> str:
    """A URL fit for logs: no ``user:password@``, secret-looking query values replaced."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [
            (k, "REDACTED" if k.lower() in _SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe=":/,",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))

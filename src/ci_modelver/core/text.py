"""Make untrusted text safe for one-line messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, limit: int | None = None) -> str:
    """Escape control characters (``\\n`` → ``\\\\n``) and optionally cut to ``limit`` characters."""
    escaped = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    if limit is not None and len(escaped) > limit:
        return escaped[: max(0, limit - 1)] + "…"
    return escaped


# Query or fragment parameters whose value is a credential: exact names, then words inside names.
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
    "key",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
}
_SECRET_WORDS = (
    "token",
    "secret",
    "passw",
    "pwd",
    "signature",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "auth",
    "session",
)
MASK = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# What may follow '@' in NAME@DIGEST (an OCI digest: algorithm ':' encoded) ...
_DIGEST_LIKE = re.compile(r"([a-z0-9]+)(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]*")
# ... and the algorithms that make it a digest even after a NAME:TAG.
_DIGEST_ALGORITHMS = ("sha256", "sha384", "sha512", "blake3")


def is_secret_parameter(name: str) -> bool:
    """Whether a query or fragment parameter called ``name`` carries a credential."""
    key = unquote(name).strip().lower()
    return key in _SECRET_PARAMS or any(word in key for word in _SECRET_WORDS)


def userinfo_span(text: str, *, bare_user: bool = False) -> tuple[int, int] | None:
    """Where ``user[:password]@`` sits in ``text``: ``(start, end)`` with the '@' included, or None.

    ``text`` is a URL of any scheme (``persistent-https://me:TOKEN@host/…``), an scp-like git
    remote (``user:pass@host:path``) or, with ``bare_user``, a registry reference, where any '@'
    before the first '/' is a user (``TOKEN@ghcr.io/acme/m``). The user part ends at the last '@'
    before the first '/': a password holding an unencoded '?' or '#' is still found, at the cost of
    misreading a path-less URL whose query holds an '@' (``https://host?to=a@b``).
    ``NAME@sha256:…`` (a digest) is not a user.
    """
    scheme = _SCHEME.match(text)
    start = scheme.end() if scheme else 0
    slash = text.find("/", start)
    end = len(text) if slash == -1 else slash
    at = text.rfind("@", start, end)
    if at == -1:
        return None
    if scheme:
        return start, at + 1
    head, rest = text[start:at], text[at + 1 :]
    digest = _DIGEST_LIKE.fullmatch(rest)
    if digest and (":" not in head or digest.group(1) in _DIGEST_ALGORITHMS):
        return None
    if bare_user or ":" in text[start:end]:
        return start, at + 1
    return None


def secret_parameters(text: str) -> list[str]:
    """The names of the credential parameters in the query and fragment of ``text``."""
    _, query, fragment = _url_parts(text)
    params = [*_params(query or ""), *_params(fragment or "")]
    return [key for key, _, _ in params if is_secret_parameter(key)]


def mask_credentials(text: str, *, bare_user: bool = False, all_parameters: bool = False) -> str:
    """``text`` fit for a message: the user part as ``***@``, credential parameter values as ``***``.

    ``all_parameters`` masks every query value and the whole fragment (for text where no query
    belongs, like a reference: a value with an unusual name may still be a secret).
    """
    span = userinfo_span(text, bare_user=bare_user)
    if span is not None:
        text = f"{text[: span[0]]}{MASK}@{text[span[1] :]}"
    return _mask_parameters(text, everything=all_parameters)


def strip_userinfo(url: str) -> str:
    """``url`` as it may be recorded: no ``user:password@``, credential parameter values ``***``.

    Scheme, host, port, path and the other parameters stay, so the URL is still useful; text that
    is not a URL comes back unchanged.
    """
    span = userinfo_span(url)
    if span is not None:
        url = url[: span[0]] + url[span[1] :]
    return _mask_parameters(url, everything=False)


def _url_parts(text: str) -> tuple[str, str | None, str | None]:
    """``base?query#fragment`` → (base, query or None, fragment or None)."""
    base, hash_sign, fragment = text.partition("#")
    base, question, query = base.partition("?")
    return base, (query if question else None), (fragment if hash_sign else None)


def _params(part: str) -> list[tuple[str, str, str]]:
    """``a=1&b`` → [("a", "=", "1"), ("b", "", "")] (``;`` separates too)."""
    return [item.partition("=") for item in re.split(r"[&;]", part) if item]


def _mask_parameters(text: str, *, everything: bool) -> str:
    base, query, fragment = _url_parts(text)
    out = base
    if query is not None:
        out += "?" + _mask_params(query, everything)
    if fragment is not None:
        out += "#" + (MASK if everything and fragment else _mask_params(fragment, False))
    return out


def _mask_params(part: str, everything: bool, mask: str = MASK) -> str:
    def masked(item: str) -> str:
        key, eq, value = item.partition("=")
        if not eq:
            return mask if everything and item else item
        return f"{key}={mask}" if value and (everything or is_secret_parameter(key)) else item

    return "".join(
        piece if piece in ("&", ";") else masked(piece) for piece in re.split(r"([&;])", part)
    )


def redact_url(url: str) -> str:
    """A URL fit for logs: no ``user:password@``, no fragment, credential query values REDACTED."""
    span = userinfo_span(url)
    if span is not None:
        url = url[: span[0]] + url[span[1] :]
    base, query, _ = _url_parts(url)
    return base if query is None else f"{base}?{_mask_params(query, False, 'REDACTED')}"


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value: ``set2`` before ``set10``."""
    parts = [
        (0, int(part)) if part.isdigit() else (1, part.casefold())
        for part in _DIGITS.split(text)
        if part
    ]
    # The text itself breaks ties ("a1" vs "a01"), so the order is total and stable.
    return (*parts, (2, text))


def human_size(size: float) -> str:
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def short_digest(digest: str | None) -> str:
    """``sha256:`` and its first 12 hex digits, for tables; ``—`` for none."""
    return digest[:19] + "…" if digest else "—"


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a plain-text table, indented two spaces, each column as wide as its widest cell."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(head)]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *rows)
    ]

"""JSON from outside (registries, credential helpers, layouts, docker config) parsed within bounds.

One parser for every document that comes from somewhere we do not control: a size limit before
anything is parsed, a nesting limit (the same 64 levels as YAML manifests), standard JSON only
(``NaN`` and ``Infinity`` are refused) and a description of what the bytes are when they are not
JSON (an HTML page from a captive portal or a proxy's login form). Python's ``json`` recurses
once per nesting level, so a document nested 100,000 deep would otherwise end in a
RecursionError; the nesting is checked on the parsed value without recursion.

``parse`` raises :class:`~ci_modelver.errors.JSONRefused` (a ValueError) with the problem alone;
``load`` names the source and raises the caller's error class: InputError for a local file
(exit 2), RemoteError for a server's answer (exit 3).
"""

from __future__ import annotations

import json
from typing import Any

from ci_modelver.errors import JSONRefused, ModelverError

MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024


def size_text(size: int) -> str:
    """``4194304`` → ``4 MiB``, ``65536`` → ``64 KiB``, else bytes."""
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size:,} bytes"


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"is not standard JSON ('{name}' is not a JSON value)")


def _looks_like_html(data: bytes | str, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    head = data[:256].lstrip()
    if isinstance(head, bytes):
        head = head.decode("latin-1")
    return head[:1] == "<"


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse(
    data: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    content_type: str = "",
) -> Any:
    """The JSON value of ``data``; JSONRefused (saying what is wrong, no content) otherwise.

    ``content_type`` (a server's Content-Type, if any) only sharpens the description of
    something that is not JSON.
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        # Callers read at most max_bytes + 1: the size is "over", not a count.
        raise JSONRefused(f"is over the {size_text(max_bytes)} limit")
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONRefused(f"nests deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise JSONRefused("is not JSON (not UTF-8 text)") from None
    except JSONRefused:
        raise
    except ValueError as exc:
        if _looks_like_html(data, content_type):
            media = content_type.split(";")[0].strip()
            kind = f" ({media})" if "html" in media.lower() else ""
            raise JSONRefused(f"is an HTML page{kind}, not JSON") from None
        where = (
            f" (line {exc.lineno} column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise JSONRefused(f"is not valid JSON{where}") from None
    if _depth_over(value, max_depth):
        raise JSONRefused(f"nests deeper than {max_depth} levels")
    return value


def load(
    data: bytes | str,
    *,
    source: str,
    error: type[ModelverError],
    advice: str = "",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    content_type: str = "",
) -> Any:
    """Like :func:`parse`, but a refusal is ``error("<source> <problem>; <advice>")``."""
    try:
        return parse(data, max_bytes=max_bytes, max_depth=max_depth, content_type=content_type)
    except JSONRefused as exc:
        raise error(f"{source} {exc.problem}{'; ' + advice if advice else ''}") from None

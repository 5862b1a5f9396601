"""Text rendering of ``ci-modelver site`` results (JSON comes from their ``to_json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ci_modelver.commands.site import SiteResult
from ci_modelver.core.text import one_line


def site_lines(result: SiteResult) -> list[str]:
    """What was generated: per model its pages, then files written, unchanged and removed."""
    lines = [f"site in {result.output}: {len(result.models)} model(s)"]
    for model in result.models:
        trusted = (
            "" if model.trusted is None else f", {model.trusted} of them trusted by the policy"
        )
        lines.append(
            f"  {model.name} ({model.repository}): {model.path}, {model.versions} version(s), "
            f"{model.pages} page(s){trusted}"
        )
    lines.append(
        f"{len(result.written)} file(s) written, {len(result.unchanged)} unchanged, "
        f"{len(result.removed)} removed; manifests: "
        f"{result.fetched} fetched, {result.cached} from the cache"
    )
    lines.extend(f"  wrote {path}" for path in result.written)
    lines.extend(f"  removed {path}" for path in result.removed)
    # Model names and repositories come from the store: one line each, control characters escaped.
    return [one_line(line) for line in lines]


def _site(result: SiteResult, fmt: str, in_actions: bool, lines: Any) -> None:
    lines.out(*site_lines(result))


# Result type → renderer(result, fmt, in_actions, lines); merged into edges/terminal.py's map.
RENDERERS: Mapping[type, Callable[[Any, str, bool, Any], None]] = {SiteResult: _site}

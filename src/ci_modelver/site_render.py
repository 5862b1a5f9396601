"""Render the registry site's view model to files: HTML pages (Jinja2, autoescaped), CSS, JSON.

Every template autoescapes; registry text reaches them only as plain strings. The one exception is
the SVG charts of :mod:`ci_modelver.core.charts`, our own markup whose every text node is escaped
there, marked safe here. Links are relative (``../x/index.html``, so the pages work from
``file://`` and under any path) unless a base URL is given, then absolute paths under it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ci_modelver.core import charts
from ci_modelver.core.site_model import ChartView, ModelView, SiteView, value_text
from ci_modelver.core.text import human_size, short_digest
from ci_modelver.errors import InputError

CSS_PATH = "assets/site.css"
CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
_BASE_URL = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)*$")


def check_base_url(base_url: str | None) -> str | None:
    """``/`` or ``/a/b/`` (a trailing slash is added); a host, a scheme or ``..`` is exit 2."""
    if base_url is None:
        return None
    value = base_url if base_url.endswith("/") else base_url + "/"
    if not _BASE_URL.match(value) or any(p in ("..", ".") for p in value.split("/")):
        raise InputError(
            f"--base-url {base_url!r}: give the path the site is served under, such as '/' or "
            "'/my-repo/' (letters, digits, '.', '_', '~', '-'; no host, no '..')"
        )
    return value


def _template(name: str) -> str:
    return (
        resources.files("ci_modelver")
        .joinpath("templates")
        .joinpath("site")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


def environment() -> Environment:
    """The Jinja2 environment: autoescape on for every template, undefined names are errors."""
    env = Environment(
        loader=FunctionLoader(_template),
        autoescape=select_autoescape(
            enabled_extensions=("html",), default_for_string=True, default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["short"] = short_digest
    env.filters["size"] = human_size
    env.filters["value"] = lambda value: "—" if value is None else value_text(value)
    env.filters["signed"] = lambda value: "—" if value is None else f"{value:+.6g}"
    return env


def _linker(base_url: str | None, depth: int) -> Callable[..., str]:
    def href(*parts: str, folder: bool = True) -> str:
        path = "/".join(quote(p, safe="") for p in parts if p)
        if folder:
            path = f"{path}/" if path else ""
        if base_url is not None:
            return base_url + path
        relative = "../" * depth + path
        return relative + "index.html" if folder else relative

    return href


def json_document(view: SiteView) -> bytes:
    """``models.json``: sorted keys; ``<``, ``>`` and ``&`` as ``\\u`` escapes (safe to embed)."""
    text = json.dumps(view.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (text + "\n").encode("utf-8")


def render_site(view: SiteView, *, base_url: str | None = None) -> dict[str, bytes]:
    """Every file of the site by its path relative to the output folder."""
    env = environment()

    def page(name: str, depth: int, **context: Any) -> bytes:
        href = _linker(base_url, depth)
        html = env.get_template(name).render(
            site=view,
            href=href,
            css=href(*CSS_PATH.split("/"), folder=False),
            csp=CSP,
            number=charts.number,
            chart_svg=_chart_svg,
            sparkline_svg=_sparkline_svg,
            **context,
        )
        return html.encode("utf-8")

    files: dict[str, bytes] = {
        "index.html": page("index.html", 0),
        "models.json": json_document(view),
        CSS_PATH: _template("site.css").encode("utf-8"),
    }
    for model in view.models:
        files[f"{model.slug}/index.html"] = page("model.html", 1, model=model)
        for version in model.versions:
            files[f"{model.slug}/{version.slug}/index.html"] = page(
                "version.html", 2, model=model, version=version
            )
    return files


def _chart_svg(chart: ChartView) -> Markup:
    """A trend chart's SVG (built and escaped by core.charts): the only markup marked safe."""
    if not isinstance(chart, ChartView):
        raise TypeError("chart_svg takes a ChartView")
    return Markup(chart.svg)  # our own SVG: every text node escaped in core.charts


def _sparkline_svg(model: ModelView) -> Markup:
    """A model's sparkline SVG (built and escaped by core.charts)."""
    if not isinstance(model, ModelView):
        raise TypeError("sparkline_svg takes a ModelView")
    return Markup(model.sparkline)  # our own SVG, escaped in core.charts

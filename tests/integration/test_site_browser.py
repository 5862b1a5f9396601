"""The registry site in a real browser: Debian's chromium driven by Playwright.

Both the plain site (opened through file://) and a --base-url /sub/ site served by a local HTTP
server under /sub/ load with no console error and no request leaving 127.0.0.1 or file://; the
rendered DOM shows what people look for; hostile strings are text and run nothing; axe-core finds
no serious or critical violation; the Nu Html Checker finds no error. Screenshots at 1280x800 and
390x844 go to the pytest tmp dir (artefacts, never committed).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.commands.site import site
from ci_modelver.settings import Settings
from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.integration.conftest import REQUIRED_UNDER_CI, require_binary
from tests.support.browser import launch_chromium
from tests.support.npm_packages import ensure_npm_packages
from tests.support.registry import Registry
from tests.support.signing_keys import write_key

pytestmark = pytest.mark.integration

GATES = {"accuracy": {"direction": "higher", "tolerance": 0.01}}
HOSTILE_DESCRIPTION = "<img src=x onerror=alert(1)>"
HOSTILE_METRIC = "</script><script>alert(1)</script>"
PAGES = {"index": "", "model": "sitemodel/", "version": "sitemodel/1.1.0/"}
VIEWPORTS = {"desktop": (1280, 800), "mobile": (390, 844)}


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} not available; {REQUIRED_UNDER_CI}")
    pytest.skip(f"{what} not available (./dev.sh test installs it)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = require_binary("chromium", "chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package (test extra)")
    with launch_chromium(executable) as launched:
        yield launched


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Sites:
    plain: Path  # opened through file://
    served: Path  # the folder served under /sub/
    http_base: str  # http://127.0.0.1:PORT/sub/

    def url(self, mode: str, page: str) -> str:
        if mode == "file":
            return (self.plain / PAGES[page] / "index.html").as_uri()
        return self.http_base + PAGES[page]


def _publish(repo: str, tmp: Path, env: dict[str, str], version: str, acc: float) -> None:
    manifest = make_model(
        tmp / f"v{version}",
        name="sitemodel",
        version=version,
        weights=f"w{version}".encode(),
        metrics={"validation": {"accuracy": acc, HOSTILE_METRIC: 0.5}},
        gates=GATES,
        description=f"{HOSTILE_DESCRIPTION} churn model {version}",
        data=[{"name": "train", "uri": "s3://bucket/train.csv", "digest": "sha256:" + "c" * 64}],
        code={"repository": "https://github.com/acme/models", "commit": "d" * 40},
    )
    result = run_cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
    assert result.code == 0, result.err


def _run(env: dict[str, str], *args: str) -> None:
    result = run_cli(*args, env=env)
    assert result.code == 0, result.err


@pytest.fixture(scope="module")
def sites(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    tmp = tmp_path_factory.mktemp("site-browser")
    repo = registry.repo(f"site/b{uuid.uuid4().hex[:12]}")
    env = base_env(tmp, GITHUB_ACTOR="release-bot")
    _publish(repo, tmp, env, "1.0.0", 0.80)
    _publish(repo, tmp, env, "1.1.0", 0.83)
    _run(env, "promote", f"{repo}:1.0.0", "--alias", "production", "--reason", "first release")
    _run(env, "promote", f"{repo}:1.1.0", "--alias", "production", "--reason", "better recall")
    holdout = tmp / "holdout.json"
    holdout.write_text(json.dumps({"accuracy": 0.815}))
    _run(env, "attach", f"{repo}:1.1.0", "--metrics", str(holdout), "--set", "holdout")
    key = write_key(tmp / "keys", "release")
    _run(env, "sign", f"{repo}:1.1.0", "--sign-key", str(key.private))

    settings = Settings.build(env, cwd=tmp)
    plain, root = tmp / "plain", tmp / "root"
    site([repo], plain, settings, title="Acme models", key_files=[str(key.public)])
    _run(
        env,
        "site",
        repo,
        "--output",
        str(root / "sub"),
        "--base-url",
        "/sub/",
        "--title",
        "Acme models",
        "--key",
        str(key.public),
    )

    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Sites(plain, root / "sub", f"http://127.0.0.1:{server.server_address[1]}/sub/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


EXPECTED = {
    "index": ("Acme models", "sitemodel", "production → 1.1.0", "validation/accuracy: 0.83"),
    "model": (
        "1.1.0",
        "1.0.0",
        "first release",
        "better recall",
        "release-bot",
        "0.815",
        "Signed",
        "not trusted",  # 1.0.0 is unsigned
    ),
    "version": (
        "churn model 1.1.0",
        HOSTILE_DESCRIPTION,
        HOSTILE_METRIC,
        "model/weights.bin",
        "s3://bucket/train.csv",
        "holdout",
        "0.815",
        "0.83",
        "production",
        "d" * 40,
        "Trusted: signed by key release.pub",
    ),
}


@pytest.mark.parametrize("page_type", list(PAGES))
@pytest.mark.parametrize("mode", ["file", "http"])
def test_page_in_chromium(
    browser: Any, sites: Sites, mode: str, page_type: str, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        url = sites.url(mode, page_type)
        response = page.goto(url, wait_until="load")
        assert response is None or response.ok, url
        prefix = "file://" if mode == "file" else sites.http_base.split("/sub/")[0] + "/"
        leaving = [u for u in requests if not u.startswith(prefix)]
        assert leaving == [], leaving
        assert errors == [], errors
        assert dialogs == []
        # The stylesheet applied (not blocked by the Content-Security-Policy).
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "1152px"
        # Nothing injected: the site has no <img>, <script> or inline handler at all.
        assert page.evaluate("document.querySelectorAll('img, script, iframe, object').length") == 0
        assert (
            page.evaluate(
                "[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
                ".some(a => a.name.startsWith('on'))).length"
            )
            == 0
        )
        text = " ".join(page.inner_text("body").split())
        for expected in EXPECTED[page_type]:
            assert expected in text, expected
        if page_type == "model":
            rows = page.locator("table:has(caption:text('alias move')) tbody tr")
            assert rows.count() == 2
            assert "better recall" in rows.nth(0).inner_text()
            assert "first release" in rows.nth(1).inner_text()
            assert page.locator("svg circle").count() >= 3
        if page_type == "index":
            link = page.locator("a", has_text="sitemodel").first
            link.click()
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text() == "sitemodel"
            page.go_back()
        for name, (width, height) in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(tmp_path / f"{mode}-{page_type}-{name}.png"), full_page=True)
            if name == "mobile":
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= page.evaluate("window.innerWidth"), (name, scroll)
        assert errors == [] and dialogs == []
    finally:
        context.close()


@pytest.mark.parametrize("page_type", list(PAGES))
def test_axe_core(browser: Any, sites: Sites, page_type: str) -> None:
    try:
        axe = ensure_npm_packages() / "axe-core" / "axe.min.js"
    except RuntimeError as exc:
        _missing(str(exc))
    # The pages forbid every script by their CSP; axe is injected by the test, not by the page.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(sites.url("http", page_type), wait_until="load")
        page.add_script_tag(path=str(axe))
        result = page.evaluate("async () => await axe.run(document)")
        assert result["passes"], "axe-core ran no rule"
        bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
        report = [
            (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:5]) for v in bad
        ]
        assert bad == [], json.dumps(report, indent=1)
    finally:
        context.close()


def test_nu_html_checker(sites: Sites) -> None:
    java = require_binary("java")
    try:
        jar = ensure_npm_packages() / "vnu-jar" / "build" / "dist" / "vnu.jar"
    except RuntimeError as exc:
        _missing(str(exc))
    files = sorted(str(p) for folder in (sites.plain, sites.served) for p in folder.rglob("*.html"))
    assert len(files) == 8  # index, model, two versions; twice
    done = subprocess.run(
        [java, "-jar", str(jar), "--errors-only", "--format", "json", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    messages = json.loads(done.stderr or done.stdout or '{"messages": []}')["messages"]
    assert messages == [] and done.returncode == 0, json.dumps(messages, indent=1)

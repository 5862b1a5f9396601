"""Defects found reading the code, each pinned by the behaviour it broke."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.hostile_registry import HostileRegistry, canonical, model_artifact

pytestmark = pytest.mark.integration
T = ("--timeout", "5")


@pytest.fixture
def registry() -> Iterator[HostileRegistry]:
    reg = HostileRegistry().start()
    try:
        yield reg
    finally:
        reg.stop()


class _EndlessPages(http.server.BaseHTTPRequestHandler):
    """A registry whose tag list always names one more page."""

    served = 0

    def do_GET(self) -> None:
        if "/tags/list" not in self.path:
            body = b"{}"
            self.send_response(200)
        else:
            type(self).served += 1
            body = json.dumps({"name": "acme/model", "tags": [f"t{self.served}"]}).encode()
            self.send_response(200)
            self.send_header(
                "Link", f'</v2/acme/model/tags/list?n=1&last=t{self.served}>; rel="next"'
            )
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_registry_that_paginates_for_ever_is_cut_off(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessPages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = f"127.0.0.1:{server.server_address[1]}/acme/model"
        result = run_cli("versions", repo, "--timeout", "60", env=base_env(tmp_path))
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 3, result.err
    assert "keeps paginating" in result.err
    assert _EndlessPages.served == 1000


def test_hostile_record_shapes_never_crash_a_renderer(
    registry: HostileRegistry, tmp_path: Path
) -> None:
    record = canonical(
        {
            "schemaVersion": 1,
            "name": "model",
            "version": "1.0.0",
            "metrics": {"validation": {"accuracy": 0.9}},
            "code": {"commit": 12345, "repository": ["x"], "path": {"a": 1}},
            "framework": {"name": 7, "version": None, "extra": "not a mapping"},
            "hyperparameters": {},
            "data": [],
            "gates": {},
        }
    ).decode()
    registry.add_model("1.0.0", model_artifact(record=record))
    env = base_env(tmp_path)
    for args in (
        ("reproduce", registry.ref("1.0.0")),
        ("history", registry.repo()),
        ("history", registry.repo(), "--format", "markdown"),
        ("show", registry.ref("1.0.0")),
    ):
        result = run_cli(*args, *T, env=env)
        assert result.code == 0, (args, result.err)
        assert "internal error" not in result.err


class _Portal(http.server.BaseHTTPRequestHandler):
    def _page(self) -> None:
        body = b"<html><body>Sign in to the hotel wifi</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _page

    def log_message(self, *args: object) -> None:
        pass


def test_an_html_page_where_github_belongs_is_exit_3(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = tmp_path / "report.md"
        report.write_text("<!-- ci-modelver:report name=m -->\nhello\n")
        env = base_env(
            tmp_path,
            GITHUB_API_URL=f"http://127.0.0.1:{server.server_address[1]}",
            GITHUB_REPOSITORY="acme/models",
            GITHUB_TOKEN="t0ken-value",
        )
        result = run_cli("comment", "--from-file", str(report), "--pr", "1", *T, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 3, result.err
    assert "not its REST API" in result.err and "GITHUB_API_URL" in result.err
    assert "t0ken-value" not in result.err


def test_an_alias_with_a_trailing_newline_never_moves(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    store = f"oci:{tmp_path / 'store'}"
    manifest = make_model(tmp_path / "m")
    assert run_cli("publish", str(manifest), "--repository", store, env=env).code == 0
    result = run_cli("promote", f"{store}:1.0.0", "--alias", "prod\n", env=env)
    assert result.code == 2, result.err
    assert "invalid alias" in result.err
    tags = json.loads(run_cli("versions", store, "--format", "json", env=env).out)
    assert tags["versions"][0]["aliases"] == []
    published = run_cli("publish", str(manifest), "--repository", store, "--tag", "beta\n", env=env)
    assert published.code == 2
    assert "beta\n" not in (tmp_path / "store" / "index.json").read_text()


def test_a_report_file_replaces_a_planted_symlink(tmp_path: Path) -> None:
    env = base_env(tmp_path, RUNNER_TEMP=str(tmp_path / "temp"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    manifest = make_model(tmp_path / "m")
    target = tmp_path / "report.md"
    target.symlink_to(victim)
    result = run_cli(
        "compare",
        str(manifest),
        "--repository",
        f"oci:{tmp_path / 'empty'}",
        "--comment-file",
        str(target),
        env=env,
    )
    assert result.code == 0, result.err
    assert victim.read_text() == "keep me"
    assert not target.is_symlink() and target.read_text().startswith("<!-- ci-modelver:report")


def test_a_timeout_of_years_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run_cli("versions", "oci:x", "--timeout", "1e10", env=base_env(tmp_path))
    assert result.code == 2
    assert "at most 604800 seconds" in result.err and "Traceback" not in result.err


class _FailsThenStalls(http.server.BaseHTTPRequestHandler):
    """500 to the first request; every later one gets no answer for 3 s."""

    seen = 0

    def _answer(self) -> None:
        type(self).seen += 1
        if self.seen > 1:
            time.sleep(3)
            return
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_a_retry_cut_off_by_the_budget_names_the_answer_retried(tmp_path: Path) -> None:
    # The budget runs out inside the retry: the cause to report is the 500 the registry kept
    # giving, not the slowness of the attempt that was cut off.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailsThenStalls)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = f"127.0.0.1:{server.server_address[1]}/acme/model"
        result = run_cli("show", f"{repo}:1.0.0", "--timeout", "1", env=base_env(tmp_path))
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 3, result.err
    assert _FailsThenStalls.seen >= 2, "no retry was made"
    assert "500 Internal Server Error; gave up after 1 attempt(s) in 1s" in result.err, result.err

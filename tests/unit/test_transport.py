"""Transport mechanisms without a network: the bounded JSON parser, request deadlines (watches
and the watchdog), TLS failure classification, CA bundle settings, answers read within limits,
and servers' words shown without our credentials."""

from __future__ import annotations

import io
import json
import re
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from ci_modelver.adapters import http
from ci_modelver.adapters.docker_config import load_config
from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.core import json_bounds
from ci_modelver.errors import (
    InputError,
    JSONRefused,
    RemoteError,
    TooSlow,
    UntrustedCertificate,
    exit_code_of,
)

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- the bounded parser ------------------------------------------------------------------------


@pytest.mark.parametrize("data", [DEEP, DEEP_OBJECT, DEEP.decode()], ids=["array", "object", "str"])
def test_deep_json_is_refused_without_recursion_error(data: bytes | str) -> None:
    with pytest.raises(JSONRefused, match="nests deeper than 64 levels"):
        json_bounds.parse(data)


def test_the_depth_limit_is_exact() -> None:
    assert json_bounds.parse(nested(64)) is not None
    with pytest.raises(JSONRefused, match="nests deeper than 64 levels"):
        json_bounds.parse(nested(65))
    with pytest.raises(JSONRefused, match="nests deeper than 3 levels"):
        json_bounds.parse(b'{"a": {"b": [{"c": 1}]}}', max_depth=3)


def test_deep_but_below_the_interpreter_limit_is_refused_too() -> None:
    # 500 levels parse in Python, but code walking the document could still recurse too far.
    with pytest.raises(JSONRefused, match="nests deeper"):
        json_bounds.parse(nested(500))


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(JSONRefused, match="is over the 4 MiB limit"):
        json_bounds.parse(b" " * (4 * 1024 * 1024) + b"{}")
    with pytest.raises(JSONRefused, match="is over the 10 bytes limit"):
        json_bounds.parse(b'{"abcdefgh": 1}', max_bytes=10)


@pytest.mark.parametrize(
    ("data", "content_type", "problem"),
    [
        (
            b"<html><body>Sign in</body></html>",
            "text/html; charset=utf-8",
            "is an HTML page (text/html), not JSON",
        ),
        (b"  <!DOCTYPE html><html></html>", "", "is an HTML page, not JSON"),
        (b"<html>", "application/json", "is an HTML page, not JSON"),
        (b'{"a": 1,', "", "is not valid JSON (line 1 column 9)"),
        (b'{"a": "\xc3\x28"}', "", "is not JSON (not UTF-8 text)"),
        (b'{"a": NaN}', "", "is not standard JSON ('NaN' is not a JSON value)"),
        (b"[Infinity]", "", "'Infinity' is not a JSON value"),
    ],
)
def test_what_is_not_json_is_named(data: bytes, content_type: str, problem: str) -> None:
    with pytest.raises(JSONRefused) as caught:
        json_bounds.parse(data, content_type=content_type)
    assert problem in caught.value.problem
    assert isinstance(caught.value, ValueError)


def test_load_names_the_source_and_picks_the_exit_code() -> None:
    with pytest.raises(InputError) as local:
        json_bounds.load(
            DEEP, source="oci:x/index.json: the index", error=InputError, advice="fix it"
        )
    assert str(local.value) == "oci:x/index.json: the index nests deeper than 64 levels; fix it"
    assert exit_code_of(local.value) == 2
    with pytest.raises(RemoteError) as remote:
        json_bounds.load(b"<html>", source="GET r/m:1: the manifest", error=RemoteError)
    assert str(remote.value) == "GET r/m:1: the manifest is an HTML page, not JSON"
    assert exit_code_of(remote.value) == 3


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


@given(_JSON)
def test_any_shallow_document_parses_as_json_does(value: Any) -> None:
    text = json.dumps(value)
    assert json_bounds.parse(text) == json.loads(text)
    assert json_bounds.parse(text.encode()) == value


def test_size_text() -> None:
    assert json_bounds.size_text(4 * 1024 * 1024) == "4 MiB"
    assert json_bounds.size_text(64 * 1024) == "64 KiB"
    assert json_bounds.size_text(1000) == "1,000 bytes"


# --- local files through the parser ------------------------------------------------------------


def test_a_deep_docker_config_is_one_input_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"auths": ' + DEEP + b"}")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: the docker config nests deeper than 64 levels; fix or remove the docker config file"
    )


def test_an_oversized_docker_config_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"{}" + b" " * (5 * 1024 * 1024))
    with pytest.raises(InputError, match="the docker config is over the 4 MiB limit"):
        load_config(path)


def _layout(tmp_path: Path) -> LayoutStore:
    return LayoutStore(tmp_path / "store", create=True)


def test_a_deep_layout_index_is_one_input_error(tmp_path: Path) -> None:
    store = _layout(tmp_path)
    (store.root / "index.json").write_bytes(b'{"manifests": ' + DEEP + b"}")
    with pytest.raises(InputError) as caught:
        store.tags()
    assert "index.json: the layout's index nests deeper than 64 levels; repair or remove it" in str(
        caught.value
    )


def test_a_deep_layout_manifest_is_one_input_error(tmp_path: Path) -> None:
    store = _layout(tmp_path)
    data = b'{"schemaVersion": 2, "layers": ' + DEEP + b"}"
    digest = "sha256:" + __import__("hashlib").sha256(data).hexdigest()
    (store.root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    with pytest.raises(InputError) as caught:
        store.find_manifest(digest)
    assert f"@{digest}: the manifest nests deeper than 64 levels" in str(caught.value)
    assert exit_code_of(caught.value) == 2


# --- allowances --------------------------------------------------------------------------------


def test_the_allowance_is_the_budget_plus_the_size_at_the_floor() -> None:
    policy = http.RetryPolicy(budget=10.0)
    assert policy.min_throughput == http.DEFAULT_MIN_THROUGHPUT == 64 * 1024
    assert policy.allowance() == 10.0
    assert policy.allowance(1024 * 1024 * 1024) == 10.0 + 16384.0
    assert http.RetryPolicy(budget=2.0, min_throughput=1024).allowance(4096) == 6.0
    assert http.RetryPolicy(budget=2.0).allowance(-5) == 2.0


# --- watches and the watchdog ------------------------------------------------------------------


class _Sock:
    def __init__(self) -> None:
        self.shut = threading.Event()
        self.how: int | None = None

    def shutdown(self, how: int) -> None:
        self.how = how
        self.shut.set()


class _Conn(http._Watched):
    def __init__(self) -> None:
        self.sock = _Sock()


def _joined(watch: http._Watch, conn: _Conn) -> None:
    http._CURRENT.watch = watch
    try:
        conn._join_current()
    finally:
        http._CURRENT.watch = None


def test_a_watch_shuts_its_connections_when_its_deadline_passes() -> None:
    conn = _Conn()
    watch = http._Watch(0.05)
    _joined(watch, conn)
    http._WATCHDOG.arm(watch)
    assert conn.sock.shut.wait(10), "the watchdog never expired the watch"
    assert watch.expired and conn.sock.how == socket.SHUT_RDWR


def test_a_closed_watch_leaves_its_connections_alone() -> None:
    kept, later = _Conn(), _Conn()
    closed, sentinel = http._Watch(0.01), http._Watch(0.2)
    _joined(closed, kept)
    _joined(sentinel, later)
    closed.close()
    http._WATCHDOG.arm(closed)
    http._WATCHDOG.arm(sentinel)
    assert later.sock.shut.wait(10)  # the watchdog got past the closed watch's deadline
    assert not kept.sock.shut.is_set() and not closed.expired


def test_a_connection_taken_by_another_request_is_not_shut_by_the_first() -> None:
    conn = _Conn()
    first, second = http._Watch(60), http._Watch(60)
    _joined(first, conn)
    _joined(second, conn)  # back in the pool, reused: it now belongs to the second request
    first.expire()
    assert first.expired and not conn.sock.shut.is_set()
    second.expire()
    assert conn.sock.shut.is_set()


def test_a_connection_joining_an_expired_watch_is_shut_at_once() -> None:
    watch = http._Watch(60)
    watch.expire()
    conn = _Conn()
    _joined(watch, conn)
    assert conn.sock.shut.is_set()


def test_connections_outside_a_request_join_nothing() -> None:
    conn = _Conn()
    conn._join_current()
    assert conn.owner is None


def test_the_adapter_makes_every_pool_watched() -> None:
    adapter = http._Adapter()
    pools = adapter.poolmanager.pool_classes_by_scheme
    assert pools["http"].ConnectionCls is http._WatchedHTTPConnection
    assert pools["https"].ConnectionCls is http._WatchedHTTPSConnection
    proxy = adapter.proxy_manager_for("http://proxy.invalid:3128")
    assert proxy.pool_classes_by_scheme["https"].ConnectionCls is http._WatchedHTTPSConnection


# --- answers -----------------------------------------------------------------------------------

USER, PASSWORD = "alice", "s3cret-Passw0rd"
BASIC = http.basic_token(USER, PASSWORD)


def _http(**policy: Any) -> http.RegistryHTTP:
    return http.RegistryHTTP(
        "registry.example",
        plain_http=False,
        credentials=http.Credentials("MODELVER_REGISTRY_USERNAME/PASSWORD", BASIC),
        policy=http.RetryPolicy(**policy),
        env={},
    )


def _reply(
    body: bytes,
    status: int = 403,
    reason: str = "Forbidden",
    watch: http._Watch | None = None,
    owner: http.RegistryHTTP | None = None,
    **headers: str,
) -> http.Reply:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.raw = io.BytesIO(body)
    response.headers.update(headers)
    return http.Reply(
        response,
        watch or http._Watch(60),
        "GET registry.example/m:1",
        "https://registry.example/v2/m/manifests/1",
        owner or _http(),
    )


def _error(message: str, code: str = "DENIED") -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


@pytest.mark.parametrize(
    "message",
    [
        f"denied: Authorization: Basic {BASIC}",
        f"bad header {{'Authorization': 'Basic {BASIC}'}}",
        f"user {USER}:{PASSWORD} may not pull",
        f"password {PASSWORD} is wrong",
        "authorization=Bearer eyJhbGciOi.abc.def was refused",
    ],
)
def test_an_error_body_never_shows_our_credentials(message: str) -> None:
    shown = _reply(_error(message)).describe()
    assert shown.startswith("403 DENIED: ")
    assert BASIC not in shown and PASSWORD not in shown and "eyJhbGciOi" not in shown
    assert http.REDACTED in shown


def test_a_bearer_token_we_were_given_is_redacted_wherever_it_appears() -> None:
    owner = _http()
    owner._tokens["repository:m:pull"] = "tok-1234567890abcdef"
    shown = _reply(_error("token tok-1234567890abcdef expired"), 401, owner=owner).describe()
    assert "tok-1234567890abcdef" not in shown and shown == "401 DENIED: token <redacted> expired"


def test_describe_without_an_oci_body_is_the_status_and_a_short_line() -> None:
    assert _reply(b"<html>teapot</html>", 418, "I'm a Teapot").describe() == "418 I'm a Teapot"
    long = _reply(_error("x" * 5000 + "\x1b[2J")).describe()
    assert len(long) <= 300 and "\x1b" not in long
    assert _reply(DEEP, 500, "Internal Server Error").describe() == "500 Internal Server Error"
    assert _reply(_error("m", code="MANIFEST_UNKNOWN"), 404).error() == ("MANIFEST_UNKNOWN", "m")


def test_reading_stops_at_the_limit() -> None:
    with pytest.raises(
        RemoteError, match=r"GET registry.example/m:1: the tag list is over the 1 KiB limit"
    ):
        _reply(b"x" * 5000, 200).read(1024, "the tag list")


def test_json_answers_go_through_the_bounded_parser() -> None:
    assert _reply(b'{"tags": []}', 200).json() == {"tags": []}
    with pytest.raises(RemoteError, match="the tag list nests deeper than 64 levels"):
        _reply(DEEP, 200).json(what="the tag list")
    with pytest.raises(RemoteError, match=r"the answer is an HTML page \(text/html\), not JSON"):
        _reply(b"<html>login</html>", 200, **{"Content-Type": "text/html"}).json()


def test_a_body_cut_off_by_the_deadline_is_too_slow_not_short() -> None:
    watch = http._Watch(60)
    reply = _reply(b"{}", 200, watch=watch)
    watch.expire()
    with pytest.raises(
        TooSlow,
        match=re.escape(
            "too slow: https://registry.example/v2/m/manifests/1 did not answer in full within 60s"
        ),
    ):
        reply.read(1024)
    assert isinstance(reply.failure(OSError()), TooSlow)
    assert "transfer failed: OSError" in str(_reply(b"", 200).failure(OSError()))


def test_too_slow_for_a_blob_names_the_floor() -> None:
    owner = _http(budget=5.0, min_throughput=64 * 1024)
    message = str(
        owner.too_slow(
            "GET r blob", "https://r/v2/m/blobs/sha256:1", http._Watch(21.0, 1024 * 1024)
        )
    )
    assert "within 21s (5s plus 1.0 MiB at 64 KiB/s)" in message
    assert "MODELVER_MIN_THROUGHPUT" in message


# --- TLS ---------------------------------------------------------------------------------------


def _ssl_failure(error: ssl.SSLError) -> requests.exceptions.SSLError:
    reason = urllib3.exceptions.SSLError(error)
    return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/v2/", reason))  # type: ignore[arg-type]


def test_a_certificate_we_cannot_verify_is_final() -> None:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    error.verify_message = "self-signed certificate"
    exc = _ssl_failure(error)
    with pytest.raises(UntrustedCertificate) as caught:
        _http()._raise_if_final(exc, "GET registry.example/m:1", "https://x", http._Watch(60))
    message = str(caught.value)
    assert (
        "the TLS certificate of registry.example could not be verified (self-signed certificate)"
        in message
    )
    for advice in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "--plain-http"):
        assert advice in message
    assert exit_code_of(caught.value) == 3


def test_a_plain_http_server_spoken_to_in_tls_is_final() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    with pytest.raises(RemoteError, match=r"does not answer in TLS.*--plain-http"):
        _http()._raise_if_final(_ssl_failure(error), "GET r", "https://x", http._Watch(60))


def test_other_tls_and_connection_failures_are_retried() -> None:
    error = ssl.SSLError(8, "EOF occurred in violation of protocol")
    _http()._raise_if_final(_ssl_failure(error), "GET r", "https://x", http._Watch(60))
    _http()._raise_if_final(
        requests.ConnectionError("reset"), "GET r", "https://x", http._Watch(60)
    )
    with pytest.raises(RemoteError, match="GET r: InvalidURL"):
        _http()._raise_if_final(
            requests.exceptions.InvalidURL("x"), "GET r", "https://x", http._Watch(60)
        )


def test_a_failure_after_the_deadline_is_too_slow() -> None:
    watch = http._Watch(60)
    watch.expire()
    with pytest.raises(TooSlow):
        _http()._raise_if_final(requests.ConnectionError("reset"), "GET r", "https://x", watch)


def test_ca_bundle_settings(tmp_path: Path) -> None:
    ca, other = tmp_path / "ca.pem", tmp_path / "other.pem"
    ca.write_text("x")
    other.write_text("y")
    assert http.ca_bundle({}) is True
    assert http.ca_bundle({"SSL_CERT_FILE": str(ca)}) == str(ca)
    assert http.ca_bundle({"REQUESTS_CA_BUNDLE": str(other), "SSL_CERT_FILE": str(ca)}) == str(
        other
    )
    with pytest.raises(InputError, match=r"SSL_CERT_FILE=/nowhere/ca.pem: no such file"):
        http.ca_bundle({"SSL_CERT_FILE": "/nowhere/ca.pem"})


def test_redaction_keeps_ordinary_text() -> None:
    text = "Basic authentication is required for this repository"
    assert http.redact_secrets(text, []) == text
    assert http.redact_secrets("abc abcdef", ["abc", "abcdef"]) == "<redacted> <redacted>"


def test_the_watchdog_thread_is_a_daemon() -> None:
    http._WATCHDOG.arm(http._Watch(0.0))
    deadline = time.monotonic() + 5
    while http._WATCHDOG._thread is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert http._WATCHDOG._thread is not None and http._WATCHDOG._thread.daemon


# --- the throughput floor setting --------------------------------------------------------------


def test_min_throughput_comes_from_the_environment() -> None:
    from ci_modelver.settings import Settings

    assert Settings.build({}).min_throughput == http.DEFAULT_MIN_THROUGHPUT
    assert Settings.build({"MODELVER_MIN_THROUGHPUT": " 1048576 "}).min_throughput == 1048576
    assert Settings.build({"MODELVER_MIN_THROUGHPUT": ""}).min_throughput == 65536


@pytest.mark.parametrize(
    "raw", ["64K", "fast", "100", "-65536", "1e6", "\uff16\uff15\uff15\uff13\uff16"]
)
def test_min_throughput_refuses_what_is_not_a_usable_floor(raw: str) -> None:
    from ci_modelver.settings import Settings

    with pytest.raises(InputError) as caught:
        Settings.build({"MODELVER_MIN_THROUGHPUT": raw})
    assert str(caught.value).startswith("environment variable MODELVER_MIN_THROUGHPUT=")
    assert "at least 1024" in str(caught.value)
    assert exit_code_of(caught.value) == 2


def test_githubs_token_scheme_is_redacted_too() -> None:
    from ci_modelver.adapters.http import redact_secrets

    shown = redact_secrets("echo: Authorization: token s3cr3tvalue; authorization token x9y8z7", [])
    assert "s3cr3tvalue" not in shown and "x9y8z7" not in shown


@pytest.mark.parametrize(
    "echo",
    [
        "map[Authorization:[Basic Zm9vOmJhcg==] Accept:[*/*]]",
        '{"Authorization":["Basic Zm9vOmJhcg=="]}',
        "{'Authorization': 'Bearer Zm9vOmJhcg=='}",
    ],
)
def test_echoed_authorization_in_go_and_json_shapes_is_redacted(echo: str) -> None:
    from ci_modelver.adapters.http import redact_secrets

    assert "Zm9vOmJhcg" not in redact_secrets(echo, [])

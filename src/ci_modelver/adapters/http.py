"""HTTP to registries: a deadline on every request, bounded retries with backoff, registry auth.

Every request ends within its allowance: ``--timeout`` for the whole request (retries, the
answer and its body), plus, for a blob, its size at the minimum throughput
(``MODELVER_MIN_THROUGHPUT``). Socket timeouts alone bound only the gap between two bytes, so a
registry trickling a byte every half second would hold a request for days: a watchdog thread
shuts down the sockets of a request whose deadline passed, which ends any blocking read or write
at once (connections are ours through the pool's ``ConnectionCls``). Bodies are read in bounded
pieces (``Reply``), JSON answers through the bounded parser (``core.json_bounds``), a TLS
certificate that cannot be verified is final (never retried), and every text a server sends
back is shown without the credentials we sent.

Credentials come from MODELVER_REGISTRY_USERNAME/PASSWORD or docker's config.json
(``docker_config``); the Basic and bearer-token challenge flow is answered here. oras-py is
not used: its transfers retry only HTTP 500, ignore Retry-After and set no timeouts, and its
docker-config lookup is reachable only through private attributes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import heapq
import itertools
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from ci_modelver.adapters import docker_config
from ci_modelver.core import json_bounds
from ci_modelver.core.text import human_size, one_line, redact_url
from ci_modelver.errors import (
    InputError,
    JSONRefused,
    RemoteError,
    TooSlow,
    UntrustedCertificate,
)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BLOCK = 1024 * 1024
READ_CHUNK = 64 * 1024
# The throughput a transfer of known size must average (MODELVER_MIN_THROUGHPUT, bytes per
# second) on top of --timeout: at 64 KiB/s a 1 GiB weight may take --timeout plus 4.5 hours.
DEFAULT_MIN_THROUGHPUT = 64 * 1024
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # a JSON answer: manifest, referrers index, token
ERROR_BODY_BYTES = 64 * 1024  # an error answer is read this far to describe it
# Where a CA certificate file may be named (the first one set wins).
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
PLAIN_HTTP_HINT = "--plain-http (env MODELVER_PLAIN_HTTP=1)"
# What to do about an answer that is not the JSON document asked for.
ANSWER_ADVICE = "check the registry address, and any proxy or captive portal in between"


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: exponential backoff with full jitter inside a total budget.

    ``budget`` bounds a whole request (every attempt, the answer and its body); a request that
    moves ``size`` bytes gets ``size / min_throughput`` seconds more (:meth:`allowance`).
    """

    budget: float = 120.0
    base: float = 0.5
    cap: float = 20.0
    timeout: float = 60.0  # per attempt: connect and between bytes
    hint: str = "raise --timeout to wait longer"  # how the user gives a longer budget
    min_throughput: int = DEFAULT_MIN_THROUGHPUT  # bytes per second

    def allowance(self, size: int = 0) -> float:
        """Seconds a request moving ``size`` bytes may take in all."""
        return self.budget + max(0, size) / max(1, self.min_throughput)


@dataclass
class Stats:
    """Counters for reports and tests (thread-safe increments)."""

    requests: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for key, value in amounts.items():
                setattr(self, key, getattr(self, key) + value)


# --- deadlines ---------------------------------------------------------------------------------

_CURRENT = threading.local()  # the watch of the request this thread is sending, if any
_WATCH_LOCK = threading.Lock()  # guards every watch's state and connection list


class _Watch:
    """The deadline of one request and the connections it used (shut down when it passes)."""

    def __init__(self, allowance: float, size: int = 0) -> None:
        self.allowance = allowance
        self.size = size
        self.deadline = time.monotonic() + allowance
        self.expired = False
        self.done = False
        self._connections: list[_Watched] = []

    def attach(self, connection: _Watched) -> None:
        with _WATCH_LOCK:
            connection.owner = self
            if self.done:
                return
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def expire(self) -> None:
        with _WATCH_LOCK:
            if self.done or self.expired:
                return
            self.expired = True
            # A connection back in the pool and taken by another request has another owner.
            for connection in self._connections:
                if connection.owner is self:
                    _shut(connection)

    def close(self) -> None:
        with _WATCH_LOCK:
            self.done = True
            self._connections.clear()


def _shut(connection: _Watched) -> None:
    """End every blocking read or write on the connection's socket now (it is not reused)."""
    sock = getattr(connection, "sock", None)
    shutdown = getattr(sock, "shutdown", None)
    if callable(shutdown):
        with contextlib.suppress(OSError, ValueError):
            shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that expires watches when their deadline passes, earliest first."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, watch: _Watch) -> None:
        with self._ready:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ci-modelver-deadlines", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def _next_due(self) -> _Watch:
        with self._ready:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._ready.wait(60.0)
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._ready.wait(min(wait, 60.0))  # also below threading.TIMEOUT_MAX

    def _run(self) -> None:
        while True:
            self._next_due().expire()


_WATCHDOG = _Watchdog()


class _Watched:
    """A connection that joins the deadline of the request using it (see ``_Watch``)."""

    owner: _Watch | None = None

    def _join_current(self) -> None:
        watch: _Watch | None = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.attach(self)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self._join_current()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._join_current()
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self._join_current()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._join_current()
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _Adapter(HTTPAdapter):
    """Watched connections, and request bodies sent in 1 MiB blocks instead of urllib3's 16 KiB."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if int(version("urllib3").split(".")[0]) >= 2:
            kwargs["blocksize"] = BLOCK
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


# --- credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Where credentials came from (named in errors) and the basic-auth token (never shown)."""

    source: str
    basic: str | None  # base64(user:password)


def find_credentials(host: str, env: Mapping[str, str]) -> Credentials:
    """Credentials for ``host``: MODELVER_REGISTRY_USERNAME/PASSWORD, else docker config.json."""
    user = env.get("MODELVER_REGISTRY_USERNAME")
    password = env.get("MODELVER_REGISTRY_PASSWORD")
    if user and password:
        return Credentials(
            "MODELVER_REGISTRY_USERNAME/MODELVER_REGISTRY_PASSWORD", basic_token(user, password)
        )
    found = docker_config.find(host, env)
    if found is None:
        return Credentials("no credentials (anonymous)", None)
    if found.token_only:
        return Credentials(
            f"{found.source}, which holds only an identity token and ci-modelver needs a user and password",
            None,
        )
    return Credentials(found.source, basic_token(found.username, found.password))


def ca_bundle(env: Mapping[str, str]) -> str | bool:
    """The CA certificates to verify registries with: REQUESTS_CA_BUNDLE, SSL_CERT_FILE or certifi's."""
    for name in CA_VARIABLES:
        value = env.get(name, "")
        if value:
            if not Path(value).exists():
                raise InputError(
                    f"{name}={one_line(value, 200)}: no such file; point it at a CA certificate file (PEM) or unset it"
                )
            return value
    return True


# Credentials a server may quote back that are not ours to know: an Authorization header's
# value (with a separator or a scheme after the name), and long bearer tokens.
_AUTHORIZATION = re.compile(
    r"""(?ix)
    (   authorization ["']? \s* [:=] \s* [\["']*
    |   authorization \s+ (?= (?:bearer|basic|token) \s )
    |   \bbearer \s+ (?= [A-Za-z0-9._~+/=-]{16,} )
    )
    (?: (?:bearer|basic|token) \s+ )? [^\s,;"'}\]]+
    """
)
REDACTED = "<redacted>"


def redact_secrets(text: str, secrets: list[str]) -> str:
    """``text`` (a server's words) without any of ``secrets`` and without Authorization values."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)


def _secrets_of(basic: str | None) -> list[str]:
    """A basic token and what it encodes (``user:password`` and the password)."""
    if not basic:
        return []
    found = [basic]
    try:
        decoded = base64.b64decode(basic, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return found
    found.append(decoded)
    password = decoded.partition(":")[2]
    if password:
        found.append(password)
    return found


# --- answers -----------------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# A bare value is read up to the next comma or space: some registries leave URLs unquoted.
_AUTH_PARAM = re.compile(rf'\s*,?\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ``("bearer", {"realm": …, "service": …})``.

    RFC 7235 auth-params: quoted (with backslash escapes) or bare values; parsing stops where
    a second challenge begins, the first value of a repeated parameter wins, empty ones are
    left out.
    """
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while match := _AUTH_PARAM.match(rest, pos):
        key = match.group(1).lower()
        quoted = match.group(2)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group(3)
        if value:
            params.setdefault(key, value)
        pos = match.end()
    return scheme.lower(), params


def _retry_after(reply: Reply | None, now: float) -> float | None:
    if reply is None:
        return None
    value = reply.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def same_origin(url: str, base: str) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base``."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _ssl_error_in(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl`` error somewhere inside a requests/urllib3 exception, if there is one."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (getattr(current, "reason", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return None


class Reply:
    """One answer: status and headers, and a body read in bounded pieces within the deadline.

    Close it (``with``) when done; a body that ends because the deadline passed is TooSlow,
    never a short document.
    """

    def __init__(
        self, response: requests.Response, watch: _Watch, label: str, url: str, http: RegistryHTTP
    ) -> None:
        self.response = response
        self.label = label
        self.url = url
        self._watch = watch
        self._http = http
        self._error_body: bytes | None = None
        self._consumed = False

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    @property
    def reason(self) -> str:
        return str(self.response.reason or "")

    def __enter__(self) -> Reply:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def chunks(self, size: int = READ_CHUNK) -> Iterator[bytes]:
        """The body, piece by piece; RemoteError (TooSlow past the deadline) when it breaks off."""
        try:
            for chunk in self.response.iter_content(size):
                if self._watch.expired:
                    raise self._http.too_slow(self.label, self.url, self._watch)
                yield chunk
        except (requests.RequestException, OSError) as exc:
            raise self.failure(exc) from None
        if self._watch.expired:
            raise self._http.too_slow(self.label, self.url, self._watch)
        self._consumed = True

    def read(self, limit: int, what: str = "the answer") -> bytes:
        """The whole body; RemoteError once it passes ``limit`` bytes (nothing more is read)."""
        data = bytearray()
        for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                raise RemoteError(
                    f"{self.label}: {what} is over the {json_bounds.size_text(limit)} limit"
                )
        return bytes(data)

    def json(self, limit: int = MAX_DOCUMENT_BYTES, what: str = "the answer") -> Any:
        """The body as JSON, through the bounded parser (RemoteError naming what it is instead)."""
        return json_bounds.load(
            self.read(limit, what),
            source=f"{self.label}: {what}",
            error=RemoteError,
            advice=ANSWER_ADVICE,
            max_bytes=limit,
            content_type=self.headers.get("Content-Type", ""),
        )

    def failure(self, exc: BaseException) -> RemoteError:
        """What a broken-off body means: TooSlow past the deadline, else a failed transfer."""
        if self._watch.expired:
            return self._http.too_slow(self.label, self.url, self._watch)
        return RemoteError(f"{self.label}: transfer failed: {type(exc).__name__}")

    def error(self) -> tuple[str, str] | None:
        """``(code, message)`` of the first entry of an OCI error body, if it has one."""
        if self._error_body is None:
            self._error_body = self._read_some(ERROR_BODY_BYTES)
        try:
            body = json_bounds.parse(self._error_body, max_bytes=ERROR_BODY_BYTES)
        except JSONRefused:
            return None
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code", "")), str(errors[0].get("message", ""))
        return None

    def describe(self) -> str:
        """``404 MANIFEST_UNKNOWN: manifest unknown`` from an OCI error body, else the status.

        The server's words are shown without any credential we sent (some echo the
        Authorization header back) and cut to one short line.
        """
        found = self.error()
        detail = f" {found[0]}: {found[1]}".rstrip(": ") if found else ""
        reason = f" {self.reason}" if self.reason else ""
        text = f"{self.status_code}{detail or reason}"
        return one_line(self._http.clean(text), 300)

    def _read_some(self, limit: int) -> bytes:
        """Up to ``limit`` + 1 bytes of the body (to describe an error); what arrived on failure."""
        data = bytearray()
        try:
            for chunk in self.response.iter_content(READ_CHUNK):
                data += chunk
                if len(data) > limit or self._watch.expired:
                    break
        except (requests.RequestException, OSError):
            pass
        return bytes(data)

    def discard(self) -> None:
        """Close the answer, not the request (another attempt follows)."""
        self.response.close()

    def close(self) -> None:
        """Done with the request; a small unread body is read first so the connection is reused."""
        length = self.headers.get("Content-Length", "")
        if (
            self._error_body is None
            and not self._consumed
            and not self._watch.expired
            and length.isascii()
            and length.isdigit()
            and int(length) <= ERROR_BODY_BYTES
        ):
            self._error_body = self._read_some(ERROR_BODY_BYTES)
        self.response.close()
        self._watch.close()


def describe_error(reply: Reply) -> str:
    """``404 MANIFEST_UNKNOWN: manifest unknown`` (see :meth:`Reply.describe`)."""
    return reply.describe()


BodyFactory = Callable[[], Any]


class RegistryHTTP:
    """One registry host: base URL, auth state, retrying requests within their deadline."""

    def __init__(
        self,
        host: str,
        *,
        plain_http: bool,
        credentials: Credentials,
        policy: RetryPolicy,
        pool_size: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        log: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        api_host = "registry-1.docker.io" if host == "docker.io" else host
        self.base = f"{'http' if plain_http else 'https'}://{api_host}"
        self.host = host
        self.credentials = credentials
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.stats = Stats()
        self.session = session or requests.Session()
        adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "ci-modelver"
        self._verify = ca_bundle(os.environ if env is None else env)
        self._log = log
        self._tokens: dict[str, str] = {}
        self._basic_realm = False
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        ok: tuple[int, ...],
        body: BodyFactory | None = None,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (),
        what: str = "",
        size: int = 0,
    ) -> Reply:
        """Send with retries; return the answer whose status is in ``ok`` or ``allow``.

        The whole request (attempts, answer and the body the caller reads from the Reply) ends
        within ``policy.allowance(size)``; ``size`` is the body this request moves (a blob).
        ``body`` is a factory so a retried request re-opens its file from the start.
        Authentication failures (401 after a fresh token, 403) and TLS certificates that cannot
        be verified are never retried.
        """
        url = self.url(path)
        label = what or f"{method} {redact_url(url)}"
        watch = _Watch(self.policy.allowance(size), size)
        _WATCHDOG.arm(watch)
        try:
            return self._attempts(method, url, label, watch, scope, ok + allow, body, headers)
        except BaseException:
            watch.close()
            raise

    def _attempts(
        self,
        method: str,
        url: str,
        label: str,
        watch: _Watch,
        scope: str,
        accept: tuple[int, ...],
        body: BodyFactory | None,
        headers: Mapping[str, str] | None,
    ) -> Reply:
        deadline = self.clock() + self.policy.budget
        attempt = 0
        refreshed = False
        answered: str | None = None  # the last answer retried, for the message when time runs out
        while True:
            attempt += 1
            try:
                response = self._send(method, url, scope, body, headers, watch)
            except requests.RequestException as exc:
                self._raise_if_final(exc, label, url, watch, answered, attempt - 1)
                delay = self._backoff(attempt, None, exc, deadline, label, watch)
            else:
                reply = Reply(response, watch, label, url, self)
                self.stats.add(requests=1)
                try:
                    verdict = self._judge(reply, accept, label)
                    if verdict == "done":
                        return reply
                    if verdict == "auth":
                        if refreshed or not self._authenticate(reply, scope, watch):
                            raise self._denied(reply, label)
                        refreshed = True
                        attempt -= 1
                        reply.discard()
                        continue
                    answered = reply.describe()
                    delay = self._backoff(attempt, reply, None, deadline, label, watch)
                except BaseException:
                    reply.discard()
                    raise
                reply.discard()
            self.stats.add(retries=1)
            self.sleep(delay)

    def _raise_if_final(
        self,
        exc: requests.RequestException,
        label: str,
        url: str,
        watch: _Watch,
        answered: str | None = None,
        attempts: int = 0,
    ) -> None:
        """Raise unless ``exc`` is a connection failure another attempt may get past.

        ``answered``: the answer the server gave to the ``attempts`` before, which were retried.
        """
        if watch.expired:
            if answered is not None:
                # The time ran out retrying an answer the server kept giving: that answer is
                # the cause, not the slowness of the attempt it cut off.
                raise self._gave_up(label, answered, attempts) from None
            raise self.too_slow(label, url, watch) from None
        final = self._tls_failure(exc, label)
        if final is not None:
            raise final from None
        if not isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            # The exception text may quote request headers: name its type only.
            raise RemoteError(f"{label}: {type(exc).__name__}") from None

    def _tls_failure(self, exc: BaseException, label: str) -> RemoteError | None:
        """A TLS failure no retry can fix (a certificate we cannot verify, a plain-HTTP server)."""
        problem = _ssl_error_in(exc)
        if isinstance(problem, ssl.SSLCertVerificationError):
            why = one_line(
                str(
                    getattr(problem, "verify_message", "")
                    or getattr(problem, "reason", "")
                    or "unknown reason"
                ),
                200,
            )
            return UntrustedCertificate(
                f"{label}: the TLS certificate of {self.host} could not be verified ({why}); "
                "if it is signed by your own CA, set SSL_CERT_FILE or REQUESTS_CA_BUNDLE to that "
                f"CA's certificate file (PEM); for a test registry without TLS use {PLAIN_HTTP_HINT}"
            )
        if problem is not None and getattr(problem, "reason", None) == "WRONG_VERSION_NUMBER":
            return RemoteError(
                f"{label}: {self.host} does not answer in TLS; if it is a plain-HTTP registry, "
                f"use {PLAIN_HTTP_HINT}"
            )
        return None

    def too_slow(self, label: str, url: str, watch: _Watch) -> TooSlow:
        """The one message for a request that outlived its allowance."""
        allowed = f"{watch.allowance:.1f}".removesuffix(".0")
        if watch.size:
            floor = json_bounds.size_text(self.policy.min_throughput)
            extra = f" ({self.policy.budget:g}s plus {human_size(watch.size)} at {floor}/s)"
            advice = f"{self.policy.hint}, or lower MODELVER_MIN_THROUGHPUT (bytes per second) for a slow link"
        else:
            extra, advice = "", self.policy.hint
        return TooSlow(
            f"{label}: too slow: {redact_url(url)} did not answer in full within {allowed}s{extra}; "
            f"retrying may help, or {advice}"
        )

    def clean(self, text: str) -> str:
        """A server's text without the credentials we send (basic token, password, bearer tokens)."""
        with self._lock:
            tokens = list(self._tokens.values())
        return redact_secrets(text, [*tokens, *_secrets_of(self.credentials.basic)])

    def _judge(self, reply: Reply, accept: tuple[int, ...], label: str) -> str:
        """'done', 'auth' (challenge to answer), or 'retry'; raises on a final failure."""
        status = reply.status_code
        if status in accept:
            return "done"
        if status == 401:
            return "auth"
        if status == 403:
            raise self._denied(reply, label)
        if status not in RETRY_STATUS:
            raise RemoteError(f"{label}: {reply.describe()}")
        return "retry"

    def _denied(self, reply: Reply, label: str) -> RemoteError:
        return RemoteError(
            f"{label}: {reply.describe()} — access denied to {self.host} "
            f"(tried: {self.credentials.source}); set MODELVER_REGISTRY_USERNAME and "
            "MODELVER_REGISTRY_PASSWORD or log in with docker/skopeo"
        )

    def _backoff(
        self,
        attempt: int,
        reply: Reply | None,
        error: Exception | None,
        deadline: float,
        label: str,
        watch: _Watch,
    ) -> float:
        """The delay before the next attempt, or RemoteError when the budget is spent."""
        delay: float = (
            min(self.policy.cap, self.policy.base * 2.0 ** (attempt - 1)) * random.random()
        )
        hinted = _retry_after(reply, time.time())
        if hinted is not None:
            delay = max(delay, hinted)
        if self.clock() + delay > deadline or time.monotonic() + delay > watch.deadline:
            reason = reply.describe() if reply is not None else type(error).__name__
            raise self._gave_up(label, reason, attempt)
        return delay

    def _gave_up(self, label: str, reason: str, attempts: int) -> RemoteError:
        return RemoteError(
            f"{label}: {reason}; gave up after {attempts} attempt(s) in "
            f"{self.policy.budget:g}s ({self.policy.hint})"
        )

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        body: BodyFactory | None,
        headers: Mapping[str, str] | None,
        watch: _Watch,
    ) -> requests.Response:
        merged = dict(headers or {})
        auth = self._auth_header(scope)
        # Credentials go only to the registry itself: an upload Location or a Link header may
        # point at another host (or at plain http), which must never see them.
        if auth and same_origin(url, self.base):
            merged["Authorization"] = auth
        data = body() if body is not None else None
        started = time.monotonic()
        _CURRENT.watch = watch
        try:
            response = self.session.request(
                method,
                url,
                data=data,
                headers=merged,
                stream=True,
                timeout=self._timeouts(),
                allow_redirects=method in ("GET", "HEAD"),
                verify=self._verify,
            )
            self._debug(method, url, merged, response.status_code, time.monotonic() - started)
            return response
        except requests.RequestException as exc:
            self._debug(method, url, merged, None, time.monotonic() - started, type(exc).__name__)
            raise
        finally:
            _CURRENT.watch = None
            close = getattr(data, "close", None)
            if close is not None:
                close()

    def _timeouts(self) -> tuple[float, float]:
        """Per attempt: to connect, and between two bytes (the watch bounds the total)."""
        return (min(30.0, self.policy.timeout), self.policy.timeout)

    def _debug(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        status: int | None,
        elapsed: float,
        error: str = "",
    ) -> None:
        """One line per request for --debug; credentials and signed URL parts never appear."""
        if self._log is None:
            return
        auth = headers.get("Authorization", "")
        scheme = f" [Authorization: {auth.split(' ', 1)[0]} <redacted>]" if auth else ""
        outcome = str(status) if status is not None else f"failed ({error})"
        self._log(f"debug: HTTP {method} {redact_url(url)}{scheme} -> {outcome} in {elapsed:.3f}s")

    def _auth_header(self, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get(scope)
            if token:
                return f"Bearer {token}"
            if self._basic_realm and self.credentials.basic:
                return f"Basic {self.credentials.basic}"
        return None

    def _authenticate(self, reply: Reply, scope: str, watch: _Watch) -> bool:
        challenge = reply.headers.get("WWW-Authenticate", "")
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials.basic:
                return False
            with self._lock:
                self._basic_realm = True
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        return self._fetch_token(params, scope, watch)

    def _fetch_token(self, params: dict[str, str], scope: str, watch: _Watch) -> bool:
        # Ask for the scope this operation needs (pull,push before an upload), not only the
        # challenge's: GHCR and Docker Hub issue exactly what is requested. Several scopes (a
        # cross-repository mount needs two) go as repeated parameters, as the token spec says.
        query: dict[str, str | list[str]] = {
            "service": params.get("service", ""),
            "scope": (scope or params.get("scope", "")).split(" "),
        }
        headers = {"Accept": "application/json"}
        realm = params["realm"]
        label = f"token request to {redact_url(realm)}"
        if self.base.startswith("https://") and not realm.startswith("https://"):
            raise RemoteError(
                f"{self.host}: the token service {redact_url(realm)} is not https; refusing to send credentials there"
            )
        if self.credentials.basic:
            headers["Authorization"] = f"Basic {self.credentials.basic}"
        started = time.monotonic()
        _CURRENT.watch = watch
        try:
            answer = self.session.get(
                realm,
                params=query,
                headers=headers,
                timeout=self._timeouts(),
                stream=True,
                verify=self._verify,
            )
            self._debug("GET", answer.url, headers, answer.status_code, time.monotonic() - started)
        except requests.RequestException as exc:
            if watch.expired:
                raise self.too_slow(label, realm, watch) from None
            final = self._tls_failure(exc, label)
            if final is not None:
                raise final from None
            raise RemoteError(f"{label} failed: {type(exc).__name__}") from None
        finally:
            _CURRENT.watch = None
        reply = Reply(answer, watch, label, realm, self)
        try:
            if answer.status_code != 200:
                return False
            data = reply.json(MAX_DOCUMENT_BYTES, "the token answer")
        except TooSlow:
            raise
        except RemoteError:
            return False  # no usable token: the registry's 401 is reported as access denied
        finally:
            reply.discard()
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return False
        with self._lock:
            self._tokens[scope] = token
        return True


def basic_token(user: str, password: str) -> str:
    """base64 ``user:password`` (what docker config.json stores under ``auth``)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()

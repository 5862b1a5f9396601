"""HTTP to registries: timeouts on every request, bounded retries with backoff, registry auth.

Credentials come from MODELVER_REGISTRY_USERNAME/PASSWORD or docker's config.json
(``docker_config``); the Basic and bearer-token challenge flow is answered here. oras-py is
not used: its transfers retry only HTTP 500, ignore Retry-After and set no timeouts, and its
docker-config lookup is reachable only through private attributes.
"""

from __future__ import annotations

import base64
import email.utils
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ci_modelver.adapters import docker_config
from ci_modelver.core.text import redact_url
from ci_modelver.errors import RemoteError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BLOCK = 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: exponential backoff with full jitter inside a total budget."""

    budget: float = 120.0
    base: float = 0.5
    cap: float = 20.0
    timeout: float = 60.0  # per request: connect and between bytes
    hint: str = "raise --timeout to wait longer"  # how the user gives a longer budget


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


class _BigBlockAdapter(HTTPAdapter):
    """Send request bodies in 1 MiB blocks instead of urllib3's 16 KiB."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if int(version("urllib3").split(".")[0]) >= 2:
            kwargs["blocksize"] = BLOCK
        super().init_poolmanager(*args, **kwargs)


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


def _retry_after(response: requests.Response | None, now: float) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
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


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def describe_error(response: requests.Response) -> str:
    """``404 MANIFEST_UNKNOWN: manifest unknown`` from an OCI error body, else the status."""
    detail = ""
    try:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = errors[0].get("code", "")
            message = errors[0].get("message", "")
            detail = f" {code}: {message}".rstrip(": ")
    except ValueError:
        pass
    return f"{response.status_code}{detail or ' ' + response.reason if response.reason else detail}"


BodyFactory = Callable[[], Any]


class RegistryHTTP:
    """One registry host: base URL, auth state, retrying requests."""

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
        adapter = _BigBlockAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "ci-modelver"
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
        stream: bool = False,
        allow: tuple[int, ...] = (),
        what: str = "",
    ) -> requests.Response:
        """Send with retries; return a response whose status is in ``ok`` or ``allow``.

        ``body`` is a factory so a retried request re-opens its file from the start.
        Authentication failures (401 after a fresh token, 403) are never retried.
        """
        url = self.url(path)
        deadline = self.clock() + self.policy.budget
        attempt = 0
        refreshed = False
        label = what or f"{method} {url}"
        while True:
            attempt += 1
            response: requests.Response | None = None
            error: Exception | None = None
            try:
                response = self._send(method, url, scope, body, headers, stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = exc
            except requests.RequestException as exc:
                # The exception text may quote request headers: name its type only.
                raise RemoteError(f"{label}: {type(exc).__name__}") from None
            if response is not None:
                self.stats.add(requests=1)
                verdict = self._judge(response, ok + allow, label)
                if verdict == "done":
                    return response
                if verdict == "auth":
                    if not refreshed and self._authenticate(response, scope):
                        refreshed = True
                        attempt -= 1
                        continue
                    raise self._denied(response, label)
            delay = self._backoff(attempt, response, error, deadline, label)
            self.stats.add(retries=1)
            if response is not None:
                response.close()
            self.sleep(delay)

    def _judge(self, response: requests.Response, accept: tuple[int, ...], label: str) -> str:
        """'done', 'auth' (challenge to answer), or 'retry'; raises on a final failure."""
        status = response.status_code
        if status in accept:
            return "done"
        if status == 401:
            return "auth"
        if status == 403:
            raise self._denied(response, label)
        if status not in RETRY_STATUS:
            raise RemoteError(f"{label}: {describe_error(response)}")
        return "retry"

    def _denied(self, response: requests.Response, label: str) -> RemoteError:
        return RemoteError(
            f"{label}: {describe_error(response)} — access denied to {self.host} "
            f"(tried: {self.credentials.source}); set MODELVER_REGISTRY_USERNAME and "
            "MODELVER_REGISTRY_PASSWORD or log in with docker/skopeo"
        )

    def _backoff(
        self,
        attempt: int,
        response: requests.Response | None,
        error: Exception | None,
        deadline: float,
        label: str,
    ) -> float:
        """The delay before the next attempt, or RemoteError when the budget is spent."""
        delay: float = (
            min(self.policy.cap, self.policy.base * 2.0 ** (attempt - 1)) * random.random()
        )
        hinted = _retry_after(response, time.time())
        if hinted is not None:
            delay = max(delay, hinted)
        if self.clock() + delay > deadline:
            reason = describe_error(response) if response is not None else type(error).__name__
            raise RemoteError(
                f"{label}: {reason}; gave up after {attempt} attempt(s) in "
                f"{self.policy.budget:g}s ({self.policy.hint})"
            )
        return delay

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        body: BodyFactory | None,
        headers: Mapping[str, str] | None,
        stream: bool,
    ) -> requests.Response:
        merged = dict(headers or {})
        auth = self._auth_header(scope)
        # Credentials go only to the registry itself: an upload Location or a Link header may
        # point at another host (or at plain http), which must never see them.
        if auth and _same_origin(url, self.base):
            merged["Authorization"] = auth
        data = body() if body is not None else None
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                data=data,
                headers=merged,
                stream=stream,
                timeout=(min(30.0, self.policy.timeout), self.policy.timeout),
                allow_redirects=method in ("GET", "HEAD"),
            )
            self._debug(method, url, merged, response.status_code, time.monotonic() - started)
            return response
        except requests.RequestException as exc:
            self._debug(method, url, merged, None, time.monotonic() - started, type(exc).__name__)
            raise
        finally:
            close = getattr(data, "close", None)
            if close is not None and not stream:
                close()

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

    def _authenticate(self, response: requests.Response, scope: str) -> bool:
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials.basic:
                return False
            with self._lock:
                self._basic_realm = True
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        return self._fetch_token(params, scope)

    def _fetch_token(self, params: dict[str, str], scope: str) -> bool:
        query = {"service": params.get("service", "")}
        # Ask for the scope this operation needs (pull,push before an upload), not only the
        # challenge's: GHCR and Docker Hub issue exactly what is requested.
        query["scope"] = scope or params.get("scope", "")
        headers = {"Accept": "application/json"}
        realm = params["realm"]
        if self.base.startswith("https://") and not realm.startswith("https://"):
            raise RemoteError(
                f"{self.host}: the token service {redact_url(realm)} is not https; refusing to send credentials there"
            )
        if self.credentials.basic:
            headers["Authorization"] = f"Basic {self.credentials.basic}"
        started = time.monotonic()
        try:
            answer = self.session.get(
                params["realm"], params=query, headers=headers, timeout=self.policy.timeout
            )
            self._debug("GET", answer.url, headers, answer.status_code, time.monotonic() - started)
        except requests.RequestException as exc:
            raise RemoteError(
                f"token request to {params['realm']} failed: {type(exc).__name__}"
            ) from None
        if answer.status_code != 200:
            return False
        try:
            data = answer.json()
        except ValueError:
            return False
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return False
        with self._lock:
            self._tokens[scope] = token
        return True


def basic_token(user: str, password: str) -> str:
    """base64 ``user:password`` (what docker config.json stores under ``auth``)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()

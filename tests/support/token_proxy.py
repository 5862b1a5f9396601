"""A bearer-token front for the real registry, like GHCR and Docker Hub: 401 + challenge, token endpoint."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import forward, host_of, serve, shutdown

SERVICE = "test-registry"


@dataclass
class TokenProxy:
    """Checks Bearer tokens issued by its own /token endpoint (Basic user:password), then forwards."""

    upstream: str
    user: str
    password: str
    token_requests: list[dict[str, str]] = field(default_factory=list)
    granted: dict[str, set[str]] = field(default_factory=dict)  # token -> scopes
    rejected: int = 0
    expire_every: int | None = None  # invalidate all tokens after every N forwarded requests
    forwarded: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return host_of(self._server)

    def start(self) -> TokenProxy:
        self._server = serve(_Handler, self)
        return self

    def stop(self) -> None:
        shutdown(self._server)

    def expire_all(self) -> None:
        """Invalidate every token: the next request must get a 401 and refresh."""
        with self._lock:
            self.granted.clear()

    def issue(self, authorization: str | None, scope: str) -> str | None:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        with self._lock:
            self.token_requests.append(
                {"scope": scope, "authenticated": str(authorization == expected)}
            )
            if authorization != expected:
                return None
            token = secrets.token_hex(16)
            self.granted[token] = set(scope.split()) if scope else set()
            return token

    def allowed(self, authorization: str | None, needed: str) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            scopes = self.granted.get(authorization[len("Bearer ") :])
        if scopes is None:
            return False
        name, actions = needed.rsplit(":", 1)
        for scope in scopes:
            have_name, _, have = scope.rpartition(":")
            if have_name == name and set(actions.split(",")) <= set(have.split(",")):
                return True
        return False


def needed_scope(method: str, path: str) -> str | None:
    match = re.match(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)/", path)
    if not match:
        return None
    actions = "pull" if method in ("GET", "HEAD") else "pull,push"
    return f"repository:{match.group(1)}:{actions}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        proxy: TokenProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path == "/token":
            scope = " ".join(parse_qs(url.query).get("scope", []))
            token = proxy.issue(self.headers.get("Authorization"), scope)
            if token is None:
                self._reply(
                    401,
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}',
                    {"Content-Type": "application/json"},
                )
                return
            payload = json.dumps(
                {"token": token, "access_token": token, "expires_in": 300}
            ).encode()
            self._reply(200, payload, {"Content-Type": "application/json"})
            return
        needed = needed_scope(self.command, url.path) or "registry:catalog:*"
        if url.path != "/v2/" and not proxy.allowed(self.headers.get("Authorization"), needed):
            with proxy._lock:
                proxy.rejected += 1
            challenge = (
                f'Bearer realm="http://{proxy.host}/token",service="{SERVICE}",scope="{needed}"'
            )
            self._reply(
                401,
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
            )
            return
        with proxy._lock:
            proxy.forwarded += 1
            if proxy.expire_every and proxy.forwarded % proxy.expire_every == 0:
                proxy.granted.clear()
        status, headers, data = forward(
            proxy.upstream,
            self.command,
            self.path,
            self.headers.items(),
            body,
            drop=("authorization",),
        )
        self._reply(status, data, dict(headers))

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

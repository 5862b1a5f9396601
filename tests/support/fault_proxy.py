"""A fault-injecting HTTP proxy in front of the real registry, for reliability tests.

Faults: HTTP 503/429 with Retry-After, 500, a connection reset before the request reaches the
registry, a reset after the registry handled it (the client never sees the answer), and an
answer slower than the client's timeout.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.loopback import forward, host_of, serve, shutdown

FAULTS = ("503", "429", "500", "reset-before", "reset-after", "slow")
Policy = Callable[[int, str, str], str | None]  # (request number, method, path) -> fault or None


def random_policy(rate: float, seed: int, faults: tuple[str, ...] = FAULTS) -> Policy:
    """Inject one of ``faults`` into a fraction ``rate`` of requests, reproducibly."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def decide(_n: int, _method: str, _path: str) -> str | None:
        with lock:
            return rng.choice(faults) if rng.random() < rate else None

    return decide


def always(fault: str) -> Policy:
    return lambda _n, _m, _p: fault


@dataclass
class FaultProxy:
    """Forwards to ``upstream`` (host:port), injecting faults chosen by ``policy``."""

    upstream: str
    policy: Policy = field(default=lambda _n, _m, _p: None)
    slow_seconds: float = 3.0
    injected: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return host_of(self._server)

    def start(self) -> FaultProxy:
        self._server = serve(_Handler, self)
        return self

    def decide(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests += 1
            number = self.requests
        fault = self.policy(number, method, path)
        if fault:
            with self._lock:
                self.injected[fault] += 1
        return fault

    def stop(self) -> None:
        shutdown(self._server)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = proxy.decide(self.command, self.path)
        if fault == "reset-before":
            self._reset()
            return
        if fault in ("503", "429", "500"):
            self._status(int(str(fault)))
            return
        status, headers, data = forward(
            proxy.upstream, self.command, self.path, self.headers.items(), body
        )
        if fault == "reset-after":
            self._reset()
            return
        if fault == "slow":
            time.sleep(proxy.slow_seconds)
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _status(self, status: int) -> None:
        payload = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
        self.send_response(status)
        if status in (503, 429):
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _reset(self) -> None:
        # SO_LINGER 0: close with RST, like a dropped connection or a crashed load balancer.
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        self.close_connection = True
        self.connection.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

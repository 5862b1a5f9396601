"""The plumbing the test proxies share: a threaded server on 127.0.0.1 and plain forwarding."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = frozenset({"connection", "proxy-connection", "transfer-encoding", "content-length"})


def serve(handler: type[BaseHTTPRequestHandler], owner: object) -> ThreadingHTTPServer:
    """Start ``handler`` on a free loopback port; handlers reach ``owner`` as ``self.server.proxy``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.proxy = owner  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def host_of(server: ThreadingHTTPServer | None) -> str:
    assert server is not None
    return f"127.0.0.1:{server.server_address[1]}"


def shutdown(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def forward(
    upstream: str,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    drop: Iterable[str] = (),
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send one request to ``upstream`` (host:port); answer headers without hop-by-hop ones."""
    host, port = upstream.rsplit(":", 1)
    skip = {h.lower() for h in drop} | {"connection", "proxy-connection"}
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(
            method,
            path,
            body=body or None,
            headers={k: v for k, v in headers if k.lower() not in skip},
        )
        answer = conn.getresponse()
        data = answer.read()
        return (
            answer.status,
            [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP],
            data,
        )
    finally:
        conn.close()

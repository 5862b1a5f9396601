"""A tiny stand-in for GitHub's REST API that answers the comment write with crafted content.

The sticky-comment poster asks ``GET /user`` (403, as for an installation token), lists the pull
request's comments (none) and creates one. ``HostileGitHub`` answers that last request with what
a test asks for: a 201 whose ``html_url`` is any text (it becomes the ``comment-url`` output), or
an error status whose ``message`` is any text (it ends up in an error or a warning).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_COMMENTS = re.compile(r"^/repos/[^/]+/[^/]+/issues/\d+/comments(\?.*)?$")


@dataclass
class HostileGitHub:
    """Serves ``GET /user``, the comment list and the comment write; ``start()``, then ``stop()``."""

    create_status: int = 201
    html_url: str = ""
    message: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> HostileGitHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() it first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        self.requests.append((method, path))
        if method == "GET" and path == "/user":
            return 403, {"message": "Resource not accessible by integration"}
        if method == "GET" and _COMMENTS.match(path):
            return 200, []
        if method == "POST" and _COMMENTS.match(path):
            if self.create_status != 201:
                return self.create_status, {
                    "message": self.message,
                    "status": str(self.create_status),
                }
            return 201, {
                "id": 1,
                "node_id": "IC_1",
                "url": f"{self.base_url}{path.rsplit('/', 1)[0]}/comments/1",
                "html_url": self.html_url,
                "body": "",
                "user": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
                "created_at": "2024-05-01T12:00:00Z",
                "updated_at": "2024-05-01T12:00:00Z",
            }
        return 404, {"message": "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _handle(self) -> None:
        fake: HostileGitHub = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = fake.answer(self.command, self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _handle

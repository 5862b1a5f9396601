"""A TCP proxy in front of a registry that makes transfers slow or stops them dead midway.

``rate`` caps the bytes per second forwarded in each direction (a slow link: a 200 MB upload
takes long enough to be interrupted in the middle). ``stall_up`` / ``stall_down`` forward that
many bytes from the client (request bodies) or to it (answers), then stop forwarding in that
direction while keeping the connection open: the client's ``send`` or ``recv`` blocks the way it
does behind a dead peer, until the proxy is stopped. ``up`` and ``down`` count the bytes
forwarded, so a test can act once a transfer is under way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

BLOCK = 64 * 1024
LONGEST_STALL = 120.0  # every wait is bounded, the stalls too


class TransferProxy:
    """Start it, point the client at ``host``, read ``up``/``down``, stop it."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float | None = None,
        stall_up: int | None = None,
        stall_down: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.rate = rate
        self.stall = {"up": stall_up, "down": stall_down}
        self.counts = {"up": 0, "down": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    # -- lifecycle

    def start(self) -> TransferProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._listener is not None:
            self._listener.close()

    @property
    def host(self) -> str:
        assert self._listener is not None, "start() the proxy first"
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def up(self) -> int:
        with self._lock:
            return self.counts["up"]

    @property
    def down(self) -> int:
        with self._lock:
            return self.counts["down"]

    def wait_for(self, direction: str, amount: int, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until ``amount`` bytes went ``direction``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.counts[direction] >= amount:
                    return True
            time.sleep(0.02)
        return False

    # -- plumbing

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            try:
                server = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, direction: str) -> None:
        started = time.monotonic()
        sent = 0
        limit = self.stall[direction]
        try:
            while not self._stop.is_set():
                want = (
                    BLOCK if limit is None else min(BLOCK, max(0, limit - self._count(direction)))
                )
                if want == 0:
                    # The dead peer: read nothing more, send nothing more, keep the socket open.
                    self._stop.wait(LONGEST_STALL)
                    return
                data = source.recv(want)
                if not data:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    return
                if self.rate:
                    sent += len(data)
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        self._stop.wait(ahead)
                target.sendall(data)
                with self._lock:
                    self.counts[direction] += len(data)
        except OSError:
            return

    def _count(self, direction: str) -> int:
        with self._lock:
            return self.counts[direction]

"""A TCP proxy on 127.0.0.1 that counts the bytes it forwards client→upstream (for bench/).

It can call a function once the count passes a threshold (to interrupt a transfer about half
way) and can cut every connection and refuse new ones (a network that went away).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Callable

CHUNK = 256 * 1024  # the threshold fires within one chunk of where it is set


class CountingProxy:
    """Forward every connection to ``upstream``; count client→upstream bytes."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._forwarded = 0
        self._threshold: int | None = None
        self._on_threshold: Callable[[], None] | None = None
        self._refusing = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def forwarded(self) -> int:
        with self._lock:
            return self._forwarded

    def reset(self) -> None:
        """Count from zero, no threshold, accept connections again."""
        with self._lock:
            self._forwarded = 0
            self._threshold = None
            self._on_threshold = None
            self._refusing = False

    def when_forwarded(self, threshold: int, action: Callable[[], None]) -> None:
        """Call ``action`` (once, from a forwarding thread) when the count reaches ``threshold``."""
        with self._lock:
            self._threshold = threshold
            self._on_threshold = action

    def cut(self) -> None:
        """Close both sides of every open connection and refuse new ones until reset()."""
        with self._lock:
            self._refusing = True
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            done = threading.Barrier(2, action=functools.partial(self._forget, client, upstream))
            for src, dst, count in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(src, dst, count, done), daemon=True
                ).start()

    def _forget(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            self._sockets.difference_update((client, upstream))
        _close(client)
        _close(upstream)

    def _pump(
        self, src: socket.socket, dst: socket.socket, count: bool, done: threading.Barrier
    ) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    break
                dst.sendall(data)
                if count:
                    self._count(len(data))
        except OSError:
            # One direction failed: the connection is over in both.
            _close(src)
            _close(dst)
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait()

    def _count(self, amount: int) -> None:
        action = None
        with self._lock:
            self._forwarded += amount
            if self._threshold is not None and self._forwarded >= self._threshold:
                action, self._on_threshold, self._threshold = self._on_threshold, None, None
        if action is not None:
            action()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

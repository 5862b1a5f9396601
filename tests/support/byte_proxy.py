"""A TCP proxy that counts the bytes a client sends, and can act when a count is reached.

For upload tests: how many bytes a publish really sent (independently of what it reports),
and an interruption at a chosen point (a signal to the publisher, or the connection cut).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ByteProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; ``sent`` counts client → upstream bytes."""

    upstream: str
    sent: int = 0
    # Called once, from the forwarding thread, when ``sent`` first reaches ``trigger_at``;
    # returning True cuts the connection that crossed it.
    trigger_at: int | None = None
    on_trigger: Callable[[], bool] = field(default=lambda: False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None
    _fired: bool = False

    @property
    def host(self) -> str:
        assert self._listener is not None
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> ByteProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def reset(self, trigger_at: int | None = None) -> None:
        with self._lock:
            self.sent = 0
            self.trigger_at = trigger_at
            self._fired = False

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _count(self, amount: int) -> bool:
        """Add ``amount``; True when this connection must be cut now."""
        with self._lock:
            self.sent += amount
            fire = not self._fired and self.trigger_at is not None and self.sent >= self.trigger_at
            if fire:
                self._fired = True
        return self.on_trigger() if fire else False

    def _pump(self, source: socket.socket, dest: socket.socket, counted: bool) -> None:
        try:
            while block := source.recv(1024 * 1024):
                dest.sendall(block)
                if counted and self._count(len(block)):
                    break
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

"""Transfer progress for people: bars on a terminal, one line per file in CI logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from ci_modelver.core.text import human_size, one_line
from ci_modelver.edges.actions import neutralise


@dataclass
class _File:
    total: int
    done: int
    started: float


class TerminalProgress:
    """Implements the Progress protocol; thread-safe; writes only to ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        verb: str,
        tty: bool,
        in_actions: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        # File names come from manifests and registries: in Actions a name must never make a
        # progress line readable as a workflow command.
        self._clean: Callable[[str], str] = neutralise if in_actions else (lambda text: text)
        self.verb = verb
        self.tty = tty
        self.clock = clock
        self._active: dict[str, _File] = {}
        self._drawn = 0
        self._last_draw = 0.0
        self._lock = threading.Lock()

    def start(self, name: str, total: int) -> None:
        with self._lock:
            self._active[name] = _File(total, 0, self.clock())
            self._draw(force=True)

    def advance(self, name: str, amount: int) -> None:
        with self._lock:
            item = self._active.get(name)
            if item is not None:
                item.done += amount
                self._draw(force=False)

    def finish(self, name: str, *, skipped: bool) -> None:
        with self._lock:
            item = self._active.pop(name, None)
            self._erase()
            if skipped:
                self.stream.write(
                    self._clean(f"  {one_line(name)}: already present, skipped") + "\n"
                )
            else:
                total = item.total if item else 0
                elapsed = max(self.clock() - item.started, 1e-6) if item else 0.0
                rate = f", {human_size(total / elapsed)}/s" if item and elapsed > 0 else ""
                line = (
                    f"  {one_line(name)}: {self.verb} {human_size(total)} in {elapsed:.2f}s{rate}"
                )
                self.stream.write(self._clean(line) + "\n")
            self._draw(force=True)
            self.stream.flush()

    def _erase(self) -> None:
        if self.tty and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self, *, force: bool) -> None:
        if not self.tty:
            return
        now = self.clock()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self._erase()
        for name, item in self._active.items():
            frac = item.done / item.total if item.total else 1.0
            bar = "#" * int(frac * 30)
            shown = one_line(name)[-40:]
            line = f"  {shown:40} [{bar:30}] {frac * 100:5.1f}% {human_size(item.done)}/{human_size(item.total)}"
            self.stream.write(self._clean(line) + "\n")
        self._drawn = len(self._active)
        self.stream.flush()

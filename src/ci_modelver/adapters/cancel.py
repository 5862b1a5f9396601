"""Cancellation: SIGINT and SIGTERM stop every transfer in flight, and our temporary files go.

One process-wide :class:`Cancellation` (``CURRENT``): the signal handler sets it and raises
:class:`~ci_modelver.errors.Interrupted` / :class:`~ci_modelver.errors.Terminated` in the main
thread; worker threads see it at their next 1 MiB block, because every streaming helper of
``adapters/store.py`` (file reads for uploads, downloads into temporary files, hashing) calls
:func:`check`. Every temporary file or folder we create is registered here while it exists, so
whatever a stopped worker could not remove itself is removed by :meth:`Cancellation.sweep`.

Every wait is bounded: when the process has not ended ``GRACE`` seconds after the first signal
(a worker blocked in a socket that the peer stopped serving, the interpreter joining it at
exit), a watchdog removes the registered files and ends the process with the signal's exit
code; a second signal does the same at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ci_modelver.errors import Interrupted, Terminated, exit_code_of

GRACE = 2.0  # seconds from the first signal to the forced end
SETTLE = 1.5  # of which the main thread waits this long for workers to clean up themselves

Exit = Callable[[int], Any]


class Cancellation:
    """Whether (and by which signal) the run was cancelled, and our temporary paths on disk."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._error: Interrupted | None = None
        self._signals = 0
        self._temps: dict[Path, bool] = {}  # path → is a folder

    def reset(self) -> None:
        """Forget an earlier cancellation (one process may run several commands: tests)."""
        with self._lock:
            self._error = None
            self._signals = 0

    def cancel(self, signum: int) -> int:
        """Record a signal; returns how many signals arrived so far (1 for the first)."""
        with self._lock:
            self._signals += 1
            if self._error is None:
                self._error = Terminated() if signum == signal.SIGTERM else Interrupted()
            self._changed.notify_all()
            return self._signals

    @property
    def error(self) -> Interrupted | None:
        """The exception that cancelled the run, or None."""
        return self._error

    def check(self) -> None:
        """Raise the cancellation in this thread if the run was cancelled."""
        error = self._error
        if error is not None:
            raise type(error)()

    def track(self, path: Path, *, folder: bool = False) -> None:
        with self._lock:
            self._temps[path] = folder

    def untrack(self, path: Path) -> None:
        with self._lock:
            self._temps.pop(path, None)
            self._changed.notify_all()

    def pending(self) -> list[Path]:
        with self._lock:
            return list(self._temps)

    def settle(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no temporary path of ours is open; True if none is."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._temps, timeout)

    def sweep(self) -> None:
        """Remove every registered temporary path that still exists (what workers left)."""
        with self._lock:
            temps = list(self._temps.items())
        for path, folder in temps:
            with contextlib.suppress(OSError):
                if folder:
                    shutil.rmtree(path)
                else:
                    path.unlink()


CURRENT = Cancellation()


def check() -> None:
    """Raise :class:`Interrupted` or :class:`Terminated` if a signal cancelled the run."""
    CURRENT.check()


class Guard:
    """Marks the part of a run during which a first signal raises (``with guard.live():``).

    Outside it (reporting, the interpreter's exit) a signal never raises: there is nothing left
    to cancel, and an exception there would escape the error boundary.
    """

    def __init__(self) -> None:
        self.is_live = False

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        self.is_live = True
        try:
            yield
        finally:
            self.is_live = False


@contextlib.contextmanager
def on_signals(
    *,
    hard_exit: bool,
    on_forced: Callable[[BaseException], None],
    cancellation: Cancellation = CURRENT,
    grace: float = GRACE,
    settle: float = SETTLE,
    exit: Exit = os._exit,
) -> Iterator[Guard]:
    """Handle SIGINT and SIGTERM inside the block (main thread only).

    A first signal during ``guard.live()`` cancels ``cancellation`` and raises there; when the
    block ends, it waits for the workers' own cleanup (until ``settle`` s after the signal) and
    sweeps what is left. With ``hard_exit`` (the process entry point, never a library call) a
    watchdog ends the process ``grace`` s after the first signal, a second signal (or any signal
    once the run is over) ends it at once; ``on_forced`` is told first if the run was still live.
    Without ``hard_exit`` the previous handlers come back when the block ends.
    """
    guard = Guard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    cancellation.reset()
    started: list[float] = []

    def force() -> None:
        error = cancellation.error or Interrupted()
        cancellation.sweep()
        if guard.is_live:  # the boundary has not reported it: say why the process ends
            with contextlib.suppress(BaseException):
                on_forced(error)
        exit(exit_code_of(error))

    def handler(signum: int, _frame: FrameType | None) -> None:
        count = cancellation.cancel(signum)
        if count == 1:
            started.append(time.monotonic())
        if hard_exit and (count > 1 or not guard.is_live):
            force()
            return
        if hard_exit:
            watchdog = threading.Timer(grace, force)
            watchdog.daemon = True
            watchdog.start()
        error = cancellation.error
        if guard.is_live and error is not None:
            raise type(error)()

    def after_the_run(signum: int, _frame: FrameType | None) -> None:
        cancellation.cancel(signum)
        force()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        try:
            if cancellation.error is not None:
                left = settle - (time.monotonic() - started[0]) if started else 0.0
                cancellation.settle(max(0.0, left))
                cancellation.sweep()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, after_the_run if hard_exit else old)

"""Cancellation: the flag every streaming helper checks, our temp files, the signal handling."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_modelver.adapters import cancel, store
from ci_modelver.adapters.cancel import Cancellation, on_signals
from ci_modelver.adapters.store import (
    TEMP_PREFIX,
    BlobSource,
    NoProgress,
    file_mode,
    hash_file,
    iter_file,
    owned_temp_dir,
    sweep_stale,
    umask,
    write_verified,
)
from ci_modelver.commands import validate
from ci_modelver.core.modelpack import Descriptor, sha256_digest
from ci_modelver.errors import InputError, Interrupted, Terminated, exit_code_of
from tests.conftest import run_cli

STALE = TEMP_PREFIX + "0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    cancel.CURRENT.reset()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    cancel.CURRENT.reset()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _descriptor(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", sha256_digest(data), len(data))


def _ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


# --- the exceptions and their exit codes -------------------------------------------------------


def test_sigint_is_130_and_sigterm_is_143() -> None:
    assert exit_code_of(Interrupted()) == 130
    assert exit_code_of(Terminated()) == 143
    assert exit_code_of(KeyboardInterrupt()) == 130
    assert "SIGTERM" in str(Terminated()) and "SIGINT" in str(Interrupted())
    assert not isinstance(Terminated(), Exception)  # no 'except Exception' swallows it


def test_the_boundary_reports_a_signal_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def stopped(*_args: object) -> None:
        raise Terminated()

    monkeypatch.setattr(validate, "run", stopped)
    result = run_cli("validate")
    assert result.code == 143
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert errors == [result.err.strip()]
    assert "interrupted by SIGTERM" in errors[0] and "Traceback" not in result.err


def test_the_first_signal_decides_which_error_everyone_raises() -> None:
    c = Cancellation()
    c.check()
    assert c.cancel(signal.SIGTERM) == 1
    assert c.cancel(signal.SIGINT) == 2
    with pytest.raises(Terminated):
        c.check()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            c.check()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], Terminated)


# --- the streaming helpers check it ------------------------------------------------------------


def test_write_verified_stops_at_the_next_chunk_and_leaves_nothing(tmp_path: Path) -> None:
    data = b"x" * (3 * 1024 * 1024)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(3):
            sent.append(i)
            if i == 1:
                cancel.CURRENT.cancel(signal.SIGTERM)
            yield data[i * 1024 * 1024 : (i + 1) * 1024 * 1024]

    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(Terminated):
        write_verified(chunks(), dest, _descriptor(data), NoProgress(), "w", "test")
    assert sent == [0, 1]  # the third chunk was never asked for
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []
    assert cancel.CURRENT.pending() == []


def test_write_verified_refuses_to_start_once_cancelled(tmp_path: Path) -> None:
    cancel.CURRENT.cancel(signal.SIGINT)
    with pytest.raises(Interrupted):
        write_verified([b"a"], tmp_path / "a", _descriptor(b"a"), NoProgress(), "a", "test")
    assert list(tmp_path.iterdir()) == []


def test_uploads_hashing_and_copies_stop_once_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"w" * (2 * 1024 * 1024 + 5))
    source = BlobSource(_descriptor(path.read_bytes()), "weights.bin", path=path)
    handle = source.open()
    first = handle.read(1024 * 1024)
    assert len(first) == 1024 * 1024
    blocks = iter_file(path)
    next(blocks)
    cancel.CURRENT.cancel(signal.SIGTERM)
    with pytest.raises(Terminated):
        handle.read(1024 * 1024)
    handle.close()
    with pytest.raises(Terminated):
        next(blocks)
    with pytest.raises(Terminated):
        hash_file(path)
    with pytest.raises(Terminated):
        source.open()


def test_temp_file_errors_name_the_destination(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    with pytest.raises(InputError) as caught:
        write_verified([b"abc"], dest, _descriptor(b"abc"), NoProgress(), "model", "test")
    message = str(caught.value)
    assert message.startswith(f"{dest}: is a folder")
    assert TEMP_PREFIX not in message and ".partial" not in message
    assert list(dest.iterdir()) == [] and _ours(tmp_path) == []


# --- modes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "plain", "executable"),
    [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750), (0o077, 0o600, 0o700)],
)
def test_written_files_get_0644_or_0755_under_the_umask(
    tmp_path: Path, mask: int, plain: int, executable: int
) -> None:
    old = os.umask(mask)
    try:
        assert umask() == mask
        assert file_mode() == plain and file_mode(executable=True) == executable
        dest = tmp_path / "f"
        write_verified([b"abc"], dest, _descriptor(b"abc"), NoProgress(), "f", "test")
        assert dest.stat().st_mode & 0o7777 == plain
        tool = tmp_path / "tool.sh"
        write_verified(
            [b"#!/bin/sh\n"],
            tool,
            _descriptor(b"#!/bin/sh\n"),
            NoProgress(),
            "tool.sh",
            "test",
            mode=file_mode(executable=True),
        )
        assert tool.stat().st_mode & 0o7777 == executable
    finally:
        os.umask(old)


# --- stale temp files: only ours, only unlocked ------------------------------------------------


def test_sweep_removes_only_our_stale_entries(tmp_path: Path) -> None:
    (tmp_path / STALE).write_bytes(b"half a download")
    stale_dir = tmp_path / (TEMP_PREFIX + "fedcba9876543210")
    stale_dir.mkdir()
    (stale_dir / "layer.tar").write_bytes(b"tar")
    held = tmp_path / (TEMP_PREFIX + "00000000000000aa")
    held.write_bytes(b"another pull is writing this")
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    link = tmp_path / (TEMP_PREFIX + "00000000000000bb")
    link.symlink_to(outside)
    keep = [".partial-abcdefgh", TEMP_PREFIX + "not-hex-at-all!!", TEMP_PREFIX + "0123", "x.bin"]
    for name in keep:
        (tmp_path / name).write_bytes(b"user file")
    try:
        assert sweep_stale(tmp_path) == 2
    finally:
        os.close(fd)
    names = {p.name for p in tmp_path.iterdir()}
    assert STALE not in names and stale_dir.name not in names
    assert {held.name, link.name, outside.name, *keep} <= names
    assert outside.read_bytes() == b"keep"
    assert sweep_stale(tmp_path) == 1  # the lock is gone: now it is stale
    assert sweep_stale(tmp_path / "missing") == 0


def test_an_owned_temp_folder_is_never_swept_while_in_use(tmp_path: Path) -> None:
    with owned_temp_dir(tmp_path) as folder:
        (folder / "layer.tar").write_bytes(b"tar")
        assert folder.name.startswith(TEMP_PREFIX)
        assert cancel.CURRENT.pending() == [folder]
        assert sweep_stale(tmp_path) == 0
        assert folder.is_dir()
    assert not folder.exists()
    assert cancel.CURRENT.pending() == []


def test_sweep_removes_what_a_stopped_worker_left(tmp_path: Path) -> None:
    c = Cancellation()
    left = tmp_path / STALE
    left.write_bytes(b"x")
    folder = tmp_path / (TEMP_PREFIX + "1111111111111111")
    (folder / "sub").mkdir(parents=True)
    c.track(left)
    c.track(folder, folder=True)
    assert not c.settle(0.05)
    c.sweep()
    assert not left.exists() and not folder.exists()
    c.untrack(left)
    c.untrack(folder)
    assert c.settle(0.0)


# --- the signal handling -----------------------------------------------------------------------


def _interrupted_by(signum: int, cancellation: Cancellation) -> BaseException:
    caught: list[BaseException] = []
    with on_signals(hard_exit=False, on_forced=lambda _e: None, cancellation=cancellation) as guard:
        try:
            with guard.live():
                os.kill(os.getpid(), signum)
                time.sleep(10)  # interrupted by the handler's exception
        except BaseException as exc:
            caught.append(exc)
    assert caught
    return caught[0]


@pytest.mark.parametrize(
    ("signum", "kind", "code"),
    [(signal.SIGINT, Interrupted, 130), (signal.SIGTERM, Terminated, 143)],
)
def test_a_signal_raises_in_the_run_and_the_handlers_come_back(
    signum: int, kind: type[BaseException], code: int
) -> None:
    before = signal.getsignal(signum)
    c = Cancellation()
    exc = _interrupted_by(signum, c)
    assert type(exc) is kind and exit_code_of(exc) == code
    assert signal.getsignal(signum) is before
    assert isinstance(c.error, kind)


def test_outside_the_live_part_a_signal_only_cancels() -> None:
    c = Cancellation()
    with on_signals(hard_exit=False, on_forced=lambda _e: None, cancellation=c):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here and raises nothing
    assert isinstance(c.error, Terminated)


def test_the_watchdog_ends_a_stuck_run_and_removes_the_temp_files(tmp_path: Path) -> None:
    c = Cancellation()
    left = tmp_path / STALE
    left.write_bytes(b"a worker blocked in a socket holds this")
    c.track(left)
    ended: list[int] = []
    told: list[BaseException] = []
    fired = threading.Event()

    def fake_exit(code: int) -> None:
        ended.append(code)
        fired.set()

    with (
        on_signals(
            hard_exit=True,
            on_forced=told.append,
            cancellation=c,
            grace=0.2,
            settle=0.1,
            exit=fake_exit,
        ) as guard,
        guard.live(),
    ):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except Terminated:
            pass
        assert fired.wait(10), "the watchdog never ended the run"
    assert ended == [143]
    assert len(told) == 1 and isinstance(told[0], Terminated)
    assert not left.exists()


def test_a_second_signal_ends_the_run_at_once() -> None:
    c = Cancellation()
    ended: list[int] = []
    with (
        on_signals(
            hard_exit=True, on_forced=lambda _e: None, cancellation=c, grace=60, exit=ended.append
        ) as guard,
        guard.live(),
    ):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)
        except Interrupted:
            pass
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
    assert ended == [130]


def test_without_flock_writes_work_and_nothing_is_judged_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_flock(_fd: int, _op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(store.fcntl, "flock", no_flock)
    (tmp_path / STALE).write_bytes(b"maybe another host's download")
    dest = tmp_path / "f"
    write_verified([b"abc"], dest, _descriptor(b"abc"), NoProgress(), "f", "test")
    assert dest.read_bytes() == b"abc"
    assert sweep_stale(tmp_path) == 0
    assert (tmp_path / STALE).exists()

"""SIGINT and SIGTERM in the middle of real transfers: real processes, the real registry.

``ci-modelver publish`` / ``pull`` of a 200 MB file runs as its own process against the Debian
docker-registry, behind a proxy that makes the link slow (so the signal lands mid-transfer) or
stops it dead (so the transfer is blocked in a socket when the signal lands). Each test checks
the exit code (130 for SIGINT, 143 for SIGTERM), that the process ended within a bounded wait
far below what the old behaviour needed (waiting for the upload, or the 60 s socket timeout),
one error line and no traceback, no temp file left, and no version tag created.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_modelver.adapters.store import TEMP_PREFIX
from tests.helpers import base_env, make_model
from tests.integration.conftest import private_registry
from tests.support.hostile_transfers import TransferProxy
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """This module's own registry, so its gigabytes are gone when the module ends."""
    yield from private_registry(tmp_path_factory, "signals-registry")


SIZE = 200 * 1024 * 1024
MIB = 1024 * 1024
SLOW = 8 * MIB  # bytes/s: the 200 MB take 25 s, so a signal after 16 MB lands mid-transfer
ENDED_WITHIN = 12.0  # seconds from the signal: generous; the old behaviour needed 20 s or more
STARTED_WITHIN = 90.0


def _env(home: Path) -> dict[str, str]:
    env = base_env(home, MODELVER_NO_CACHE="1")
    if "PYTHONPATH" in os.environ:  # running against a source tree
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _big_model(folder: Path, version: str, marker: bytes) -> Path:
    """A model whose weights are 200 MB (sparse on disk, unique by ``marker``)."""
    manifest = make_model(folder, version=version, weights=marker)
    with (folder / "model" / "weights.bin").open("r+b") as handle:
        handle.truncate(SIZE)
    return manifest


def _cli(*args: str) -> list[str]:
    """The command line of the CLI as its own process (``python -m ci_modelver``)."""
    return [sys.executable, "-m", "ci_modelver", *args]


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _cli(*args),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signal_when(
    process: subprocess.Popen[str], proxy: TransferProxy, direction: str, amount: int, signum: int
) -> tuple[int, str, float]:
    """Send ``signum`` once ``amount`` bytes went ``direction``; exit code, stderr, seconds."""
    try:
        assert proxy.wait_for(direction, amount, STARTED_WITHIN), "the transfer never started"
        assert process.poll() is None, "the transfer ended before the signal"
        sent = time.monotonic()
        process.send_signal(signum)
        try:
            _out, err = process.communicate(timeout=ENDED_WITHIN)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=30)
            pytest.fail(f"still running {ENDED_WITHIN:g}s after {signal.Signals(signum).name}")
        return process.returncode, err, time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def _one_error(err: str, fragment: str) -> None:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert fragment in errors[0], err


def _tags(registry: Registry, repo: str) -> list[str]:
    try:
        with urllib.request.urlopen(
            f"http://{registry.host}/v2/{repo}/tags/list", timeout=10
        ) as answer:
            return list(json.loads(answer.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def _leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if ".partial" in p.name]


@pytest.fixture()
def proxy_for(registry: Registry) -> Iterator[list[TransferProxy]]:
    started: list[TransferProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="module")
def published(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``sig/pull:1.0.0`` (200 MB of weights) in the real registry."""
    folder = tmp_path_factory.mktemp("published")
    manifest = _big_model(folder / "m", "1.0.0", b"pulled-by-the-signal-tests")
    result = subprocess.run(
        _cli("publish", str(manifest), "--repository", registry.repo("sig/pull")),
        env=_env(folder / "home"),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return "sig/pull"


# --- publish ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_a_slow_upload_at_once_and_tags_nothing(
    registry: Registry,
    proxy_for: list[TransferProxy],
    tmp_path: Path,
    signum: int,
    code: int,
) -> None:
    proxy = TransferProxy(registry.host, rate=SLOW).start()
    proxy_for.append(proxy)
    repo = f"sig/publish-{signal.Signals(signum).name.lower()}"
    manifest = _big_model(tmp_path / "m", "1.0.0", repo.encode())
    process = _start(
        ["publish", str(manifest), "--repository", f"{proxy.host}/{repo}", "--timeout", "60"],
        _env(tmp_path / "home"),
        tmp_path,
    )
    returncode, err, seconds = _signal_when(process, proxy, "up", 16 * MIB, signum)
    print(f"publish: {signal.Signals(signum).name} -> exit {returncode} in {seconds:.2f}s")
    assert returncode == code, err
    _one_error(err, f"interrupted by {signal.Signals(signum).name}")
    assert proxy.up < SIZE  # the upload did not run to its end first
    assert "1.0.0" not in _tags(registry, repo)
    assert _leftovers(tmp_path) == []


def test_sigterm_ends_an_upload_blocked_in_a_dead_socket(
    registry: Registry, proxy_for: list[TransferProxy], tmp_path: Path
) -> None:
    proxy = TransferProxy(registry.host, stall_up=12 * MIB).start()
    proxy_for.append(proxy)
    repo = "sig/publish-stalled"
    manifest = _big_model(tmp_path / "m", "1.0.0", repo.encode())
    process = _start(
        ["publish", str(manifest), "--repository", f"{proxy.host}/{repo}", "--timeout", "60"],
        _env(tmp_path / "home"),
        tmp_path,
    )
    returncode, err, seconds = _signal_when(process, proxy, "up", 12 * MIB, signal.SIGTERM)
    print(f"stalled publish: SIGTERM -> exit {returncode} in {seconds:.2f}s")
    assert returncode == 143, err
    _one_error(err, "interrupted by SIGTERM")
    assert "1.0.0" not in _tags(registry, repo)


# --- pull ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_cancels_a_slow_download_and_leaves_no_temp_file(
    registry: Registry,
    published: str,
    proxy_for: list[TransferProxy],
    tmp_path: Path,
    signum: int,
    code: int,
) -> None:
    proxy = TransferProxy(registry.host, rate=SLOW).start()
    proxy_for.append(proxy)
    out = tmp_path / "out"
    process = _start(
        ["pull", f"{proxy.host}/{published}:1.0.0", "-o", str(out), "--timeout", "60"],
        _env(tmp_path / "home"),
        tmp_path,
    )
    returncode, err, seconds = _signal_when(process, proxy, "down", 16 * MIB, signum)
    print(f"pull: {signal.Signals(signum).name} -> exit {returncode} in {seconds:.2f}s")
    assert returncode == code, err
    _one_error(err, f"interrupted by {signal.Signals(signum).name}")
    assert _leftovers(tmp_path) == []
    assert not (out / "model" / "weights.bin").exists()


def test_sigint_ends_a_download_blocked_in_a_dead_socket(
    registry: Registry, published: str, proxy_for: list[TransferProxy], tmp_path: Path
) -> None:
    proxy = TransferProxy(registry.host, stall_down=12 * MIB).start()
    proxy_for.append(proxy)
    out = tmp_path / "out"
    process = _start(
        ["pull", f"{proxy.host}/{published}:1.0.0", "-o", str(out), "--timeout", "60"],
        _env(tmp_path / "home"),
        tmp_path,
    )
    assert proxy.wait_for("down", 12 * MIB, STARTED_WITHIN)
    time.sleep(0.5)  # let the client drain what was forwarded and block in recv
    returncode, err, seconds = _signal_when(process, proxy, "down", 12 * MIB, signal.SIGINT)
    print(f"stalled pull: SIGINT -> exit {returncode} in {seconds:.2f}s")
    assert returncode == 130, err
    _one_error(err, "interrupted by SIGINT")
    assert _leftovers(tmp_path) == []


def test_the_next_pull_removes_what_a_killed_pull_left(
    registry: Registry, published: str, proxy_for: list[TransferProxy], tmp_path: Path
) -> None:
    proxy = TransferProxy(registry.host, stall_down=12 * MIB).start()
    proxy_for.append(proxy)
    out = tmp_path / "out"
    env = _env(tmp_path / "home")
    process = _start(
        ["pull", f"{proxy.host}/{published}:1.0.0", "-o", str(out), "--timeout", "60"],
        env,
        tmp_path,
    )
    try:
        assert proxy.wait_for("down", 12 * MIB, STARTED_WITHIN)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [
            p for p in _leftovers(out) if p.stat().st_size > 0
        ]:
            time.sleep(0.05)
    finally:
        process.kill()  # SIGKILL: no handler runs, the temp file stays
        process.communicate(timeout=30)
    left = _leftovers(out)
    assert left and all(p.name.startswith(TEMP_PREFIX) for p in left)
    again = subprocess.run(
        _cli("pull", registry.repo(f"{published}:1.0.0"), "-o", str(out), "--timeout", "60"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert _leftovers(out) == []
    assert (out / "model" / "weights.bin").stat().st_size == SIZE

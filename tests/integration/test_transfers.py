"""Transfers at model scale against the real registry: hashing while sending, the rule that
picks it, resumable uploads after a SIGTERM or a cut connection, and limits before upload.

Bytes are counted by a TCP proxy between the publisher and the registry, not taken from what
the publisher reports. Every published digest is checked against hashlib over the file and
read back by skopeo or a verified pull.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import base_env
from tests.integration.conftest import private_registry, require_free_disk
from tests.support.byte_proxy import ByteProxy
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture()
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry for each test, so its gigabytes are gone when the test ends."""
    yield from private_registry(tmp_path_factory, "transfers-registry")


MIB = 1024 * 1024
BIG = 2048 * MIB  # the case: interrupted at about half of a 2 GiB file


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = base_env(home, **extra)
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ci_modelver", *args]


def _write(path: Path, size: int, seed: int) -> str:
    """A file of ``size`` pseudo-random bytes (cheap to make, not compressible); its digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(str(seed).encode()).digest() * (MIB // 32)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(size // MIB):
            piece = i.to_bytes(8, "big") + block[8:]
            out.write(piece)
            digest.update(piece)
    return "sha256:" + digest.hexdigest()


def _model(
    folder: Path, name: str, version: str, files: dict[str, int], seed: int
) -> dict[str, str]:
    digests = {
        rel: _write(folder / rel, size, seed + i) for i, (rel, size) in enumerate(files.items())
    }
    lines = [f"name: {name}", f"version: {version}", "files:"]
    lines += [f"  - {{path: {rel}, type: weight}}" for rel in files]
    (folder / "modelver.yaml").write_text("\n".join(lines) + "\n")
    return digests


def _set_version(folder: Path, version: str) -> None:
    text = (folder / "modelver.yaml").read_text().splitlines()
    text[1] = f"version: {version}"
    (folder / "modelver.yaml").write_text("\n".join(text) + "\n")


def _publish(folder: Path, repo: str, env: dict[str, str], *extra: str) -> dict[str, object]:
    done = subprocess.run(
        _cli("publish", "--repository", repo, "--format", "json", *extra),
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _layer_digests(skopeo: str, ref: str) -> dict[str, str]:
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    layers = json.loads(raw)["layers"]
    return {layer["annotations"]["org.cncf.model.filepath"]: layer["digest"] for layer in layers}


@pytest.fixture()
def proxy(registry: Registry) -> ByteProxy:
    started = ByteProxy(registry.host).start()
    yield started  # type: ignore[misc]
    started.stop()


def test_a_new_large_file_is_hashed_while_sent_and_an_unchanged_one_is_hashed_first(
    registry: Registry, proxy: ByteProxy, skopeo: str, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    digests = _model(folder, "streamy", "1.0.0", {"a.bin": 96 * MIB, "small.bin": 2 * MIB}, 1)
    repo = f"{proxy.host}/t/streamy"
    env = _env(tmp_path / "home", MODELVER_NO_CACHE="1")  # cold cache: nothing known
    first = _publish(folder, repo, env)
    assert first["uploads"]["streamed"] == 1  # type: ignore[index]  # a.bin; small.bin is small
    assert proxy.sent >= 98 * MIB
    assert _layer_digests(skopeo, f"{registry.host}/t/streamy:1.0.0") == digests
    # Same files under a new version, cold cache again: the newest version has a.bin with the
    # same size, so it is hashed first and the HEAD finds it; only config and manifest move.
    _set_version(folder, "1.0.1")
    proxy.reset()
    second = _publish(folder, repo, env)
    assert second["uploads"]["streamed"] == 0  # type: ignore[index]
    assert second["blobs"]["bytesUploaded"] < 4096  # type: ignore[index]
    assert proxy.sent < 64 * 1024
    # A changed file of another size is new: streamed again, and its digest is right.
    digests["a.bin"] = _write(folder / "a.bin", 80 * MIB, 7)
    _set_version(folder, "1.1.0")
    third = _publish(folder, repo, env)
    assert third["uploads"]["streamed"] == 1  # type: ignore[index]
    assert _layer_digests(skopeo, f"{registry.host}/t/streamy:1.1.0") == digests


def test_republishing_the_same_version_hashes_first_and_sends_nothing(
    registry: Registry, proxy: ByteProxy, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    _model(folder, "again", "1.0.0", {"w.bin": 64 * MIB}, 2)
    repo = f"{proxy.host}/t/again"
    env = _env(tmp_path / "home", MODELVER_NO_CACHE="1")
    _publish(folder, repo, env)
    proxy.reset()
    again = _publish(folder, repo, env)
    assert again["status"] == "unchanged"
    assert again["uploads"]["streamed"] == 0  # type: ignore[index]
    assert proxy.sent < 16 * 1024  # a few HEAD/GET requests, no blob


def test_a_streamed_layout_publish_gives_the_registry_digest(
    registry: Registry, skopeo: str, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    digests = _model(folder, "both", "1.0.0", {"w.bin": 48 * MIB}, 3)
    env = _env(tmp_path / "home", MODELVER_NO_CACHE="1")
    layout = _publish(folder, f"oci:{tmp_path / 'layout'}", env)
    remote = _publish(folder, registry.repo("t/both"), env)
    assert layout["uploads"]["streamed"] == 1  # type: ignore[index]
    assert layout["digest"] == remote["digest"]
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{tmp_path / 'layout'}:1.0.0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert {x["digest"] for x in json.loads(raw)["layers"]} == set(digests.values())
    blob = tmp_path / "layout" / "blobs" / "sha256" / digests["w.bin"].split(":")[1]
    assert blob.stat().st_size == 48 * MIB


def _interrupted_publish(
    folder: Path, repo: str, env: dict[str, str], proxy: ByteProxy, size: int = BIG
) -> int:
    """Publish, sending SIGTERM once the proxy has forwarded half of the file; exit code."""
    process = subprocess.Popen(
        _cli("publish", "--repository", repo),
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def terminate() -> bool:
        process.send_signal(signal.SIGTERM)
        return False

    proxy.reset(trigger_at=size // 2)
    proxy.on_trigger = terminate
    try:
        _out, err = process.communicate(timeout=600)
    finally:
        proxy.on_trigger = lambda: False
    assert "Traceback" not in err
    return process.returncode


def test_an_upload_stopped_by_sigterm_resumes_on_rerun(
    registry: Registry, proxy: ByteProxy, tmp_path: Path
) -> None:
    # The source, the registry's copy and the half of the interrupted session it keeps, then
    # the pulled copy once the source is gone: 5.1 GiB at the peak, measured.
    require_free_disk(tmp_path, 2 * BIG + BIG // 2 + (512 << 20))
    folder = tmp_path / "m"
    digests = _model(folder, "resume", "1.0.0", {"w.bin": BIG}, 4)
    repo = f"{proxy.host}/t/resume"
    env = _env(tmp_path / "home")  # the journal lives in the cache folder under HOME
    assert _interrupted_publish(folder, repo, env, proxy) == 143
    journal = list((tmp_path / "home" / ".cache" / "ci-modelver" / "uploads").glob("*.json"))
    assert len(journal) == 1
    assert oct(journal[0].stat().st_mode & 0o777) == "0o600"
    proxy.reset()
    rerun = _publish(folder, repo, env)
    resumed = rerun["uploads"]["resumed"]  # type: ignore[index]
    assert [r["file"] for r in resumed] == ["w.bin"]
    assert resumed[0]["from"] >= BIG // 3
    assert proxy.sent <= 0.6 * BIG, f"resent {proxy.sent / BIG:.0%} of the file"
    assert rerun["digest"]
    assert not list(journal[0].parent.glob("*.json"))  # committed: the journal entry is gone
    (folder / "w.bin").unlink()  # not needed for the pull: 2 GiB less disk
    out = tmp_path / "out"
    subprocess.run(
        _cli("pull", f"{registry.repo('t/resume')}:1.0.0", "-o", str(out)),
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    got = hashlib.sha256()
    with (out / "w.bin").open("rb") as handle:
        while block := handle.read(8 * MIB):
            got.update(block)
    assert "sha256:" + got.hexdigest() == digests["w.bin"]


def test_a_file_changed_after_the_interruption_is_sent_again_from_the_start(
    registry: Registry, proxy: ByteProxy, tmp_path: Path
) -> None:
    # Half the resume test's file (which has the 2 GiB case), so half its disk: the file, the
    # half session the registry keeps, the changed file sent in full. Still 512 MiB left to
    # send when the signal lands, so the publish cannot finish first.
    size = BIG // 2
    folder = tmp_path / "m"
    _model(folder, "changed", "1.0.0", {"w.bin": size}, 5)
    repo = f"{proxy.host}/t/changed"
    env = _env(tmp_path / "home")
    assert _interrupted_publish(folder, repo, env, proxy, size) == 143
    time.sleep(0.01)
    digest = _write(folder / "w.bin", size, 6)  # same size, other bytes, new mtime
    proxy.reset()
    rerun = _publish(folder, repo, env)
    restarted = rerun["uploads"]["restarted"]  # type: ignore[index]
    assert [r["file"] for r in restarted] == ["w.bin"]
    assert "changed" in restarted[0]["reason"]
    assert proxy.sent >= size
    assert _layer_digests_of(registry, "t/changed") == {"w.bin": digest}


def _layer_digests_of(registry: Registry, repo: str) -> dict[str, str]:
    import urllib.request

    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/1.0.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        layers = json.loads(answer.read())["layers"]
    return {x["annotations"]["org.cncf.model.filepath"]: x["digest"] for x in layers}


def test_a_connection_cut_inside_a_chunk_restarts_cleanly_and_says_so(
    registry: Registry, proxy: ByteProxy, tmp_path: Path
) -> None:
    # docker-registry 2.8 keeps the part of a chunk it received, then refuses the session
    # (its size no longer matches the offset in our session URL): a new session starts.
    folder = tmp_path / "m"
    digests = _model(folder, "cut", "1.0.0", {"w.bin": 256 * MIB}, 8)
    repo = f"{proxy.host}/t/cut"
    env = _env(tmp_path / "home")
    proxy.reset(trigger_at=100 * MIB)
    proxy.on_trigger = lambda: True  # cut the connection that crossed 100 MiB
    try:
        result = _publish(folder, repo, env)
    finally:
        proxy.on_trigger = lambda: False
    restarted = result["uploads"]["restarted"]  # type: ignore[index]
    assert [r["file"] for r in restarted] == ["w.bin"]
    assert restarted[0]["reason"]
    assert _layer_digests_of(registry, "t/cut") == digests


def test_a_layer_over_ghcr_limit_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    with (folder / "huge.safetensors").open("wb") as out:
        out.truncate(10 * 1000**3 + 1)  # sparse: 10 GB + 1 byte, no disk used
    (folder / "modelver.yaml").write_text(
        "name: huge\nversion: 1.0.0\nfiles:\n  - {path: huge.safetensors, type: weight}\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        _cli("publish", "--repository", "ghcr.io/acme/huge"),
        cwd=folder,
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    assert "huge.safetensors" in lines[0]
    assert "10 GB" in lines[0] and "shards" in lines[0]
    assert "docs.github.com" in lines[0]
    assert time.monotonic() - started < 30  # not hashed: 10 GB would take far longer


def test_a_journal_pointing_at_another_host_is_not_followed(
    registry: Registry, proxy: ByteProxy, tmp_path: Path
) -> None:
    size = 256 * MIB
    folder = tmp_path / "m"
    digests = _model(folder, "elsewhere", "1.0.0", {"w.bin": size}, 9)
    repo = f"{proxy.host}/t/elsewhere"
    env = _env(tmp_path / "home", MODELVER_CHUNK_SIZE=str(16 * MIB))
    assert _interrupted_publish(folder, repo, env, proxy, size) == 143
    [journal] = (tmp_path / "home" / ".cache" / "ci-modelver" / "uploads").glob("*.json")
    entry = json.loads(journal.read_text())
    entry["location"] = entry["location"].replace(proxy.host, "127.0.0.1:9")  # not the registry
    journal.write_text(json.dumps(entry))
    proxy.reset()
    rerun = _publish(folder, repo, env)
    restarted = rerun["uploads"]["restarted"]  # type: ignore[index]
    assert [r["file"] for r in restarted] == ["w.bin"]
    assert "not on this registry" in restarted[0]["reason"]
    assert proxy.sent >= size
    assert _layer_digests_of(registry, "t/elsewhere") == digests

"""Constant memory: publishing (streamed and hashed first) and pulling a 2 GiB file stays under
100 MiB of RSS, whatever the file's size."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import base_env, make_model
from tests.integration.conftest import private_registry, require_free_disk
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture()
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry for each test, so its gigabytes are gone when the test ends."""
    yield from private_registry(tmp_path_factory, "memory-registry")


SIZE = 2048 * 1024 * 1024
LIMIT_KIB = 100 * 1024

# VmHWM restarts at exec; ru_maxrss would include the pytest process this child was forked from.
_RUNNER = """
import re, sys
from ci_modelver.cli import main
code = main(sys.argv[1:])
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"vmhwm_kib={hwm}", file=sys.stderr)
sys.exit(code)
"""


def _run(args: list[str], env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("vmhwm_kib=")][-1]
    return int(line.split("=", 1)[1])


def test_publish_and_pull_2_gib_in_bounded_memory(registry: Registry, tmp_path: Path) -> None:
    # The source and the registry's copy; the source goes before the pulled copy arrives.
    require_free_disk(tmp_path, 2 * SIZE + (512 << 20))
    folder = tmp_path / "big"
    manifest = make_model(folder, name="big", weights=b"")
    with (folder / "model" / "weights.bin").open("wb") as out:
        block = bytes(range(256)) * 4096  # 1 MiB, not all zeros
        for i in range(SIZE // len(block)):
            out.write(block[i % 256 :] + block[: i % 256])
    env = base_env(tmp_path, MODELVER_NO_CACHE="1")  # nothing cached: the first push streams
    repo = registry.repo("t/big")
    push_rss = _run(["publish", str(manifest), "--repository", repo], env)
    assert push_rss < LIMIT_KIB, f"publish (hashed while sent) peak RSS {push_rss} KiB"
    # Same file under a new version: hashed first (same path and size as the newest version).
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    again_rss = _run(["publish", str(manifest), "--repository", repo], env)
    assert again_rss < LIMIT_KIB, f"publish (hashed first) peak RSS {again_rss} KiB"
    (folder / "model" / "weights.bin").unlink()  # not needed for the pull: 2 GiB less disk
    pull_rss = _run(["pull", f"{repo}:1.0.1", "-o", str(tmp_path / "out")], env)
    assert pull_rss < LIMIT_KIB, f"pull peak RSS {pull_rss} KiB"
    assert (tmp_path / "out" / "model" / "weights.bin").stat().st_size == SIZE


def test_pulling_many_shards_at_high_concurrency_stays_bounded(
    registry: Registry, tmp_path: Path
) -> None:
    # Each pipelined download queues a few MiB; only two run pipelined at once, so eight
    # parallel downloads do not add eight sets of queues.
    shard = 128 * 1024 * 1024
    require_free_disk(tmp_path, 3 * 8 * shard + (512 << 20))  # source, registry, pulled copy
    folder = tmp_path / "shards"
    folder.mkdir()
    block = bytes(range(256)) * 4096
    for n in range(8):
        with (folder / f"model-{n:05d}-of-00008.safetensors").open("wb") as out:
            for i in range(shard // len(block)):
                out.write(block[(i + n) % 256 :] + block[: (i + n) % 256])
    (folder / "modelver.yaml").write_text(
        "name: shards\nversion: 1.0.0\nfiles:\n  - {path: 'model-*.safetensors', type: weight}\n"
    )
    env = base_env(tmp_path, MODELVER_NO_CACHE="1")
    repo = registry.repo("t/shards")
    push_rss = _run(
        ["publish", str(folder / "modelver.yaml"), "--repository", repo, "--concurrency", "8"], env
    )
    assert push_rss < LIMIT_KIB, f"publish peak RSS {push_rss} KiB"
    out = tmp_path / "out"
    pull_rss = _run(["pull", f"{repo}:1.0.0", "-o", str(out), "--concurrency", "8"], env)
    assert pull_rss < LIMIT_KIB, f"pull peak RSS {pull_rss} KiB"
    assert sorted(p.stat().st_size for p in out.iterdir()) == [shard] * 8

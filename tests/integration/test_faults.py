"""Publishing through a fault-injecting proxy: the exact artifact under the tag, or exit 3 and no tag."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.fault_proxy import FaultProxy, always, random_policy
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(registry.host).start()
    yield fault_proxy
    fault_proxy.stop()


def _direct_tag(registry: Registry, path: str, tag: str) -> bytes | None:
    """The manifest bytes under a tag, read straight from the registry (no proxy)."""
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{path}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _blobs_complete(registry: Registry, path: str, manifest: bytes) -> bool:
    doc = json.loads(manifest)
    for desc in [doc["config"], *doc["layers"]]:
        with urllib.request.urlopen(
            f"http://{registry.host}/v2/{path}/blobs/{desc['digest']}", timeout=10
        ) as answer:
            if "sha256:" + hashlib.sha256(answer.read()).hexdigest() != desc["digest"]:
                return False
    return True


def _publish(
    manifest: Path, repo: str, env: dict[str, str], timeout: str = "20"
) -> tuple[int, dict[str, object] | None, str]:
    result = run_cli(
        "publish",
        str(manifest),
        "--repository",
        repo,
        "--format",
        "json",
        "--timeout",
        timeout,
        env=env,
    )
    doc = json.loads(result.out) if result.code == 0 else None
    return result.code, doc, result.err


def test_every_fault_kind_is_survived(
    registry: Registry, proxy: FaultProxy, tmp_path: Path
) -> None:
    env = base_env(tmp_path)
    proxy.slow_seconds = 3.0
    for i, fault in enumerate(("503", "429", "500", "reset-before", "reset-after", "slow")):
        # the first request of each kind fails, every later one passes
        state = {"n": 0}

        def once(
            _n: int, _m: str, _p: str, fault: str = fault, state: dict[str, int] = state
        ) -> str | None:
            state["n"] += 1
            return fault if state["n"] in (1, 4) else None

        proxy.policy = once
        path = f"faults/kind{i}"
        manifest = make_model(tmp_path / f"m{i}", name="faulty", weights=f"w{i}".encode() * 1000)
        code, doc, err = _publish(manifest, f"{proxy.host}/{path}", env, timeout="8")
        assert code == 0, (fault, err)
        assert doc is not None and doc["http"]["retries"] >= 1  # type: ignore[index]
        served = _direct_tag(registry, path, "1.0.0")
        assert served is not None
        assert "sha256:" + hashlib.sha256(served).hexdigest() == doc["digest"]
        assert _blobs_complete(registry, path, served)
    assert set(proxy.injected) == {"503", "429", "500", "reset-before", "reset-after", "slow"}


def test_dead_registry_exits_3_within_the_budget_and_tags_nothing(
    registry: Registry, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.policy = always("503")
    manifest = make_model(tmp_path / "m", name="dead")
    started = time.monotonic()
    code, _, err = _publish(manifest, f"{proxy.host}/faults/dead", base_env(tmp_path), timeout="3")
    elapsed = time.monotonic() - started
    assert code == 3
    assert err.count("\n") == 1
    assert "503" in err and "gave up after" in err and "--timeout" in err
    assert elapsed < 30  # the budget is per request; the first one already gives up
    assert _direct_tag(registry, "faults/dead", "1.0.0") is None


def _soak(registry: Registry, proxy: FaultProxy, tmp_path: Path, rounds: int) -> dict[str, int]:
    proxy.policy = random_policy(
        0.2, seed=1234, faults=("503", "429", "500", "reset-before", "reset-after")
    )
    env = base_env(tmp_path)
    path = f"soak/r{uuid.uuid4().hex[:8]}"
    retries = failures = 0
    for i in range(rounds):
        manifest = make_model(
            tmp_path / f"s{i}", name="soak", version=f"1.0.{i}", weights=f"soak-{i}".encode() * 2000
        )
        code, doc, err = _publish(manifest, f"{proxy.host}/{path}", env, timeout="6")
        served = _direct_tag(registry, path, f"1.0.{i}")
        if code == 0:
            assert doc is not None and served is not None
            assert "sha256:" + hashlib.sha256(served).hexdigest() == doc["digest"]
            retries += int(doc["http"]["retries"])  # type: ignore[index]
        else:
            # a failed publish is exit 3 with no half-made tag; a rerun completes it
            assert code == 3, err
            failures += 1
            proxy.policy, saved = (lambda _n, _m, _p: None), proxy.policy
            code, doc, err = _publish(manifest, f"{proxy.host}/{path}", env)
            proxy.policy = saved
            assert code == 0, err
            served = _direct_tag(registry, path, f"1.0.{i}")
        assert served is not None and _blobs_complete(registry, path, served)
    return {"retries": retries, "failures": failures, "injected": sum(proxy.injected.values())}


def test_soak_small(registry: Registry, proxy: FaultProxy, tmp_path: Path) -> None:
    counts = _soak(registry, proxy, tmp_path, 15)
    assert counts["injected"] > 0
    assert counts["retries"] > 0


@pytest.mark.skipif(os.environ.get("MODELVER_SOAK") != "1", reason="on demand: MODELVER_SOAK=1")
def test_soak_200_publishes(registry: Registry, proxy: FaultProxy, tmp_path: Path) -> None:
    counts = _soak(registry, proxy, tmp_path, 200)
    print(f"soak: {counts}")
    assert counts["injected"] > 100

"""Two publishers of one version with different bytes at the same moment: at most one succeeds."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


def _race(manifests: list[Path], repo: str, env: dict[str, str]) -> list[Run]:
    results: list[Run] = []
    barrier = threading.Barrier(len(manifests))

    def go(manifest: Path) -> None:
        barrier.wait()
        results.append(
            run_cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
        )

    threads = [threading.Thread(target=go, args=(m,)) for m in manifests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("store", ["registry", "layout"])
def test_racing_publishers_at_most_one_wins(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = base_env(tmp_path)
    for attempt in range(5):
        if store == "registry":
            registry: Registry = request.getfixturevalue("registry")
            repo = registry.repo(f"race/r{uuid.uuid4().hex[:10]}")
        else:
            repo = f"oci:{tmp_path / f'store{attempt}'}"
        manifests = [
            make_model(
                tmp_path / f"a{attempt}-{side}",
                name="race",
                weights=f"{side}-{attempt}".encode() * 500,
            )
            for side in ("left", "right")
        ]
        results = _race(manifests, repo, env)
        codes = sorted(r.code for r in results)
        assert codes in ([0, 4], [4, 4]), [r.err for r in results]
        shown = run_cli("show", f"{repo}:1.0.0", "--format", "json", env=env)
        assert shown.code == 0, shown.err
        winners = [json.loads(r.out)["digest"] for r in results if r.code == 0]
        if winners:
            assert json.loads(shown.out)["digest"] == winners[0]
        for loser in (r for r in results if r.code == 4):
            assert (
                "bump 'version'" in loser.err
                or "another" in loser.err
                or "at the same time" in loser.err
            )

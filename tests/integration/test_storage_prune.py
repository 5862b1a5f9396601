"""storage and prune on a real registry and on an OCI layout; garbage collection shrinks the
registry's data folder by what prune predicted; an interrupted layout prune finishes on rerun."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.adapters.store import Store
from ci_modelver.core.audit import referrers_tag
from ci_modelver.core.refs import parse_ref
from ci_modelver.errors import Terminated
from ci_modelver.settings import Settings
from ci_modelver.toolkit import open_store
from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.integration.conftest import require_binary
from tests.support.registry import Registry, start_registry, stop_registry
from tests.support.signing_keys import write_key

pytestmark = pytest.mark.integration

VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]


def weights(version: str, size: int) -> bytes:
    """Distinct bytes per version: every version brings one new weights blob of ``size``."""
    seed = version.encode()
    return (seed * (size // len(seed) + 1))[:size]


def publish(repo: str, tmp_path: Path, env: dict[str, str], version: str, size: int) -> str:
    manifest = make_model(
        tmp_path / f"model-{version}",
        name="pruned",
        version=version,
        weights=weights(version, size),
    )
    done = run_cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
    assert done.code == 0, done.err
    return str(json.loads(done.out)["digest"])


def ok(result: Run) -> dict[str, Any]:
    assert result.code == 0, result.err
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def promote(repo: str, version: str, env: dict[str, str]) -> None:
    ok(
        run_cli(
            "promote", f"{repo}:{version}", "--alias", "production", "--format", "json", env=env
        )
    )


def store_of(repo: str, tmp_path: Path) -> Store:
    return open_store(parse_ref(repo), Settings.build({}, cwd=tmp_path), create=False)


def blob_files(root: Path) -> dict[str, int]:
    folder = root / "blobs" / "sha256"
    return {p.name: p.stat().st_size for p in folder.iterdir() if len(p.name) == 64}


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "registry":
        registry: Registry = request.getfixturevalue("registry")
        return registry.repo(f"prune/r{uuid.uuid4().hex[:12]}")
    return f"oci:{tmp_path / 'store'}"


def populated(repo: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Five versions; an evaluation on 1.0.0, a signature on 1.1.0; production moved
    1.0.0 → 1.2.0 → 1.4.0. Returns the digests, the env and the evaluation/signature records."""
    env = base_env(tmp_path / "home", GITHUB_ACTOR="release-bot")
    digests = {v: publish(repo, tmp_path, env, v, 64 * 1024) for v in VERSIONS}
    metrics = tmp_path / "later.json"
    metrics.write_text('{"holdout": {"accuracy": 0.91}}')
    attached = ok(
        run_cli("attach", f"{repo}:1.0.0", "--metrics", str(metrics), "--format", "json", env=env)
    )
    key = write_key(tmp_path / "keys", "release")
    signed = ok(
        run_cli(
            "sign", f"{repo}:1.1.0", "--sign-key", str(key.private), "--format", "json", env=env
        )
    )
    for version in ("1.0.0", "1.2.0", "1.4.0"):
        promote(repo, version, env)
    return digests, env, {"evaluation": attached["record"], "signature": signed}


def test_dry_run_then_yes_deletes_exactly_the_plan(repo: str, tmp_path: Path) -> None:
    digests, env, records = populated(repo, tmp_path)
    store = store_of(repo, tmp_path)
    tags_before = sorted(store.tags())
    layout_before = blob_files(Path(repo[4:])) if repo.startswith("oci:") else None
    report = ok(run_cli("storage", repo, "--format", "json", env=env))
    assert [v["version"] for v in report["versions"]] == VERSIONS
    assert report["referrers"]["auditRecords"]["count"] == 3
    assert report["referrers"]["evaluations"]["count"] == 1
    assert report["referrers"]["signatures"]["count"] >= 1
    text = run_cli("storage", repo, env=env)
    assert text.code == 0 and "saved by shared layers" in text.out

    rules = ("--keep-last", "1", "--protect-rollback", "1", "--grace", "0")
    dry = ok(run_cli("prune", repo, *rules, "--format", "json", env=env))
    actions = {v["version"]: v["action"] for v in dry["versions"]}
    # 1.4.0: the last one and production now; 1.2.0: where production was before its last move
    assert actions == {
        "1.0.0": "delete",
        "1.1.0": "delete",
        "1.2.0": "keep",
        "1.3.0": "delete",
        "1.4.0": "keep",
    }
    assert dry["dryRun"] is True and dry["deleted"] is None and dry["bytesFreed"] > 3 * 64 * 1024
    assert sorted(store.tags()) == tags_before
    if layout_before is not None:
        assert blob_files(Path(repo[4:])) == layout_before
    shown = run_cli("prune", repo, *rules, env=env)
    assert shown.code == 0 and "dry run" in shown.out and "rerun with --yes" in shown.out

    done = ok(run_cli("prune", repo, *rules, "--yes", "--format", "json", env=env))
    assert done["versions"] == dry["versions"] and done["bytesFreed"] == dry["bytesFreed"]
    assert done["deleted"] == {
        "manifests": 3,
        "referrers": done["planned"]["referrers"],
        "indexes": 2,
    }
    tags = set(store.tags())
    for version in ("1.0.0", "1.1.0", "1.3.0"):
        assert version not in tags
        assert referrers_tag(digests[version]) not in tags
        assert store.find_manifest(digests[version]) is None
    assert {"1.2.0", "1.4.0", "production"} <= tags
    assert sum(1 for t in tags if t.startswith("modelver-audit-production-")) == 3  # all kept
    if repo.startswith("oci:"):
        assert done["layoutCollected"]["blobs"] > 0
    else:
        assert store.find_manifest(records["evaluation"]) is None
        for record in records["signature"]["signatures"]:
            assert store.find_manifest(record["record"]) is None

    history = ok(run_cli("history", repo, "--format", "json", env=env))
    assert [v["version"] for v in history["versions"]] == ["1.2.0", "1.4.0"]
    assert [m["toVersion"] for m in history["aliasLog"]] == ["1.0.0", "1.2.0", "1.4.0"]
    for version in ("1.2.0", "1.4.0"):
        assert (
            ok(run_cli("show", f"{repo}:{version}", "--format", "json", env=env))["digest"]
            == digests[version]
        )
    gone = run_cli("show", f"{repo}:1.0.0", env=env)
    assert gone.code == 2
    rollback = ok(run_cli("rollback", repo, "--alias", "production", "--format", "json", env=env))
    assert rollback["to"] == digests["1.2.0"]

    again = ok(run_cli("prune", repo, *rules, "--yes", "--format", "json", env=env))
    assert again["planned"]["versions"] == 0 and again["bytesFreed"] == 0
    after = ok(run_cli("storage", repo, "--format", "json", env=env))
    assert [v["version"] for v in after["versions"]] == ["1.2.0", "1.4.0"]


def test_prune_needs_a_rule_and_touches_nothing_without_one(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path / "home")
    publish(repo, tmp_path, env, "1.0.0", 1024)
    refused = run_cli("prune", repo, "--yes", env=env)
    assert refused.code == 2 and "give at least one rule" in refused.err
    assert "Traceback" not in refused.err
    assert "1.0.0" in store_of(repo, tmp_path).tags()


# --- garbage collection on a registry of our own ----------------------------------------------


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[tuple[Registry, Path]]:
    binary = require_binary("docker-registry", "registry")
    workdir = tmp_path / "own-registry"
    registry = start_registry(workdir, binary)
    try:
        yield registry, workdir
    finally:
        if registry.process.poll() is None:
            stop_registry(registry)


def test_garbage_collection_frees_what_prune_predicted(
    own_registry: tuple[Registry, Path], tmp_path: Path
) -> None:
    registry, workdir = own_registry
    repo = registry.repo("gc/model")
    env = base_env(tmp_path / "home")
    size = 256 * 1024
    for version in VERSIONS:
        publish(repo, tmp_path, env, version, size)
    metrics = tmp_path / "later.json"
    metrics.write_text('{"holdout": {"accuracy": 0.9}}')
    ok(run_cli("attach", f"{repo}:1.1.0", "--metrics", str(metrics), "--format", "json", env=env))
    promote(repo, "1.0.0", env)
    promote(repo, "1.4.0", env)
    data = workdir / "data"
    blobs = data / "docker" / "registry" / "v2" / "blobs"
    before, blobs_before = folder_size(data), folder_size(blobs)

    rules = ("--keep-last", "2", "--protect-rollback", "0")
    done = ok(run_cli("prune", repo, *rules, "--yes", "--format", "json", env=env))
    assert [v["version"] for v in done["versions"] if v["action"] == "delete"] == VERSIONS[:3]
    predicted = done["bytesFreed"]
    assert predicted > 3 * size  # three weights blobs, configs, manifests, referrers, indexes

    stop_registry(registry)  # garbage-collect runs offline
    # --delete-untagged would also delete the untagged referrers (evaluations, signatures) of
    # kept versions: never with ci-modelver's fallback indexes.
    collect = subprocess.run(
        [
            require_binary("docker-registry", "registry"),
            "garbage-collect",
            "--delete-untagged=false",
            str(workdir / "config.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr
    # The blobs are content: exactly the bytes prune predicted.
    assert blobs_before - folder_size(blobs) == predicted
    # The whole data folder also loses the registry's own bookkeeping of the deleted manifests
    # (revision and tag link files of 71 bytes and the folders holding them), which prune does
    # not count: at most 4 KiB here, against the 768 KiB predicted.
    shrunk = before - folder_size(data)
    assert predicted <= shrunk <= predicted + 4096, (shrunk, predicted)

    again = start_registry(workdir, require_binary("docker-registry", "registry"))
    try:
        kept = again.repo("gc/model")
        history = ok(run_cli("history", kept, "--format", "json", env=env))
        assert [v["version"] for v in history["versions"]] == ["1.3.0", "1.4.0"]
        out = tmp_path / "pulled"
        ok(run_cli("pull", f"{kept}:1.3.0", "--output", str(out), "--format", "json", env=env))
    finally:
        stop_registry(again)


def test_a_registry_without_deletes_says_how_to_enable_them(tmp_path: Path) -> None:
    binary = require_binary("docker-registry", "registry")
    workdir = tmp_path / "no-delete"
    registry = start_registry(workdir, binary)
    try:
        config = workdir / "config.yml"
        stop_registry(registry)
        config.write_text(config.read_text().replace("enabled: true", "enabled: false"))
        registry = start_registry_with(workdir, binary)
        repo = registry.repo("nodelete/model")
        env = base_env(tmp_path / "home")
        publish(repo, tmp_path, env, "1.0.0", 1024)
        publish(repo, tmp_path, env, "1.1.0", 1024)
        refused = run_cli("prune", repo, "--keep-last", "1", "--yes", env=env)
        assert refused.code == 2, refused.err
        assert "storage: delete: enabled: true" in refused.err and "Traceback" not in refused.err
        assert "1.0.0" in store_of(repo, tmp_path).tags()
    finally:
        if registry.process.poll() is None:
            stop_registry(registry)


def start_registry_with(workdir: Path, binary: str) -> Registry:
    """Start docker-registry on the config already in ``workdir`` (its port may be reused)."""
    config = workdir / "config.yml"
    log = workdir / "registry-2.log"
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    addr = next(line.split()[-1] for line in config.read_text().splitlines() if "addr:" in line)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{addr}/v2/", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    return Registry(addr, log, process)


# --- an interrupted layout prune --------------------------------------------------------------


def layout_state(root: Path) -> tuple[list[str], dict[str, int]]:
    return sorted(LayoutStore(root, create=False).tags()), blob_files(root)


# Keep-last 2 of five versions: 1.0.0 goes with its evaluation and its fallback index (deletes
# 1, 2 and 3), then 1.1.0 (4) and 1.2.0 (5); "collect" stops the layout's collection after
# its first removal. Each is a SIGTERM at that point (errors.Terminated, as the handler raises).
@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5, "collect"])
def test_an_interrupted_layout_prune_finishes_on_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int | str
) -> None:
    reference = f"oci:{tmp_path / 'reference'}"
    repo = f"oci:{tmp_path / 'store'}"
    env = base_env(tmp_path / "home")
    for target in (reference, repo):
        for version in VERSIONS:
            publish(target, tmp_path, env, version, 4096)
        metrics = tmp_path / "later.json"
        metrics.write_text('{"holdout": {"accuracy": 0.9}}')
        attach = ("attach", f"{target}:1.0.0", "--metrics", str(metrics), "--format", "json")
        ok(run_cli(*attach, env=env))
    rules = ("--keep-last", "2", "--grace", "0")
    ok(run_cli("prune", reference, *rules, "--yes", "--format", "json", env=env))
    expected = layout_state(Path(reference[4:]))

    calls = {"n": 0}
    real_delete = LayoutStore.delete_manifest
    real_unlink = os.unlink

    def failing_delete(self: LayoutStore, digest: str) -> None:
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise Terminated()
        real_delete(self, digest)

    def failing_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Terminated()
        real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        if fail_at == "collect":
            patch.setattr(os, "unlink", failing_unlink)
        else:
            patch.setattr(LayoutStore, "delete_manifest", failing_delete)
        stopped = run_cli("prune", repo, *rules, "--yes", "--format", "json", env=env)
        assert stopped.code == 143, stopped.err
        assert calls["n"] >= 1
    # Readable at the point of the failure: every kept version and the history.
    assert ok(run_cli("history", repo, "--format", "json", env=env))["versions"]
    for version in ("1.3.0", "1.4.0"):
        ok(run_cli("show", f"{repo}:{version}", "--format", "json", env=env))
    skopeo = require_binary("skopeo")
    inspected = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{tmp_path / 'store'}:1.4.0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert inspected.returncode == 0, inspected.stderr

    ok(run_cli("prune", repo, *rules, "--yes", "--format", "json", env=env))
    assert layout_state(Path(repo[4:])) == expected
    ok(
        run_cli(
            "pull",
            f"{repo}:1.3.0",
            "--output",
            str(tmp_path / "pulled"),
            "--format",
            "json",
            env=env,
        )
    )


# --- a publish during a layout prune ---------------------------------------------------------


def test_a_publish_during_a_layout_prune_keeps_every_blob_it_needs(tmp_path: Path) -> None:
    """The publish reuses the weights of the version being deleted (old blobs, eligible for
    collection): whichever finishes first, the new version stays complete."""
    import sys

    repo = f"oci:{tmp_path / 'store'}"
    root = tmp_path / "store"
    env = base_env(tmp_path / "home")
    publish(repo, tmp_path, env, "1.0.0", 512 * 1024)
    publish(repo, tmp_path, env, "1.1.0", 512 * 1024)
    for round_ in range(3):
        old = time.time() - 7 * 24 * 3600
        for path in (root / "blobs" / "sha256").iterdir():
            os.utime(path, (old, old))
        version = f"2.{round_}.0"
        # the weights of 1.0.0 again, under a new version
        manifest = make_model(
            tmp_path / f"model-{version}",
            name="pruned",
            version=version,
            weights=weights("1.0.0", 512 * 1024),
        )
        publisher = subprocess.Popen(
            [sys.executable, "-m", "ci_modelver", "publish", str(manifest), "--repository", repo],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        pruned = run_cli(
            "prune", repo, "--keep", "1.1.*", "--keep", "2.*", "--yes", "--format", "json", env=env
        )
        _out, err = publisher.communicate(timeout=120)
        assert publisher.returncode == 0, err
        assert pruned.code == 0, pruned.err
        pulled = tmp_path / f"pulled-{version}"
        ok(
            run_cli(
                "pull", f"{repo}:{version}", "--output", str(pulled), "--format", "json", env=env
            )
        )
        assert (pulled / "model" / "weights.bin").read_bytes() == weights("1.0.0", 512 * 1024)
        if round_ == 0:
            # 1.0.0 is gone after the first round; later rounds re-publish its weights only
            assert "1.0.0" not in LayoutStore(root, create=False).tags()


# --- ghcr.io: deletion through GitHub's Packages API --------------------------------------------


def test_ghcr_deletes_package_versions_through_the_github_api(
    registry: Registry, tmp_path: Path, fake_github: Any
) -> None:
    """A local registry holds the content (as ghcr.io would); the deletes go to GitHub's
    Packages API (the fake, checked against GitHub's OpenAPI description)."""
    from ci_modelver.commands.prune import prune
    from ci_modelver.core.retention import Rules

    repo = registry.repo(f"ghcr/r{uuid.uuid4().hex[:12]}")
    env = base_env(tmp_path / "home")
    digests = {v: publish(repo, tmp_path, env, v, 1024) for v in VERSIONS[:3]}
    metrics = tmp_path / "later.json"
    metrics.write_text('{"holdout": {"accuracy": 0.9}}')
    attached = ok(
        run_cli("attach", f"{repo}:1.0.0", "--metrics", str(metrics), "--format", "json", env=env)
    )
    store = store_of(repo, tmp_path)
    # Every manifest of the repository is a package version of acme/models on GitHub.
    for tag in store.tags():
        found = store.find_manifest(tag)
        assert found is not None
        fake_github.add_package_version("acme", "models", found[1], [tag])
    fake_github.add_package_version("acme", "models", attached["record"])
    fake_github.add_token("ghp_prune", "release-bot")
    settings = Settings.build(
        {"MODELVER_GITHUB_TOKEN": "ghp_prune", "GITHUB_API_URL": fake_github.base_url},
        cwd=tmp_path,
    )
    result = prune("ghcr.io/acme/models", settings, Rules(keep_last=1), yes=True, store=store)
    assert [d.version for d in result.plan.decisions if not d.keep] == ["1.0.0", "1.1.0"]
    assert result.done.to_json() == {"manifests": 2, "referrers": 1, "indexes": 1}
    deleted = {v.name for v in fake_github.package_versions("acme", "models", deleted=True)}
    fallback = store.find_manifest(referrers_tag(digests["1.0.0"]))
    assert fallback is not None
    assert deleted == {digests["1.0.0"], digests["1.1.0"], attached["record"], fallback[1]}
    active = {v.name for v in fake_github.package_versions("acme", "models")}
    assert digests["1.2.0"] in active
    # Nothing went through the OCI API: the registry still has everything.
    assert store.find_manifest(digests["1.0.0"]) is not None


def test_ghcr_without_a_token_deletes_nothing(registry: Registry, tmp_path: Path) -> None:
    from ci_modelver.commands.prune import prune
    from ci_modelver.core.retention import Rules
    from ci_modelver.errors import InputError

    repo = registry.repo(f"ghcr/r{uuid.uuid4().hex[:12]}")
    env = base_env(tmp_path / "home")
    for version in VERSIONS[:2]:
        publish(repo, tmp_path, env, version, 1024)
    store = store_of(repo, tmp_path)
    settings = Settings.build({}, cwd=tmp_path)
    dry = prune("ghcr.io/acme/models", settings, Rules(keep_last=1), yes=False, store=store)
    assert dry.plan.counts()["versions"] == 1  # a dry run needs no token
    with pytest.raises(InputError, match="MODELVER_GITHUB_TOKEN or GITHUB_TOKEN"):
        prune("ghcr.io/acme/models", settings, Rules(keep_last=1), yes=True, store=store)
    assert "1.0.0" in store.tags()


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_an_interrupted_registry_prune_finishes_on_rerun(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """Stopped before the evaluation (1), the version (2) or its fallback index (3) went: the
    rerun deletes the rest, an index whose version is already gone included."""
    from ci_modelver.adapters.registry import RegistryStore

    repo = registry.repo(f"prune/i{uuid.uuid4().hex[:12]}")
    env = base_env(tmp_path / "home")
    digests = {v: publish(repo, tmp_path, env, v, 2048) for v in VERSIONS[:2]}
    metrics = tmp_path / "later.json"
    metrics.write_text('{"holdout": {"accuracy": 0.9}}')
    attach = ("attach", f"{repo}:1.0.0", "--metrics", str(metrics), "--format", "json")
    evaluation = ok(run_cli(*attach, env=env))["record"]
    calls = {"n": 0}
    real_delete = RegistryStore.delete_manifest

    def failing_delete(self: RegistryStore, digest: str) -> None:
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise Terminated()
        real_delete(self, digest)

    with monkeypatch.context() as patch:
        patch.setattr(RegistryStore, "delete_manifest", failing_delete)
        stopped = run_cli("prune", repo, "--keep-last", "1", "--yes", env=env)
        assert stopped.code == 143, stopped.err
    rerun = ok(run_cli("prune", repo, "--keep-last", "1", "--yes", "--format", "json", env=env))
    if fail_at == 3:  # only the orphaned index was left
        assert rerun["planned"] == {"versions": 0, "manifests": 0, "referrers": 0, "indexes": 1}
    store = store_of(repo, tmp_path)
    assert sorted(store.tags()) == ["1.1.0"]
    assert store.find_manifest(digests["1.0.0"]) is None
    assert store.find_manifest(evaluation) is None
    assert (
        ok(run_cli("history", repo, "--format", "json", env=env))["versions"][0]["version"]
        == "1.1.0"
    )

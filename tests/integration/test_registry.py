"""publish / pull / show / versions against a real CNCF distribution registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


def _publish(manifest: Path, repo: str, env: dict[str, str], *extra: str) -> dict[str, object]:
    result = run_cli(
        "publish", str(manifest), "--repository", repo, "--format", "json", *extra, env=env
    )
    assert result.code == 0, result.err
    doc: dict[str, object] = json.loads(result.out)
    return doc


def test_publish_show_pull_roundtrip_of_the_example(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    repo = registry.repo("examples/churn-classifier")
    doc = _publish(EXAMPLE / "modelver.yaml", repo, env)
    assert doc["status"] == "published"
    digest = str(doc["digest"])
    assert doc["ref"] == f"{repo}@{digest}"

    shown = run_cli("show", f"{repo}:1.0.0", "--format", "json", env=env)
    assert shown.code == 0, shown.err
    record = json.loads(shown.out)
    assert record["digest"] == digest
    assert record["record"]["metrics"]["validation"]["accuracy"] == 0.775
    assert record["record"]["hyperparameters"]["variant"] == "baseline"
    assert {d["name"] for d in record["record"]["data"]} == {"train", "validation", "test-shifted"}
    assert all(d["digest"].startswith("sha256:") for d in record["record"]["data"])
    # show reads the manifest and the config only: no layer blob was fetched.
    weights_digest = next(f["digest"] for f in record["files"] if f["type"] == "weight")
    assert registry.requests_seen("GET", f"/blobs/{weights_digest}") == 0

    out = tmp_path / "pulled"
    pulled = run_cli("pull", f"{repo}@{digest}", "--output", str(out), env=env)
    assert pulled.code == 0, pulled.err
    for rel in (
        "model/model.safetensors",
        "model/config.json",
        "README.md",
        "train.py",
        "evaluate.py",
    ):
        assert (out / rel).read_bytes() == (EXAMPLE / rel).read_bytes(), rel
    assert not list(out.rglob(".partial-*"))


def test_republish_is_a_no_op_and_sends_no_bytes(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    manifest = make_model(tmp_path / "m", name="idem")
    repo = registry.repo("t/idem")
    first = _publish(manifest, repo, env)
    uploads_before = registry.requests_seen("PUT", r"/v2/t/idem/blobs/uploads/")
    assert uploads_before == 3  # weights, README, config
    second = _publish(manifest, repo, env)
    assert second["status"] == "unchanged"
    assert second["digest"] == first["digest"]
    assert registry.requests_seen("PUT", r"/v2/t/idem/blobs/uploads/") == uploads_before
    assert registry.requests_seen("PUT", r"/v2/t/idem/manifests/") == 1


def test_conflicting_version_exits_4_and_keeps_the_tag(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    repo = registry.repo("t/conflict")
    first = _publish(make_model(tmp_path / "a", name="conflict"), repo, env)
    changed = make_model(tmp_path / "b", name="conflict", weights=b"other weights")
    result = run_cli("publish", str(changed), "--repository", repo, env=env)
    assert result.code == 4
    assert str(first["digest"]) in result.err
    assert "bump 'version'" in result.err
    assert result.err.count("\n") == 1
    shown = json.loads(run_cli("show", f"{repo}:1.0.0", "--format", "json", env=env).out)
    assert shown["digest"] == first["digest"]


def test_same_inputs_same_digest_in_two_repositories(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    manifest = make_model(tmp_path / "m", name="twin")
    a = _publish(manifest, registry.repo("t/twin-a"), env)
    b = _publish(manifest, registry.repo("t/twin-b"), env)
    assert a["digest"] == b["digest"]


def test_new_version_with_same_weights_uploads_only_changed_blobs(
    registry: Registry, tmp_path: Path
) -> None:
    env = base_env(tmp_path)
    repo = registry.repo("t/dedup")
    _publish(make_model(tmp_path / "v1", name="dedup"), repo, env)
    before = registry.requests_seen("PUT", r"/v2/t/dedup/blobs/uploads/")
    doc = _publish(
        make_model(
            tmp_path / "v2",
            name="dedup",
            version="1.0.1",
            metrics={"validation": {"accuracy": 0.95}},
        ),
        repo,
        env,
    )
    blobs = doc["blobs"]
    assert isinstance(blobs, dict)
    assert (
        blobs["uploaded"] == 1
    )  # the config (it names the version); weights and README deduplicated
    assert blobs["present"] == 2
    assert registry.requests_seen("PUT", r"/v2/t/dedup/blobs/uploads/") == before + 1


def test_versions_are_listed_in_semver_order_with_aliases(
    registry: Registry, tmp_path: Path
) -> None:
    env = base_env(tmp_path)
    repo = registry.repo("t/order")
    for i, version in enumerate(["1.10.0", "1.2.0", "2.0.0-rc.1", "1.9.0", "2.0.0", "2.0.0-alpha"]):
        extra = ("--tag", "latest") if version == "2.0.0" else ()
        _publish(
            make_model(tmp_path / f"m{i}", name="order", version=version, weights=version.encode()),
            repo,
            env,
            *extra,
        )
    result = run_cli("versions", repo, "--format", "json", env=env)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert [v["version"] for v in doc["versions"]] == [
        "1.2.0",
        "1.9.0",
        "1.10.0",
        "2.0.0-alpha",
        "2.0.0-rc.1",
        "2.0.0",
    ]
    assert doc["versions"][-1]["aliases"] == ["latest"]
    text = run_cli("versions", repo, env=env).out
    assert text.index("1.9.0") < text.index("1.10.0")


def test_chunked_upload(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    weights = bytes(range(256)) * 20_000  # ~5 MiB
    manifest = make_model(tmp_path / "m", name="chunked", weights=weights)
    repo = registry.repo("t/chunked")
    doc = _publish(manifest, repo, env, "--chunk-size", str(1024 * 1024))
    assert registry.requests_seen("PATCH", r"/v2/t/chunked/blobs/uploads/") >= 5
    out = tmp_path / "out"
    assert run_cli("pull", f"{repo}@{doc['digest']}", "-o", str(out), env=env).code == 0
    assert (
        hashlib.sha256((out / "model/weights.bin").read_bytes()).digest()
        == hashlib.sha256(weights).digest()
    )


def test_github_outputs_are_written(registry: Registry, tmp_path: Path) -> None:
    output = tmp_path / "gh_output"
    env = base_env(
        tmp_path,
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        GITHUB_SHA="a" * 40,
        GITHUB_REPOSITORY="acme/models",
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_RUN_ID="42",
    )
    doc = _publish(make_model(tmp_path / "m", name="gha"), registry.repo("t/gha"), env)
    text = output.read_text()
    assert f"\n{doc['digest']}\n" in text
    assert text.startswith("digest<<ghadelim_")
    assert "version<<" in text and "ref<<" in text
    shown = json.loads(
        run_cli("show", f"{registry.repo('t/gha')}:1.0.0", "--format", "json", env=env).out
    )
    assert shown["record"]["code"] == {
        "commit": "a" * 40,
        "repository": "https://github.com/acme/models",
        "runUrl": "https://github.com/acme/models/actions/runs/42",
    }
    assert (
        shown["annotations"]["org.opencontainers.image.source"] == "https://github.com/acme/models"
    )


def test_missing_tag_and_unknown_repository(registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    result = run_cli("show", registry.repo("t/nothing-here") + ":1.0.0", env=env)
    assert result.code == 2
    assert "not found; check the tag or digest" in result.err
    bare = run_cli("pull", registry.repo("t/nothing-here"), env=env)
    assert bare.code == 2
    assert "names no version" in bare.err
    listed = run_cli("versions", registry.repo("t/nothing-here"), env=env)
    assert listed.code == 0
    assert "no versions published yet" in listed.out

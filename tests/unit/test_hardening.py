"""Credentials stay with their registry; store content never names a path outside the store."""

from __future__ import annotations

import json
from pathlib import Path

from ci_modelver.action_entry import with_registry_credentials as _with_registry_credentials
from ci_modelver.commands.compare import default_comment_file
from ci_modelver.settings import Settings
from tests.conftest import run_cli
from tests.helpers import base_env, make_model

TOKEN = "ghs_jobtoken123"
ENV = {
    "INPUT_REGISTRY_USERNAME": "octo",
    "INPUT_REGISTRY_PASSWORD": TOKEN,
    "MODELVER_JOB_TOKEN": TOKEN,
}


def test_job_token_is_sent_only_to_ghcr() -> None:
    ghcr = _with_registry_credentials(dict(ENV), "ghcr.io/acme/models/churn")
    assert ghcr["MODELVER_REGISTRY_PASSWORD"] == TOKEN
    other = _with_registry_credentials(dict(ENV), "registry.example.com/acme/churn")
    assert "MODELVER_REGISTRY_PASSWORD" not in other
    explicit = _with_registry_credentials(
        {**ENV, "INPUT_REGISTRY_PASSWORD": "harbor-robot"}, "harbor.example.com/m"
    )
    assert explicit["MODELVER_REGISTRY_PASSWORD"] == "harbor-robot"


def test_comment_key_cannot_leave_the_runner_temp(tmp_path: Path) -> None:
    settings = Settings(env={"RUNNER_TEMP": str(tmp_path)}, cwd=tmp_path)
    path = default_comment_file(settings, "churn", "../../etc/x")
    assert path.parent == tmp_path
    assert path.name == "ci-modelver-comment-churn-.._.._etc_x.md"


def test_a_digest_in_index_json_cannot_point_outside_the_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tmp_path / "secret").write_text("outside")
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:../../../secret",
        "size": 7,
        "annotations": {"org.opencontainers.image.ref.name": "1.0.0"},
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    result = run_cli("show", f"oci:{root}:1.0.0", env=base_env(tmp_path))
    assert result.code == 2
    assert "malformed" in result.err or "invalid digest" in result.err
    assert "outside" not in result.out


def test_conflicting_extra_version_tag_is_refused_before_any_upload(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    store = f"oci:{tmp_path / 'store'}"
    assert (
        run_cli(
            "publish",
            str(make_model(tmp_path / "a", name="t", version="2.0.0")),
            "--repository",
            store,
            env=env,
        ).code
        == 0
    )
    blobs = tmp_path / "store" / "blobs" / "sha256"
    before = sorted(p.name for p in blobs.iterdir())
    other = make_model(tmp_path / "b", name="t", version="1.0.0", weights=b"different")
    result = run_cli("publish", str(other), "--repository", store, "--tag", "2.0.0", env=env)
    assert result.code == 4
    assert sorted(p.name for p in blobs.iterdir()) == before  # nothing was uploaded
    assert "1.0.0" not in run_cli("versions", store, env=env).out

"""A second, independent client: skopeo reads what we write, and we read what skopeo copies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry

pytestmark = pytest.mark.integration


def _skopeo(skopeo: str, *args: str) -> str:
    done = subprocess.run([skopeo, *args], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_skopeo_reads_the_embedded_layout_store(
    skopeo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = make_model(tmp_path / "m", name="layout-demo")
    result = run_cli("publish", str(manifest), "--format", "json", env=base_env(tmp_path))
    assert result.code == 0, result.err
    digest = json.loads(result.out)["digest"]
    assert (tmp_path / ".modelver" / "layout-demo" / "index.json").is_file()
    raw = _skopeo(skopeo, "inspect", "--raw", "oci:.modelver/layout-demo:1.0.0")
    doc = json.loads(raw)
    assert doc["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert "sha256:" + __import__("hashlib").sha256(raw.encode()).hexdigest() == digest
    config = json.loads(
        _skopeo(skopeo, "inspect", "--raw", "--config", "oci:.modelver/layout-demo:1.0.0")
    )
    assert config["descriptor"]["name"] == "layout-demo"


def test_skopeo_copies_our_artifact_and_we_pull_the_copy(
    skopeo: str, registry: Registry, tmp_path: Path
) -> None:
    env = base_env(tmp_path)
    src = registry.repo("skopeo/source")
    result = run_cli(
        "publish", str(EXAMPLE / "modelver.yaml"), "--repository", src, "--format", "json", env=env
    )
    assert result.code == 0, result.err
    digest = json.loads(result.out)["digest"]
    dst = registry.repo("skopeo/copy")
    _skopeo(
        skopeo,
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{src}:1.0.0",
        f"docker://{dst}:1.0.0",
    )
    out = tmp_path / "copy"
    pulled = run_cli("pull", f"{dst}:1.0.0", "-o", str(out), "--format", "json", env=env)
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["digest"] == digest
    assert (out / "model/model.safetensors").read_bytes() == (
        EXAMPLE / "model/model.safetensors"
    ).read_bytes()


def test_skopeo_layout_to_registry_then_we_read_it(
    skopeo: str, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = base_env(tmp_path)
    manifest = make_model(tmp_path / "m", name="via-skopeo")
    digest = json.loads(run_cli("publish", str(manifest), "--format", "json", env=env).out)[
        "digest"
    ]
    dst = registry.repo("skopeo/from-layout")
    _skopeo(
        skopeo,
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "oci:.modelver/via-skopeo:1.0.0",
        f"docker://{dst}:1.0.0",
    )
    shown = run_cli("show", f"{dst}:1.0.0", "--format", "json", env=env)
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["digest"] == digest
    listed = json.loads(run_cli("versions", dst, "--format", "json", env=env).out)
    assert listed["versions"] == [{"version": "1.0.0", "digest": digest, "aliases": []}]

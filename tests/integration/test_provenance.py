"""Build provenance end to end: publish with a training command and lock files into the real
registry (Debian's docker-registry) and into an OCI layout, read it back with ``show``,
``reproduce`` and skopeo, check the lock files with ``reproduce --check-env``, and the action's
publish mode setting ``subject-name``/``subject-digest`` for ``actions/attest-build-provenance``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.core.modelpack import ANN_RECORD
from ci_modelver.packing import machine_platform, python_version
from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.integration import test_action_e2e as e2e
from tests.integration.test_action_e2e import NAME, World, _fail_message, _push_tag
from tests.support.github_fixtures import WebhookFactory
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

STORES = ["registry", "layout"]
COMMAND = "python train.py --epochs 3 --seed 1729"
# The composite-action harness's fixtures: the action's venv (once per session) and a world.
action_venv = e2e.action_venv
world = e2e.world

RERUN = {"GITHUB_RUN_ATTEMPT": "2", "RUNNER_NAME": "GitHub Actions 9"}


def _repository(store: str, registry: Registry, tmp_path: Path) -> str:
    if store == "registry":
        return registry.repo(f"provenance/r{uuid.uuid4().hex[:12]}/demo")
    return f"oci:{tmp_path / 'layout'}"


def _monorepo(tmp_path: Path) -> Path:
    """models/demo/modelver.yaml with requirements.txt beside it and the root's uv.lock listed."""
    root = tmp_path / "repo"
    manifest = make_model(root / "models" / "demo", build={"lockfiles": ["../../uv.lock"]})
    (root / "uv.lock").write_text('version = 1\n[[package]]\nname = "numpy"\n')
    (manifest.parent / "requirements.txt").write_text("numpy==2.0.0\nscikit-learn==1.5.0\n")
    return manifest


def _cli(*args: str, env: dict[str, str]) -> Run:
    result = run_cli(*args, "--timeout", "30", env=env)
    assert "Traceback" not in result.err
    return result


def _publish(manifest: Path, repository: str, env: dict[str, str]) -> dict[str, Any]:
    result = _cli(
        "publish",
        str(manifest),
        "--repository",
        repository,
        "--command",
        COMMAND,
        "--format",
        "json",
        env=env,
    )
    assert result.code == 0, result.err
    doc: dict[str, Any] = json.loads(result.out)
    return doc


@pytest.mark.parametrize("store", STORES)
def test_publish_records_the_build_and_show_and_reproduce_print_it(
    store: str, registry: Registry, tmp_path: Path
) -> None:
    manifest = _monorepo(tmp_path)
    repository = _repository(store, registry, tmp_path)
    env = base_env(tmp_path / "home")
    published = _publish(manifest, repository, env)
    ref = f"{repository}:1.0.0"

    shown = json.loads(_cli("show", ref, "--format", "json", env=env).out)
    assert shown["digest"] == published["digest"]
    build = shown["record"]["build"]
    assert build["command"] == COMMAND
    assert [f["path"] for f in build["lockfiles"]] == ["../../uv.lock", "requirements.txt"]
    assert all(f["digest"].startswith("sha256:") for f in build["lockfiles"])
    assert build["python"] == python_version() and build["platform"] == machine_platform()
    assert "ci" not in build

    text = _cli("show", ref, env=env).out.splitlines()
    assert f"  command:   {COMMAND}" in text
    assert sum(line.startswith("  lock file: ") for line in text) == 2

    reproduced = _cli("reproduce", ref, "--check-env", str(manifest.parent), env=env)
    assert reproduced.code == 0, reproduced.err
    lines = reproduced.out.splitlines()
    assert f"  command:   {COMMAND}" in lines
    assert lines[lines.index("environment check:") + 1 :][:2] == [
        "  ../../uv.lock: match",
        "  requirements.txt: match",
    ]


@pytest.mark.parametrize("store", STORES)
def test_re_publishing_unchanged_files_is_already_published(
    store: str, registry: Registry, tmp_path: Path
) -> None:
    manifest = _monorepo(tmp_path)
    repository = _repository(store, registry, tmp_path)
    env = base_env(tmp_path / "home")
    first = _publish(manifest, repository, env)
    assert first["status"] == "published"
    again = _publish(manifest, repository, env)
    assert again["status"] == "unchanged" and again["digest"] == first["digest"]
    assert again["blobs"] == {"uploaded": 0, "present": 0, "bytesUploaded": 0}


@pytest.mark.parametrize("store", STORES)
def test_reproduce_with_a_changed_lock_file_exits_1_and_names_it(
    store: str, registry: Registry, tmp_path: Path
) -> None:
    manifest = _monorepo(tmp_path)
    repository = _repository(store, registry, tmp_path)
    env = base_env(tmp_path / "home")
    _publish(manifest, repository, env)
    (tmp_path / "repo" / "uv.lock").write_text('version = 1\n[[package]]\nname = "torch"\n')
    result = _cli("reproduce", f"{repository}:1.0.0", "--check-env", str(manifest.parent), env=env)
    assert result.code == 1, result.err
    assert "  ../../uv.lock: mismatch (found sha256:" in result.out
    assert "  requirements.txt: match" in result.out
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: lock file(s) differ from the ones recorded at publish time: "
        "../../uv.lock (mismatch)"
    ]
    doc = json.loads(
        _cli(
            "reproduce",
            f"{repository}:1.0.0",
            "--check-env",
            str(manifest.parent),
            "--format",
            "json",
            env=env,
        ).out
    )
    assert [(c["path"], c["status"]) for c in doc["envCheck"]] == [
        ("../../uv.lock", "mismatch"),
        ("requirements.txt", "match"),
    ]


def test_skopeo_reads_the_same_build_block(registry: Registry, skopeo: str, tmp_path: Path) -> None:
    """Another client sees the build block in the manifest the digest covers."""
    manifest = _monorepo(tmp_path)
    repository = _repository("registry", registry, tmp_path)
    env = base_env(tmp_path / "home")
    published = _publish(manifest, repository, env)
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{repository}:1.0.0"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == published["digest"]
    record = json.loads(json.loads(raw)["annotations"][ANN_RECORD])
    assert record["build"]["command"] == COMMAND
    assert [f["path"] for f in record["build"]["lockfiles"]] == [
        "../../uv.lock",
        "requirements.txt",
    ]


# ---------------------------------------------------------------------------------------------
# The action: publish mode's subject outputs, and what a workflow run records


def test_action_publish_sets_the_subject_outputs_and_records_the_run(
    world: World, webhook_payload: WebhookFactory
) -> None:
    event = _push_tag(webhook_payload, "v1.0.0")
    result = world.act(event)
    assert result.exit_code == 0, _fail_message(result)
    served = world.served_digest("1.0.0")
    assert served is not None
    assert result.outputs["subject-name"] == world.repository  # without tag or digest
    assert result.outputs["subject-digest"] == served == result.outputs["digest"]

    shown = json.loads(world.cli("show", f"{world.repository}:1.0.0", "--format", "json"))
    ci = shown["record"]["build"]["ci"]
    assert ci == {
        "system": "github-actions",
        "runner": {"os": "Linux", "arch": "X64", "environment": "github-hosted"},
        "workflow": "e2e",
        "runId": "4242",
        "runUrl": "https://github.com/acme/models/actions/runs/4242",
    }
    assert "GitHub Actions 1" not in json.dumps(shown)  # the runner's name is not recorded

    # "Re-run jobs": a new attempt, maybe on another runner, of a publish that already landed.
    world.env.update(RERUN)
    again = world.act(event)
    assert again.exit_code == 0, _fail_message(again)
    assert "already published" in again.stdout
    assert again.outputs["subject-digest"] == served
    assert again.outputs["subject-name"] == world.repository


def test_action_publish_to_a_layout_leaves_the_subject_name_empty(
    world: World, webhook_payload: WebhookFactory
) -> None:
    layout = f"oci:{world.tmp / 'layout'}"
    result = world.act(_push_tag(webhook_payload, "v1.0.0"), repository=layout)
    assert result.exit_code == 0, _fail_message(result)
    assert result.outputs["subject-name"] == ""
    assert result.outputs["subject-digest"] == result.outputs["digest"]
    assert result.outputs["subject-digest"].startswith("sha256:")
    shown = json.loads(world.cli("show", f"{layout}:1.0.0", "--format", "json"))
    assert shown["name"] == NAME and shown["digest"] == result.outputs["digest"]


def test_action_promote_sets_no_subject_outputs(world: World) -> None:
    """Moving an alias builds nothing: no build provenance subject."""
    world.publish_cli()
    result = world.act(None, mode="promote", to="1.0.0")
    assert result.exit_code == 0, _fail_message(result)
    assert result.outputs["digest"] == world.served_digest("1.0.0")
    assert "subject-name" not in result.step("run").outputs
    assert "subject-digest" not in result.step("run").outputs

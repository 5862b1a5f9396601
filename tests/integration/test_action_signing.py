"""The action's publish mode signs with a key the workflow sets, and masks it first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.signing_keys import PASSPHRASE, write_key
from tests.support.workflow_safety import output_entries

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_publish_mode_signs_with_the_environment_key(tmp_path: Path, encrypted: bool) -> None:
    keys = write_key(tmp_path / "keys", "release", password=PASSPHRASE if encrypted else None)
    manifest = make_model(tmp_path / "m", name="churn")
    store = f"oci:{tmp_path / 'store'}"
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = base_env(
        tmp_path,
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME="push",
        GITHUB_REF="refs/tags/v1.0.0",
        GITHUB_REPOSITORY="acme/models",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        RUNNER_TEMP=str(tmp_path / "runner"),
        INPUT_MODE="publish",
        INPUT_MANIFEST=str(manifest),
        INPUT_REPOSITORY=store,
        INPUT_MOVE_LATEST="false",
        MODELVER_SIGNING_KEY=keys.private_pem,
        **({"MODELVER_SIGNING_KEY_PASSWORD": PASSPHRASE} if encrypted else {}),
    )
    done = run_cli("action", env=env)
    assert done.code == 0, done.err
    masks = [line for line in done.out.splitlines() if line.startswith("::add-mask::")]
    assert masks and done.out.splitlines()[: len(masks)] == masks  # masks come first
    digest = dict(output_entries(output))["digest"]
    verified = run_cli(
        "verify", f"{store}@{digest}", "--key", str(keys.public), env=base_env(tmp_path)
    )
    assert verified.code == 0, verified.err
    shown = done.out + done.err + output.read_text() + summary.read_text()
    body = [line for line in keys.private_pem.splitlines() if not line.startswith("-----")]
    for secret in [*body, PASSPHRASE] if encrypted else body:
        # Outside a mask command, no secret (or a line of it) is ever printed or written.
        rest = "\n".join(line for line in shown.splitlines() if not line.startswith("::add-mask::"))
        assert secret not in rest

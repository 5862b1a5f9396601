"""The composite action end to end: action.yml's steps run like on a GitHub runner.

Real webhook payloads drive ``mode: auto``; versions go to a real registry on loopback and the
sticky comment to the fake GitHub API. The action's venv is installed once per session by the
action's own install step (``pip install $GITHUB_ACTION_PATH``) and linked into each run's
fresh ``$RUNNER_TEMP``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLE, ROOT, run_cli
from tests.helpers import EPOCH
from tests.support.action_runner import (
    RUNNER_DEFAULTS,
    ActionResult,
    Contexts,
    UnsupportedExpression,
    evaluate,
    install_action_venv,
    link_prepared_venv,
    parse_file_command,
    run_composite_action,
)
from tests.support.fake_github import Comment, FakeGitHub
from tests.support.github_fixtures import WebhookEvent, WebhookFactory
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

OWNER, REPO, PR = "acme", "models", 12
ACTOR = "octo-releaser"
NAME = "churn-classifier"
MARKER = f"<!-- ci-modelver:report name={NAME} -->"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Settings a caller may have in its environment that pip needs to reach an index.
PIP_PASSTHROUGH = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CACHE_DIR", "PIP_CERT")
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")

WORSE_METRICS = {
    "test-shifted": {"accuracy": 0.70, "auc": 0.74, "f1": 0.70, "log_loss": 0.70},
    "validation": {"accuracy": 0.70, "auc": 0.75, "f1": 0.65, "log_loss": 0.65},
}


@pytest.fixture(scope="session")
def action_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv action.yml's install step builds, once per session."""
    root = tmp_path_factory.mktemp("action-install")
    (root / "home").mkdir()
    (root / "workspace").mkdir()
    env = {"HOME": str(root / "home"), "PATH": "/usr/bin:/bin", "GITHUB_ACTOR": ACTOR}
    env.update({k: os.environ[k] for k in (*PIP_PASSTHROUGH, *PROXIES) if k in os.environ})
    venv, result = install_action_venv(
        ROOT, root / "runner-temp", workspace=root / "workspace", env=env
    )
    install = result.steps[-1]
    assert install.conclusion == "success", (
        f"the action's install step failed ({install.exit_code}):\n{install.stdout}{install.stderr}"
    )
    assert (venv / "bin" / "ci-modelver").is_file()
    # The install step went through the setup-python stand-in's interpreter.
    assert install.env["MODELVER_PYTHON"] == result.steps[0].outputs["python-path"]
    return venv


@dataclass
class World:
    """One test's workspace, registry repository and job environment."""

    tmp: Path
    workspace: Path
    registry: Registry
    repository: str  # HOST:PORT/path
    env: dict[str, str]
    venv: Path
    runs: int = 0

    @property
    def path(self) -> str:
        return self.repository.split("/", 1)[1]

    def act(
        self,
        event: WebhookEvent | None,
        merge_stderr: bool = False,
        credentials: bool = True,
        **inputs: str,
    ) -> ActionResult:
        """Run the action; inputs as keyword arguments, ``_`` for ``-``."""
        self.runs += 1
        runner_temp = self.tmp / f"runner-temp-{self.runs}"
        link_prepared_venv(runner_temp, self.venv)
        given = {"repository": self.repository}
        if credentials:  # the test registry has no auth: any value works
            given.update(
                {"registry-username": "ci", "registry-password": "dummy-registry-password"}
            )
        given.update({key.replace("_", "-"): value for key, value in inputs.items()})
        env = dict(self.env)
        if event is None:
            env["GITHUB_EVENT_NAME"] = "workflow_dispatch"
        return run_composite_action(
            ROOT,
            given,
            workspace=self.workspace,
            env=env,
            event=event,
            runner_temp=runner_temp,
            skip_install_if_present=True,
            merge_stderr=merge_stderr,
            timeout=120,
        )

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((self.workspace / "modelver.yaml").read_text())
        return doc

    def change(self, version: str, metrics: dict[str, dict[str, float]] | None = None) -> None:
        """What a pull request does: bump the version, maybe with new metrics."""
        path = self.workspace / "modelver.yaml"
        text = path.read_text()
        old = f"version: {self.manifest()['version']}\n"
        assert old in text
        path.write_text(text.replace(old, f"version: {version}\n"))
        if metrics is not None:
            (self.workspace / "metrics.json").write_text(json.dumps(metrics, indent=2))

    def cli(self, *args: str) -> str:
        result = run_cli(*args, env=self.env)
        assert result.code == 0, result.err
        return result.out

    def publish_cli(self, *tags: str) -> str:
        extra = [arg for tag in tags for arg in ("--tag", tag)]
        out = self.cli(
            "publish",
            str(self.workspace / "modelver.yaml"),
            "--repository",
            self.repository,
            "--format",
            "json",
            *extra,
        )
        return str(json.loads(out)["digest"])

    # -- what the registry serves, read without ci-modelver --

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
def world(registry: Registry, action_venv: Path, tmp_path: Path) -> Iterator[World]:
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, workspace)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "SOURCE_DATE_EPOCH": EPOCH,
        "GITHUB_ACTOR": ACTOR,
    }
    repository = registry.repo(f"e2e/r{uuid.uuid4().hex[:12]}/{NAME}")
    yield World(tmp_path, workspace, registry, repository, env, action_venv)


def _open_pull_request(
    world: World, fake: FakeGitHub, webhook_payload: WebhookFactory, *, fork: bool = False
) -> WebhookEvent:
    """production = 1.0.0; the pull request bumps the version to 1.1.0."""
    fake.add_repo(OWNER, REPO)
    fake.add_pull_request(OWNER, REPO, PR, f"forker/{REPO}" if fork else None)
    token = fake.READONLY_TOKEN if fork else fake.INSTALLATION_TOKEN
    world.env.update(GITHUB_API_URL=fake.base_url, GITHUB_TOKEN=token)
    world.publish_cli("production")
    world.change("1.1.0")
    return webhook_payload(
        "pull_request",
        "opened",
        owner=OWNER,
        repo=REPO,
        number=PR,
        fork=fork,
        api_url=fake.base_url,
    )


@pytest.fixture
def pr_world(
    world: World, fake_github: FakeGitHub, webhook_payload: WebhookFactory
) -> tuple[World, FakeGitHub, WebhookEvent]:
    """A pull request on acme/models with the default token (github.token feeds github-token)."""
    return world, fake_github, _open_pull_request(world, fake_github, webhook_payload)


def _ours(fake: FakeGitHub) -> list[Comment]:
    return [c for c in fake.comments(OWNER, REPO, PR) if c.body.startswith(MARKER)]


def _push_tag(webhook_payload: WebhookFactory, tag: str) -> WebhookEvent:
    return webhook_payload("push", None, owner=OWNER, repo=REPO, ref=f"refs/tags/{tag}")


def _dispatch(webhook_payload: WebhookFactory) -> WebhookEvent:
    return webhook_payload("workflow_dispatch", None, owner=OWNER, repo=REPO)


def _fail_message(result: ActionResult) -> str:
    return "\n".join(f"[{line.stream}] {line.text}" for line in result.log)


# ---------------------------------------------------------------------------------------------
# Pull requests


def test_pr_check_green_creates_the_sticky_comment(
    pr_world: tuple[World, FakeGitHub, WebhookEvent],
) -> None:
    world, fake, event = pr_world
    result = world.act(event)
    assert result.exit_code == 0, _fail_message(result)
    assert [s.conclusion for s in result.steps] == ["success", "skipped", "success"]
    assert result.outputs["regression"] == "false"
    assert result.outputs["baseline-digest"] == world.served_digest("production")
    [comment] = fake.comments(OWNER, REPO, PR)
    assert comment.login == fake.BOT_LOGIN and comment.body.startswith(MARKER)
    assert f"{NAME} 1.1.0" in comment.body and "production (1.0.0)" in comment.body
    assert result.outputs["comment-url"].endswith(f"#issuecomment-{comment.id}")
    report = Path(result.outputs["report-path"])
    assert report.parent == result.runner_temp and report.read_text() == comment.body
    assert MARKER in result.summary and f"{NAME} 1.1.0" in result.summary
    assert "comment created: " in result.stdout
    assert not result.annotations("error")
    # The check pushes nothing: still only the baseline.
    assert world.tags() == ["1.0.0", "production"]


def test_pr_check_red_updates_the_same_comment_and_fails(
    pr_world: tuple[World, FakeGitHub, WebhookEvent],
) -> None:
    world, fake, event = pr_world
    first = world.act(event)
    assert first.exit_code == 0, _fail_message(first)
    [created] = _ours(fake)

    world.change("1.1.0", WORSE_METRICS)  # same PR, new push: clearly worse numbers
    result = world.act(event)
    run = result.step("run")
    assert run.exit_code == 1, _fail_message(result)
    assert result.exit_code == 1
    assert result.outputs["regression"] == "true"
    [updated] = _ours(fake)
    assert updated.id == created.id and updated.login == "github-actions[bot]"
    assert updated.body != created.body and "❌" in updated.body
    assert len(fake.comments(OWNER, REPO, PR)) == 1
    assert len(fake.requests_matching("POST", r"/comments$")) == 1
    assert result.outputs["comment-url"].endswith(f"#issuecomment-{created.id}")
    errors = result.annotations("error")
    assert errors and all(e.properties["title"] == "ci-modelver regression" for e in errors)
    assert any(e.data.startswith("validation/accuracy: ") for e in errors)
    assert "comment updated: " in result.stdout
    assert "❌" in result.summary


def test_pr_from_a_fork_warns_and_keeps_the_report(
    world: World, fake_github: FakeGitHub, webhook_payload: WebhookFactory
) -> None:
    event = _open_pull_request(world, fake_github, webhook_payload, fork=True)
    result = world.act(event)
    assert result.exit_code == 0, _fail_message(result)
    assert fake_github.comments(OWNER, REPO, PR) == []
    [warning] = result.annotations("warning")
    assert warning.properties["title"] == "ci-modelver"
    assert result.outputs["regression"] == "false"
    assert result.outputs["comment-url"] == ""
    report = Path(result.outputs["report-path"])
    assert report.read_text().startswith(MARKER)  # for a later workflow_run job to post
    assert MARKER in result.summary


def test_pr_check_sets_the_candidate_digest_output(
    pr_world: tuple[World, FakeGitHub, WebhookEvent],
) -> None:
    world, _fake, event = pr_world
    result = world.act(event, comment="false")
    assert result.exit_code == 0, _fail_message(result)
    assert result.outputs["version"] == "1.1.0"
    assert result.outputs["digest"].startswith("sha256:")


# ---------------------------------------------------------------------------------------------
# Tags


def test_tag_push_publishes_the_version_and_moves_latest(
    world: World, webhook_payload: WebhookFactory
) -> None:
    event = _push_tag(webhook_payload, "v1.0.0")
    result = world.act(event)
    assert result.exit_code == 0, _fail_message(result)
    served = world.served_digest("1.0.0")
    assert served is not None
    assert result.outputs["digest"] == served
    assert result.outputs["version"] == "1.0.0"
    assert result.outputs["ref"] == f"{world.repository}@{served}"
    assert world.served_digest("latest") == served
    assert world.tags() == ["1.0.0", "latest"]
    assert f"{NAME} 1.0.0 published" in result.summary and served in result.summary
    # Deterministic (SOURCE_DATE_EPOCH, commit from the event): what the CLI reports agrees.
    shown = json.loads(world.cli("show", f"{world.repository}:1.0.0", "--format", "json"))
    assert shown["digest"] == served

    again = world.act(event)  # a re-run of the same job
    assert again.exit_code == 0, _fail_message(again)
    assert again.outputs["digest"] == served
    assert "already published" in again.stdout


def test_tag_that_does_not_match_the_version_is_refused(
    world: World, webhook_payload: WebhookFactory
) -> None:
    world.publish_cli()
    before, uploads = world.tags(), world.uploads()
    result = world.act(_push_tag(webhook_payload, "v9.9.9"))
    run = result.step("run")
    assert run.exit_code == 2, _fail_message(result)
    errors = [line for line in run.stderr.splitlines() if line]
    assert len(errors) == 1 and errors[0].startswith("error: tag 'v9.9.9' means version '9.9.9'")
    assert "nothing was pushed" in errors[0]
    assert world.served_digest("9.9.9") is None
    assert world.tags() == before == ["1.0.0"]
    assert world.uploads() == uploads
    assert result.outputs["digest"] == ""


def test_model_tags_in_a_repository_with_several_models(
    world: World, webhook_payload: WebhookFactory
) -> None:
    other = world.act(_push_tag(webhook_payload, "other-model@v1.0.0"))
    assert other.exit_code == 0, _fail_message(other)
    assert world.tags() is None and other.outputs["digest"] == ""
    assert f"tag `other-model@v1.0.0` is not for `{NAME}`; nothing published" in other.summary

    ours = world.act(_push_tag(webhook_payload, f"{NAME}@v1.0.0"))
    assert ours.exit_code == 0, _fail_message(ours)
    assert ours.outputs["digest"] == world.served_digest("1.0.0") is not None
    assert world.tags() == ["1.0.0", "latest"]


# ---------------------------------------------------------------------------------------------
# Dispatch: promote, rollback, mode auto


def test_dispatch_promote_then_rollback_moves_production_back(
    world: World, webhook_payload: WebhookFactory
) -> None:
    d1 = world.publish_cli()
    world.change("1.1.0", WORSE_METRICS)
    d2 = world.publish_cli()
    world.cli("promote", f"{world.repository}:1.0.0", "--alias", "production")

    promoted = world.act(_dispatch(webhook_payload), mode="promote", to="v1.1.0")
    assert promoted.exit_code == 0, _fail_message(promoted)
    assert promoted.outputs["digest"] == d2 == world.served_digest("production")

    result = world.act(_dispatch(webhook_payload), mode="rollback", alias="production")
    assert result.exit_code == 0, _fail_message(result)
    assert world.served_digest("production") == d1
    assert result.outputs["digest"] == d1
    assert result.outputs["version"] == "1.0.0"
    assert result.outputs["ref"] == f"{world.repository}@{d1}"
    assert "rollback `production` → 1.0.0" in result.summary
    history = json.loads(world.cli("history", world.repository, "--format", "json"))
    [promote] = [m for m in history["aliasLog"] if m["toVersion"] == "1.1.0"]
    [back] = [m for m in history["aliasLog"] if m["action"] == "rollback"]
    assert promote["action"] == "promote" and promote["reason"] == "promote from GitHub Actions"
    assert back["actor"] == promote["actor"] == ACTOR
    assert back["toVersion"] == "1.0.0" and back["fromVersion"] == "1.1.0"
    assert (
        back["runUrl"]
        == f"https://github.com/{OWNER}/{REPO}/actions/runs/{RUNNER_DEFAULTS['GITHUB_RUN_ID']}"
    )


def test_mode_auto_on_dispatch_is_refused_with_one_line(
    world: World, webhook_payload: WebhookFactory
) -> None:
    uploads = world.uploads()
    result = world.act(_dispatch(webhook_payload))
    run = result.step("run")
    assert run.exit_code == 2, _fail_message(result)
    errors = [line for line in run.stderr.splitlines() if line]
    assert len(errors) == 1
    assert errors[0].startswith("error: input 'mode' is auto, but a 'workflow_dispatch' event")
    assert "set mode: check, publish, promote or rollback" in errors[0]
    assert world.tags() is None and world.uploads() == uploads


# ---------------------------------------------------------------------------------------------
# Secrets


def _files_under(folder: Path, skip: str = "ci-modelver-venv") -> Iterator[Path]:
    for path in folder.rglob("*"):
        if skip in path.relative_to(folder).parts[:1] or not path.is_file():
            continue
        yield path


def _assert_secrets_stay_hidden(result: ActionResult, secrets: list[str]) -> None:
    run = result.step("run")
    first = [line.text for line in run.transcript[: len(secrets)]]
    assert sorted(first) == sorted(f"::add-mask::{s}" for s in secrets), first
    assert all(s in result.masks for s in secrets)
    for line in result.log:
        if line.text.startswith("::add-mask::"):
            continue
        assert not any(s in line.text for s in secrets), f"secret in {line}"
    for text in (result.summary, json.dumps(result.outputs), json.dumps(result.step_outputs)):
        assert not any(s in text for s in secrets)
    for path in _files_under(result.runner_temp):
        data = path.read_bytes()
        assert not any(s.encode() in data for s in secrets), f"secret in {path}"


def test_secrets_are_masked_first_and_never_written(
    pr_world: tuple[World, FakeGitHub, WebhookEvent], webhook_payload: WebhookFactory
) -> None:
    world, fake, event = pr_world
    password = f"regpw-{uuid.uuid4().hex}"
    token = f"ghs_{uuid.uuid4().hex}"
    fake.add_token(token, fake.BOT_LOGIN, type="Bot", user_endpoint=False)
    world.env["GITHUB_TOKEN"] = f"ghs_{uuid.uuid4().hex}"  # github.token: unused, inputs win
    secrets = [password, token]

    checked = world.act(event, registry_password=password, github_token=token)
    assert checked.exit_code == 0, _fail_message(checked)
    assert len(_ours(fake)) == 1
    _assert_secrets_stay_hidden(checked, secrets)

    published = world.act(
        _push_tag(webhook_payload, "v1.1.0"), registry_password=password, github_token=token
    )
    assert published.exit_code == 0, _fail_message(published)
    _assert_secrets_stay_hidden(published, secrets)

    for comment in fake.comments(OWNER, REPO, PR):
        assert not any(s in comment.body for s in secrets)
    for folder in (world.workspace, world.registry.log.parent / "data"):
        for path in _files_under(folder):
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), f"secret in {path}"


def test_a_multi_line_password_is_masked_on_every_line(
    world: World, webhook_payload: WebhookFactory
) -> None:
    first, second = f"key-{uuid.uuid4().hex}", f"private-{uuid.uuid4().hex}"
    result = world.act(_push_tag(webhook_payload, "v1.0.0"), registry_password=f"{first}\n{second}")
    assert result.exit_code == 0, _fail_message(result)
    shown = "\n".join(result.displayed_log)
    assert first not in shown
    assert second not in shown


def test_masks_reach_the_log_before_an_error(world: World, webhook_payload: WebhookFactory) -> None:
    world.env["GITHUB_TOKEN"] = f"ghs_{uuid.uuid4().hex}"
    # One pipe for both streams: the order in which the process wrote, deterministically.
    result = world.act(_push_tag(webhook_payload, "v9.9.9"), merge_stderr=True)
    run = result.step("run")
    assert run.exit_code == 2
    texts = [line.text for line in run.transcript]
    error = next(i for i, text in enumerate(texts) if text.startswith("error: "))
    masks = [i for i, text in enumerate(texts) if text.startswith("::add-mask::")]
    assert masks == [0, 1], texts
    assert error > max(masks), texts


@dataclass
class TokenRealm:
    """A registry that wants a bearer token from its realm; records the realm's Basic logins."""

    server: ThreadingHTTPServer
    logins: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def token_realm() -> Iterator[TokenRealm]:
    realm: TokenRealm

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            if self.path.startswith("/token") and auth.startswith("Basic "):
                realm.logins.append(base64.b64decode(auth[6:]).decode())
            self.send_response(401)
            challenge = f'Bearer realm="http://{realm.host}/token",service="{realm.host}"'
            self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

    realm = TokenRealm(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    thread = threading.Thread(target=realm.server.serve_forever, daemon=True)
    thread.start()
    yield realm
    realm.server.shutdown()
    realm.server.server_close()
    thread.join(timeout=5)


def test_the_job_token_goes_only_to_ghcr_and_docker_login_still_works(
    world: World, webhook_payload: WebhookFactory, token_realm: TokenRealm
) -> None:
    job_token = f"ghs_{uuid.uuid4().hex}"
    world.env["GITHUB_TOKEN"] = job_token
    docker = Path(world.env["HOME"]) / ".docker"
    docker.mkdir()
    login = base64.b64encode(b"robot:robot-pass").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {token_realm.host: {"auth": login}}}))
    repository = f"{token_realm.host}/acme/{NAME}"
    # The CLI uses the docker login (what docker/login-action leaves behind) for this host.
    assert run_cli("versions", repository, env=world.env).code == 3
    assert token_realm.logins == ["robot:robot-pass"]
    token_realm.logins.clear()

    result = world.act(
        _dispatch(webhook_payload), credentials=False, repository=repository, mode="rollback"
    )
    assert result.exit_code == 3, _fail_message(result)
    assert token_realm.logins, "the registry was never asked for a token"
    assert not any(job_token in login for login in token_realm.logins), token_realm.logins
    assert "robot:robot-pass" in token_realm.logins


# ---------------------------------------------------------------------------------------------
# The harness itself


def test_harness_refuses_expressions_it_does_not_evaluate() -> None:
    ctx = Contexts({"actor": "a", "token": "t"}, {"mode": "check"}, {}, frozenset({"run"}))
    assert evaluate("${{ inputs.mode }}-${{github.actor}}", ctx, "x") == "check-a"
    assert evaluate("${{ steps.run.outputs.digest }}", ctx, "x") == ""
    for unsupported in (
        "${{ inputs.nope }}",
        "${{ steps.other.outputs.digest }}",
        "${{ github.event_name }}",
        "${{ secrets.TOKEN }}",
        "${{ inputs.mode == 'check' }}",
        "${{ format('{0}', inputs.mode) }}",
        "${{ inputs.mode",
    ):
        with pytest.raises(UnsupportedExpression):
            evaluate(unsupported, ctx, "x")


def test_harness_reads_file_commands_like_the_runner(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("a=1\nb<<EOF\nline 1\nline=2\n\nEOF\nc=x<<y\nd<<D\nD\n")
    assert parse_file_command(path) == [
        ("a", "1"),
        ("b", "line 1\nline=2\n"),
        ("c", "x<<y"),
        ("d", ""),
    ]
    path.write_text("e<<EOF\nno end\n")
    with pytest.raises(ValueError, match="matching delimiter"):
        parse_file_command(path)


TOY_ACTION = """
name: toy
description: exercises the harness
inputs:
  who:
    description: defaults to the actor
    default: ${{ github.actor }}
  greeting:
    description: a plain default
    default: hello
outputs:
  joined:
    description: from step b
    value: ${{ steps.b.outputs.joined }}
  multi:
    description: a multi-line output
    value: ${{ steps.a.outputs.multi }}
runs:
  using: composite
  steps:
    - id: a
      shell: bash
      env:
        WHO: ${{ inputs.who }}
      run: |
        echo "::add-mask::$WHO"
        echo "hi $WHO"
        echo "single=1" >> "$GITHUB_OUTPUT"
        { echo "multi<<EOF"; echo "x"; echo "y"; echo "EOF"; } >> "$GITHUB_OUTPUT"
        echo "FROM_A=a-value" >> "$GITHUB_ENV"
        mkdir -p "$RUNNER_TEMP/tools"
        printf '#!/bin/sh\\necho tool\\n' > "$RUNNER_TEMP/tools/mytool"
        chmod +x "$RUNNER_TEMP/tools/mytool"
        echo "$RUNNER_TEMP/tools" >> "$GITHUB_PATH"
        echo "## from a" >> "$GITHUB_STEP_SUMMARY"
    - id: b
      shell: bash
      env:
        GREETING: ${{ inputs.greeting }}
        SINGLE: ${{ steps.a.outputs.single }}
      run: |
        echo "joined=$GREETING-$SINGLE-$FROM_A-$(mytool)-${GITHUB_TOKEN:-unset}" >> "$GITHUB_OUTPUT"
        echo "cwd=$PWD action=$GITHUB_ACTION_PATH"
        false | true
        echo "pipefail did not stop the step"
    - id: c
      shell: bash
      run: echo "a step after a failure ran"
"""


def test_harness_runs_steps_like_the_runner(tmp_path: Path) -> None:
    action = tmp_path / "toy"
    action.mkdir()
    (action / "action.yml").write_text(TOY_ACTION)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    result = run_composite_action(
        action,
        {},
        workspace=workspace,
        env={
            "PATH": "/usr/bin:/bin",
            "GITHUB_ACTOR": "mona-lisa",
            "GITHUB_TOKEN": "t0k",
            "GITHUB_EVENT_NAME": "workflow_dispatch",
        },
        event={"ref": "refs/heads/main"},
        runner_temp=tmp_path / "rt",
        python_stand_in=sys.executable,
    )
    assert [s.conclusion for s in result.steps] == ["success", "failure"]  # c never ran
    assert result.exit_code == 1
    assert result.outputs == {"joined": "hello-1-a-value-tool-unset", "multi": "x\ny"}
    assert result.masks == ["mona-lisa"]
    assert "hi ***" in result.displayed_log
    assert f"cwd={workspace} action={action}" in result.stdout
    assert "pipefail" not in result.stdout
    assert result.summary == "## from a\n"
    assert json.loads(result.event_path.read_text()) == {"ref": "refs/heads/main"}
    env = result.step("b").env
    assert env["GITHUB_REF"] == "refs/heads/main" and env["GITHUB_REF_NAME"] == "main"
    assert env["GITHUB_EVENT_PATH"] == str(result.event_path)
    assert env["RUNNER_TEMP"] == str(tmp_path / "rt") and env["GITHUB_ACTIONS"] == "true"

"""Hostile pull requests, and the GitHub Action's unhappy paths.

A. Text a pull-request author (or a server) controls reaches ``validate``, ``compare`` and
   ``ci-modelver action`` in every mode. Identifiers (metric, set, gate and dataset names, file
   paths, the model name and version) must be refused with exit 2 and a located finding; free
   text (description, hyperparameters, dataset URIs, the ``reason``, ``to`` and ``baseline``
   inputs, the release tag, registry and GitHub error bodies) is accepted or refused as
   documented, and either way nothing printed can act as a workflow command that is not ours,
   ``$GITHUB_OUTPUT`` holds only the documented keys with exactly the expected values, and the
   exit code is the documented one. The checks are in tests/support/workflow_safety.py.
B. In every mode a failure writes the ``### ❌ ci-modelver <mode> failed`` summary and an
   ``::error`` annotation (on the manifest's line when the error has one); a comment that
   cannot be posted leaves the outputs written before it.
C. Messages in action mode name action inputs, never CLI flags.

Most of A runs ``ci-modelver action`` in-process with INPUT_* variables, as action.yml passes
them (fast, the exact streams); the rest runs action.yml's steps like a runner
(tests/support/action_runner.py) with ``$RUNNER_TEMP/ci-modelver-venv`` linked to a folder whose
``bin/ci-modelver`` runs the interpreter of the tests: nothing is installed per test.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Run, run_cli
from tests.helpers import EPOCH, base_env, make_model
from tests.support.action_runner import (
    ActionResult,
    WorkflowCommand,
    link_prepared_venv,
    run_composite_action,
)
from tests.support.fake_github import FakeGitHub
from tests.support.github_fixtures import WebhookEvent, WebhookFactory
from tests.support.hostile_github import HostileGitHub
from tests.support.hostile_registry import Answer, HostileRegistry, error_body
from tests.support.registry import Registry, free_port
from tests.support.workflow_safety import (
    HOSTILE,
    HOSTILE_ENV,
    commands_in,
    escaped_forms,
    output_entries,
    output_problems,
    printable,
    stream_problems,
)

pytestmark = pytest.mark.integration

OWNER, REPO, PR = "acme", "models", 7
NAME = "demo"
ACTOR = "octo-hostile"
DIGEST = "sha256:" + "a" * 64
# A CLI flag, as a message would name one: --baseline, --github-token, --timeout.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
BASE_METRICS = {"validation": {"accuracy": 0.9, "loss": 0.3}}
WORSE_METRICS = {"validation": {"accuracy": 0.5, "loss": 0.3}}
BASE_FIELDS: dict[str, Any] = {
    "description": "baseline",
    "hyperparameters": {"lr": 0.1},
    "data": [{"name": "train", "uri": "s3://bucket/train", "digest": DIGEST}],
    "gates": {"accuracy": {"direction": "higher"}},
}


# ---------------------------------------------------------------------------------------------
# Shared state: a registry repository with 1.0.0 (= production) and 1.0.1


@dataclass(frozen=True)
class Published:
    repository: str
    first: str  # digest of 1.0.0, tagged production
    second: str  # digest of 1.0.1


def _publish(manifest: Path, repository: str, env: dict[str, str], *tags: str) -> str:
    extra = [arg for tag in tags for arg in ("--tag", tag)]
    done = run_cli(
        "publish", str(manifest), "--repository", repository, "--format", "json", *extra, env=env
    )
    assert done.code == 0, done.err
    return str(json.loads(done.out)["digest"])


@pytest.fixture(scope="module")
def published(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Published:
    tmp = tmp_path_factory.mktemp("hostile-published")
    env = base_env(tmp / "home")
    repository = registry.repo(f"hostile/r{uuid.uuid4().hex[:12]}/{NAME}")
    first = make_model(tmp / "v1", name=NAME, version="1.0.0", metrics=BASE_METRICS, **BASE_FIELDS)
    second = make_model(
        tmp / "v2",
        name=NAME,
        version="1.0.1",
        weights=b"weights-v2" * 100,
        metrics=BASE_METRICS,
        **BASE_FIELDS,
    )
    return Published(
        repository,
        _publish(first, repository, env, "production"),
        _publish(second, repository, env),
    )


# ---------------------------------------------------------------------------------------------
# One in-process run of a command inside "GitHub Actions"


@dataclass
class Outcome:
    """A run's exit code, streams, ``$GITHUB_OUTPUT`` entries and job summary."""

    code: int
    out: str
    err: str
    entries: list[tuple[str, str]]
    summary: str
    secrets: tuple[str, ...] = ()

    @property
    def commands(self) -> list[WorkflowCommand]:
        return commands_in(self.out) + commands_in(self.err)

    def annotations(self, level: str) -> list[WorkflowCommand]:
        return [c for c in self.commands if c.name == level]

    def unsafe(self, *hostile: str) -> list[str]:
        return stream_problems(
            "stdout", self.out, secrets=self.secrets, hostile=hostile
        ) + stream_problems("stderr", self.err, secrets=self.secrets, hostile=hostile)

    def explain(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class Job:
    """A fresh runner-like folder: RUNNER_TEMP, the output and summary files, the event file."""

    root: Path
    env: dict[str, str]
    output: Path
    summary: Path
    runner_temp: Path

    def run(self, *args: str, **env: str) -> Outcome:
        done: Run = run_cli(*args, env={**self.env, **env})
        return Outcome(
            done.code,
            done.out,
            done.err,
            output_entries(self.output),
            self.summary.read_text("utf-8"),
        )

    def action(self, inputs: dict[str, str], **env: str) -> Outcome:
        """``ci-modelver action`` with these inputs (INPUT_*), secrets passed as the runner does."""
        inputs = dict(inputs)
        secrets = (
            f"regpw-{uuid.uuid4().hex}",
            inputs.pop("github-token", f"ghs_{uuid.uuid4().hex}"),
        )
        given = {
            "registry-username": "ci",
            "registry-password": secrets[0],
            "github-token": secrets[1],
            **inputs,
        }
        variables = {f"INPUT_{k.upper().replace('-', '_')}": v for k, v in given.items()}
        outcome = self.run("action", **variables, **env)
        outcome.secrets = tuple(s for s in secrets if s)
        return outcome


@pytest.fixture
def job(tmp_path: Path) -> Job:
    root = tmp_path / "job"
    runner_temp = root / "runner-temp"
    runner_temp.mkdir(parents=True)
    output, summary = runner_temp / "github_output", runner_temp / "step_summary"
    output.touch()
    summary.touch()
    env = base_env(
        root / "home",
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_ACTOR=ACTOR,
        GITHUB_REPOSITORY=f"{OWNER}/{REPO}",
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_RUN_ID="4242",
        GITHUB_EVENT_NAME="workflow_dispatch",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        RUNNER_TEMP=str(runner_temp),
        MODELVER_TIMEOUT="20",
    )
    return Job(root, env, output, summary, runner_temp)


def _pull_request(webhook_payload: WebhookFactory, api_url: str) -> WebhookEvent:
    return webhook_payload(
        "pull_request", "opened", owner=OWNER, repo=REPO, number=PR, api_url=api_url
    )


def _pr_env(event: WebhookEvent, api_url: str) -> dict[str, str]:
    return {**event.env(), "GITHUB_API_URL": api_url}


# ---------------------------------------------------------------------------------------------
# Manifests carrying hostile text


def _validates(folder: Path, **fields: Any) -> bool:
    """Whether a manifest with these fields validates (decides where hostile text can go)."""
    manifest = make_model(folder, name=NAME, **fields)
    return run_cli("validate", str(manifest), env=base_env(folder / "home")).code == 0


def hostile_candidate(folder: Path, *texts: str, version: str = "1.1.0") -> Path:
    """A candidate whose free text is ``texts``, and whose identifiers are too where accepted.

    Each text is the description (joined), a hyperparameter key and value, and, where validation
    accepts it, a dataset URI and a metric name with a gate that fails (0.5 under a minimum of
    0.9). The accuracy gate regresses too (0.5 against 0.9), so every text reaches the report
    rows and the regression annotations.
    """
    fields: dict[str, Any] = {
        "version": version,
        "description": " | ".join(texts),
        "hyperparameters": {
            "lr": texts[0],
            **{text: i for i, text in enumerate(texts)},
            **{f"note{i}": text for i, text in enumerate(texts)},
        },
        "data": [],
        "metrics": {"validation": dict(WORSE_METRICS["validation"])},
        "gates": {"accuracy": {"direction": "higher"}},
    }
    for i, text in enumerate(texts):
        uri = {"name": f"set{i}", "uri": f"s3://bucket/{text}", "digest": DIGEST}
        if _validates(folder / f"probe-uri-{i}", **{**fields, "data": [uri]}):
            fields["data"].append(uri)
        metrics = {"validation": {**WORSE_METRICS["validation"], text: 0.5}}
        gate = {f"validation/{text}": {"direction": "higher", "min": 0.9}}
        gates = {"accuracy": {"direction": "higher"}, **gate}
        if _validates(
            folder / f"probe-metric-{i}", **{**fields, "metrics": metrics, "gates": gates}
        ):
            fields["metrics"]["validation"][text] = 0.5
            fields["gates"].update(gate)
    if not fields["data"]:
        fields["data"] = [{"name": "train", "uri": "s3://bucket/train", "digest": DIGEST}]
    return make_model(folder / "candidate", name=NAME, **fields)


def _metric_names(manifest: Path) -> set[str]:
    return set(yaml.safe_load(manifest.read_text("utf-8"))["metrics"]["validation"])


def _local_digest(manifest: Path, env: dict[str, str], folder: Path) -> str:
    """What publishing this manifest gives, in a local layout (the check's packed digest)."""
    clean = {k: v for k, v in env.items() if k not in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
    return _publish(manifest, f"oci:{folder}", clean)


def _flags_in(text: str) -> list[str]:
    return FLAG.findall(text)


HOSTILE_IDS = list(HOSTILE)
HOSTILE_ENV_IDS = list(HOSTILE_ENV)


# ---------------------------------------------------------------------------------------------
# A. validate: identifiers are refused, free text is shown inertly

IDENTIFIERS = ("metric", "set", "gate", "dataset", "file-path", "name", "version")
FREE_TEXT = ("description", "hyperparameter-key", "hyperparameter-value", "dataset-uri")
FORMATS = ("text", "json", "github")


def _with_text(folder: Path, where: str, text: str) -> tuple[Path, str]:
    """A manifest that is valid but for ``text`` at ``where``; and the JSON path of that spot."""
    fields: dict[str, Any] = {}
    path = {
        "metric": "$.metrics.validation[",
        "set": "$.metrics[",
        "gate": "$.gates[",
        "dataset": "$.data[0].name",
        "file-path": "$.files[2].path",
        "name": "$.name",
        "version": "$.version",
        "description": "$.description",
        "hyperparameter-key": "$.hyperparameters",
        "hyperparameter-value": "$.hyperparameters.lr",
        "dataset-uri": "$.data[0].uri",
    }[where]
    if where == "metric":
        fields["metrics"] = {"validation": {"accuracy": 0.9, text: 0.5}}
    elif where == "set":
        fields["metrics"] = {"validation": {"accuracy": 0.9}, text: {"accuracy": 0.9}}
    elif where == "gate":  # a gate on a metric of that name, which exists
        fields["metrics"] = {"validation": {"accuracy": 0.9, text: 0.5}}
        fields["gates"] = {text: {"direction": "higher"}}
    elif where in ("dataset", "dataset-uri"):
        name, uri = (text, "s3://bucket/train") if where == "dataset" else ("train", text)
        fields["data"] = [{"name": name, "uri": uri, "digest": DIGEST}]
    elif where == "name":
        fields["name"] = text
    elif where == "version":
        fields["version"] = text
    elif where == "description":
        fields["description"] = text
    elif where == "hyperparameter-key":
        fields["hyperparameters"] = {"lr": 0.1, text: 1}
    elif where == "hyperparameter-value":
        fields["hyperparameters"] = {"lr": text}
    manifest = make_model(folder, **{"name": NAME, **fields})
    if where == "file-path":
        doc = yaml.safe_load(manifest.read_text("utf-8"))
        doc["files"].append({"path": text, "type": "code"})
        manifest.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
        if "\x00" not in text:  # the file exists: only its name can be the problem
            (folder / text).write_bytes(b"code")
    return manifest, path


# Printable text in an identifier is accepted: only control characters are refused. Such names
# are shown inertly, which test_validate_output_cannot_act_as_a_workflow_command checks.
PRINTABLE_ACCEPTED = {
    (where, key)
    for where in ("metric", "set", "gate", "dataset", "file-path")
    for key in ("percent-escape", "leading-colons", "legacy", "leading-spaces")
} - {("set", "leading-spaces")}


def _refusal_cases() -> Iterator[Any]:
    for where in IDENTIFIERS:
        for key in HOSTILE_IDS:
            if (where, key) not in PRINTABLE_ACCEPTED:
                yield pytest.param(where, key, id=f"{where}-{key}")


@pytest.mark.parametrize(("where", "key"), list(_refusal_cases()))
def test_validate_refuses_a_hostile_identifier(tmp_path: Path, where: str, key: str) -> None:
    manifest, path = _with_text(tmp_path / "m", where, HOSTILE[key])
    benign, _ = _with_text(
        tmp_path / "benign", where, "plain-1.2.3" if where != "version" else "1.2.3"
    )
    env = base_env(tmp_path / "home", GITHUB_ACTIONS="true")
    control = run_cli("validate", str(benign), "--format", "json", env=env)
    assert control.code == 0, control.out  # the same manifest with a plain value is valid
    done = run_cli("validate", str(manifest), "--format", "json", env=env)
    assert done.code == 2, done.out
    findings = json.loads(done.out)["findings"]
    located = [
        f for f in findings if f["path"].startswith(path) and f["line"] > 0 and f["column"] > 0
    ]
    assert located, f"no finding at {path}: {findings}"
    assert all(f["file"] == str(manifest) for f in located)


@pytest.mark.parametrize("key", HOSTILE_IDS)
@pytest.mark.parametrize("where", IDENTIFIERS + FREE_TEXT)
def test_validate_output_cannot_act_as_a_workflow_command(
    tmp_path: Path, where: str, key: str
) -> None:
    text = HOSTILE[key]
    manifest, _ = _with_text(tmp_path / "m", where, text)
    env = base_env(tmp_path / "home", GITHUB_ACTIONS="true", CI="true")
    accepted = where in ("description", "hyperparameter-key", "hyperparameter-value") or (
        where == "dataset-uri" and printable(text)
    )
    problems: list[str] = []
    for fmt in FORMATS:
        done = run_cli("validate", str(manifest), "--format", fmt, env=env)
        outcome = Outcome(done.code, done.out, done.err, [], "")
        problems += [f"[{fmt}] {p}" for p in outcome.unsafe(text)]
        if where in FREE_TEXT:
            assert done.code == (0 if accepted else 2), f"[{fmt}] {outcome.explain()}"
        else:
            assert done.code in (0, 2), f"[{fmt}] {outcome.explain()}"
        if done.code == 2:
            if fmt == "json":
                assert json.loads(done.out)["valid"] is False
            else:  # every finding is an annotation on the manifest's line
                errors = outcome.annotations("error")
                assert errors and all(e.properties["file"] == str(manifest) for e in errors)
                assert all(int(e.properties["line"]) > 0 for e in errors)
        elif fmt == "json":
            assert json.loads(done.out)["valid"] is True
        else:
            assert f"{manifest}: valid — " in done.out
        assert not done.err or (done.err.startswith("error: ") and done.err.count("\n") == 1)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# A. compare inside GitHub Actions


@pytest.mark.parametrize("key", HOSTILE_IDS)
def test_compare_shows_hostile_text_inertly(
    tmp_path: Path, job: Job, published: Published, key: str
) -> None:
    text = HOSTILE[key]
    candidate = hostile_candidate(tmp_path / "pr", text)
    report = job.runner_temp / "report.md"
    outcome = job.run(
        "compare",
        str(candidate),
        "--repository",
        published.repository,
        "--comment-file",
        str(report),
    )
    assert outcome.code == 1, outcome.explain()  # the accuracy gate regressed
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    expected = {
        "digest": _local_digest(candidate, job.env, tmp_path / "layout"),
        "version": "1.1.0",
        "regression": "true",
        "baseline-digest": published.first,
        "report-path": str(report),
        "comment-url": "",
    }
    assert not output_problems(outcome.entries, expected), output_problems(
        outcome.entries, expected
    )
    regressions = [
        e for e in outcome.annotations("error") if e.properties["title"] == "ci-modelver regression"
    ]
    assert any(e.data.startswith("validation/accuracy: ") for e in regressions)
    if text in _metric_names(candidate):  # validation took it: its failed gate says it as is
        shown = text.replace("##[", "## [")  # the one change made to quoted text
        assert any(e.data.startswith(f"validation/{shown}: ") for e in regressions), regressions
    assert report.read_text("utf-8").startswith("<!-- ci-modelver:report ")
    assert outcome.err.rstrip("\n").splitlines()[-1].startswith("error: regression: ")


# ---------------------------------------------------------------------------------------------
# A. ci-modelver action, every mode


@pytest.mark.parametrize("key", HOSTILE_IDS)
def test_check_of_a_hostile_pull_request(
    tmp_path: Path,
    job: Job,
    published: Published,
    fake_github: FakeGitHub,
    webhook_payload: WebhookFactory,
    key: str,
) -> None:
    text = HOSTILE[key]
    candidate = hostile_candidate(tmp_path / "pr", text)
    fake_github.add_pull_request(OWNER, REPO, PR)
    token = f"ghs_{uuid.uuid4().hex}"
    fake_github.add_token(token, fake_github.BOT_LOGIN, type="Bot", user_endpoint=False)
    event = _pull_request(webhook_payload, fake_github.base_url)
    env = _pr_env(event, fake_github.base_url)
    outcome = job.action(
        {
            "mode": "auto",
            "manifest": str(candidate),
            "repository": published.repository,
            "github-token": token,
        },
        **env,
    )
    assert outcome.code == 1, outcome.explain()
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    [comment] = fake_github.comments(OWNER, REPO, PR)
    expected = {
        "version": "1.1.0",
        "digest": _local_digest(candidate, {**job.env, **env}, tmp_path / "layout"),
        "regression": "true",
        "baseline-digest": published.first,
        "report-path": str(job.runner_temp / f"ci-modelver-comment-{NAME}.md"),
        "comment-url": f"{fake_github.root_url}/{OWNER}/{REPO}/pull/{PR}#issuecomment-{comment.id}",
    }
    assert not output_problems(outcome.entries, expected), output_problems(
        outcome.entries, expected
    )
    assert Path(expected["report-path"]).read_text("utf-8") == comment.body
    assert [c.data for c in outcome.commands if c.name == "add-mask"] == list(outcome.secrets)
    assert outcome.out.splitlines()[0].startswith("::add-mask::")
    assert "❌" in outcome.summary


@pytest.mark.parametrize("key", HOSTILE_ENV_IDS)
def test_check_with_a_hostile_baseline_input(
    tmp_path: Path, job: Job, published: Published, key: str
) -> None:
    text = HOSTILE_ENV[key]
    candidate = make_model(tmp_path / "pr", name=NAME, version="1.1.0", metrics=BASE_METRICS)
    outcome = job.action(
        {
            "mode": "check",
            "manifest": str(candidate),
            "repository": published.repository,
            "baseline": text,
            "comment": "false",
        }
    )
    assert outcome.code == 2, outcome.explain()
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    assert not output_problems(outcome.entries, {"version": "1.1.0"})
    [error] = outcome.annotations("error")
    [line] = [line for line in outcome.err.splitlines() if line]
    assert line.startswith("error: ") and error.data == line.removeprefix("error: ")
    assert not _flags_in(outcome.err), outcome.err
    assert "### ❌ ci-modelver check failed" in outcome.summary


@pytest.mark.parametrize("key", HOSTILE_ENV_IDS)
@pytest.mark.parametrize("other_model", [False, True], ids=["this-model", "other-model"])
def test_publish_on_a_hostile_release_tag(
    tmp_path: Path, job: Job, registry: Registry, key: str, other_model: bool
) -> None:
    text = HOSTILE_ENV[key]
    tag = f"other-model@{text}" if other_model else text
    manifest = make_model(tmp_path / "m", name=NAME, version="1.0.0")
    repository = registry.repo(f"hostile/p{uuid.uuid4().hex[:12]}/{NAME}")
    outcome = job.action(
        {"mode": "auto", "manifest": str(manifest), "repository": repository},
        GITHUB_EVENT_NAME="push",
        GITHUB_REF=f"refs/tags/{tag}",
    )
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    if other_model:
        assert outcome.code == 0, outcome.explain()
        assert not output_problems(outcome.entries, {})
        assert "is not for `demo`; nothing published" in outcome.summary
        assert not outcome.annotations("error")
        return
    assert outcome.code == 2, outcome.explain()
    assert not output_problems(outcome.entries, {"version": "1.0.0"})
    [error] = outcome.annotations("error")  # on the manifest's version line
    assert error.properties["file"] == str(manifest) and error.properties["line"] == "2"
    assert "### ❌ ci-modelver publish failed" in outcome.summary
    shown = {form.replace("##[", "## [") for form in escaped_forms(tag)}  # plain lines: neutralised
    assert any(f"error: tag '{form}' means version" in outcome.err for form in shown), outcome.err


@pytest.mark.parametrize("key", HOSTILE_ENV_IDS)
def test_promote_with_a_hostile_reason(job: Job, published: Published, key: str) -> None:
    text = HOSTILE_ENV[key]
    alias = f"stage-{uuid.uuid4().hex[:8]}"
    outcome = job.action(
        {
            "mode": "promote",
            "repository": published.repository,
            "alias": alias,
            "to": "v1.0.1",
            "reason": text,
        }
    )
    assert outcome.code == 0, outcome.explain()
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    expected = {
        "digest": published.second,
        "version": "1.0.1",
        "ref": f"{published.repository}@{published.second}",
    }
    assert not output_problems(outcome.entries, expected), output_problems(
        outcome.entries, expected
    )
    assert f"promote `{alias}` → 1.0.1" in outcome.summary
    # The recorded reason, shown later by history inside GitHub Actions.
    history = run_cli("history", published.repository, "--format", "json", env=base_env(job.root))
    moves = [m for m in json.loads(history.out)["aliasLog"] if m["alias"] == alias]
    assert [m["reason"] for m in moves] == [text.strip()]  # recorded as given
    for fmt in ("table", "markdown", "json"):
        shown = job.run("history", published.repository, "--format", fmt)
        assert shown.code == 0 and not shown.unsafe(text), "\n".join(shown.unsafe(text))


@pytest.mark.parametrize("key", HOSTILE_ENV_IDS)
def test_rollback_with_a_hostile_reason(job: Job, published: Published, key: str) -> None:
    text = HOSTILE_ENV[key]
    alias = f"stage-{uuid.uuid4().hex[:8]}"
    for version in ("1.0.0", "1.0.1"):
        ref = f"{published.repository}:{version}"
        moved = run_cli("promote", ref, "--alias", alias, env=base_env(job.root))
        assert moved.code == 0, moved.err
    outcome = job.action(
        {"mode": "rollback", "repository": published.repository, "alias": alias, "reason": text}
    )
    assert outcome.code == 0, outcome.explain()
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    expected = {
        "digest": published.first,
        "version": "1.0.0",
        "ref": f"{published.repository}@{published.first}",
    }
    assert not output_problems(outcome.entries, expected), output_problems(
        outcome.entries, expected
    )
    assert f"rollback `{alias}` → 1.0.0" in outcome.summary


@pytest.mark.parametrize("key", HOSTILE_ENV_IDS)
@pytest.mark.parametrize("mode", ["promote", "rollback"])
def test_a_hostile_to_input_is_refused(job: Job, published: Published, mode: str, key: str) -> None:
    text = HOSTILE_ENV[key]
    outcome = job.action(
        {"mode": mode, "repository": published.repository, "alias": "production", "to": text}
    )
    assert outcome.code == 2, outcome.explain()
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    assert not output_problems(outcome.entries, {})
    assert len(outcome.annotations("error")) == 1
    assert f"### ❌ ci-modelver {mode} failed" in outcome.summary
    assert not _flags_in(outcome.err), outcome.err


# ---------------------------------------------------------------------------------------------
# A. What servers say: registry error bodies, GitHub error bodies and comment URLs


@pytest.fixture
def hostile_registry() -> Iterator[HostileRegistry]:
    reg = HostileRegistry().start()
    yield reg
    reg.stop()


@pytest.fixture
def hostile_github() -> Iterator[HostileGitHub]:
    fake = HostileGitHub().start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("key", HOSTILE_IDS)
@pytest.mark.parametrize("mode", ["check", "promote"])
def test_a_hostile_registry_error_body(
    tmp_path: Path, job: Job, hostile_registry: HostileRegistry, mode: str, key: str
) -> None:
    text = HOSTILE[key]
    hostile_registry.always(Answer(403, error_body("DENIED", text)))
    manifest = make_model(tmp_path / "m", name=NAME, version="1.1.0")
    inputs = {"mode": mode, "repository": hostile_registry.repo(f"acme/{NAME}")}
    if mode == "check":
        inputs.update(manifest=str(manifest), comment="false")
    else:
        inputs.update(to="1.0.0")
    outcome = job.action(inputs)
    assert outcome.code == 3, outcome.explain()
    assert hostile_registry.requests, "the registry was never asked"
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    assert not output_problems(outcome.entries, {"version": "1.1.0"} if mode == "check" else {})
    [error] = outcome.annotations("error")
    assert "403 DENIED: " in error.data
    assert any(form in error.data for form in escaped_forms(text)), error.data
    assert f"### ❌ ci-modelver {mode} failed" in outcome.summary


def _check_against_hostile_github(
    tmp_path: Path,
    job: Job,
    published: Published,
    webhook_payload: WebhookFactory,
    github: HostileGitHub,
) -> tuple[Outcome, dict[str, str]]:
    """A check of a plain pull request whose comment goes to ``github``; the outputs expected
    besides ``comment-url``."""
    candidate = make_model(tmp_path / "pr", name=NAME, version="1.1.0", metrics=BASE_METRICS)
    event = _pull_request(webhook_payload, github.base_url)
    env = _pr_env(event, github.base_url)
    outcome = job.action(
        {"mode": "check", "manifest": str(candidate), "repository": published.repository}, **env
    )
    expected = {
        "version": "1.1.0",
        "digest": _local_digest(candidate, {**job.env, **env}, tmp_path / "layout"),
        "regression": "false",
        "baseline-digest": published.first,
        "report-path": str(job.runner_temp / f"ci-modelver-comment-{NAME}.md"),
    }
    return outcome, expected


@pytest.mark.parametrize("key", HOSTILE_IDS)
def test_a_hostile_comment_url_is_one_output(
    tmp_path: Path,
    job: Job,
    published: Published,
    webhook_payload: WebhookFactory,
    hostile_github: HostileGitHub,
    key: str,
) -> None:
    text = HOSTILE[key]
    url = f"https://github.com/{OWNER}/{REPO}/pull/{PR}#issuecomment-1{text}"
    hostile_github.html_url = url
    outcome, expected = _check_against_hostile_github(
        tmp_path, job, published, webhook_payload, hostile_github
    )
    assert outcome.code == 0, outcome.explain()
    assert ("POST", f"/repos/{OWNER}/{REPO}/issues/{PR}/comments") in hostile_github.requests
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    # Whatever the URL holds (a line equal to a delimiter, EOF, ...), it is one value, as is.
    expected["comment-url"] = url
    assert not output_problems(outcome.entries, expected), output_problems(
        outcome.entries, expected
    )


@pytest.mark.parametrize("key", HOSTILE_IDS)
@pytest.mark.parametrize("status", [403, 422])
def test_a_hostile_github_error_body(
    tmp_path: Path,
    job: Job,
    published: Published,
    webhook_payload: WebhookFactory,
    hostile_github: HostileGitHub,
    status: int,
    key: str,
) -> None:
    text = HOSTILE[key]
    hostile_github.create_status, hostile_github.message = status, text
    outcome, expected = _check_against_hostile_github(
        tmp_path, job, published, webhook_payload, hostile_github
    )
    assert not outcome.unsafe(text), "\n".join(outcome.unsafe(text))
    if status == 403:  # a token that cannot write: a warning, and the report stays in the file
        assert outcome.code == 0, outcome.explain()
        expected["comment-url"] = ""
        [warning] = outcome.annotations("warning")
        assert "HTTP 403 " in warning.data and not outcome.annotations("error")
        quoted = warning.data
    else:  # any other refusal fails the step; the outputs written before it stay
        assert outcome.code == 3, outcome.explain()
        [error] = outcome.annotations("error")
        assert "HTTP 422 " in error.data
        quoted = error.data
        assert "### ❌ ci-modelver check failed" in outcome.summary
    assert any(form in quoted for form in escaped_forms(text)), quoted
    assert not output_problems(outcome.entries, expected), output_problems(
        outcome.entries, expected
    )


# ---------------------------------------------------------------------------------------------
# action.yml run like a runner does: the same checks on the step's real streams


@pytest.fixture(scope="module")
def action_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What $RUNNER_TEMP/ci-modelver-venv links to: a bin/ci-modelver that runs the interpreter
    running the tests (which has ci-modelver installed), so action.yml's install step is skipped.

    A folder of its own, never the project's venv itself: were the link target ever missing its
    script, the harness would run the install step, and so pip, against that venv.
    """
    venv = tmp_path_factory.mktemp("hostile-venv")
    script = venv / "bin" / "ci-modelver"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -m ci_modelver "$@"\n', "utf-8")
    script.chmod(0o755)
    return venv


@dataclass
class Stage:
    """A workspace (the checked-out repository) and the job environment of action.yml runs."""

    tmp: Path
    workspace: Path
    venv: Path
    env: dict[str, str]
    secrets: tuple[str, str] = field(
        default_factory=lambda: (f"regpw-{uuid.uuid4().hex}", f"ghs_{uuid.uuid4().hex}")
    )
    runs: int = 0

    def act(self, event: WebhookEvent, **inputs: str) -> ActionResult:
        """Run action.yml; inputs as keyword arguments, ``_`` for ``-``."""
        self.runs += 1
        runner_temp = self.tmp / f"runner-temp-{self.runs}"
        link_prepared_venv(runner_temp, self.venv)
        given = {
            "registry-username": "ci",
            "registry-password": self.secrets[0],
            "github-token": self.secrets[1],
        }
        given.update({key.replace("_", "-"): value for key, value in inputs.items()})
        return run_composite_action(
            ROOT,
            given,
            workspace=self.workspace,
            env=self.env,
            event=event,
            runner_temp=runner_temp,
            skip_install_if_present=True,
            timeout=120,
        )


@pytest.fixture
def stage(tmp_path: Path, action_venv: Path) -> Stage:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "SOURCE_DATE_EPOCH": EPOCH,
        "GITHUB_ACTOR": ACTOR,
        "MODELVER_TIMEOUT": "20",
    }
    return Stage(tmp_path, workspace, action_venv, env)


def _run_step_problems(result: ActionResult, secrets: tuple[str, ...], *hostile: str) -> list[str]:
    run = result.step("run")
    problems = stream_problems("stdout", run.stdout, secrets=secrets, hostile=hostile)
    problems += stream_problems("stderr", run.stderr, secrets=secrets, hostile=hostile)
    masks = [c.data for c in result.commands if c.name == "add-mask"]
    if sorted(masks) != sorted(s for s in secrets if s):
        problems.append(f"masks {masks} are not exactly the secrets passed")
    unknown = [
        c
        for c in result.commands
        if c.name not in ("group", "endgroup", "add-mask", "error", "warning", "notice")
    ]
    problems += [f"the runner read a command ci-modelver never emits: {c}" for c in unknown]
    return problems


def _fail_message(result: ActionResult) -> str:
    return "\n".join(f"[{line.stream}] {line.text}" for line in result.log)


def _outputs(result: ActionResult) -> list[tuple[str, str]]:
    return list(result.step("run").outputs.items())


def _push_tag(webhook_payload: WebhookFactory, tag: str) -> WebhookEvent:
    return webhook_payload("push", None, owner=OWNER, repo=REPO, ref=f"refs/tags/{tag}")


def _dispatch(webhook_payload: WebhookFactory) -> WebhookEvent:
    return webhook_payload("workflow_dispatch", None, owner=OWNER, repo=REPO)


ALL_HOSTILE_ENV = list(HOSTILE_ENV.values())


def test_action_yml_check_of_a_hostile_pull_request(
    stage: Stage,
    published: Published,
    fake_github: FakeGitHub,
    webhook_payload: WebhookFactory,
) -> None:
    texts = list(HOSTILE.values())
    candidate = hostile_candidate(stage.tmp / "pr", *texts)
    for path in candidate.parent.iterdir():  # the pull request's checkout
        path.rename(stage.workspace / path.name)
    fake_github.add_pull_request(OWNER, REPO, PR)
    fake_github.add_token(stage.secrets[1], fake_github.BOT_LOGIN, type="Bot", user_endpoint=False)
    stage.env["GITHUB_API_URL"] = fake_github.base_url
    event = _pull_request(webhook_payload, fake_github.base_url)
    result = stage.act(event, repository=published.repository)
    assert result.exit_code == 1, _fail_message(result)
    [comment] = fake_github.comments(OWNER, REPO, PR)
    run_env = result.step("run").env
    expected = {
        "version": "1.1.0",
        "digest": _local_digest(stage.workspace / "modelver.yaml", run_env, stage.tmp / "layout"),
        "regression": "true",
        "baseline-digest": published.first,
        "report-path": str(result.runner_temp / f"ci-modelver-comment-{NAME}.md"),
        "comment-url": f"{fake_github.root_url}/{OWNER}/{REPO}/pull/{PR}#issuecomment-{comment.id}",
    }
    assert not output_problems(_outputs(result), expected), output_problems(
        _outputs(result), expected
    )
    assert {k: result.outputs[k] for k in expected} == expected
    regressions = [
        e for e in result.annotations("error") if e.properties["title"] == "ci-modelver regression"
    ]
    assert len(regressions) >= 2
    problems = _run_step_problems(result, stage.secrets, *texts)
    assert not problems, "\n".join(problems)


def test_action_yml_publish_on_a_hostile_tag(
    stage: Stage, registry: Registry, webhook_payload: WebhookFactory
) -> None:
    text = HOSTILE_ENV["newline"]
    make_model(stage.workspace, name=NAME, version="1.0.0")
    repository = registry.repo(f"hostile/p{uuid.uuid4().hex[:12]}/{NAME}")
    result = stage.act(_push_tag(webhook_payload, text), repository=repository)
    assert result.step("run").exit_code == 2, _fail_message(result)
    problems = _run_step_problems(result, stage.secrets, text)
    assert not problems, "\n".join(problems)
    assert not output_problems(_outputs(result), {"version": "1.0.0"})
    [error] = result.annotations("error")
    assert error.properties["file"] == "modelver.yaml" and error.properties["line"] == "2"


def test_action_yml_promote_and_rollback_with_hostile_inputs(
    stage: Stage, published: Published, webhook_payload: WebhookFactory
) -> None:
    reason = " ".join(ALL_HOSTILE_ENV)
    alias = f"stage-{uuid.uuid4().hex[:8]}"
    promoted = stage.act(
        _dispatch(webhook_payload),
        mode="promote",
        repository=published.repository,
        alias=alias,
        to="1.0.1",
        reason=reason,
    )
    assert promoted.exit_code == 0, _fail_message(promoted)
    problems = _run_step_problems(promoted, stage.secrets, *ALL_HOSTILE_ENV)
    assert not problems, "\n".join(problems)
    expected = {
        "digest": published.second,
        "version": "1.0.1",
        "ref": f"{published.repository}@{published.second}",
    }
    assert not output_problems(_outputs(promoted), expected), _outputs(promoted)

    text = HOSTILE_ENV["newline"]
    refused = stage.act(
        _dispatch(webhook_payload),
        mode="rollback",
        repository=published.repository,
        alias=alias,
        to=text,
        reason=reason,
    )
    assert refused.step("run").exit_code == 2, _fail_message(refused)
    problems = _run_step_problems(refused, stage.secrets, text, *ALL_HOSTILE_ENV)
    assert not problems, "\n".join(problems)
    assert not output_problems(_outputs(refused), {})
    assert "### ❌ ci-modelver rollback failed" in refused.summary


# ---------------------------------------------------------------------------------------------
# B. The action's unhappy paths, through action.yml


def _unreachable() -> str:
    return f"127.0.0.1:{free_port()}/acme/{NAME}"  # nothing listens there


def _version_line(manifest: Path) -> int:
    lines = manifest.read_text("utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith("version:"))


@dataclass(frozen=True)
class Failure:
    mode: str
    code: int
    outputs: dict[str, str]
    located: str | None = None  # the manifest key whose line the annotation is on


def _invalid(manifest: Path) -> None:
    manifest.write_text(manifest.read_text("utf-8").replace("name: demo", "name: Demo!"), "utf-8")


FAILURES = {
    "check-invalid-manifest": Failure("check", 2, {}, located="name"),
    "check-registry-unreachable": Failure("check", 3, {"version": "1.0.0"}),
    "publish-wrong-tag": Failure("publish", 2, {"version": "1.0.0"}, located="version"),
    "publish-invalid-manifest": Failure("publish", 2, {}, located="name"),
    "publish-registry-unreachable": Failure("publish", 3, {"version": "1.0.0"}),
    "publish-conflict": Failure("publish", 4, {"version": "1.0.0"}),
    "promote-registry-unreachable": Failure("promote", 3, {}),
    "promote-without-to": Failure("promote", 2, {}),
    "rollback-registry-unreachable": Failure("rollback", 3, {}),
    "rollback-without-history": Failure("rollback", 2, {}),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failure_is_summarised_and_annotated(
    stage: Stage,
    registry: Registry,
    published: Published,
    webhook_payload: WebhookFactory,
    case: str,
) -> None:
    failure = FAILURES[case]
    manifest = make_model(stage.workspace, name=NAME, version="1.0.0")
    inputs: dict[str, str] = {"mode": failure.mode, "repository": published.repository}
    if failure.mode == "check":
        inputs["comment"] = "false"
        event = _pull_request(webhook_payload, "https://api.github.com")
    elif failure.mode == "publish":
        event = _push_tag(webhook_payload, "v9.9.9" if case.endswith("wrong-tag") else "v1.0.0")
    else:
        event = _dispatch(webhook_payload)
        inputs["alias"] = f"stage-{uuid.uuid4().hex[:8]}"
        if failure.mode == "promote" and "without-to" not in case:
            inputs["to"] = "1.0.0"
    if case.endswith("invalid-manifest"):
        _invalid(manifest)
    if case.endswith("registry-unreachable"):
        inputs["repository"] = _unreachable()
        stage.env["MODELVER_TIMEOUT"] = "1"
    if case.endswith("conflict"):  # 1.0.0 is already another build
        other = make_model(stage.tmp / "other", name=NAME, version="1.0.0", weights=b"other" * 9)
        inputs["repository"] = registry.repo(f"hostile/c{uuid.uuid4().hex[:12]}/{NAME}")
        _publish(other, inputs["repository"], base_env(stage.tmp / "home"))
    if failure.mode == "publish" and not case.endswith(("conflict", "unreachable")):
        inputs["repository"] = registry.repo(f"hostile/n{uuid.uuid4().hex[:12]}/{NAME}")

    result = stage.act(event, **inputs)
    run = result.step("run")
    assert run.exit_code == failure.code, _fail_message(result)
    assert f"### ❌ ci-modelver {failure.mode} failed" in result.summary, result.summary
    errors = result.annotations("error")
    assert errors, _fail_message(result)
    if failure.located is not None:
        line = _version_line(manifest) if failure.located == "version" else 1
        assert any(
            e.properties.get("file") == "modelver.yaml" and e.properties.get("line") == str(line)
            for e in errors
        ), errors
        assert f"`modelver.yaml:{line}:" in result.summary
    else:
        assert all("file" not in e.properties for e in errors), errors
        [last] = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
        assert [e.data for e in errors] == [last.removeprefix("error: ")]
    assert not output_problems(_outputs(result), failure.outputs), _outputs(result)
    problems = _run_step_problems(result, stage.secrets)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("why", ["no-token", "api-down"])
def test_a_comment_that_cannot_be_posted_keeps_the_outputs(
    stage: Stage, published: Published, webhook_payload: WebhookFactory, why: str
) -> None:
    make_model(stage.workspace, name=NAME, version="1.1.0", metrics=BASE_METRICS)
    api = "https://api.github.com" if why == "no-token" else f"http://127.0.0.1:{free_port()}"
    stage.env["GITHUB_API_URL"] = api
    token = "" if why == "no-token" else stage.secrets[1]
    stage.secrets = (stage.secrets[0], token)
    result = stage.act(
        _pull_request(webhook_payload, api),
        repository=published.repository,
        github_token=token,
    )
    run = result.step("run")
    assert run.exit_code == (2 if why == "no-token" else 3), _fail_message(result)
    outputs = dict(run.outputs)
    expected = {
        "version": "1.1.0",
        "digest": _local_digest(stage.workspace / "modelver.yaml", run.env, stage.tmp / "layout"),
        "regression": "false",
        "baseline-digest": published.first,
        "report-path": str(result.runner_temp / f"ci-modelver-comment-{NAME}.md"),
    }
    if "comment-url" in outputs:  # absent, or empty
        expected["comment-url"] = ""
    assert not output_problems(_outputs(result), expected), outputs
    assert result.outputs["comment-url"] == ""
    assert Path(expected["report-path"]).read_text("utf-8").startswith("<!-- ci-modelver:report ")
    assert "### ❌ ci-modelver check failed" in result.summary
    [error] = result.annotations("error")
    if why == "no-token":
        assert "input 'github-token'" in error.data, error.data
    else:
        assert f"/repos/{OWNER}/{REPO}/issues/{PR}/comments: ConnectionError" in error.data
    # C: the messages name the action's inputs, never a CLI flag.
    assert not _flags_in(run.stderr) and not _flags_in(error.data), run.stderr
    problems = _run_step_problems(result, stage.secrets)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# C. In action mode a message names the action's inputs, never a CLI flag


def _c_setup(
    tmp_path: Path, job: Job, published: Published, case: str
) -> tuple[dict[str, str], dict[str, str], str]:
    """Inputs, extra environment and the input the message must name, for one provoked failure."""
    manifest = make_model(tmp_path / "m", name=NAME, version="1.1.0", metrics=BASE_METRICS)
    inputs = {
        "mode": "check",
        "manifest": str(manifest),
        "repository": published.repository,
        "comment": "false",
    }
    env: dict[str, str] = {}
    named = ""
    if case == "baseline-not-found":
        inputs["baseline"], named = "9.9.9", "input 'baseline'"
    elif case == "baseline-malformed":
        inputs["baseline"], named = "Not A Version!", "input 'baseline'"
    elif case == "pull-request-without-number":
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"repository": {"full_name": f"{OWNER}/{REPO}"}}), "utf-8")
        inputs["comment"] = "true"
        env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}
    elif case == "concurrency-variable":
        env = {"MODELVER_CONCURRENCY": "0"}
    elif case == "registry-unreachable":
        inputs["repository"] = _unreachable()
        env = {"MODELVER_TIMEOUT": "1"}
    return inputs, env, named


C_CASES = {
    "baseline-not-found": 2,
    "baseline-malformed": 2,
    "pull-request-without-number": 2,
    "concurrency-variable": 2,
    "registry-unreachable": 3,
}


@pytest.mark.parametrize("case", list(C_CASES))
def test_action_messages_name_inputs_not_flags(
    tmp_path: Path, job: Job, published: Published, case: str
) -> None:
    inputs, env, named = _c_setup(tmp_path, job, published, case)
    outcome = job.action(inputs, **env)
    assert outcome.code == C_CASES[case], outcome.explain()
    [error] = outcome.annotations("error")
    assert "### ❌ ci-modelver check failed" in outcome.summary
    if named:
        assert named in error.data, error.data
    flags = _flags_in(outcome.err) + _flags_in(error.data) + _flags_in(outcome.summary)
    assert not flags, f"CLI flags {flags} in action mode:\n{outcome.err}"


# ---------------------------------------------------------------------------------------------
# The checks themselves


def test_the_checks_catch_what_the_runner_would_obey(tmp_path: Path) -> None:
    secret = "s3cr3t"
    ours = [
        f"::add-mask::{secret}",
        "::group::ci-modelver check",
        "::error file=modelver.yaml,line=2,col=10,title=invalid manifest::acc%250A::add-mask::x",
        "::endgroup::",
        "> ::add-mask::x",
        "plain ## [add-mask]x",
    ]
    assert not stream_problems("out", "\n".join(ours), secrets=[secret], hostile=["acc%0A"])
    for bad in (
        "ok\n  ::add-mask::x",  # leading blanks after a line break
        "ok\r::add-mask::x",  # CR ends a line for the runner
        "\u2028::add-mask::x",  # white space to TrimStart()
        "::stop-commands::abc",
        "::set-output name=version::9",
        "::add-mask::other",
        "text ##[add-mask]x",
        "::error title=ci-modelver,foo=1::m",
        "::error line=x,title=ci-modelver::m",
        "::error title=ci-modelver::acc%0A::add-mask::x",  # '%0A' decoded into a line break
    ):
        assert stream_problems("out", bad, secrets=[secret], hostile=["acc%0A::add-mask::x"]), bad
    output = tmp_path / "output"
    output.write_bytes(b"digest<<D\nsha256:1\nD\nevil=1\ncomment-url<<E\na\rb\nE\n")
    entries = output_entries(output)
    assert entries == [("digest", "sha256:1"), ("evil", "1"), ("comment-url", "a\rb")]
    problems = output_problems(entries, {"digest": "sha256:1", "comment-url": "a\rb"})
    assert problems == ["undocumented output 'evil'='1'", *problems[1:]] and len(problems) == 2

"""Run a composite GitHub Action's steps the way a GitHub-hosted runner does, for end-to-end tests.

``run_composite_action`` reads ``action.yml`` and executes its ``runs.steps`` in order:

- **Inputs**: the given values win; the others take their ``default``, whose ``${{ }}`` expressions
  are evaluated against the ``github`` context. An input the action does not declare is an error.
- **Expressions**: exactly what this action uses — ``inputs.<name>``, ``github.actor``,
  ``github.token`` and ``steps.<id>.outputs.<name>``. Anything else (functions, operators, other
  contexts, an unknown input or step id) raises :class:`UnsupportedExpression`, so the harness can
  never silently turn an expression into an empty string. Like on GitHub, the output of a step that
  did not set it is ``""``.
- **``uses: actions/setup-python@<sha>``**: replaced by a stand-in that sets the outputs
  ``python-path`` (an interpreter that can create venvs) and ``python-version``, and changes no
  environment. The harness raises unless the action is pinned to a full 40-hex commit and passes
  ``update-environment: false``. Any other ``uses:`` raises.
- **``run:`` with ``shell: bash``**: the script goes to ``$RUNNER_TEMP/<uuid>.sh`` and runs as
  ``bash --noprofile --norc -e -o pipefail FILE`` in the workspace. Its environment, later entries
  winning: the job environment (``env`` minus ``GITHUB_TOKEN``, which the runner never exports;
  it only feeds ``github.token``), runner defaults derived from the event, ``GITHUB_ENV`` values
  of earlier steps, the runner's own variables (``GITHUB_ACTION_PATH``, ``GITHUB_WORKSPACE``,
  ``RUNNER_TEMP``, the file-command files), then the step's ``env:``. ``GITHUB_PATH`` entries are
  prepended to ``PATH`` for later steps.
- **File commands**: ``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH`` and ``GITHUB_STATE`` are
  fresh files per step under ``$RUNNER_TEMP/_runner_file_commands`` and parsed like the runner
  parses them (``name=value`` and ``name<<DELIMITER`` … ``DELIMITER``); ``GITHUB_STEP_SUMMARY``
  is one file for the whole job.
- **Workflow commands** on stdout and stderr are parsed like the runner does (``::add-mask::``
  data is unescaped, and each of its lines is masked too; ``::stop-commands::`` is honoured).
  ``ActionResult.displayed_log`` is the log as GitHub would show it, masks applied.
- The first failing step stops the action; outputs written before the failure are kept.

Streams are read by two threads, so ``StepResult.transcript`` is in arrival order, like the
runner's log. With ``merge_stderr=True`` stderr goes into the stdout pipe (``2>&1``): the exact
order in which the process wrote, which makes buffering problems deterministic to test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.github_fixtures import WebhookEvent

VENV_DIR_NAME = "ci-modelver-venv"
SETUP_PYTHON = "actions/setup-python"
FULL_SHA = re.compile(r"[0-9a-f]{40}")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
INPUT_EXPR = re.compile(rf"inputs\.({_NAME})")
GITHUB_EXPR = re.compile(r"github\.(actor|token)")
STEP_OUTPUT_EXPR = re.compile(rf"steps\.({_NAME})\.outputs\.({_NAME})")

ACTION_KEYS = {"name", "description", "author", "branding", "inputs", "outputs", "runs"}
INPUT_KEYS = {"description", "required", "default", "deprecationMessage"}
STEP_KEYS = {"name", "id", "uses", "with", "run", "shell", "env", "working-directory"}
RUNNER_COMMANDS = {
    "add-mask",
    "add-matcher",
    "add-path",
    "debug",
    "echo",
    "endgroup",
    "error",
    "group",
    "notice",
    "remove-matcher",
    "save-state",
    "set-env",
    "set-output",
    "stop-commands",
    "warning",
}
# File-command variables: a fresh file per step, like the runner.
FILE_COMMANDS = ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE")
DEFAULT_TIMEOUT = 600.0


class UnsupportedExpression(ValueError):
    """An ``${{ }}`` expression the harness does not evaluate (or one that names nothing)."""


class ActionDefinitionError(ValueError):
    """action.yml uses a feature the harness does not emulate."""


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class LogLine:
    """One line a step printed: ``stream`` is "stdout", "stderr" or "merged"."""

    step: int
    stream: str
    text: str


@dataclass(frozen=True)
class WorkflowCommand:
    """A ``::name key=value,…::data`` line, parsed like the runner parses it."""

    step: int
    name: str
    properties: dict[str, str]
    data: str


@dataclass
class StepResult:
    index: int
    id: str | None
    name: str
    conclusion: str  # "success", "failure" or "skipped"
    exit_code: int | None  # None when skipped (or for the setup-python stand-in: 0)
    stdout: str = ""
    stderr: str = ""
    transcript: list[LogLine] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    script: Path | None = None


@dataclass
class ActionResult:
    steps: list[StepResult]
    outputs: dict[str, str]  # the action's declared outputs, evaluated
    summary: str
    masks: list[str]  # every value registered by ::add-mask:: (and each of its lines)
    commands: list[WorkflowCommand]
    displayed_log: list[str]  # non-command lines as GitHub shows them, masks applied
    runner_temp: Path
    event_path: Path

    @property
    def exit_code(self) -> int:
        """The exit code of the failing step, else 0."""
        for step in self.steps:
            if step.conclusion == "failure":
                return step.exit_code if step.exit_code is not None else 1
        return 0

    @property
    def stdout(self) -> str:
        return "".join(step.stdout for step in self.steps)

    @property
    def stderr(self) -> str:
        return "".join(step.stderr for step in self.steps)

    @property
    def log(self) -> list[LogLine]:
        """Every line of every step, in arrival order."""
        return [line for step in self.steps for line in step.transcript]

    @property
    def step_outputs(self) -> dict[str, dict[str, str]]:
        return {step.id: dict(step.outputs) for step in self.steps if step.id}

    def step(self, key: str) -> StepResult:
        """The step with this id or name."""
        for step in self.steps:
            if key in (step.id, step.name):
                return step
        raise KeyError(f"no step {key!r}; steps: {[s.id or s.name for s in self.steps]}")

    def annotations(self, kind: str) -> list[WorkflowCommand]:
        """``::error``, ``::warning`` or ``::notice`` commands."""
        return [c for c in self.commands if c.name == kind]


# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass
class Contexts:
    """The contexts an expression may read; None: not available where it is evaluated."""

    github: dict[str, str]
    inputs: dict[str, str] | None = None  # None: the inputs context is not available here
    steps: dict[str, dict[str, str]] | None = None
    step_ids: frozenset[str] = frozenset()


def _evaluate_one(expression: str, ctx: Contexts, where: str) -> str:
    text = expression.strip()
    if match := GITHUB_EXPR.fullmatch(text):
        return ctx.github.get(match.group(1), "")
    if (match := INPUT_EXPR.fullmatch(text)) and ctx.inputs is not None:
        name = match.group(1)
        if name not in ctx.inputs:
            raise UnsupportedExpression(f"{where}: ${{{{ {text} }}}} names an undeclared input")
        return ctx.inputs[name]
    if (match := STEP_OUTPUT_EXPR.fullmatch(text)) and ctx.steps is not None:
        step_id, output = match.groups()
        if step_id not in ctx.step_ids:
            raise UnsupportedExpression(f"{where}: ${{{{ {text} }}}} names an unknown step id")
        return ctx.steps.get(step_id, {}).get(output, "")
    raise UnsupportedExpression(f"{where}: the harness does not evaluate ${{{{ {text} }}}}")


def evaluate(value: Any, ctx: Contexts, where: str) -> str:
    """A YAML scalar as the runner sees it, with every ``${{ }}`` replaced."""
    text = _scalar(value)
    result = EXPRESSION.sub(lambda m: _evaluate_one(m.group(1), ctx, where), text)
    if "${{" in EXPRESSION.sub("", text):
        raise UnsupportedExpression(f"{where}: unterminated expression in {text!r}")
    return result


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ActionDefinitionError(f"expected a scalar, got {type(value).__name__}: {value!r}")


# ---------------------------------------------------------------------------------------------
# File commands and workflow commands


class _LineReader:
    """The runner's ``ReadLine``: LF-terminated lines and the index after each."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.index = 0

    def read(self) -> tuple[str | None, str | None]:
        """(line, newline); newline is None for a last line without LF, line None at EOF."""
        if self.index >= len(self.text):
            return None, None
        lf = self.text.find("\n", self.index)
        if lf < 0:
            line, self.index = self.text[self.index :], len(self.text)
            return line, None
        line, self.index = self.text[self.index : lf], lf + 1
        return line, "\n"

    def heredoc(self, delimiter: str, where: str) -> str:
        start = end = self.index
        candidate, newline = self.read()
        while candidate != delimiter:
            if candidate is None:
                raise ValueError(f"{where}: matching delimiter {delimiter!r} not found")
            if newline is None:
                raise ValueError(f"{where}: EOF marker missing new line")
            end = self.index - len(newline)
            candidate, newline = self.read()
        return self.text[start:end] if end > start else ""


def parse_file_command(path: Path) -> list[tuple[str, str]]:
    """``NAME=VALUE`` and ``NAME<<DELIMITER`` … ``DELIMITER`` entries, as the runner reads them.

    A port of the runner's ``EnvFileKeyValuePairs`` (Linux: lines end with LF).
    """
    if not path.exists():
        return []
    reader = _LineReader(path.read_text("utf-8"))
    entries: list[tuple[str, str]] = []
    line, _ = reader.read()
    while line is not None:
        if line:
            eq, heredoc = line.find("="), line.find("<<")
            if eq >= 0 and (heredoc < 0 or eq < heredoc):
                key, value = line.split("=", 1)
            elif heredoc >= 0:
                key, delimiter = line.split("<<", 1)
                if not key or not delimiter:
                    raise ValueError(f"{path}: invalid format {line!r}")
                value = reader.heredoc(delimiter, str(path))
            else:
                raise ValueError(f"{path}: invalid format {line!r}")
            entries.append((key, value))
        line, _ = reader.read()
    return entries


_DATA_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


def _unescape(text: str, mappings: tuple[tuple[str, str], ...]) -> str:
    for escaped, plain in mappings:
        text = text.replace(escaped, plain)
    return text


def parse_workflow_command(line: str, step: int) -> WorkflowCommand | None:
    """The runner's ``ActionCommand.TryParseV2``: ``::name props::data`` after leading spaces."""
    message = line.lstrip()
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    name, _, props = info.partition(" ")
    if name not in RUNNER_COMMANDS:
        return None
    properties: dict[str, str] = {}
    for pair in props.strip().split(","):
        key, sep, value = pair.partition("=")
        if sep and key and value:
            properties[key] = _unescape(value, _PROPERTY_ESCAPES)
    return WorkflowCommand(step, name, properties, _unescape(message[end + 2 :], _DATA_ESCAPES))


class _Log:
    """Workflow commands, masks and the displayed log across all steps (one runner job)."""

    def __init__(self) -> None:
        self.masks: list[str] = []
        self.commands: list[WorkflowCommand] = []
        self.displayed: list[str] = []
        self._stop_token: str | None = None

    def feed(self, line: LogLine) -> None:
        if self._stop_token is not None:
            if line.text.strip() == f"::{self._stop_token}::":
                self._stop_token = None
                return
            self.displayed.append(self.mask(line.text))
            return
        command = parse_workflow_command(line.text, line.step)
        if command is None:
            self.displayed.append(self.mask(line.text))
            return
        self.commands.append(command)
        if command.name == "add-mask" and command.data.strip():
            self._add_mask(command.data)
        elif command.name == "stop-commands" and command.data:
            self._stop_token = command.data

    def _add_mask(self, value: str) -> None:
        # AddMaskCommandExtension: the value, then each of its lines (trimmed, non-empty).
        for item in [value, *[s.strip() for s in re.split(r"[\r\n]", value)]]:
            if item and item not in self.masks:
                self.masks.append(item)

    def mask(self, text: str) -> str:
        for value in sorted(self.masks, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


# ---------------------------------------------------------------------------------------------
# Environment


def find_setup_python() -> Path:
    """A real interpreter (not a pyenv shim) that can create venvs with pip."""
    candidates = [
        getattr(sys, "_base_executable", None),
        str(Path(sys.base_prefix) / "bin" / "python3"),
        shutil.which("python3"),
    ]
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        real = Path(os.path.realpath(candidate))
        check = subprocess.run(
            [str(real), "-c", "import venv, ensurepip"],
            capture_output=True,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
        if check.returncode == 0:
            return real
    raise RuntimeError("no python3 with venv and ensurepip found for the setup-python stand-in")


def _python_version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return done.stdout.strip()


def _event(
    event: WebhookEvent | Mapping[str, Any] | None, env: Mapping[str, str]
) -> tuple[str, dict[str, Any]]:
    if isinstance(event, WebhookEvent):
        named = env.get("GITHUB_EVENT_NAME")
        if named and named != event.name:
            raise ValueError(f"GITHUB_EVENT_NAME is {named!r} but the event is {event.name!r}")
        return event.name, dict(event.payload)
    name = env.get("GITHUB_EVENT_NAME")
    if not name:
        raise ValueError("give a WebhookEvent, or GITHUB_EVENT_NAME in env with a payload dict")
    return name, dict(event or {})


def _placeholder_sha(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def event_defaults(name: str, payload: Mapping[str, Any]) -> dict[str, str]:
    """The GITHUB_* variables a runner derives from the event (GITHUB_REF, GITHUB_SHA, …)."""
    out: dict[str, str] = {"GITHUB_EVENT_NAME": name}
    repository = payload.get("repository")
    if isinstance(repository, dict) and repository.get("full_name"):
        out["GITHUB_REPOSITORY"] = str(repository["full_name"])
        out["GITHUB_REPOSITORY_OWNER"] = str(repository["full_name"]).split("/")[0]
    sender = payload.get("sender")
    if isinstance(sender, dict) and sender.get("login"):
        out["GITHUB_ACTOR"] = out["GITHUB_TRIGGERING_ACTOR"] = str(sender["login"])
    pull = payload.get("pull_request")
    ref, sha = "", ""
    if name in ("pull_request", "pull_request_target") and isinstance(pull, dict):
        out["GITHUB_HEAD_REF"] = str(pull["head"]["ref"])
        out["GITHUB_BASE_REF"] = str(pull["base"]["ref"])
        if name == "pull_request":
            ref = f"refs/pull/{pull['number']}/merge"
            sha = str(pull.get("merge_commit_sha") or pull["head"]["sha"])
        else:
            ref = f"refs/heads/{pull['base']['ref']}"
            sha = str(pull["base"]["sha"])
    elif name == "push":
        ref, sha = str(payload.get("ref", "")), str(payload.get("after", ""))
    elif name == "release" and isinstance(payload.get("release"), dict):
        ref = f"refs/tags/{payload['release']['tag_name']}"
    elif payload.get("ref"):
        ref = str(payload["ref"])
    out["GITHUB_REF"] = ref
    out["GITHUB_SHA"] = sha if FULL_SHA.fullmatch(sha) else _placeholder_sha(name, ref)
    if ref.startswith("refs/tags/"):
        out["GITHUB_REF_TYPE"], out["GITHUB_REF_NAME"] = "tag", ref[len("refs/tags/") :]
    elif ref.startswith("refs/heads/"):
        out["GITHUB_REF_TYPE"], out["GITHUB_REF_NAME"] = "branch", ref[len("refs/heads/") :]
    elif ref.startswith("refs/pull/"):
        out["GITHUB_REF_TYPE"], out["GITHUB_REF_NAME"] = "branch", ref[len("refs/") :]
    return out


RUNNER_DEFAULTS = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "RUNNER_OS": "Linux",
    "RUNNER_ARCH": "X64",
    "RUNNER_NAME": "GitHub Actions 1",
    "RUNNER_ENVIRONMENT": "github-hosted",
    "GITHUB_API_URL": "https://api.github.com",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
    "GITHUB_WORKFLOW": "e2e",
    "GITHUB_JOB": "e2e",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_NUMBER": "1",
    "GITHUB_RUN_ATTEMPT": "1",
}


# ---------------------------------------------------------------------------------------------
# Steps


def _read_stream(
    stream: Any, name: str, step: int, sink: list[LogLine], lock: threading.Lock
) -> None:
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r")
        with lock:
            sink.append(LogLine(step, name, text))
    stream.close()


def _run_bash(
    script: Path,
    env: dict[str, str],
    cwd: Path,
    index: int,
    *,
    merge_stderr: bool,
    timeout: float,
) -> tuple[int, list[LogLine]]:
    bash = shutil.which("bash", path=env.get("PATH")) or shutil.which("bash")
    if bash is None:
        raise RuntimeError("bash not found")
    process = subprocess.Popen(
        [bash, "--noprofile", "--norc", "-e", "-o", "pipefail", str(script)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
    )
    transcript: list[LogLine] = []
    lock = threading.Lock()
    readers = [
        threading.Thread(
            target=_read_stream,
            args=(process.stdout, "merged" if merge_stderr else "stdout", index, transcript, lock),
        )
    ]
    if not merge_stderr:
        readers.append(
            threading.Thread(
                target=_read_stream, args=(process.stderr, "stderr", index, transcript, lock)
            )
        )
    for reader in readers:
        reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    finally:
        for reader in readers:
            reader.join(timeout=10)
    return code, transcript


def find_install_step(steps: list[dict[str, Any]]) -> int | None:
    """Index of the step that creates ``$RUNNER_TEMP/ci-modelver-venv`` and pip-installs into it."""
    for index, step in enumerate(steps):
        run = str(step.get("run") or "")
        if f"$RUNNER_TEMP/{VENV_DIR_NAME}" in run and "-m pip install" in run:
            return index
    return None


def link_prepared_venv(runner_temp: Path, venv: Path) -> None:
    """Make ``$RUNNER_TEMP/ci-modelver-venv`` the venv a previous run installed."""
    runner_temp.mkdir(parents=True, exist_ok=True)
    link = runner_temp / VENV_DIR_NAME
    if not link.exists():
        link.symlink_to(venv, target_is_directory=True)


def load_action(action_dir: Path) -> dict[str, Any]:
    path = action_dir / "action.yml"
    if not path.exists():
        path = action_dir / "action.yaml"
    action: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    unknown = set(action) - ACTION_KEYS
    if unknown:
        raise ActionDefinitionError(f"action.yml: unsupported top-level keys {sorted(unknown)}")
    runs = action.get("runs") or {}
    if runs.get("using") != "composite" or set(runs) != {"using", "steps"}:
        raise ActionDefinitionError(f"action.yml: only plain composite actions, not {runs!r}")
    for name, spec in (action.get("inputs") or {}).items():
        if set(spec or {}) - INPUT_KEYS:
            raise ActionDefinitionError(f"input {name}: unsupported keys {set(spec) - INPUT_KEYS}")
    for index, step in enumerate(runs["steps"]):
        extra = set(step) - STEP_KEYS
        if extra:
            raise ActionDefinitionError(f"step {index}: unsupported keys {sorted(extra)}")
        if ("uses" in step) == ("run" in step):
            raise ActionDefinitionError(f"step {index}: needs exactly one of uses and run")
        if "run" in step and step.get("shell") != "bash":
            raise ActionDefinitionError(f"step {index}: only shell: bash is emulated")
    return action


def _inputs(
    action: dict[str, Any], given: Mapping[str, str], github: dict[str, str]
) -> dict[str, str]:
    declared: dict[str, Any] = action.get("inputs") or {}
    unknown = set(given) - set(declared)
    if unknown:
        raise ValueError(f"inputs the action does not declare: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = str(given[name])
        else:
            values[name] = evaluate((spec or {}).get("default"), Contexts(github), f"input {name}")
    return values


def _setup_python(step: dict[str, Any], ctx: Contexts, where: str, python: Path) -> dict[str, str]:
    uses = str(step["uses"])
    action, _, ref = uses.partition("@")
    if action != SETUP_PYTHON:
        raise ActionDefinitionError(
            f"{where}: the harness emulates only {SETUP_PYTHON}, not {uses}"
        )
    if not FULL_SHA.fullmatch(ref):
        raise AssertionError(f"{where}: {uses} is not pinned to a full 40-hex commit SHA")
    with_ = {k: evaluate(v, ctx, f"{where} with.{k}") for k, v in (step.get("with") or {}).items()}
    if with_.get("update-environment") != "false":
        raise AssertionError(
            f"{where}: setup-python must not touch the caller's environment "
            f"(update-environment: false), got {with_.get('update-environment')!r}"
        )
    if not with_.get("python-version"):
        raise AssertionError(f"{where}: python-version is empty")
    return {"python-path": str(python), "python-version": _python_version(python)}


@dataclass
class _Job:
    """Per-run state shared by the steps: files, env changes, log processing."""

    runner_temp: Path
    commands_dir: Path
    summary: Path
    env_additions: dict[str, str] = field(default_factory=dict)
    path_additions: list[str] = field(default_factory=list)
    log: _Log = field(default_factory=_Log)


def run_composite_action(
    action_dir: Path,
    inputs: Mapping[str, str],
    *,
    workspace: Path,
    env: Mapping[str, str],
    event: WebhookEvent | Mapping[str, Any] | None,
    runner_temp: Path,
    python_stand_in: Path | str | None = None,
    skip_install_if_present: bool = False,
    stop_after: str | None = None,
    merge_stderr: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> ActionResult:
    """Run ``action_dir``'s composite steps like a GitHub runner; see the module docstring.

    env: the job environment (HOME, PATH, GITHUB_ACTOR, GITHUB_TOKEN, GITHUB_API_URL, …).
    event: a WebhookEvent, or a payload dict with GITHUB_EVENT_NAME in env, or None (empty).
    python_stand_in: the interpreter setup-python "installs" (default: find_setup_python()).
    skip_install_if_present: do not rerun the install step when
        ``$RUNNER_TEMP/ci-modelver-venv/bin/ci-modelver`` exists (see link_prepared_venv).
    stop_after: stop after the step with this id or name.
    """
    action_dir = Path(action_dir).resolve()
    action = load_action(action_dir)
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    install_index = find_install_step(steps)
    if skip_install_if_present and install_index is None:
        raise ActionDefinitionError("skip_install_if_present: no step installs the venv")
    python = Path(python_stand_in) if python_stand_in else find_setup_python()

    runner_temp.mkdir(parents=True, exist_ok=True)
    commands_dir = runner_temp / "_runner_file_commands"
    commands_dir.mkdir(exist_ok=True)
    job = _Job(runner_temp, commands_dir, commands_dir / f"step_summary_{uuid.uuid4()}")
    job.summary.touch()

    event_name, payload = _event(event, env)
    event_path = runner_temp / "_github_workflow" / "event.json"
    event_path.parent.mkdir(exist_ok=True)
    event_path.write_text(json.dumps(payload, indent=2), "utf-8")

    job_env = {**RUNNER_DEFAULTS, **event_defaults(event_name, payload), **env}
    github = {"actor": job_env.get("GITHUB_ACTOR", ""), "token": job_env.pop("GITHUB_TOKEN", "")}
    job_env.update(
        {
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action_dir),
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_STEP_SUMMARY": str(job.summary),
        }
    )
    input_values = _inputs(action, inputs, github)
    step_ids = frozenset(str(s["id"]) for s in steps if s.get("id"))
    step_outputs: dict[str, dict[str, str]] = {}
    results: list[StepResult] = []

    for index, step in enumerate(steps):
        ctx = Contexts(github, input_values, step_outputs, step_ids)
        where = f"step {index} ({step.get('id') or step.get('name')})"
        name = evaluate(step.get("name") or f"step {index}", ctx, f"{where} name")
        step_id = str(step["id"]) if step.get("id") else None
        venv_ready = (runner_temp / VENV_DIR_NAME / "bin" / "ci-modelver").exists()
        if index == install_index and skip_install_if_present and venv_ready:
            result = StepResult(index, step_id, name, "skipped", None)
        elif "uses" in step:
            outputs = _setup_python(step, ctx, where, python)
            result = StepResult(index, step_id, name, "success", 0, outputs=outputs)
        else:
            result = _run_step(
                step,
                index,
                step_id,
                name,
                ctx,
                where,
                job,
                job_env,
                workspace,
                merge_stderr=merge_stderr,
                timeout=timeout,
            )
        results.append(result)
        if step_id:
            step_outputs[step_id] = result.outputs
        if result.conclusion == "failure" or (
            stop_after is not None and stop_after in (step_id, name)
        ):
            break

    outputs_ctx = Contexts(github, input_values, step_outputs, step_ids)
    outputs = {
        key: evaluate((spec or {}).get("value"), outputs_ctx, f"output {key}")
        for key, spec in (action.get("outputs") or {}).items()
    }
    return ActionResult(
        steps=results,
        outputs=outputs,
        summary=job.summary.read_text("utf-8"),
        masks=list(job.log.masks),
        commands=list(job.log.commands),
        displayed_log=list(job.log.displayed),
        runner_temp=runner_temp,
        event_path=event_path,
    )


def _run_step(
    step: dict[str, Any],
    index: int,
    step_id: str | None,
    name: str,
    ctx: Contexts,
    where: str,
    job: _Job,
    job_env: dict[str, str],
    workspace: Path,
    *,
    merge_stderr: bool,
    timeout: float,
) -> StepResult:
    script_text = evaluate(step["run"], ctx, f"{where} run")
    step_env_values = {
        key: evaluate(value, ctx, f"{where} env.{key}")
        for key, value in (step.get("env") or {}).items()
    }
    files = {key: job.commands_dir / f"{key.lower()}_{uuid.uuid4()}" for key in FILE_COMMANDS}
    for path in files.values():
        path.touch()
    env = {**job_env, **job.env_additions}
    if job.path_additions:
        env["PATH"] = os.pathsep.join([*reversed(job.path_additions), env.get("PATH", "")])
    env.update({key: str(path) for key, path in files.items()})
    env.update(
        {
            "GITHUB_ACTION": step_id or f"__run_{index}",
            "GITHUB_WORKSPACE": job_env["GITHUB_WORKSPACE"],
            "RUNNER_TEMP": job_env["RUNNER_TEMP"],
            "GITHUB_ACTION_PATH": job_env["GITHUB_ACTION_PATH"],
        }
    )
    env.update(step_env_values)
    cwd = workspace / evaluate(step.get("working-directory"), ctx, f"{where} working-directory")
    script = job.runner_temp / f"{uuid.uuid4()}.sh"
    script.write_text(script_text, "utf-8")
    code, transcript = _run_bash(
        script, env, cwd, index, merge_stderr=merge_stderr, timeout=timeout
    )
    for line in transcript:
        job.log.feed(line)
    outputs = dict(parse_file_command(files["GITHUB_OUTPUT"]))
    job.env_additions.update(parse_file_command(files["GITHUB_ENV"]))
    job.path_additions += [
        line.strip()
        for line in files["GITHUB_PATH"].read_text("utf-8").splitlines()
        if line.strip()
    ]
    return StepResult(
        index,
        step_id,
        name,
        "success" if code == 0 else "failure",
        code,
        stdout="".join(f"{line.text}\n" for line in transcript if line.stream != "stderr"),
        stderr="".join(f"{line.text}\n" for line in transcript if line.stream == "stderr"),
        transcript=transcript,
        outputs=outputs,
        env=env,
        script=script,
    )


def install_action_venv(
    action_dir: Path,
    runner_temp: Path,
    *,
    workspace: Path,
    env: Mapping[str, str],
    python_stand_in: Path | str | None = None,
) -> tuple[Path, ActionResult]:
    """Run the action's steps up to its install step once; return the venv and the run."""
    steps = load_action(Path(action_dir))["runs"]["steps"]
    index = find_install_step(steps)
    if index is None:
        raise ActionDefinitionError("no step installs the ci-modelver venv")
    last = steps[index]
    result = run_composite_action(
        action_dir,
        {},
        workspace=workspace,
        env={"GITHUB_EVENT_NAME": "workflow_dispatch", **env},
        event=None,
        runner_temp=runner_temp,
        python_stand_in=python_stand_in,
        stop_after=str(last.get("id") or last.get("name")),
    )
    return runner_temp / VENV_DIR_NAME, result

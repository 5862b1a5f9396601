"""Build provenance: how a version was built, as its version record says. Pure: no I/O.

The ``build`` block rides in the version record, so the manifest digest covers it, and it must
stay deterministic: identical files published again on the same machine (or by a re-run of the
same workflow run) must give the same bytes, or the re-publish that is a no-op today would exit 4.
So it records what the caller controls (the command, the lock files' contents) and what
genuinely describes the build and stays put for it: the Python minor version (not the patch
level, which a security update changes under unchanged files), the operating system and machine
type (not the kernel release), the runner's OS, architecture, kind and image family, and the
workflow run (not the run attempt nor the runner's name, which change when a job is re-run).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ci_modelver.core.context import run_url
from ci_modelver.core.manifest import BuildSpec, Manifest
from ci_modelver.core.refs import DIGEST_RE
from ci_modelver.core.text import mask_credentials, strip_userinfo
from ci_modelver.core.validate import CONTROL_CHARACTER, control_character_problem
from ci_modelver.errors import InputError

# Environment lock files recorded when they sit next to the manifest (file names, fnmatch).
LOCKFILE_PATTERNS = (
    "requirements*.txt",
    "uv.lock",
    "poetry.lock",
    "environment.yml",
    "environment.yaml",
    "pyproject.toml",
)
MAX_COMMAND_CHARS = 4096
# The most characters of one runner or workflow value kept in the record.
_MAX_CI_VALUE = 1024
CI_SYSTEM = "github-actions"
# (record key, environment variable): what the runner says about itself.
_RUNNER = (
    ("os", "RUNNER_OS"),
    ("arch", "RUNNER_ARCH"),
    ("environment", "RUNNER_ENVIRONMENT"),
    ("image", "ImageOS"),
)
_WORKFLOW = (
    ("workflow", "GITHUB_WORKFLOW"),
    ("workflowRef", "GITHUB_WORKFLOW_REF"),
    ("runId", "GITHUB_RUN_ID"),
)
# Where a URL starts inside a command word: its credentials are masked before it is recorded.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
# Values shorter than this are not masked inside a command (a '1' or 'true' is no secret, and
# masking it would garble the command).
MIN_SECRET_LENGTH = 4

Command = str | tuple[str, ...]


@dataclass(frozen=True)
class LockFile:
    """One environment lock file: its path relative to the manifest's folder, and its content."""

    path: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "size": self.size}


def is_lockfile_name(name: str) -> bool:
    """Whether a file called ``name`` is an environment lock file found without being listed."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in LOCKFILE_PATTERNS)


def lockfile_path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a lock file, or None.

    Lock files follow the rule of dataset and metrics files: relative to the manifest's folder,
    written with '/', and they may live above it (``../../uv.lock`` of a monorepo).
    """
    control = CONTROL_CHARACTER.search(path)
    if control:
        return control_character_problem(control, "paths")
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        return "must be relative to the manifest's folder, using '/'"
    if normal_lockfile_path(path) in ("", ".", ".."):
        return "does not name a file"
    return None


def normal_lockfile_path(path: str) -> str:
    """``./a/../uv.lock`` → ``uv.lock``: the one spelling recorded and compared."""
    normal = posixpath.normpath(path)
    return normal.rstrip("/") if normal not in ("/", "//") else normal


def lockfile_paths(discovered: Iterable[str], listed: Sequence[str]) -> list[str]:
    """Discovered lock files plus the listed ones, each once (normal spelling), sorted."""
    return sorted({normal_lockfile_path(p) for p in [*discovered, *listed]})


def check_command(text: str, where: str) -> str:
    """``text`` if it can be recorded as the training command; InputError (exit 2) otherwise."""
    if not text.strip():
        raise InputError(
            f"{where}: the training command is empty; give the command that trained the model"
        )
    if len(text) > MAX_COMMAND_CHARS:
        raise InputError(
            f"{where}: the training command is {len(text):,} characters (limit "
            f"{MAX_COMMAND_CHARS:,}); record a script and call it instead"
        )
    control = CONTROL_CHARACTER.search(text)
    if control:
        # Not quoted back: a command line may hold a secret the record would have masked.
        what, _, rule = control_character_problem(control, "commands").partition("; ")
        raise InputError(
            f"{where}: the training command {what} at character {control.start() + 1}; {rule}: "
            "write it on one line (or as a list of words in the manifest's build.command)"
        )
    return text


def with_command(manifest: Manifest, command: Command) -> Manifest:
    """``manifest`` with ``command`` as its training command (``publish --command``)."""
    return replace(manifest, build=replace(manifest.build or BuildSpec(), command=command))


def redact_command(command: Command, scrub: Callable[[str], str]) -> Command:
    """The command as it may be recorded: URL credentials masked, then what ``scrub`` removes.

    The record is published to a registry: a token typed into a command line must not go with
    it. ``scrub`` is the redaction every server's words get (known secret values, Authorization
    values, GitHub-token-shaped words).
    """

    def clean(word: str) -> str:
        return scrub(_URL.sub(lambda m: mask_credentials(m.group(0)), word))

    if isinstance(command, str):
        return clean(command)
    return tuple(clean(word) for word in command)


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values of the environment variables named like secrets: masked in a recorded command."""
    words = ("TOKEN", "SECRET", "PASSW", "PWD", "CREDENTIAL", "API_KEY", "APIKEY", "PRIVATE")
    return [
        value
        for name, value in sorted(env.items())
        if name not in ("PWD", "OLDPWD")
        and (any(w in name.upper() for w in words) or name.upper().endswith("_KEY"))
        and len(value) >= MIN_SECRET_LENGTH
    ]


def command_text(command: Any) -> str | None:
    """A recorded command as one line of shell (a list of words is quoted and joined)."""
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(w, str) for w in command):
        return shlex.join(command)
    return None


def ci_info(env: Mapping[str, str]) -> dict[str, Any]:
    """The GitHub Actions runner and workflow run (call it only inside GitHub Actions)."""

    def value(name: str) -> str | None:
        raw = env.get(name, "")
        return raw[:_MAX_CI_VALUE] if raw else None

    info: dict[str, Any] = {"system": CI_SYSTEM}
    runner = {key: v for key, name in _RUNNER if (v := value(name))}
    if runner:
        info["runner"] = runner
    info.update({key: v for key, name in _WORKFLOW if (v := value(name))})
    url = run_url(env)
    if url:
        info["runUrl"] = url
    return info


def build_record(
    *,
    command: Command | None,
    lockfiles: Sequence[LockFile],
    python: str,
    platform: str,
    ci: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The version record's ``build`` block."""
    build: dict[str, Any] = {}
    if command is not None:
        build["command"] = command if isinstance(command, str) else list(command)
    if lockfiles:
        build["lockfiles"] = [f.to_json() for f in sorted(lockfiles, key=lambda f: f.path)]
    build["python"] = python
    build["platform"] = platform
    if ci:
        ci_json = dict(ci)
        if isinstance(ci_json.get("runner"), Mapping):
            ci_json["runner"] = dict(ci_json["runner"])
        build["ci"] = ci_json
    return build


def normalize_build(raw: Any) -> dict[str, Any]:
    """A ``build`` block read from a store (untrusted): fields of the wrong type are dropped."""
    if not isinstance(raw, dict):
        return {}
    build: dict[str, Any] = {}
    if command_text(raw.get("command")) is not None:
        command = raw["command"]
        build["command"] = command if isinstance(command, str) else list(command)
    lockfiles = raw.get("lockfiles")
    if isinstance(lockfiles, list):
        build["lockfiles"] = [
            {
                "path": item["path"],
                "digest": item["digest"],
                **(
                    {"size": item["size"]}
                    if isinstance(item.get("size"), int) and not isinstance(item["size"], bool)
                    else {}
                ),
            }
            for item in lockfiles
            if isinstance(item, dict)
            and isinstance(item.get("path"), str)
            and isinstance(item.get("digest"), str)
            and DIGEST_RE.fullmatch(item["digest"])
        ]
    for key in ("python", "platform"):
        if isinstance(raw.get(key), str):
            build[key] = raw[key]
    ci = raw.get("ci")
    if isinstance(ci, dict):
        clean: dict[str, Any] = {k: v for k, v in ci.items() if isinstance(v, str)}
        if "runUrl" in clean:  # a version published elsewhere may carry a user part
            clean["runUrl"] = strip_userinfo(clean["runUrl"])
        runner = ci.get("runner")
        if isinstance(runner, dict):
            clean["runner"] = {k: v for k, v in runner.items() if isinstance(v, str)}
        build["ci"] = clean
    return build


@dataclass(frozen=True)
class LockCheck:
    """One recorded lock file compared with the file on disk."""

    path: str
    expected: str
    status: str  # match, mismatch, missing, refused
    found: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "expected": self.expected,
            "found": self.found,
            "status": self.status,
        }


FAILING_LOCK_STATUSES = ("mismatch", "missing", "refused")


def ci_summary(ci: Mapping[str, Any]) -> str:
    """``github-actions Linux/X64 (github-hosted, ubuntu24), workflow 'release' run 4242``."""
    raw = ci.get("runner")
    runner: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    parts = [str(ci.get("system") or "CI")]
    where = "/".join(str(runner[k]) for k in ("os", "arch") if runner.get(k))
    if where:
        parts.append(where)
    extra = ", ".join(str(runner[k]) for k in ("environment", "image") if runner.get(k))
    if extra:
        parts.append(f"({extra})")
    text = " ".join(parts)
    if ci.get("workflow"):
        text += f", workflow '{ci['workflow']}'"
    if ci.get("runId"):
        text += f" run {ci['runId']}"
    return text

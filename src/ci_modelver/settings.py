"""Frozen settings built from flags and the environment (and the action's INPUT_* variables)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci_modelver.errors import InputError

DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 120.0
CLI = "cli"
ACTION = "action"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know that is not its own arguments."""

    env: Mapping[str, str] = field(default_factory=dict)
    repository: str | None = None
    plain_http: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    chunk_size: int | None = None
    cwd: Path = field(default_factory=Path.cwd)
    log: Callable[[str], None] | None = field(default=None, compare=False)  # --debug HTTP lines
    # Decided once, here: whether GitHub Actions runs us (workflow commands, outputs, summary).
    in_github_actions: bool = False
    # Who reads our messages: a CLI user (flags) or a workflow author (action inputs).
    surface: str = CLI

    @classmethod
    def build(
        cls,
        env: Mapping[str, str],
        *,
        repository: str | None = None,
        plain_http: bool = False,
        concurrency: int | None = None,
        timeout: float | None = None,
        chunk_size: int | None = None,
        cwd: Path | None = None,
        log: Callable[[str], None] | None = None,
        surface: str = CLI,
    ) -> Settings:
        """Flags win over environment variables (MODELVER_*), which win over defaults."""
        repo = repository or env.get("MODELVER_REPOSITORY") or None
        conc = (
            concurrency
            if concurrency is not None
            else _int_env(env, "MODELVER_CONCURRENCY", DEFAULT_CONCURRENCY)
        )
        if not 1 <= conc <= 64:
            raise InputError(
                f"{_knob('concurrency', surface)} must be between 1 and 64, got {conc}"
            )
        budget = (
            timeout
            if timeout is not None
            else float(_int_env(env, "MODELVER_TIMEOUT", int(DEFAULT_TIMEOUT)))
        )
        if not math.isfinite(budget) or budget <= 0:
            raise InputError(
                f"{_knob('timeout', surface)} must be a positive number of seconds, got {budget:g}"
            )
        chunk = (
            chunk_size
            if chunk_size is not None
            else (_int_env(env, "MODELVER_CHUNK_SIZE", 0) or None)
        )
        if chunk is not None and chunk < 1024:
            raise InputError(
                f"{_knob('chunk-size', surface)} must be at least 1024 bytes, got {chunk}"
            )
        plain = plain_http or env.get("MODELVER_PLAIN_HTTP", "").lower() in ("1", "true", "yes")
        return cls(
            env,
            repo,
            plain,
            conc,
            budget,
            chunk,
            cwd or Path.cwd(),
            log,
            in_github_actions=in_github_actions(env),
            surface=surface,
        )

    def option(self, name: str) -> str:
        """How a message names an option: ``--baseline`` on the CLI, ``input 'baseline'`` in the action."""
        return f"input '{name}'" if self.surface == ACTION else f"--{name}"

    def wait_hint(self) -> str:
        """How to give a longer retry budget, in this surface's words."""
        return f"raise {_knob('timeout', self.surface)} to wait longer"

    def supply(self, name: str) -> str:
        """How to give an option: ``pass --github-token`` / ``set the input 'github-token'``."""
        return f"set the input '{name}'" if self.surface == ACTION else f"pass --{name}"


def _knob(name: str, surface: str) -> str:
    """A setting that is a flag on the CLI and an environment variable everywhere."""
    variable = "MODELVER_" + name.upper().replace("-", "_")
    return f"env {variable}" if surface == ACTION else f"--{name} (env {variable})"


def in_github_actions(env: Mapping[str, str]) -> bool:
    """Whether GitHub Actions runs us: the one place this is decided."""
    return env.get("GITHUB_ACTIONS") == "true"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not an integer") from None


MODES = ("auto", "check", "publish", "promote", "rollback")
# Inputs whose values are secrets: masked before anything else is printed.
SECRET_INPUTS = ("registry-password", "github-token")


def input_value(env: Mapping[str, str], name: str, default: str = "") -> str:
    """The action input ``name`` as the runner passes it (``INPUT_<NAME>``), stripped."""
    return env.get(f"INPUT_{name.upper().replace('-', '_')}", default).strip()


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = input_value(env, name, "true" if default else "false").lower()
    if raw in ("true", "yes", "1", "on"):
        return True
    if raw in ("false", "no", "0", "off"):
        return False
    raise InputError(f"input '{name}': expected true or false, got '{raw[:40]}'")


@dataclass(frozen=True)
class ActionInputs:
    """The GitHub Action's inputs (action.yml), read and checked once."""

    mode: str
    manifest: Path
    repository: str
    registry_username: str
    registry_password: str
    github_token: str
    baseline: str
    alias: str
    to: str
    reason: str
    comment: bool
    fail_on_regression: bool
    tag_prefix: str
    move_latest: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionInputs:
        """Every input at once, so a bad value is an error now, not at the first regression."""
        mode = input_value(env, "mode", "auto").lower() or "auto"
        if mode not in MODES:
            raise InputError(f"input 'mode': '{mode[:40]}' is not one of {', '.join(MODES)}")
        return cls(
            mode=mode,
            manifest=Path(input_value(env, "manifest") or "modelver.yaml"),
            repository=input_value(env, "repository"),
            registry_username=input_value(env, "registry-username"),
            registry_password=input_value(env, "registry-password"),
            github_token=input_value(env, "github-token"),
            baseline=input_value(env, "baseline"),
            alias=input_value(env, "alias") or "production",
            to=input_value(env, "to"),
            reason=input_value(env, "reason"),
            comment=_flag(env, "comment", True),
            fail_on_regression=_flag(env, "fail-on-regression", True),
            tag_prefix=input_value(env, "tag-prefix", "v"),
            move_latest=_flag(env, "move-latest", True),
        )


def secrets_to_mask(env: Mapping[str, str]) -> list[str]:
    """Every secret input value, raw (masked before anything else is printed)."""
    values = [env.get(f"INPUT_{name.upper().replace('-', '_')}", "") for name in SECRET_INPUTS]
    return [v for v in values if v]

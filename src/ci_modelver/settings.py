"""Frozen settings built from flags and the environment (and the action's INPUT_* variables)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ci_modelver.adapters.http import DEFAULT_MIN_THROUGHPUT
from ci_modelver.errors import InputError

DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 120.0
MAX_TIMEOUT = 7 * 24 * 3600.0
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
    # Bytes per second a blob transfer must average on top of --timeout (MODELVER_MIN_THROUGHPUT).
    min_throughput: int = DEFAULT_MIN_THROUGHPUT

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
        # Each variable takes exactly what its flag takes (argparse's int and float), so
        # MODELVER_TIMEOUT=1.5 works like --timeout 1.5; unset or empty means "not given".
        conc = _number(concurrency, env, "MODELVER_CONCURRENCY", int)
        conc = DEFAULT_CONCURRENCY if conc is None else conc
        if not 1 <= conc <= 64:
            raise InputError(
                f"{_knob('concurrency', surface)} must be between 1 and 64, got {conc}"
            )
        budget = _number(timeout, env, "MODELVER_TIMEOUT", float)
        budget = DEFAULT_TIMEOUT if budget is None else budget
        if not math.isfinite(budget) or budget <= 0:
            raise InputError(
                f"{_knob('timeout', surface)} must be a positive number of seconds, got {budget:g}"
            )
        if budget > MAX_TIMEOUT:
            # Past this, thread waits and timestamps overflow; no request needs a week.
            raise InputError(
                f"{_knob('timeout', surface)} must be at most {MAX_TIMEOUT:g} seconds "
                f"(7 days), got {budget:g}"
            )
        chunk = _number(chunk_size, env, "MODELVER_CHUNK_SIZE", int)
        if chunk is not None and chunk < 1024:
            raise InputError(
                f"{_knob('chunk-size', surface)} must be at least 1024 bytes, got {chunk}"
            )
        plain = plain_http or _env_flag(env, "MODELVER_PLAIN_HTTP")
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
            min_throughput=_min_throughput(env),
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


_NUMBER = TypeVar("_NUMBER", int, float)
_KINDS = {
    int: ("an integer", "a whole number like 8"),
    float: ("a number", "seconds like 120 or 1.5"),
}
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _number(
    flag: _NUMBER | None, env: Mapping[str, str], name: str, parse: type[_NUMBER]
) -> _NUMBER | None:
    """The flag if given, else ``env[name]`` read by the flag's own conversion; None if neither.

    The variable is not read when the flag is given (the flag wins, even over a broken value).
    """
    if flag is not None:
        return flag
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return parse(raw)
    except ValueError:
        kind, example = _KINDS[parse]
        raise InputError(
            f"environment variable {name}={raw[:40]!r} is not {kind}; set it to {example}"
        ) from None


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case); unset or empty is false."""
    raw = env.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS or not raw:
        return False
    raise InputError(
        f"environment variable {name}={raw[:40]!r} is not a boolean; set it to "
        f"{', '.join(TRUE_WORDS)} or {', '.join(FALSE_WORDS)}"
    )


MODES = ("auto", "check", "publish", "promote", "rollback")
# Inputs whose values are secrets: masked before anything else is printed.
SECRET_INPUTS = ("registry-password", "github-token")


def input_value(env: Mapping[str, str], name: str, default: str = "") -> str:
    """The action input ``name`` as the runner passes it (``INPUT_<NAME>``), stripped."""
    return env.get(f"INPUT_{name.upper().replace('-', '_')}", default).strip()


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = input_value(env, name, "true" if default else "false").lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
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
    trusted_keys: str = ""  # PEM text of public keys, or paths of PEM files one per line
    require_signature: bool = False

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
            trusted_keys=input_value(env, "trusted-keys"),
            require_signature=_flag(env, "require-signature", False),
        )


# Secrets a workflow may hand the action through the environment rather than inputs.
SECRET_VARIABLES = ("MODELVER_SIGNING_KEY", "MODELVER_SIGNING_KEY_PASSWORD")


def secrets_to_mask(env: Mapping[str, str]) -> list[str]:
    """Every secret input value and signing secret, raw (masked before anything is printed)."""
    values = [env.get(f"INPUT_{name.upper().replace('-', '_')}", "") for name in SECRET_INPUTS]
    values += [env.get(name, "") for name in SECRET_VARIABLES]
    return [v for v in values if v.strip()]


def _min_throughput(env: Mapping[str, str]) -> int:
    """MODELVER_MIN_THROUGHPUT: whole bytes per second, at least 1024 (default 64 KiB/s)."""
    raw = env.get("MODELVER_MIN_THROUGHPUT", "").strip()
    if not raw:
        return DEFAULT_MIN_THROUGHPUT
    value = int(raw) if raw.isascii() and raw.isdigit() else 0
    if value < 1024:
        raise InputError(
            f"environment variable MODELVER_MIN_THROUGHPUT={raw[:40]!r} is not a number of bytes "
            f"per second of at least 1024; set it like 65536 (the default) or unset it"
        )
    return value

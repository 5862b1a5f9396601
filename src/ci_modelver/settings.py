"""Frozen settings built from flags and the environment, and the stores they open."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci_modelver.errors import InputError

DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 120.0


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
    ) -> Settings:
        """Flags win over environment variables (MODELVER_*), which win over defaults."""
        repo = repository or env.get("MODELVER_REPOSITORY") or None
        conc = (
            concurrency
            if concurrency is not None
            else _int_env(env, "MODELVER_CONCURRENCY", DEFAULT_CONCURRENCY)
        )
        if not 1 <= conc <= 64:
            raise InputError(f"--concurrency must be between 1 and 64, got {conc}")
        budget = (
            timeout
            if timeout is not None
            else float(_int_env(env, "MODELVER_TIMEOUT", int(DEFAULT_TIMEOUT)))
        )
        if not math.isfinite(budget) or budget <= 0:
            raise InputError(f"--timeout must be a positive number of seconds, got {budget:g}")
        chunk = (
            chunk_size
            if chunk_size is not None
            else (_int_env(env, "MODELVER_CHUNK_SIZE", 0) or None)
        )
        if chunk is not None and chunk < 1024:
            raise InputError(f"--chunk-size must be at least 1024 bytes, got {chunk}")
        plain = plain_http or env.get("MODELVER_PLAIN_HTTP", "").lower() in ("1", "true", "yes")
        return cls(env, repo, plain, conc, budget, chunk, cwd or Path.cwd(), log)

    @property
    def in_github_actions(self) -> bool:
        return self.env.get("GITHUB_ACTIONS") == "true"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not an integer") from None

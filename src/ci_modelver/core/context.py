"""When and where a run happens, from values (an epoch, an environment mapping): no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from ci_modelver.core.text import strip_userinfo
from ci_modelver.errors import InputError

# 9999-12-31T23:59:59Z: the last second an RFC 3339 timestamp (four-digit year) can show.
LAST_EPOCH = 253402300799


def source_date_epoch(env: Mapping[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH as seconds, None when unset or empty; InputError when it is not a
    whole number of seconds from 1970 to the year 9999."""
    raw = env.get("SOURCE_DATE_EPOCH")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > LAST_EPOCH:
        raise InputError(
            f"SOURCE_DATE_EPOCH={raw[:40]!r} is not a number of seconds since 1970 "
            "(up to the year 9999)"
        )
    return int(raw)


def rfc3339(epoch: float) -> str:
    """UTC, second precision, 'Z' suffix: the one timestamp format in our artifacts."""
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def precise_time(epoch: float) -> str:
    """RFC 3339 UTC with microseconds: audit records sort by it."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def server_url(env: Mapping[str, str]) -> str:
    """The GitHub web server (github.com, or a GitHub Enterprise Server)."""
    # The variable is the runner's, but a URL with credentials must never reach a record.
    return strip_userinfo(env.get("GITHUB_SERVER_URL", "https://github.com")).rstrip("/")


def repository_url(env: Mapping[str, str]) -> str | None:
    """The web URL of the GitHub repository running the workflow, if any."""
    repo = env.get("GITHUB_REPOSITORY")
    return f"{server_url(env)}/{repo}" if repo else None


def run_url(env: Mapping[str, str]) -> str | None:
    """The URL of the GitHub Actions run we are part of, if any."""
    repo = repository_url(env)
    if repo and env.get("GITHUB_RUN_ID"):
        return f"{repo}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None

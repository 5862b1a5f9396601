"""What git knows about the working tree: commit, remote URL (credentials removed), dirty flag."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ci_modelver.core.text import strip_userinfo


@dataclass(frozen=True)
class GitInfo:
    """The state of the repository holding a manifest; fields are None outside a repository."""

    commit: str | None = None
    repository: str | None = None
    dirty: bool | None = None
    commit_time: int | None = None
    path: str | None = None


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")


def clean_remote_url(url: str) -> str:
    """A browsable URL without credentials: ``git@github.com:a/b.git`` → ``https://github.com/a/b``.

    The user part goes first, whatever the scheme (``persistent-https://me:TOKEN@…``,
    ``ftp://u:p@…``, ``git+ssh://u:p@…``, scp-like ``user:pass@host:path``): the URL ends up in
    an immutable artifact. ssh-style remotes become their https page; other schemes are kept.
    """
    url = strip_userinfo(url.strip())
    match = _SCP_LIKE.match(url)
    if match and "://" not in url:
        url = f"https://{match.group(1)}/{match.group(2)}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed port or IPv6 host: keep the (already stripped) text
        return url
    if parts.scheme in ("ssh", "git", "git+ssh", "ssh+git") and parts.hostname:
        url = f"https://{parts.hostname}{parts.path}"
    elif parts.scheme in ("http", "https") and parts.hostname:
        url = f"{parts.scheme}://{parts.hostname}{f':{port}' if port else ''}{parts.path}"
    url = url.rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def read_git(folder: Path) -> GitInfo:
    """Commit, remote, dirty flag and commit time of the repository containing ``folder``."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None:
        return GitInfo()
    commit = _git(folder, "rev-parse", "HEAD")
    remote = _git(folder, "remote", "get-url", "origin")
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    when = _git(folder, "log", "-1", "--format=%ct")
    try:
        relative = folder.resolve().relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        relative = None
    return GitInfo(
        commit=commit,
        repository=clean_remote_url(remote) if remote else None,
        dirty=None if status is None else bool(status),
        commit_time=int(when) if when and when.isdigit() else None,
        path=None if relative in (None, ".") else relative,
    )

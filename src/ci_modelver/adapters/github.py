"""GitHub's REST API: the sticky pull-request comment; reading the event payload."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_modelver.core.text import one_line
from ci_modelver.errors import InputError, RemoteError

DEFAULT_BOT = "github-actions[bot]"


@dataclass(frozen=True)
class CommentOutcome:
    """What happened to the sticky comment: 'created', 'updated' or 'read-only' (not written)."""

    action: str
    url: str | None
    detail: str = ""


class GitHubClient:
    """The sticky pull-request comment, over PyGithub (any API base URL, e.g. GHES)."""

    def __init__(
        self, api_url: str, token: str, *, author: str | None = None, timeout: int = 30
    ) -> None:
        from github import Auth, Github, GithubRetry  # imported here: only --comment needs it

        # PyGithub attaches an INFO StreamHandler that logs every retried or failed request
        # (GET /user is expected to fail with an installation token); only the CLI may print.
        logging.getLogger("github").setLevel(logging.CRITICAL)
        self.api_url = api_url.rstrip("/")
        self._gh = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=timeout,
            retry=GithubRetry(total=3),
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )
        self._author = author

    def _identity(self) -> str:
        """Whose comments may be edited: the token's user, else the Actions bot.

        Installation tokens (the default GITHUB_TOKEN) get 403 from GET /user; their comments
        are written by github-actions[bot].
        """
        from github import GithubException

        if self._author:
            return self._author
        try:
            login: str = self._gh.get_user().login
            return login
        except GithubException as exc:
            if exc.status == 401:
                raise RemoteError(
                    f"GitHub rejected the token at {self.api_url}/user (401); check GITHUB_TOKEN"
                ) from None
            if exc.status in (403, 404):
                return DEFAULT_BOT
            raise RemoteError(f"GET {self.api_url}/user: HTTP {exc.status}") from None

    def upsert_comment(self, repo: str, number: int, body: str, marker: str) -> CommentOutcome:
        """Edit our comment that starts with ``marker`` (searching every page), or create one."""
        from github import GithubException

        where = f"{self.api_url}/repos/{repo}/issues/{number}/comments"
        try:
            identity = self._identity()
            issue = self._gh.get_repo(repo).get_issue(number)
            ours = None
            for comment in issue.get_comments():
                user = comment.user
                if (
                    user is not None
                    and user.login == identity
                    and (comment.body or "").startswith(marker)
                ):
                    ours = comment
                    break
        except GithubException as exc:
            raise RemoteError(f"GET {where}: HTTP {exc.status} {_gh_message(exc)}") from None
        except OSError as exc:
            raise RemoteError(f"GET {where}: {type(exc).__name__}") from None
        try:
            if ours is not None:
                ours.edit(body)
                return CommentOutcome("updated", ours.html_url)
            created = issue.create_comment(body)
            return CommentOutcome("created", created.html_url)
        except GithubException as exc:
            if exc.status in (403, 404):
                return CommentOutcome("read-only", None, f"HTTP {exc.status} {_gh_message(exc)}")
            raise RemoteError(
                f"writing the comment at {where}: HTTP {exc.status} {_gh_message(exc)}"
            ) from None
        except OSError as exc:
            raise RemoteError(f"writing the comment at {where}: {type(exc).__name__}") from None


def _gh_message(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return one_line(data["message"], 200)
    return ""


def pull_request_from_event(path: Path) -> tuple[str | None, int | None, bool]:
    """(repository full name, PR number, head is a fork) from a pull_request(_target) event file."""
    try:
        event = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        raise InputError(f"GITHUB_EVENT_PATH {path}: not a readable JSON event payload") from None
    if not isinstance(event, dict):
        raise InputError(f"GITHUB_EVENT_PATH {path}: the event payload is not a JSON object")
    pr = event.get("pull_request")
    repo = (
        (event.get("repository") or {}).get("full_name")
        if isinstance(event.get("repository"), dict)
        else None
    )
    if not isinstance(repo, str):
        repo = None
    if not isinstance(pr, dict):
        return repo, None, False
    number = pr.get("number")
    head, base = _event_repo(pr, "head"), _event_repo(pr, "base")
    fork = bool(head.get("fork")) or (head.get("full_name") not in (None, base.get("full_name")))
    valid = isinstance(number, int) and not isinstance(number, bool) and number > 0
    return repo, number if valid else None, fork


def _event_repo(pr: Mapping[str, object], side: str) -> Mapping[str, object]:
    branch = pr.get(side)
    repo = branch.get("repo") if isinstance(branch, dict) else None
    return repo if isinstance(repo, dict) else {}

"""GitHub's REST API: the sticky pull-request comment; reading the event payload.

Waits. One sticky comment (who we are, our comment found by its marker, the write) runs inside one
budget, ``--timeout``: each request may take what is left of it (a quarter at most, a minute at
most), a read that fails for a reason retrying can fix is retried with backoff, and a wait that
GitHub asks for (``Retry-After``, or ``x-ratelimit-reset`` when the rate limit is spent) is
honoured only when it fits in what is left; otherwise we give up at once, naming that wait.

Writes. PyGithub retries nothing here: its default retry includes POST, and after a client timeout
on a POST that GitHub had applied it posted a second "sticky" comment. A write that may or may not
have reached GitHub (a timeout, a dropped connection, a 5xx answer) is followed by a look for our
comment (by its marker, or by its id for an edit) and written again only when it is not there.
A rate-limit answer means the write was refused, so it is repeated after the wait.

Answers. :func:`classify` reads every error answer once: a locked conversation, a body too long,
a token rejected (401) or not allowed (403), a rate limit, a missing pull request, a server error;
GitHub's own words (``message`` and ``errors[].message``) are shown escaped, cut to one line and
without any credential they echo back.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from urllib3.util.retry import Retry

from ci_modelver.adapters.http import REDACTED, redact_secrets
from ci_modelver.core import json_bounds
from ci_modelver.core.text import one_line, redact_url
from ci_modelver.errors import GitHubError, InputError, JSONRefused

DEFAULT_API_URL = "https://api.github.com"


def api_url_from(env: Mapping[str, str]) -> str:
    """GITHUB_API_URL (default https://api.github.com); InputError when it is not http(s)."""
    api = env.get("GITHUB_API_URL") or DEFAULT_API_URL
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"GITHUB_API_URL '{redact_url(one_line(api, 200))}' is not an http(s) URL; unset it "
            "for api.github.com, or set it to your server's API (https://HOST/api/v3)"
        )
    return api.rstrip("/")


if TYPE_CHECKING:
    from github import Github

DEFAULT_BOT = "github-actions[bot]"
# GitHub caps webhook payloads at 25 MB; the event file of a job is one of them.
MAX_EVENT_BYTES = 25 * 1024 * 1024
MAX_EVENT_DEPTH = json_bounds.MAX_DEPTH
MAX_ATTEMPTS = 5  # per request, within the budget
BACKOFF_BASE, BACKOFF_CAP = 0.5, 20.0
# GitHub: after a secondary rate limit that names no time, "wait for at least one minute".
SECONDARY_WAIT = 60.0

# The library retries nothing (no attempt left, no status retried, Retry-After not slept on,
# a read timeout raised as such): reads are retried and writes re-checked here, inside the
# budget. Were attempts ever allowed, only reads could use them: POST and PATCH are not among the
# allowed methods (an empty set would mean "every method" to urllib3).
NO_RETRY = Retry(
    total=0,
    connect=0,
    read=False,
    redirect=0,
    status=0,
    allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
    status_forcelist=frozenset(),
    respect_retry_after_header=False,
    raise_on_status=False,
)

# What an error answer means (GitHubError.kind).
BAD_TOKEN = "bad-token"
NO_PERMISSION = "no-permission"
LOCKED = "locked"
TOO_LONG = "too-long"
RATE_LIMIT = "rate-limit"
SECONDARY_RATE_LIMIT = "secondary-rate-limit"
NOT_FOUND = "not-found"
SERVER = "server"
INVALID = "invalid"
OTHER = "other"
# What PyGithub raises when an answer is not GitHub's JSON (its own errors are GithubException).
_NOT_THE_API = (TypeError, KeyError, AttributeError, IndexError)
TIMEOUT = "timeout"
RATE_LIMITED = frozenset({RATE_LIMIT, SECONDARY_RATE_LIMIT})

# Failures of the connection, not answers: the request may or may not have been applied.
_TRANSIENT_REQUESTS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)

_LOCKED = re.compile(r"\b(?:is|was|been) locked\b|\blocked (?:conversation|issue|pull request)")
_TOKEN_SHAPED = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{22,})\b")

T = TypeVar("T")


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` (GitHub's words) without our token or any Authorization value it echoes (the
    redaction every server's words get), nor a word shaped like a GitHub token (``ghp_…``,
    ``ghs_…``, ``github_pat_…``: someone else's token is not ours to show either)."""
    return _TOKEN_SHAPED.sub(REDACTED, redact_secrets(text, list(secrets)))


# ---------------------------------------------------------------------------------------------
# Answers


@dataclass(frozen=True)
class Answer:
    """What one GitHub error answer means."""

    status: int
    kind: str
    said: str  # GitHub's message and errors[].message, scrubbed and escaped
    wait: float | None = None  # seconds GitHub asked us to wait before asking again
    asked: str = ""  # how it asked: "Retry-After: 600", "x-ratelimit-reset 1714567890", ...
    permissions: str = ""  # X-Accepted-GitHub-Permissions: what the token would need

    @property
    def http(self) -> str:
        """``HTTP 403 Unable to create comment because issue is locked.``"""
        return f"HTTP {self.status} {self.said}".rstrip()


def _words(data: object) -> tuple[str, list[str]]:
    """GitHub's ``message`` and each ``errors[]`` entry's message (or resource/field/code)."""
    if isinstance(data, str):
        return data.strip(), []
    if not isinstance(data, dict):
        return "", []
    message = data.get("message")
    details: list[str] = []
    errors = data.get("errors")
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, str):
            details.append(item)
        elif isinstance(item, dict):
            text = item.get("message")
            if isinstance(text, str) and text:
                details.append(text)
            else:
                parts = [item.get(k) for k in ("resource", "field", "code")]
                details.append(" ".join(str(p) for p in parts if isinstance(p, str) and p))
    return (message if isinstance(message, str) else ""), [d for d in details if d]


def _asked_wait(headers: Mapping[str, str], now: float) -> tuple[float | None, str]:
    """The wait GitHub asked for: Retry-After, else the reset of a spent rate limit."""
    value = headers.get("retry-after", "").strip()
    if value:
        try:
            return max(0.0, float(value)), f"Retry-After: {one_line(value, 40)}"
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
            return max(0.0, when - now), f"Retry-After: {one_line(value, 40)}"
        except (TypeError, ValueError, OverflowError):
            pass
    reset = headers.get("x-ratelimit-reset", "").strip()
    if headers.get("x-ratelimit-remaining", "").strip() == "0" and reset.isdigit():
        # Plus one second: it is not said when in that second the window resets.
        return max(0.0, int(reset) - now) + 1.0, f"x-ratelimit-reset {reset}"
    return None, ""


def classify(
    status: int,
    data: object,
    headers: Mapping[str, str] | None,
    *,
    now: float,
    secrets: Sequence[str] = (),
) -> Answer:
    """What GitHub's error answer means; the one place its statuses and messages are read."""
    head = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    message, details = _words(data)
    text = message + (": " + "; ".join(details) if details else "")
    said = one_line(scrub(text, secrets), 300)
    lowered = text.lower()
    wait, asked = _asked_wait(head, now)
    permissions = one_line(scrub(head.get("x-accepted-github-permissions", ""), secrets), 120)
    limited = status in (403, 429)
    if status == 401:
        kind = BAD_TOKEN
    elif limited and ("secondary rate limit" in lowered or "abuse" in lowered):
        kind = SECONDARY_RATE_LIMIT
        if wait is None:
            wait, asked = SECONDARY_WAIT, "at least a minute for a secondary rate limit"
    elif limited and "rate limit" in lowered:
        kind = RATE_LIMIT
    elif status in (403, 422) and _LOCKED.search(lowered):
        kind = LOCKED
    elif status == 422 and "too long" in lowered:
        kind = TOO_LONG
    elif limited and (wait is not None or status == 429):
        kind = RATE_LIMIT
    elif status == 403:
        kind = NO_PERMISSION
    elif status == 404:
        kind = NOT_FOUND
    elif status >= 500:
        kind = SERVER
    elif status == 422:
        kind = INVALID
    else:
        kind = OTHER
    return Answer(status, kind, said, wait, asked, permissions)


def _permission_advice(answer: Answer, repo: str, *, write: bool = True) -> str:
    """How to give a refused token the right to comment (or read), from GitHub's words."""
    said = answer.said.lower()
    verb = "write" if write else "read"
    wants = f" (GitHub asks for {answer.permissions})" if answer.permissions else ""
    if "saml" in said or "single sign-on" in said:
        return "authorize the token for the organization's SAML single sign-on"
    if "by personal access token" in said:
        return (
            f"the personal access token may not {verb} pull-request comments on {repo}; grant "
            f"it 'Pull requests: {verb}'{wants}"
        )
    if "by integration" in said:
        return (
            f"the job's token may not {verb} pull-request comments; give the job "
            f"'permissions: pull-requests: {verb}'{wants}"
        )
    return f"the token may not {verb} comments on {repo}{wants}"


# ---------------------------------------------------------------------------------------------
# The calls, behind a small port (PyGithub in production, a script in unit tests)


@dataclass(frozen=True)
class Found:
    """One issue comment as GitHub showed it."""

    id: int
    html_url: str | None
    body: str
    login: str | None = None


class Api(Protocol):
    """The GitHub calls a sticky comment needs; each one is one request (``comments``: a page)."""

    def login(self) -> str: ...

    def comments(self, repo: str, number: int) -> Iterable[Found]: ...

    def comment(self, repo: str, number: int, comment_id: int) -> Found: ...

    def create(self, repo: str, number: int, body: str) -> Found: ...

    def edit(self, repo: str, number: int, comment_id: int, body: str) -> Found: ...


class PyGithubApi:
    """:class:`Api` over PyGithub, with a per-request timeout and no retries of its own."""

    def __init__(self, api_url: str, token: str, timeout: int) -> None:
        from github import Auth, Github  # imported here: only --comment needs it

        self.github: Github = Github(
            auth=Auth.Token(token),
            base_url=api_url,
            timeout=timeout,
            retry=NO_RETRY,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
            per_page=100,
        )

    def _issue(self, repo: str, number: int) -> Any:
        return self.github.get_repo(repo).get_issue(number)

    def login(self) -> str:
        login: str = self.github.get_user().login
        return login

    def comments(self, repo: str, number: int) -> Iterator[Found]:
        for item in self._issue(repo, number).get_comments():
            yield _found(item)

    def comment(self, repo: str, number: int, comment_id: int) -> Found:
        item = self._issue(repo, number).get_comment(comment_id)
        return _found(item)

    def create(self, repo: str, number: int, body: str) -> Found:
        return _found(self._issue(repo, number).create_comment(body))

    def edit(self, repo: str, number: int, comment_id: int, body: str) -> Found:
        item = self._issue(repo, number).get_comment(comment_id)
        item.edit(body)
        return _found(item)


def _found(item: Any) -> Found:
    user = item.user
    login = user.login if user is not None else None
    html_url = item.html_url
    return Found(
        int(item.id),
        html_url if isinstance(html_url, str) else None,
        item.body if isinstance(item.body, str) else "",
        login if isinstance(login, str) else None,
    )


# ---------------------------------------------------------------------------------------------
# The sticky comment


@dataclass(frozen=True)
class CommentOutcome:
    """What happened to the sticky comment: 'created', 'updated' or 'read-only' (not written)."""

    action: str
    url: str | None
    detail: str = ""  # read-only: GitHub's answer ("HTTP 403 …")
    advice: str = ""  # read-only: how the token could be given the right to comment


@dataclass(frozen=True)
class Budget:
    """One operation's time (a sticky comment, a package deletion): the deadline of every
    request, retry and wait in it."""

    total: float
    deadline: float
    clock: Callable[[], float]

    def left(self) -> float:
        return self.deadline - self.clock()


Refusal = Callable[[Answer], T]


class GitHubClient:
    """The sticky pull-request comment (any API base URL, e.g. GHES), inside one time budget."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        author: str | None = None,
        budget: float = 120.0,
        token_source: str = "GITHUB_TOKEN",
        wait_hint: str = "raise --timeout to wait longer",
        connect: Callable[[float], Api] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        log: Callable[[str], None] | None = None,
    ) -> None:
        # PyGithub attaches an INFO StreamHandler that logs every retried or failed request
        # (GET /user is expected to fail with an installation token); only the CLI may print.
        logging.getLogger("github").setLevel(logging.CRITICAL)
        self.api_url = api_url.rstrip("/")
        self._shown = redact_url(self.api_url)  # in messages: never a user:password@
        self._token = token
        self._author = author
        self._login: str | None = None  # the token's identity, once asked
        self.budget = budget
        # A single request may take a quarter of the budget (at most a minute), as for registries.
        self.request_timeout = min(60.0, max(2.0, budget / 4))
        self._token_source = token_source
        self._hint = wait_hint
        self._connect = connect or (
            lambda seconds: PyGithubApi(self.api_url, token, max(1, math.ceil(seconds)))
        )
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._log = log  # --debug: one line per call, never a credential

    # -- the one retry loop for reads, the one re-check loop for writes --

    def _api(self, budget: Budget, label: str) -> Api:
        left = budget.left()
        if left <= 0:
            raise GitHubError(
                f"{label}: gave up, the {budget.total:g}s budget is spent ({self._hint})",
                TIMEOUT,
            )
        return self._connect(min(self.request_timeout, left))

    @staticmethod
    def _within(budget: Budget, call: Callable[[Api], T], api: Api) -> T:
        """``call(api)``, waited for at most what is left of the budget.

        The request timeout bounds each read, not a whole answer: a server that sends a byte
        now and then would hold us for ever. Past the budget the call is left to its daemon
        thread and counts as a request that got no answer in time.
        """
        outcome: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                outcome.append((True, call(api)))
            except BaseException as exc:  # handed to the waiting thread as it is
                outcome.append((False, exc))

        worker = threading.Thread(target=run, name="ci-modelver-github", daemon=True)
        worker.start()
        worker.join(max(budget.left(), 0.25))  # a quarter second: a thread's start-up
        if not outcome:
            raise requests.Timeout("the answer did not complete within the budget")
        done, value = outcome[0]
        if not done:
            if isinstance(value, _NOT_THE_API):
                # PyGithub reads an HTML page (a captive portal, a GHES URL without /api/v3)
                # as if it were its JSON and fails with a TypeError or KeyError inside.
                raise GitHubError(
                    f"GitHub answered with something that is not its REST API "
                    f"({type(value).__name__}); check GITHUB_API_URL",
                    OTHER,
                ) from None
            raise value
        result: T = value
        return result

    def _attempt(self, label: str, budget: Budget, call: Callable[[Api], T]) -> T:
        """One attempt of ``call``, bounded by the budget, told to --debug."""
        started = self._clock()
        outcome = "ok"
        try:
            return self._within(budget, call, self._api(budget, label))
        except BaseException as exc:
            status = getattr(exc, "status", None)
            outcome = f"HTTP {status}" if isinstance(status, int) else type(exc).__name__
            raise
        finally:
            if self._log is not None:
                elapsed = self._clock() - started
                self._log(f"debug: GitHub {label} -> {outcome} in {elapsed:.3f}s")

    def _answer(self, exc: Exception) -> Answer:
        status = getattr(exc, "status", None)
        return classify(
            status if isinstance(status, int) else 0,
            getattr(exc, "data", None),
            getattr(exc, "headers", None),
            now=self._wall(),
            secrets=(self._token,),
        )

    def _pause(
        self, label: str, attempt: int, problem: Answer | BaseException, budget: Budget
    ) -> None:
        pause(label, attempt, problem, budget, hint=self._hint, sleep=self._sleep)

    def _read(self, label: str, call: Callable[[Api], T], budget: Budget, refused: Refusal[T]) -> T:
        """``call`` (requests that change nothing), retried while retrying can help."""
        from github import GithubException

        attempt = 0
        while True:
            attempt += 1
            problem: Answer | BaseException
            try:
                return self._attempt(label, budget, call)
            except GithubException as exc:
                problem = self._answer(exc)
                if problem.kind not in RATE_LIMITED and problem.kind != SERVER:
                    return refused(problem)
            except OSError as exc:  # requests' exceptions are OSErrors too
                problem = transient(exc, label)
            self._pause(label, attempt, problem, budget)

    def _write(
        self,
        label: str,
        send: Callable[[Api], T],
        applied: Callable[[], T | None],
        budget: Budget,
        refused: Refusal[T],
    ) -> T:
        """``send`` a write; when it may have been applied unseen, ``applied()`` looks first."""
        from github import GithubException

        attempt = 0
        while True:
            attempt += 1
            problem: Answer | BaseException
            try:
                return self._attempt(label, budget, send)
            except GithubException as exc:
                problem = self._answer(exc)
                if problem.kind not in RATE_LIMITED and problem.kind != SERVER:
                    return refused(problem)
                unsure = problem.kind == SERVER  # a refusal for a rate limit applied nothing
            except OSError as exc:  # requests' exceptions are OSErrors too
                problem, unsure = transient(exc, label), True
            self._pause(label, attempt, problem, budget)
            if unsure:
                done = applied()
                if done is not None:
                    return done

    # -- the steps --

    def _start(self) -> Budget:
        return Budget(self.budget, self._clock() + self.budget, self._clock)

    def _identity(self, budget: Budget) -> str:
        """Whose comments may be edited: the token's user, else the Actions bot (asked once).

        Installation tokens (the default GITHUB_TOKEN) get 403 from GET /user; their comments
        are written by github-actions[bot].
        """
        if self._author:
            return self._author
        if self._login is not None:
            return self._login
        label = f"GET {self._shown}/user"

        def refused(answer: Answer) -> str:
            if answer.kind in (NO_PERMISSION, NOT_FOUND):
                return DEFAULT_BOT
            raise self._refusal(answer, label, "", 0)

        self._login = self._read(label, lambda api: api.login(), budget, refused)
        return self._login

    def _find(self, repo: str, number: int, marker: str, budget: Budget) -> Found | None:
        """Our comment: starting with ``marker`` (on every page) and written by us.

        Who "us" is is asked only when some comment starts with the marker.
        """
        label = f"GET {self._shown}/repos/{repo}/issues/{number}/comments"

        def look(api: Api) -> list[Found]:
            marked = []
            for found in api.comments(repo, number):
                if found.body.startswith(marker):
                    marked.append(found)
                if budget.left() <= 0:
                    raise GitHubError(
                        f"{label}: gave up, the {budget.total:g}s budget ran out while reading "
                        f"the comments page by page ({self._hint})",
                        TIMEOUT,
                    )
            return marked

        def refused(answer: Answer) -> list[Found]:
            raise self._refusal(answer, label, repo, number, write=False)

        marked = self._read(label, look, budget, refused)
        if not marked:
            return None
        identity = self._identity(budget)
        return next((found for found in marked if found.login == identity), None)

    def upsert_comment(self, repo: str, number: int, body: str, marker: str) -> CommentOutcome:
        """Edit our comment that starts with ``marker`` (searching every page), or create one."""
        budget = self._start()
        ours = self._find(repo, number, marker, budget)
        if ours is not None:
            return self._edit(repo, number, ours.id, body, budget)
        return self._create(repo, number, body, marker, budget)

    def _create(
        self, repo: str, number: int, body: str, marker: str, budget: Budget
    ) -> CommentOutcome:
        label = f"POST {self._shown}/repos/{repo}/issues/{number}/comments"

        def send(api: Api) -> CommentOutcome:
            return CommentOutcome("created", self._url(api.create(repo, number, body)))

        def applied() -> CommentOutcome | None:
            # The POST may have created our comment although its answer never came back.
            found = self._find(repo, number, marker, budget)
            if found is None:
                return None
            if found.body == body:
                return CommentOutcome("created", self._url(found))
            return self._edit(repo, number, found.id, body, budget)

        return self._write(label, send, applied, budget, self._written_refusal(label, repo, number))

    def _edit(
        self, repo: str, number: int, comment_id: int, body: str, budget: Budget
    ) -> CommentOutcome:
        label = f"PATCH {self._shown}/repos/{repo}/issues/comments/{comment_id}"
        refused = self._written_refusal(label, repo, number)

        def send(api: Api) -> CommentOutcome:
            return CommentOutcome("updated", self._url(api.edit(repo, number, comment_id, body)))

        def applied() -> CommentOutcome | None:
            get = f"GET {self._shown}/repos/{repo}/issues/comments/{comment_id}"
            found = self._read(
                get,
                lambda api: api.comment(repo, number, comment_id),
                budget,
                lambda answer: _raise(self._refusal(answer, get, repo, number, write=False)),
            )
            return CommentOutcome("updated", self._url(found)) if found.body == body else None

        return self._write(label, send, applied, budget, refused)

    def _url(self, found: Found) -> str | None:
        return scrub(found.html_url, (self._token,)) if found.html_url is not None else None

    # -- what a refusal means --

    def _written_refusal(self, label: str, repo: str, number: int) -> Refusal[CommentOutcome]:
        def refused(answer: Answer) -> CommentOutcome:
            if answer.kind == NO_PERMISSION:
                # A fork's read-only token, or a token without the permission: not a failure
                # of the check; the caller warns and keeps the report for a later job.
                return CommentOutcome(
                    "read-only", None, answer.http, _permission_advice(answer, repo)
                )
            raise self._refusal(answer, label, repo, number)

        return refused

    def _refusal(
        self, answer: Answer, label: str, repo: str, number: int, *, write: bool = True
    ) -> GitHubError:
        """The one-line error for an answer that retrying within the budget cannot change."""
        target = f"{repo}#{number}" if repo else self._shown
        messages = {
            BAD_TOKEN: f"GitHub rejected the token from {self._token_source} ({answer.http} at "
            f"{label}): it is invalid, expired or revoked; use a valid token",
            LOCKED: f"cannot comment on {target}: the conversation is locked ({answer.http} at "
            f"{label}); only collaborators may comment on a locked conversation — unlock it and "
            "rerun, or post the report with a collaborator's token "
            f"('ci-modelver comment --from-file FILE --pr {number}')",
            TOO_LONG: f"GitHub refused the comment on {target} as too long ({answer.http} at "
            f"{label}); shorten the report (fewer metrics or a shorter template)",
            NOT_FOUND: f"GitHub has no pull request {target} that this token can see "
            f"({answer.http} at {label}); check the pull request number and GITHUB_REPOSITORY, "
            "and that the token can read the repository",
            NO_PERMISSION: f"GitHub refused {label} ({answer.http}): "
            f"{_permission_advice(answer, repo or self._shown, write=write)}",
            INVALID: f"GitHub refused the comment on {target} ({answer.http} at {label})",
        }
        message = messages.get(answer.kind, f"{label}: {answer.http}")
        return GitHubError(message, answer.kind, answer.status)


def pause(
    label: str,
    attempt: int,
    problem: Answer | BaseException,
    budget: Budget,
    *,
    hint: str,
    sleep: Callable[[float], None],
) -> None:
    """Sleep before the next attempt, or raise GitHubError when it would not fit the budget
    (GitHub's Retry-After honoured; exponential backoff with jitter otherwise)."""
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1)) * random.random()
    left = budget.left()
    if isinstance(problem, Answer):
        reason, kind = problem.http, problem.kind
        if problem.wait is not None:
            delay = problem.wait
            if delay > left:
                what = {
                    SECONDARY_RATE_LIMIT: "GitHub's secondary rate limit",
                    RATE_LIMIT: "GitHub's rate limit",
                }.get(kind, "GitHub is busy")
                raise GitHubError(
                    f"{label}: {what} ({reason}); GitHub asked to wait {_seconds(delay)} "
                    f"({problem.asked}), more than the {_seconds(max(left, 0.0))} left of the "
                    f"{budget.total:g}s budget; rerun later, or {hint}",
                    kind,
                    problem.status,
                )
    else:
        kind = TIMEOUT
        reason = type(problem).__name__
        if isinstance(problem, requests.Timeout):
            reason = "no answer in time"
    if attempt >= MAX_ATTEMPTS or delay > left:
        raise GitHubError(
            f"{label}: {reason}; gave up after {attempt} attempt(s) within the "
            f"{budget.total:g}s budget ({hint})",
            kind,
            problem.status if isinstance(problem, Answer) else None,
        )
    sleep(delay)


def transient(exc: OSError, label: str) -> OSError:
    """``exc`` when the connection failed (retrying may help); else a GitHubError is raised.

    A failed connection says nothing of whether the request was applied; its text may quote
    request headers, so only its type is ever shown.
    """
    if isinstance(exc, requests.RequestException) and not isinstance(exc, _TRANSIENT_REQUESTS):
        raise GitHubError(f"{label}: {type(exc).__name__}", OTHER) from None
    return exc


def _raise(error: GitHubError) -> Any:
    raise error


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


# ---------------------------------------------------------------------------------------------
# The event payload


def pull_request_from_event(path: Path) -> tuple[str | None, int | None, bool]:
    """(repository full name, PR number, head is a fork) from a pull_request(_target) event file.

    The file is read within bounds (25 MB, 64 levels: GitHub's payloads are far smaller and
    flatter) by the parser every outside JSON document goes through.
    """
    what = f"GITHUB_EVENT_PATH {path}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_EVENT_BYTES + 1)
    except OSError:
        raise InputError(f"{what}: not a readable JSON event payload") from None
    if len(raw) > MAX_EVENT_BYTES:
        raise InputError(
            f"{what}: not a readable JSON event payload (it is over {MAX_EVENT_BYTES:,} bytes, "
            "more than GitHub sends); point GITHUB_EVENT_PATH at the event file GitHub wrote"
        )
    try:
        event = json_bounds.parse(raw, max_bytes=MAX_EVENT_BYTES, max_depth=MAX_EVENT_DEPTH)
    except JSONRefused as exc:
        raise InputError(
            f"{what}: not a readable JSON event payload (it {exc.problem}); point "
            "GITHUB_EVENT_PATH at the event file GitHub wrote"
        ) from None
    if not isinstance(event, dict):
        raise InputError(f"{what}: the event payload is not a JSON object")
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

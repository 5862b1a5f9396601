"""A stateful fake of GitHub's REST API for pull-request comment and package-version tests.

It serves the few endpoints a sticky-comment poster needs, and the container package versions of
organizations and users (listed page by page, deleted by id, GitHub's last-version rule, scope and
admin refusals), on a free 127.0.0.1 port, with the status codes, error bodies, headers and
pagination of the real API. Every request and response is
checked against GitHub's OpenAPI description; what does not conform lands in ``violations``.

Faults (``answer_with``, ``rate_limit``, ``stall``, ``lose_answer``, ``drop_request``) make it
misbehave for matching requests the way GitHub and networks do: crafted error answers, rate
limits with ``Retry-After`` or ``x-ratelimit-reset``, answers that come too late, writes that
are applied but whose answer never arrives. ``lock`` locks a conversation as GitHub does. Every
wait a fault makes is cut short by ``stop()``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.openapi import OpenAPIChecker, default_spec_path, load_document

MAX_COMMENT_LENGTH = 65536
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
API_VERSION = "2022-11-28"
RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"
PACKAGE_TYPES = ("npm", "maven", "rubygems", "docker", "nuget", "container")

NOT_ACCESSIBLE = "Resource not accessible by integration"
NOT_ACCESSIBLE_PAT = "Resource not accessible by personal access token"
LOCKED_MESSAGE = "Unable to create comment because issue is locked."
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID FAKE:0001."
)
PRIMARY_RATE_LIMIT_MESSAGE = (
    "API rate limit exceeded for installation ID 1. If you reach out to GitHub Support for "
    "help, please include the request ID FAKE:0001."
)
RATE_LIMIT_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
# GitHub's words for package versions.
READ_PACKAGES_REFUSED = "You need at least read:packages scope to get a package's versions."
DELETE_PACKAGES_REFUSED = (
    "You need at least delete:packages and read:packages scopes to delete a package version."
)
PACKAGE_NOT_FOUND = "Package not found."
PACKAGE_VERSION_NOT_FOUND = "Package version not found."
LAST_VERSION_MESSAGE = (
    "You cannot delete the last version of a package. You must delete the package instead."
)
LAST_TAGGED_VERSION_MESSAGE = (
    "You cannot delete the last tagged version of a package. You must delete the package instead."
)
# Statuses GitHub sends on any endpoint although its OpenAPI description does not list them
# everywhere; injected answers with them are checked as basic errors (a JSON 'message').
ANY_ENDPOINT_STATUSES = frozenset({401, 403, 404, 429, 500, 502, 503, 504})

Json = Any
Handler = Callable[["_Request", dict[str, str]], "_Response"]


# ---------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class Identity:
    """Who a token acts as, and what it may do."""

    login: str
    id: int
    node_id: str
    type: str  # "User", "Bot" or "Organization"
    can_write: bool = True
    user_endpoint: bool = True  # False: GET /user answers 403, as for installation tokens
    packages: str = "delete"  # "none", "read" or "delete": what it may do to packages


@dataclass
class Repository:
    owner: str
    name: str
    id: int
    node_id: str
    owner_type: str = "User"
    private: bool = False
    default_branch: str = "main"
    fork: bool = False
    parent: str | None = None  # full name of the repository this one is a fork of

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Issue:
    owner: str
    repo: str
    number: int
    id: int
    node_id: str
    title: str
    body: str | None
    author: str
    created_at: str
    updated_at: str
    state: str = "open"
    pull_request: PullRequest | None = None
    locked: bool = False
    lock_reason: str | None = None
    lock_status: int = 403  # how a refused comment on the locked conversation is answered


@dataclass
class PullRequest:
    owner: str
    repo: str
    number: int
    id: int
    node_id: str
    head_repo_full_name: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    author: str

    @property
    def is_fork(self) -> bool:
        return self.head_repo_full_name != f"{self.owner}/{self.repo}"


@dataclass
class Comment:
    id: int
    node_id: str
    owner: str
    repo: str
    issue_number: int
    body: str
    login: str
    created_at: str
    updated_at: str
    author_association: str = "NONE"


@dataclass
class PackageVersion:
    """One version of a container package: its name is the manifest digest."""

    id: int
    name: str
    tags: list[str]
    created_at: str
    updated_at: str
    deleted_at: str | None = None


@dataclass
class Package:
    """A container package of an organization or a user (``name`` may hold '/')."""

    owner: str
    name: str
    id: int
    owner_type: str  # "Organization" or "User"
    # Who may delete its versions (None: any token allowed to delete packages). Anyone else
    # gets GitHub's 404 "Package not found." on DELETE, although the versions can be listed.
    admins: frozenset[str] | None = None
    versions: list[PackageVersion] = field(default_factory=list)

    def active(self) -> list[PackageVersion]:
        return [v for v in self.versions if v.deleted_at is None]


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake answered."""

    method: str
    path: str  # API path without the prefix, e.g. /repos/o/r/issues/1/comments
    query: dict[str, str | list[str]]
    login: str | None  # the token's identity; None when unauthenticated or unknown
    token: str | None
    status: int
    body: Json = None
    raw_path: str = ""  # as sent, with prefix and query
    operation_id: str | None = None


@dataclass
class Fault:
    """How the fake misbehaves for requests matching ``method`` and the API path ``pattern``.

    ``mode``: "answer" (``status``/``body``/``headers`` instead of handling the request),
    "stall" (wait ``delay`` seconds, then handle and answer), "late" (handle, then answer
    ``delay`` seconds later, or never when ``delay`` is None: the connection is closed), "drop"
    (close the connection before handling), "drip" (handle, then send the answer's body one
    byte every ``delay`` seconds for ``until`` seconds, then the rest). ``times`` matching
    requests get it (None: all).
    """

    method: str
    pattern: str
    mode: str
    status: int = 0
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None
    times: int | None = 1
    hits: int = 0
    until: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        spent = self.times is not None and self.hits >= self.times
        return not spent and method == self.method and re.search(self.pattern, path) is not None


@dataclass
class _UserRecord:
    login: str
    id: int
    node_id: str
    type: str


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str | list[str]]
    headers: dict[str, str]
    body: Json
    identity: Identity | None
    token: str | None


@dataclass
class _Response:
    status: int
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)


def _node_id(kind: str, number: int) -> str:
    """GitHub's legacy global node id: base64 of '<len>:<Kind><id>'."""
    raw = f"{len(kind):03d}:{kind}{number}" if len(kind) > 9 else f"0{len(kind)}:{kind}{number}"
    return base64.b64encode(raw.encode()).decode()


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


class _ApiError(Exception):
    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


class _UndocumentedError(_ApiError):
    """An answer GitHub sends with a status its description does not list for the operation
    (the 400 for a package's last version): its body is checked as a basic error."""


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _HandlerClass)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _HandlerClass(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        fault = fake._fault_for(self.command, self.path)
        mode = fault.mode if fault is not None else ""
        if mode == "drop":
            fake._dropped(self.command, self.path)
            self.close_connection = True
            return
        if mode == "stall":
            fake._wait(fault.delay if fault is not None else None)
        status, headers, payload = fake._dispatch(
            self.command,
            self.path,
            dict(self.headers.items()),
            raw,
            fault if mode == "answer" else None,
        )
        if mode == "late":
            if fault is None or fault.delay is None:
                self.close_connection = True  # applied, and the answer never comes
                return
            fake._wait(fault.delay)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if mode == "drip" and fault is not None:
                payload = fake._drip(self.wfile, payload, fault)
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:  # the client gave up waiting
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve


# ---------------------------------------------------------------------------------------------
# The fake


class FakeGitHub:
    """GitHub's REST API, in memory, on ``base_url``.

    Default tokens: ``ghs_installation`` (github-actions[bot], may write, GET /user is 403),
    ``ghs_readonly`` (the same bot, every write is 403, as on a fork's pull request) and
    ``ghp_personal`` (octocat, a User whose GET /user works).
    """

    INSTALLATION_TOKEN = "ghs_installation"
    READONLY_TOKEN = "ghs_readonly"
    PERSONAL_TOKEN = "ghp_personal"
    BOT_LOGIN = "github-actions[bot]"
    BOT_ID = 41898282

    def __init__(
        self,
        checker: OpenAPIChecker | None = None,
        *,
        prefix: str = "",
        spec_path: Path | None = None,
    ) -> None:
        if checker is None:
            if spec_path is None:
                from tests.support.npm_packages import ensure_npm_packages

                spec_path = default_spec_path(ensure_npm_packages())
            checker = OpenAPIChecker(load_document(spec_path))
        self.checker = checker
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.violations: list[str] = []
        self.requests: list[RequestRecord] = []
        self._lock = threading.RLock()
        self._tokens: dict[str, Identity] = {}
        self._users: dict[str, _UserRecord] = {}
        self._repos: dict[tuple[str, str], Repository] = {}
        self._issues: dict[tuple[str, str, int], Issue] = {}
        self._comments: dict[int, Comment] = {}
        self._rate_used: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._repo_ids = itertools.count(700_000_001)
        self._issue_ids = itertools.count(2_100_000_001)
        self._pull_ids = itertools.count(1_800_000_001)
        self._comment_ids = itertools.count(2_500_000_001)
        self._packages: dict[tuple[str, str], Package] = {}
        self._package_ids = itertools.count(40_000_001)
        self._package_version_ids = itertools.count(300_000_001)
        self._clock = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
        self._rate_reset = int(self._clock.timestamp()) + 3600
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()
        self.faults: list[Fault] = []
        self.dropped: list[tuple[str, str]] = []  # requests closed before they were handled
        self._stopping = threading.Event()
        self._implicit_checkers: dict[frozenset[int], OpenAPIChecker] = {}

        self._register_user(self.BOT_LOGIN, "Bot", user_id=self.BOT_ID)
        self._register_user("octocat", "User", user_id=583231)
        self.add_token(self.INSTALLATION_TOKEN, self.BOT_LOGIN, type="Bot", user_endpoint=False)
        self.add_token(
            self.READONLY_TOKEN,
            self.BOT_LOGIN,
            type="Bot",
            can_write=False,
            user_endpoint=False,
            packages="read",
        )
        self.add_token(self.PERSONAL_TOKEN, "octocat", type="User")

    # -- lifecycle --

    def start(self) -> FakeGitHub:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeGitHub",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # every fault's wait ends now
        server.shutdown()
        server.close_open_sockets()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """Where web pages (html_url) live: the server root, like a GHES host."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The REST API root: http://127.0.0.1:PORT or, with prefix "/api/v3", .../api/v3."""
        return self.root_url + self.prefix

    # -- seeding --

    def _register_user(self, login: str, type: str, user_id: int | None = None) -> _UserRecord:
        with self._lock:
            known = self._users.get(login)
            if known is not None:
                return known
            if user_id is None:
                user_id = 10_000_000 + next(self._ids)
            kind = {"Bot": "Bot", "Organization": "Organization"}.get(type, "User")
            record = _UserRecord(login, user_id, _node_id(kind, user_id), type)
            self._users[login] = record
            return record

    def add_token(
        self,
        token: str,
        login: str,
        type: str = "User",
        can_write: bool = True,
        user_endpoint: bool = True,
        packages: str = "delete",
    ) -> Identity:
        """Make ``token`` act as ``login``; ``type`` is "User" or "Bot"; ``packages`` is what
        it may do to packages: "none", "read" (read:packages) or "delete" (delete:packages)."""
        if type not in ("User", "Bot"):
            raise ValueError(f"type must be 'User' or 'Bot', not {type!r}")
        if packages not in ("none", "read", "delete"):
            raise ValueError(f"packages must be 'none', 'read' or 'delete', not {packages!r}")
        user = self._register_user(login, type)
        identity = Identity(
            login, user.id, user.node_id, user.type, can_write, user_endpoint, packages
        )
        with self._lock:
            self._tokens[token] = identity
        return identity

    def identity(self, token: str) -> Identity | None:
        return self._tokens.get(token)

    def add_repo(
        self,
        owner: str,
        repo: str,
        *,
        owner_type: str = "User",
        private: bool = False,
        default_branch: str = "main",
        fork_of: str | None = None,
    ) -> Repository:
        """The repository owner/repo (returned as is when it exists)."""
        with self._lock:
            existing = self._repos.get((owner, repo))
            if existing is not None:
                return existing
            self._register_user(owner, owner_type)
            repo_id = next(self._repo_ids)
            record = Repository(
                owner,
                repo,
                repo_id,
                _node_id("Repository", repo_id),
                owner_type=owner_type,
                private=private,
                default_branch=default_branch,
                fork=fork_of is not None,
                parent=fork_of,
            )
            self._repos[(owner, repo)] = record
            return record

    def add_issue(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        title: str = "An issue",
        author: str = "octocat",
    ) -> Issue:
        with self._lock:
            self.add_repo(owner, repo)
            if (owner, repo, number) in self._issues:
                raise ValueError(f"{owner}/{repo}#{number} exists already")
            self._register_user(author, "User")
            issue_id = next(self._issue_ids)
            now = self._tick()
            issue = Issue(
                owner,
                repo,
                number,
                issue_id,
                _node_id("Issue", issue_id),
                title,
                None,
                author,
                now,
                now,
            )
            self._issues[(owner, repo, number)] = issue
            return issue

    def add_pull_request(
        self,
        owner: str,
        repo: str,
        number: int,
        head_repo_full_name: str | None = None,
        *,
        title: str = "A change",
        author: str | None = None,
        head_ref: str = "feature",
        head_sha: str | None = None,
        base_ref: str = "main",
    ) -> PullRequest:
        """Pull request #number of owner/repo; from the fork ``head_repo_full_name`` if given."""
        with self._lock:
            base = self.add_repo(owner, repo)
            head_full = head_repo_full_name or base.full_name
            if head_full != base.full_name:
                fork_owner, fork_name = head_full.split("/", 1)
                self.add_repo(fork_owner, fork_name, fork_of=base.full_name)
            issue = self.add_issue(
                owner, repo, number, title=title, author=author or head_full.split("/")[0]
            )
            pull_id = next(self._pull_ids)
            pull = PullRequest(
                owner,
                repo,
                number,
                pull_id,
                _node_id("PullRequest", pull_id),
                head_full,
                head_ref,
                head_sha or _sha(f"head:{owner}/{repo}#{number}"),
                base_ref,
                _sha(f"base:{owner}/{repo}#{number}"),
                issue.author,
            )
            issue.pull_request = pull
            return pull

    def add_comment(
        self, owner: str, repo: str, number: int, body: str, login: str, type: str = "User"
    ) -> Comment:
        """Seed a comment on issue or pull request #number, as ``login`` (no API call)."""
        with self._lock:
            if (owner, repo, number) not in self._issues:
                raise ValueError(f"{owner}/{repo}#{number} does not exist: add_pull_request first")
            user = self._register_user(login, type)
            return self._create_comment(owner, repo, number, body, user)

    def _create_comment(
        self, owner: str, repo: str, number: int, body: str, user: _UserRecord
    ) -> Comment:
        comment_id = next(self._comment_ids)
        now = self._tick()
        association = "OWNER" if user.login == owner else "NONE"
        comment = Comment(
            comment_id,
            _node_id("IssueComment", comment_id),
            owner,
            repo,
            number,
            body,
            user.login,
            now,
            now,
            association,
        )
        self._comments[comment_id] = comment
        self._issues[(owner, repo, number)].updated_at = now
        return comment

    def add_package(
        self,
        owner: str,
        name: str,
        *,
        owner_type: str = "Organization",
        admins: set[str] | frozenset[str] | None = None,
    ) -> Package:
        """The container package ``name`` of ``owner`` (an "Organization" or a "User"),
        returned as is when it exists; ``admins``: who may delete its versions (None: any
        token allowed to delete packages)."""
        if owner_type not in ("Organization", "User"):
            raise ValueError(f"owner_type must be 'Organization' or 'User', not {owner_type!r}")
        with self._lock:
            user = self._register_user(owner, owner_type)
            if user.type != owner_type:
                raise ValueError(f"{owner} is a {user.type}, not a {owner_type}")
            existing = self._packages.get((owner, name))
            if existing is not None:
                return existing
            package = Package(
                owner,
                name,
                next(self._package_ids),
                owner_type,
                frozenset(admins) if admins is not None else None,
            )
            self._packages[(owner, name)] = package
            return package

    def add_package_version(
        self,
        owner: str,
        name: str,
        digest: str,
        tags: list[str] | tuple[str, ...] = (),
        *,
        owner_type: str = "Organization",
    ) -> PackageVersion:
        """Seed a version (named by its manifest digest) of container package owner/name."""
        with self._lock:
            package = self.add_package(owner, name, owner_type=owner_type)
            if any(v.name == digest and v.deleted_at is None for v in package.versions):
                raise ValueError(f"{owner}/{name} already has a version {digest}")
            now = self._tick()
            version = PackageVersion(next(self._package_version_ids), digest, list(tags), now, now)
            package.versions.append(version)
            return version

    def package_versions(
        self, owner: str, name: str, *, deleted: bool = False
    ) -> list[PackageVersion]:
        """Copies of the active (or the deleted) versions of owner/name, newest first."""
        with self._lock:
            package = self._packages.get((owner, name))
            if package is None:
                return []
            found = [v for v in package.versions if (v.deleted_at is not None) == deleted]
            return [copy.deepcopy(v) for v in sorted(found, key=lambda v: -v.id)]

    # -- faults --

    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def answer_with(
        self,
        method: str,
        pattern: str,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        documentation_url: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Answer matching requests with GitHub's error body (``message``, ``errors``)."""
        body: dict[str, Json] = {"message": message}
        if errors is not None:
            body["errors"] = errors
        if documentation_url is not None:
            body["documentation_url"] = documentation_url
        fault = Fault(method.upper(), pattern, "answer", status, body, dict(headers or {}))
        fault.times = times
        return self._add_fault(fault)

    def rate_limit(
        self,
        method: str,
        pattern: str,
        *,
        secondary: bool = True,
        retry_after: str | float | None = None,
        reset_in: float | None = None,
        status: int = 403,
        times: int | None = 1,
    ) -> Fault:
        """GitHub's rate-limit answer: a secondary limit (``Retry-After`` if given) or the
        primary one; ``reset_in`` (or a primary limit) spends the window until then."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if reset_in is not None or not secondary:
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Reset"] = str(int(time.time() + (reset_in or 3600)))
        message = SECONDARY_RATE_LIMIT_MESSAGE if secondary else PRIMARY_RATE_LIMIT_MESSAGE
        return self.answer_with(
            method,
            pattern,
            status,
            message,
            headers=headers,
            documentation_url=RATE_LIMIT_DOCS,
            times=times,
        )

    def stall(
        self, method: str, pattern: str, seconds: float, *, times: int | None = None
    ) -> Fault:
        """Matching requests are handled and answered only ``seconds`` after they arrive."""
        return self._add_fault(Fault(method.upper(), pattern, "stall", delay=seconds, times=times))

    def lose_answer(
        self, method: str, pattern: str, *, after: float | None = None, times: int | None = 1
    ) -> Fault:
        """Matching requests are applied; the answer never comes (``after``: comes that late)."""
        return self._add_fault(Fault(method.upper(), pattern, "late", delay=after, times=times))

    def drip(
        self, method: str, pattern: str, every: float, *, until: float, times: int | None = 1
    ) -> Fault:
        """Matching answers trickle: one byte of the body every ``every`` seconds for ``until``
        seconds (each read is quick, the whole answer is not), then the rest at once."""
        fault = Fault(method.upper(), pattern, "drip", delay=every, times=times)
        fault.until = until
        return self._add_fault(fault)

    def _drip(self, out: Any, payload: bytes, fault: Fault) -> bytes:
        """Write ``payload`` byte by byte while the fault lasts; what is left is returned."""
        ends = time.monotonic() + fault.until
        while payload and time.monotonic() < ends and not self._stopping.is_set():
            out.write(payload[:1])
            out.flush()
            payload = payload[1:]
            self._wait(fault.delay)
        return payload

    def drop_request(self, method: str, pattern: str, *, times: int | None = 1) -> Fault:
        """The connection of matching requests closes before they are handled."""
        return self._add_fault(Fault(method.upper(), pattern, "drop", times=times))

    def lock(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        reason: str | None = "resolved",
        status: int = 403,
    ) -> Issue:
        """Lock the conversation: only the repository owner may still comment; others get
        ``status`` (403 as api.github.com answers, or 422 with the reason in ``errors[]``)."""
        with self._lock:
            issue = self._issues[(owner, repo, number)]
            issue.locked, issue.lock_reason, issue.lock_status = True, reason, status
            return issue

    def _fault_for(self, method: str, raw_path: str) -> Fault | None:
        path = _decode_path(urllib.parse.urlsplit(raw_path).path)  # as routed: %2F kept
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            path = path[len(self.prefix) :]
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _dropped(self, method: str, raw_path: str) -> None:
        with self._lock:
            self.dropped.append((method, raw_path))

    def _wait(self, seconds: float | None) -> None:
        """A fault's wait: at most ``seconds``, cut short by ``stop()``."""
        self._stopping.wait(seconds if seconds is not None else 0)

    def _checker_for(self, status: int, implicit: frozenset[int]) -> OpenAPIChecker:
        """The checker for an answer whose status may be one the operation does not document
        (``implicit``: checked as a basic error then)."""
        if status not in implicit:
            return self.checker
        with self._lock:
            if implicit not in self._implicit_checkers:
                self._implicit_checkers[implicit] = OpenAPIChecker(
                    self.checker.document, implicit_error_statuses=implicit
                )
            return self._implicit_checkers[implicit]

    # -- inspection --

    def comments(self, owner: str, repo: str, number: int) -> list[Comment]:
        """Copies of the comments on owner/repo#number, oldest first."""
        with self._lock:
            found = [
                c
                for c in self._comments.values()
                if (c.owner, c.repo, c.issue_number) == (owner, repo, number)
            ]
            return [copy.copy(c) for c in sorted(found, key=lambda c: c.id)]

    def comment(self, comment_id: int) -> Comment | None:
        with self._lock:
            found = self._comments.get(comment_id)
            return copy.copy(found) if found else None

    def repository(self, owner: str, repo: str) -> Repository | None:
        return self._repos.get((owner, repo))

    def _repo_by_full_name(self, full_name: str) -> Repository | None:
        owner, _, name = full_name.partition("/")
        return self._repos.get((owner, name))

    def requests_matching(self, method: str, path_pattern: str = "") -> list[RequestRecord]:
        """Logged requests with this method whose API path matches the regular expression."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method.upper() and re.search(path_pattern, r.path)
            ]

    # -- time --

    def _tick(self) -> str:
        """A deterministic clock: every change moves it one second forward."""
        with self._lock:
            self._clock += timedelta(seconds=1)
            return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- JSON objects (all URLs on this server) --

    def _simple_user(self, login: str) -> dict[str, Json]:
        user = self._users[login]
        quoted = urllib.parse.quote(login)
        api = f"{self.base_url}/users/{quoted}"
        html = (
            f"{self.root_url}/apps/{login.removesuffix('[bot]')}"
            if user.type == "Bot"
            else f"{self.root_url}/{quoted}"
        )
        return {
            "login": login,
            "id": user.id,
            "node_id": user.node_id,
            "avatar_url": f"{self.root_url}/avatars/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def _private_user(self, login: str) -> dict[str, Json]:
        user = self._simple_user(login)
        user.update(
            {
                "user_view_type": "private",
                "name": login.capitalize(),
                "company": None,
                "blog": "",
                "location": None,
                "email": None,
                "notification_email": None,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": sum(1 for r in self._repos.values() if r.owner == login),
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": "2011-01-25T18:44:36Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "private_gists": 0,
                "total_private_repos": 0,
                "owned_private_repos": 0,
                "disk_usage": 0,
                "collaborators": 0,
                "two_factor_authentication": True,
                "plan": {
                    "name": "free",
                    "space": 976562499,
                    "collaborators": 0,
                    "private_repos": 10000,
                },
            }
        )
        return user

    def _repository(self, repo: Repository, *, full: bool) -> dict[str, Json]:
        api = f"{self.base_url}/repos/{repo.full_name}"
        html = f"{self.root_url}/{repo.full_name}"
        host = urllib.parse.urlsplit(self.root_url).netloc
        data: dict[str, Json] = {
            "id": repo.id,
            "node_id": repo.node_id,
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self._simple_user(repo.owner),
            "html_url": html,
            "description": None,
            "fork": repo.fork,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"git://{host}/{repo.full_name}.git",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@{host.split(':')[0]}:{repo.full_name}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{html}.git",
            "mirror_url": None,
            "hooks_url": f"{api}/hooks",
            "svn_url": html,
            "homepage": None,
            "language": "Python",
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 128,
            "default_branch": repo.default_branch,
            "open_issues_count": sum(
                1 for i in self._issues.values() if (i.owner, i.repo) == (repo.owner, repo.name)
            ),
            "open_issues": sum(
                1 for i in self._issues.values() if (i.owner, i.repo) == (repo.owner, repo.name)
            ),
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "pushed_at": "2024-05-01T11:00:00Z",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-05-01T11:00:00Z",
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "license": None,
        }
        if full:
            data["network_count"] = 0
            data["subscribers_count"] = 1
            parent = self._repo_by_full_name(repo.parent) if repo.parent else None
            if parent is not None:
                data["parent"] = self._repository(parent, full=False)
                data["source"] = self._repository(parent, full=False)
        return data

    def _reactions(self, url: str) -> dict[str, Json]:
        return {
            "url": f"{url}/reactions",
            "total_count": 0,
            "+1": 0,
            "-1": 0,
            "laugh": 0,
            "hooray": 0,
            "confused": 0,
            "heart": 0,
            "rocket": 0,
            "eyes": 0,
        }

    def _html_issue_url(self, issue: Issue) -> str:
        kind = "pull" if issue.pull_request else "issues"
        return f"{self.root_url}/{issue.owner}/{issue.repo}/{kind}/{issue.number}"

    def _comment_json(self, comment: Comment) -> dict[str, Json]:
        issue = self._issues[(comment.owner, comment.repo, comment.issue_number)]
        api = f"{self.base_url}/repos/{comment.owner}/{comment.repo}"
        url = f"{api}/issues/comments/{comment.id}"
        return {
            "url": url,
            "html_url": f"{self._html_issue_url(issue)}#issuecomment-{comment.id}",
            "issue_url": f"{api}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": comment.node_id,
            "user": self._simple_user(comment.login),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": comment.author_association,
            "body": comment.body,
            "reactions": self._reactions(url),
            "performed_via_github_app": None,
        }

    def _comment_count(self, issue: Issue) -> int:
        key = (issue.owner, issue.repo, issue.number)
        return sum(1 for c in self._comments.values() if (c.owner, c.repo, c.issue_number) == key)

    def _issue_json(self, issue: Issue) -> dict[str, Json]:
        api = f"{self.base_url}/repos/{issue.owner}/{issue.repo}"
        url = f"{api}/issues/{issue.number}"
        data: dict[str, Json] = {
            "url": url,
            "repository_url": api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": self._html_issue_url(issue),
            "id": issue.id,
            "node_id": issue.node_id,
            "number": issue.number,
            "title": issue.title,
            "user": self._simple_user(issue.author),
            "labels": [],
            "state": issue.state,
            "locked": issue.locked,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": self._comment_count(issue),
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": None,
            "author_association": "OWNER" if issue.author == issue.owner else "CONTRIBUTOR",
            "active_lock_reason": issue.lock_reason if issue.locked else None,
            "body": issue.body,
            "reactions": self._reactions(url),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": None,
        }
        if issue.pull_request is not None:
            html = self._html_issue_url(issue)
            data["draft"] = False
            data["pull_request"] = {
                "url": f"{api}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": None,
            }
        return data

    def _pull_json(self, pull: PullRequest) -> dict[str, Json]:
        issue = self._issues[(pull.owner, pull.repo, pull.number)]
        base_repo = self._repos[(pull.owner, pull.repo)]
        head_repo = self._repo_by_full_name(pull.head_repo_full_name)
        assert head_repo is not None
        api = f"{self.base_url}/repos/{pull.owner}/{pull.repo}"
        url = f"{api}/pulls/{pull.number}"
        issue_url = f"{api}/issues/{pull.number}"
        html = self._html_issue_url(issue)

        def ref(repo: Repository, name: str, sha: str) -> dict[str, Json]:
            return {
                "label": f"{repo.owner}:{name}",
                "ref": name,
                "sha": sha,
                "user": self._simple_user(repo.owner),
                "repo": self._repository(repo, full=False),
            }

        return {
            "url": url,
            "id": pull.id,
            "node_id": pull.node_id,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": issue.state,
            "locked": issue.locked,
            "title": issue.title,
            "user": self._simple_user(pull.author),
            "body": issue.body,
            "labels": [],
            "milestone": None,
            "active_lock_reason": issue.lock_reason if issue.locked else None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": ref(head_repo, pull.head_ref, pull.head_sha),
            "base": ref(base_repo, pull.base_ref, pull.base_sha),
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": issue_url},
                "comments": {"href": f"{issue_url}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
            },
            "author_association": "CONTRIBUTOR" if pull.is_fork else "OWNER",
            "auto_merge": None,
            "draft": False,
            "merged": False,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": self._comment_count(issue),
            "review_comments": 0,
            "maintainer_can_modify": pull.is_fork,
            "commits": 1,
            "additions": 10,
            "deletions": 2,
            "changed_files": 1,
        }

    # -- routing --

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/user", self._get_user),
            ("GET", repo, self._get_repo),
            ("GET", repo + r"/pulls/(?P<number>\d+)", self._get_pull),
            ("GET", repo + r"/issues/(?P<number>\d+)", self._get_issue),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", self._list_comments),
            ("POST", repo + r"/issues/(?P<number>\d+)/comments", self._create_comment_route),
            ("GET", repo + r"/issues/comments/(?P<comment_id>\d+)", self._get_comment),
            ("PATCH", repo + r"/issues/comments/(?P<comment_id>\d+)", self._update_comment),
        ]
        package = r"/packages/(?P<package_type>[^/]+)/(?P<package_name>[^/]+)"
        version = package + r"/versions/(?P<package_version_id>\d+)"
        for owner in (r"/orgs/(?P<org>[^/]+)", r"/users/(?P<username>[^/]+)", r"/user"):
            table.append(("GET", owner + package + "/versions", self._list_package_versions))
            table.append(("DELETE", owner + version, self._delete_package_version))
        return [(m, re.compile(f"^{p}$"), h) for m, p, h in table]

    def _canonical_path(self, path: str) -> str:
        """/repositories/{id}/... (as in GitHub's Link headers) -> /repos/{owner}/{repo}/..."""
        match = re.match(r"^/repositories/(\d+)(/.*)?$", path)
        if not match:
            return path
        repo_id = int(match.group(1))
        for repo in self._repos.values():
            if repo.id == repo_id:
                return f"/repos/{repo.full_name}{match.group(2) or ''}"
        return path

    def _doc_url(self, method: str, path: str) -> str:
        found = self.checker.document.find(method, path)
        if found is None:
            return DOCS
        docs = found[0].definition.get("externalDocs", {})
        return str(docs.get("url", DOCS))

    def _dispatch(
        self,
        method: str,
        raw_path: str,
        headers: dict[str, str],
        raw_body: bytes,
        fault: Fault | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        split = urllib.parse.urlsplit(raw_path)
        full_path = _decode_path(split.path)
        query_lists = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        query: dict[str, str | list[str]] = {
            k: v[0] if len(v) == 1 else v for k, v in query_lists.items()
        }
        lower = {k.lower(): v for k, v in headers.items()}
        token = _token_from(lower.get("authorization", ""))
        identity = self._tokens.get(token) if token else None
        problems: list[str] = []

        body: Json = None
        bad_json = False
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                bad_json = True
                problems.append("request body is not valid JSON")

        in_prefix = full_path == self.prefix or full_path.startswith(self.prefix + "/")
        path = full_path[len(self.prefix) :] if in_prefix else full_path
        with self._lock:
            path = self._canonical_path(path)
        if not in_prefix:
            problems.append(
                f"request outside the API prefix {self.prefix!r}: is the base URL right?"
            )
        else:
            problems += self.checker.check_request(method, path, query, body)
        request = _Request(method, path, query, lower, body, identity, token)
        implicit: frozenset[int] = frozenset()  # statuses checked as basic errors here

        try:
            if token and identity is None:
                raise _ApiError(401, "Bad credentials")
            if not in_prefix:
                raise _ApiError(404, "Not Found")
            if bad_json:
                raise _ApiError(400, "Problems parsing JSON")
            if fault is not None:
                extra = {k: v for k, v in fault.body.items() if k != "message"}
                raise _ApiError(fault.status, fault.body["message"], headers=fault.headers, **extra)
            response = self._route(request, problems)
        except _ApiError as error:
            response = self._error_response(request, error)
            implicit = _implicit_statuses(error, fault)
        except Exception as error:  # a bug in the fake: answer 500 and make the test fail
            problems.append(f"FakeGitHub crashed: {error!r}")
            response = _Response(500, {"message": "Server Error", "documentation_url": DOCS})

        if in_prefix and self.checker.operation_id(method, path) is not None:
            checker = self._checker_for(response.status, implicit)
            problems += checker.check_response(method, path, response.status, response.body)
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        out_headers = self._headers(request, response)
        with self._lock:
            operation = self.checker.operation_id(method, path) if in_prefix else None
            self.requests.append(
                RequestRecord(
                    method,
                    path,
                    query,
                    identity.login if identity else None,
                    token,
                    response.status,
                    body,
                    raw_path,
                    operation,
                )
            )
            self.violations.extend(f"{method} {raw_path}: {problem}" for problem in problems)
        return response.status, out_headers, payload

    def _error_response(self, request: _Request, error: _ApiError) -> _Response:
        response = _Response(
            error.status,
            {
                "message": error.message,
                "documentation_url": self._doc_url(request.method, request.path),
                **error.extra,
                "status": str(error.status),
            },
            dict(error.headers),
        )
        if error.status == 403 and request.identity is not None and request.method != "GET":
            wanted = (
                "packages=write"
                if "/packages/" in request.path
                else ("issues=write; pull_requests=write")
            )
            response.headers.setdefault("X-Accepted-GitHub-Permissions", wanted)
        return response

    def _route(self, request: _Request, problems: list[str]) -> _Response:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                if request.identity is None:
                    raise _ApiError(401, "Requires authentication")
                with self._lock:
                    return handler(request, match.groupdict())
        if self.checker.operation_id(request.method, request.path) is not None:
            problems.append(
                "the OpenAPI description has this operation but FakeGitHub does not serve it"
            )
        raise _ApiError(404, "Not Found")

    def _headers(self, request: _Request, response: _Response) -> dict[str, str]:
        key = request.identity.login if request.identity else "anonymous"
        limit = RATE_LIMIT if request.identity else 60
        with self._lock:
            used = self._rate_used.get(key, 0) + 1
            self._rate_used[key] = used
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Api-Version-Selected": request.headers.get(
                "x-github-api-version", API_VERSION
            ),
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": f"FAKE:{len(self.requests) + 1:08X}",
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - used, 0)),
            "X-RateLimit-Reset": str(self._rate_reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        }
        if request.identity is not None and request.identity.type == "User":
            headers["X-OAuth-Scopes"] = {
                "read": "read:packages, repo",
                "delete": "delete:packages, read:packages, repo, write:packages",
            }.get(request.identity.packages, "repo")
        headers.update(response.headers)
        return headers

    # -- endpoints (called with the lock held) --

    def _require_repo(self, params: dict[str, str]) -> Repository:
        repo = self._repos.get((params["owner"], params["repo"]))
        if repo is None:
            raise _ApiError(404, "Not Found")
        return repo

    def _require_issue(self, params: dict[str, str]) -> Issue:
        self._require_repo(params)
        issue = self._issues.get((params["owner"], params["repo"], int(params["number"])))
        if issue is None:
            raise _ApiError(404, "Not Found")
        return issue

    def _require_comment(self, params: dict[str, str]) -> Comment:
        self._require_repo(params)
        comment = self._comments.get(int(params["comment_id"]))
        if comment is None or (comment.owner, comment.repo) != (params["owner"], params["repo"]):
            raise _ApiError(404, "Not Found")
        return comment

    @staticmethod
    def _require_write(request: _Request) -> Identity:
        assert request.identity is not None
        if not request.identity.can_write:
            raise _ApiError(403, NOT_ACCESSIBLE)
        return request.identity

    @staticmethod
    def _require_unlocked(issue: Issue, identity: Identity) -> None:
        """A locked conversation takes comments from its repository's owner only."""
        if not issue.locked or identity.login == issue.owner:
            return
        if issue.lock_status == 422:
            raise _ApiError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "IssueComment",
                        "code": "unprocessable",
                        "field": "data",
                        "message": LOCKED_MESSAGE,
                    }
                ],
            )
        raise _ApiError(issue.lock_status, LOCKED_MESSAGE)

    @staticmethod
    def _comment_body(request: _Request) -> str:
        body = request.body
        if not isinstance(body, dict) or "body" not in body:
            raise _ApiError(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        text = body["body"]
        if not isinstance(text, str):
            raise _ApiError(
                422,
                f"Invalid request.\n\nFor 'properties/body', {json.dumps(text)} is not a string.",
            )
        if len(text) > MAX_COMMENT_LENGTH:
            raise _ApiError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "IssueComment",
                        "code": "unprocessable",
                        "field": "data",
                        "message": f"Body is too long (maximum is {MAX_COMMENT_LENGTH} characters)",
                    }
                ],
            )
        return text

    def _get_user(self, request: _Request, params: dict[str, str]) -> _Response:
        assert request.identity is not None
        if not request.identity.user_endpoint:
            raise _ApiError(403, NOT_ACCESSIBLE)
        return _Response(200, self._private_user(request.identity.login))

    def _get_repo(self, request: _Request, params: dict[str, str]) -> _Response:
        return _Response(200, self._repository(self._require_repo(params), full=True))

    def _get_pull(self, request: _Request, params: dict[str, str]) -> _Response:
        issue = self._require_issue(params)
        if issue.pull_request is None:
            raise _ApiError(404, "Not Found")
        return _Response(200, self._pull_json(issue.pull_request))

    def _get_issue(self, request: _Request, params: dict[str, str]) -> _Response:
        return _Response(200, self._issue_json(self._require_issue(params)))

    def _list_comments(self, request: _Request, params: dict[str, str]) -> _Response:
        issue = self._require_issue(params)
        repo = self._repos[(issue.owner, issue.repo)]
        comments = self.comments(issue.owner, issue.repo, issue.number)
        since = request.query.get("since")
        if isinstance(since, str) and since:
            comments = [c for c in comments if c.updated_at >= since]
        per_page = _int_param(request.query.get("per_page"), DEFAULT_PER_PAGE)
        per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
        page = max(_int_param(request.query.get("page"), 1), 1)
        chunk = comments[(page - 1) * per_page : page * per_page]
        last = max((len(comments) + per_page - 1) // per_page, 1)
        response = _Response(200, [self._comment_json(c) for c in chunk])
        link_base = f"{self.base_url}/repositories/{repo.id}/issues/{issue.number}/comments"
        link = _link_header(link_base, request.query, page, last)
        if link:
            response.headers["Link"] = link
        return response

    def _create_comment_route(self, request: _Request, params: dict[str, str]) -> _Response:
        issue = self._require_issue(params)
        identity = self._require_write(request)
        self._require_unlocked(issue, identity)
        text = self._comment_body(request)
        user = self._users[identity.login]
        comment = self._create_comment(issue.owner, issue.repo, issue.number, text, user)
        data = self._comment_json(comment)
        return _Response(201, data, {"Location": data["url"]})

    def _get_comment(self, request: _Request, params: dict[str, str]) -> _Response:
        return _Response(200, self._comment_json(self._require_comment(params)))

    def _update_comment(self, request: _Request, params: dict[str, str]) -> _Response:
        comment = self._require_comment(params)
        identity = self._require_write(request)
        issue = self._issues[(comment.owner, comment.repo, comment.issue_number)]
        self._require_unlocked(issue, identity)
        comment.body = self._comment_body(request)
        comment.updated_at = self._tick()
        return _Response(200, self._comment_json(comment))

    # -- package endpoints (called with the lock held) --

    def _package_owner(self, request: _Request, params: dict[str, str]) -> tuple[str, str]:
        """(login, "Organization"/"User") that the path names; 404 when it names no such owner."""
        assert request.identity is not None
        if "org" in params:
            record = self._users.get(params["org"])
            if record is None or record.type != "Organization":
                raise _ApiError(404, "Not Found")
            return record.login, "Organization"
        if "username" in params:
            record = self._users.get(params["username"])
            if record is None or record.type != "User":
                raise _ApiError(404, "Not Found")
            return record.login, "User"
        if not request.identity.user_endpoint:  # an installation token has no user
            raise _ApiError(403, NOT_ACCESSIBLE)
        return request.identity.login, "User"

    def _require_package(self, request: _Request, params: dict[str, str]) -> Package:
        owner, owner_type = self._package_owner(request, params)
        name = urllib.parse.unquote(params["package_name"])
        package = self._packages.get((owner, name))
        if params["package_type"] != "container" or package is None:
            raise _ApiError(404, PACKAGE_NOT_FOUND)
        if package.owner_type != owner_type:
            raise _ApiError(404, PACKAGE_NOT_FOUND)
        return package

    @staticmethod
    def _scope_refusal(request: _Request, message: str, permission: str) -> _ApiError:
        assert request.identity is not None
        headers = {"X-Accepted-GitHub-Permissions": f"packages={permission}"}
        if request.identity.type == "User":
            headers["X-Accepted-OAuth-Scopes"] = (
                "delete:packages, read:packages" if permission == "write" else "read:packages"
            )
        return _ApiError(403, message, headers=headers)

    def _list_package_versions(self, request: _Request, params: dict[str, str]) -> _Response:
        assert request.identity is not None
        if request.identity.packages == "none":
            raise self._scope_refusal(request, READ_PACKAGES_REFUSED, "read")
        package = self._require_package(request, params)
        deleted = request.query.get("state") == "deleted"
        versions = [v for v in package.versions if (v.deleted_at is not None) == deleted]
        versions.sort(key=lambda v: (v.updated_at, v.id), reverse=True)  # GitHub: newest first
        per_page = _int_param(request.query.get("per_page"), DEFAULT_PER_PAGE)
        per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
        page = max(_int_param(request.query.get("page"), 1), 1)
        chunk = versions[(page - 1) * per_page : page * per_page]
        last = max((len(versions) + per_page - 1) // per_page, 1)
        response = _Response(200, [self._package_version_json(package, v) for v in chunk])
        owner_path = request.path.split("/packages/", 1)[0]
        quoted = urllib.parse.quote(package.name, safe="")
        link_base = f"{self.base_url}{owner_path}/packages/container/{quoted}/versions"
        link = _link_header(link_base, request.query, page, last)
        if link:
            response.headers["Link"] = link
        return response

    def _delete_package_version(self, request: _Request, params: dict[str, str]) -> _Response:
        assert request.identity is not None
        if request.identity.packages != "delete":
            raise self._scope_refusal(request, DELETE_PACKAGES_REFUSED, "write")
        package = self._require_package(request, params)
        if package.admins is not None and request.identity.login not in package.admins:
            # GitHub hides a package from a token that may not administer it.
            raise _ApiError(404, PACKAGE_NOT_FOUND)
        version_id = int(params["package_version_id"])
        active = package.active()
        version = next((v for v in active if v.id == version_id), None)
        if version is None:
            raise _ApiError(404, PACKAGE_VERSION_NOT_FOUND)
        if len(active) == 1:
            raise _UndocumentedError(400, LAST_VERSION_MESSAGE)
        if version.tags and sum(1 for v in active if v.tags) == 1:
            raise _UndocumentedError(400, LAST_TAGGED_VERSION_MESSAGE)
        version.deleted_at = version.updated_at = self._tick()
        return _Response(204)

    def _package_version_json(self, package: Package, version: PackageVersion) -> dict[str, Json]:
        quoted = urllib.parse.quote(package.name, safe="")
        if package.owner_type == "Organization":
            api = f"{self.base_url}/orgs/{package.owner}/packages/container/{quoted}"
            html = f"{self.root_url}/orgs/{package.owner}/packages/container"
        else:
            api = f"{self.base_url}/users/{package.owner}/packages/container/{quoted}"
            html = f"{self.root_url}/users/{package.owner}/packages/container"
        data: dict[str, Json] = {
            "id": version.id,
            "name": version.name,
            "url": f"{api}/versions/{version.id}",
            "package_html_url": f"{html}/package/{quoted}",
            "created_at": version.created_at,
            "updated_at": version.updated_at,
            "html_url": f"{html}/{quoted}/{version.id}",
            "metadata": {"package_type": "container", "container": {"tags": list(version.tags)}},
        }
        if version.deleted_at is not None:
            data["deleted_at"] = version.deleted_at
        return data


def _implicit_statuses(error: _ApiError, fault: Fault | None) -> frozenset[int]:
    """Statuses of an error answer to check as basic errors when the operation does not list
    them: any of GitHub's everywhere-statuses for an injected fault, GitHub's own undocumented
    status for the answer that has one."""
    if fault is not None:
        return ANY_ENDPOINT_STATUSES
    if isinstance(error, _UndocumentedError):
        return frozenset({error.status})
    return frozenset()


def _decode_path(raw: str) -> str:
    """The path with each segment percent-decoded, an encoded '/' kept as %2F: a package name
    such as models/churn travels as one segment, models%2Fchurn, as GitHub wants it."""
    return "/".join(urllib.parse.unquote(segment).replace("/", "%2F") for segment in raw.split("/"))


def _token_from(authorization: str) -> str | None:
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def _int_param(value: str | list[str] | None, default: int) -> int:
    if isinstance(value, list):
        value = value[-1] if value else None
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _link_header(base: str, query: dict[str, str | list[str]], page: int, last: int) -> str:
    """GitHub's Link header: prev, next, last, first, each keeping the request's other parameters."""

    def url(number: int) -> str:
        params: list[tuple[str, str]] = []
        for key, value in query.items():
            if key == "page":
                continue
            for item in value if isinstance(value, list) else [value]:
                params.append((key, item))
        params.append(("page", str(number)))
        return f"{base}?{urllib.parse.urlencode(params)}"

    parts = []
    if page > 1:
        parts.append(f'<{url(min(page - 1, last))}>; rel="prev"')
    if page < last:
        parts.append(f'<{url(page + 1)}>; rel="next"')
        parts.append(f'<{url(last)}>; rel="last"')
    if page > 1:
        parts.append(f'<{url(1)}>; rel="first"')
    return ", ".join(parts)


def iter_link_header(value: str) -> Iterator[tuple[str, str]]:
    """(rel, url) pairs of a Link header."""
    for part in value.split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="([^"]+)"', part)
        if match:
            yield match.group(2), match.group(1)

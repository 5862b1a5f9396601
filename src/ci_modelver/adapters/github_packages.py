"""GitHub's REST Packages API: a ghcr.io version deleted as a container package version.

GHCR refuses the OCI ``DELETE /v2/<name>/manifests/<digest>``. There, the repository
``ghcr.io/OWNER/NAME[/SUB…]`` is the container package ``NAME[/SUB…]`` of ``OWNER`` (an
organization or a user); each of its versions is named by its manifest digest and deleted by its
numeric id. The package name is one path segment: ``models/churn`` is sent as ``models%2Fchurn``.

Endpoints (GitHub's OpenAPI description, ``@octokit/openapi``):

- an organization: ``GET /orgs/{org}/packages/container/{package_name}/versions`` (documented
  with ``page``/``per_page``) and ``DELETE …/versions/{package_version_id}``;
- the token's own user: ``GET /user/packages/container/{package_name}/versions`` (paged as
  well; private packages included) and ``DELETE /user/packages/…/versions/{package_version_id}``;
- any other user, or a token that cannot say whose it is (an installation token such as a job's
  GITHUB_TOKEN gets 403 from ``GET /user``): ``GET /users/{username}/packages/container/…/versions``
  (the description documents no paging parameters there, so none are sent; the ``Link`` header is
  followed all the same) and ``DELETE /users/{username}/…/versions/{package_version_id}``.

The organization is asked first; its 404 means the owner is a user, and ``GET /user`` (asked once)
tells whether that user is the token's own. Every page of a list is read (``Link: rel="next"``,
only on the API's own origin: the token goes nowhere else); the digest → id map of the last full
listing is kept, so pruning many versions lists the package once, not once per version.

Waits, as for the sticky comment (adapters/github.py): one :meth:`PackageVersions.delete_version`
runs inside one budget (``timeout``); each request may take a quarter of it (a minute at most); a
read that failed for a reason retrying can fix (a dropped connection, a 5xx, a rate limit) is
retried with backoff; ``Retry-After`` and the reset of a spent rate limit are waited for only when
the wait fits in what is left. A DELETE is never repeated blindly: after a timeout, a dropped
connection or a 5xx answer the versions are listed again, and a version no longer listed was
deleted. A rate-limit answer refused the DELETE, so it is sent again after the wait.

Answers: GitHub's 400 for a package's last (tagged) version, which it deletes only with the whole
package, is a GitHubError of kind ``last-version`` (:data:`LAST_VERSION`); 401, 403 and a 404 for
a version that is still listed (GitHub hides a package from a token that may read it but not
administer it) say which token, scope or role is missing. GitHub's words are shown scrubbed of
any credential.

PyGithub (2.x) has no Packages API, so this speaks plain ``requests``.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import requests.auth
from requests.adapters import HTTPAdapter

from ci_modelver.adapters.github import (
    BAD_TOKEN,
    NO_PERMISSION,
    NO_RETRY,
    NOT_FOUND,
    OTHER,
    RATE_LIMITED,
    SERVER,
    TIMEOUT,
    Answer,
    Budget,
    api_url_from,
    classify,
    pause,
    transient,
)
from ci_modelver.core import json_bounds
from ci_modelver.core.refs import check_digest
from ci_modelver.core.text import one_line, redact_url
from ci_modelver.errors import GitHubError, InputError, JSONRefused

TOKEN_VARIABLES = ("MODELVER_GITHUB_TOKEN", "GITHUB_TOKEN")
API_VERSION = "2022-11-28"
PACKAGE_TYPE = "container"
PER_PAGE = 100  # the most GitHub gives per page
MAX_PAGES = 5000  # 500,000 versions: a longer chain of Link headers is a loop
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # one page of 100 versions is far smaller
READ_CHUNK = 64 * 1024
WAIT_HINT = "raise --timeout to wait longer"
# GitHubError.kind when GitHub keeps a package's last (tagged) version: only the whole package can
# be deleted, so retrying cannot help; keep the version or delete the package.
LAST_VERSION = "last-version"

# Where the package lives (Owner.kind).
ORG, SELF, USER = "org", "self", "user"

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
# An OCI repository path component (GHCR wants it in lower case; the registry says so itself).
_COMPONENT = re.compile(r"^[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*$")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r';\s*rel\s*=\s*"?([^";,]*)"?', re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Values


def split_repository(repository_path: str) -> tuple[str, str]:
    """``('OWNER', 'NAME[/SUB…]')`` of the ghcr.io repository path ``OWNER/NAME[/SUB…]``.

    Raises InputError for anything else (a host in front, an empty or odd component).
    """
    shown = one_line(repository_path, 200)
    parts = repository_path.split("/")
    if parts and ("." in parts[0] or ":" in parts[0]):
        raise InputError(
            f"'{shown}': give the repository path without the registry host "
            "(OWNER/NAME of ghcr.io/OWNER/NAME)"
        )
    if len(parts) < 2 or not _LOGIN.match(parts[0]):
        raise InputError(
            f"'{shown}' is not a ghcr.io repository path: expected OWNER/NAME[/SUB…] with "
            "OWNER a GitHub user or organization"
        )
    if not all(_COMPONENT.match(part) for part in parts[1:]):
        raise InputError(
            f"'{shown}' is not a ghcr.io repository path: each part of NAME[/SUB…] is letters "
            "and digits, joined by '.', '_', '__' or '-'"
        )
    return parts[0], "/".join(parts[1:])


@dataclass(frozen=True)
class Owner:
    """Where a package's versions are listed and deleted, and how messages name its owner."""

    kind: str  # ORG, SELF (the token's own user) or USER
    package: str  # API path of the package, e.g. /orgs/acme/packages/container/models%2Fchurn
    paged: bool  # the description documents page/per_page on its versions list
    what: str  # "organization acme", "user octocat"

    @property
    def versions(self) -> str:
        return f"{self.package}/versions"

    def version(self, version_id: int) -> str:
        return f"{self.package}/versions/{version_id}"


def owners(owner: str, package: str) -> tuple[Owner, Owner, Owner]:
    """The three places a package may be addressed: (organization, own user, another user)."""
    quoted_owner = urllib.parse.quote(owner, safe="")
    name = urllib.parse.quote(package, safe="")
    tail = f"packages/{PACKAGE_TYPE}/{name}"
    return (
        Owner(ORG, f"/orgs/{quoted_owner}/{tail}", True, f"organization {owner}"),
        Owner(SELF, f"/user/{tail}", True, f"user {owner}"),
        Owner(USER, f"/users/{quoted_owner}/{tail}", False, f"user {owner}"),
    )


@dataclass(frozen=True)
class Listed:
    """One package version as GitHub lists it."""

    id: int
    name: str  # for a container: the manifest digest
    tags: tuple[str, ...] = ()


def parse_versions(data: object) -> list[Listed] | None:
    """The versions of one page of a versions list; None when it is not such a page."""
    if not isinstance(data, list):
        return None
    found: list[Listed] = []
    for item in data:
        if not isinstance(item, dict):
            return None
        version_id, name = item.get("id"), item.get("name")
        if isinstance(version_id, bool) or not isinstance(version_id, int):
            return None
        if not isinstance(name, str):
            return None
        metadata = item.get("metadata")
        container = metadata.get("container") if isinstance(metadata, dict) else None
        tags = container.get("tags") if isinstance(container, dict) else None
        clean = tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
        found.append(Listed(version_id, name, clean))
    return found


def next_page(link: str, api_url: str) -> str | None:
    """The ``rel="next"`` URL of a Link header; None when there is none.

    Raises GitHubError when it leads away from the API (another scheme, host or path prefix):
    the token is sent only to the API it was given for.
    """
    for match in _LINK.finditer(link or ""):
        rels = {
            rel.strip().lower() for found in _REL.findall(match.group(2)) for rel in found.split()
        }
        if "next" not in rels:
            continue
        url: str = urllib.parse.urljoin(api_url + "/", str(match.group(1)).strip())
        if not same_api(url, api_url):
            raise GitHubError(
                f"GitHub's Link header leads to {redact_url(one_line(url, 200))}, outside "
                f"{redact_url(api_url)}; the token is not sent there (check GITHUB_API_URL)",
                OTHER,
            )
        return url
    return None


def same_api(url: str, api_url: str) -> bool:
    """Whether ``url`` is under ``api_url`` (same scheme, host, port and path prefix)."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(api_url)
    prefix = b.path.rstrip("/")
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower()) and (
        a.path == prefix or a.path.startswith(prefix + "/")
    )


def is_last_version(answer: Answer) -> bool:
    """Whether GitHub refused a DELETE because the version is the package's last (tagged) one."""
    said = answer.said.lower()
    return answer.status in (400, 422) and (
        "delete the package instead" in said or ("last" in said and "version" in said)
    )


def token_from(env: Mapping[str, str]) -> tuple[str, str]:
    """``(variable, token)``: MODELVER_GITHUB_TOKEN, else GITHUB_TOKEN; InputError for neither."""
    for name in TOKEN_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
                raise InputError(f"{name} is not a token (it holds spaces or control characters)")
            return name, value
    raise InputError(
        "deleting versions on ghcr.io goes through GitHub's REST Packages API and needs a token: "
        "set MODELVER_GITHUB_TOKEN or GITHUB_TOKEN (a personal access token with the "
        "delete:packages and read:packages scopes, or a job's GITHUB_TOKEN with "
        "'permissions: packages: write')"
    )


# ---------------------------------------------------------------------------------------------
# The client


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _Bearer(requests.auth.AuthBase):
    """The token as ``Authorization: Bearer``; given as ``auth`` so that requests never puts a
    ~/.netrc entry for the host in its place."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def _session() -> requests.Session:
    session = requests.Session()
    # urllib3 retries nothing: reads are retried and the DELETE re-checked here, in the budget.
    adapter = HTTPAdapter(max_retries=NO_RETRY)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = True  # HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE as for any client
    return session


class PackageVersions:
    """The versions of one ghcr.io repository, as GitHub container package versions."""

    def __init__(
        self,
        api_url: str,
        token: str,
        owner: str,
        package: str,
        *,
        budget: float = 120.0,
        token_source: str = "GITHUB_TOKEN",
        wait_hint: str = WAIT_HINT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._shown = redact_url(self.api_url)  # in messages: never a user:password@
        self._token = token
        self.owner = owner
        self.package = package
        self.budget = budget
        # A single request may take a quarter of the budget (at most a minute), as for comments.
        self.request_timeout = min(60.0, max(2.0, budget / 4))
        self._token_source = token_source
        self._hint = wait_hint
        self._session = session if session is not None else _session()
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._log = log  # --debug: one line per request, never a credential
        self._place: Owner | None = None  # where the package was found, once known
        self._known: dict[str, int] | None = None  # digest -> version id, last full listing
        self._lock = threading.Lock()

    @classmethod
    def for_repository(
        cls,
        repository_path: str,
        env: Mapping[str, str],
        *,
        timeout: float,
        wait_hint: str = WAIT_HINT,
        log: Callable[[str], None] | None = None,
    ) -> PackageVersions:
        """The versions of ``ghcr.io/OWNER/NAME[/SUB…]`` (``repository_path`` is
        ``OWNER/NAME[/SUB…]``), with the token and API of ``env``; InputError when either is
        missing or malformed. Each delete_version call may take ``timeout`` seconds; ``log``
        gets the --debug lines of its requests."""
        owner, package = split_repository(repository_path)
        source, token = token_from(env)
        return cls(
            api_url_from(env),
            token,
            owner,
            package,
            budget=timeout,
            token_source=source,
            wait_hint=wait_hint,
            log=log,
        )

    @property
    def where(self) -> str:
        """``ghcr.io/OWNER/NAME``, for messages."""
        return f"ghcr.io/{self.owner}/{self.package}"

    def delete_version(self, digest: str) -> bool:
        """Delete the version whose manifest digest is ``digest``.

        True when it was deleted (also when a DELETE whose answer was lost had deleted it);
        False when no version has that digest (already gone). Raises InputError for a malformed
        digest, GitHubError of kind LAST_VERSION when GitHub keeps it as the package's last
        (tagged) version,
        GitHubError (exit 3) for any other refusal or when the budget ran out.
        """
        digest = check_digest(digest)
        with self._lock:
            budget = Budget(self.budget, self._clock() + self.budget, self._clock)
            known = self._known
            if known is None or digest not in known:
                known = self._list(budget)
            version_id = known.get(digest)
            if version_id is None:
                return False
            return self._delete(digest, version_id, budget)

    # -- one request, bounded --

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "ci-modelver",
        }

    def _exchange(self, method: str, url: str, seconds: float) -> _Reply:
        response = self._session.request(
            method,
            url,
            headers=self._headers(),
            auth=_Bearer(self._token),
            timeout=(seconds, seconds),
            allow_redirects=False,  # a redirect is reported, the token never follows one
            stream=True,
        )
        with response:
            body = bytearray()
            for chunk in response.iter_content(READ_CHUNK):
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    break
            return _Reply(response.status_code, response.headers, bytes(body))

    def _attempt(self, method: str, url: str, label: str, budget: Budget) -> _Reply:
        """One request, answered within min(request timeout, what is left) or requests.Timeout.

        Socket timeouts bound each read, not a whole answer (a server may send a byte now and
        then): past its time the request is left to its daemon thread.
        """
        left = budget.left()
        if left <= 0:
            raise GitHubError(
                f"{label}: gave up, the {budget.total:g}s budget is spent ({self._hint})", TIMEOUT
            )
        seconds = min(self.request_timeout, left)
        outcome: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                outcome.append((True, self._exchange(method, url, seconds)))
            except BaseException as exc:  # handed to the waiting thread as it is
                outcome.append((False, exc))

        started = self._clock()
        shown = "ok"
        worker = threading.Thread(target=run, name="ci-modelver-github-packages", daemon=True)
        worker.start()
        worker.join(max(seconds, 0.25))  # a quarter second: a thread's start-up
        try:
            if not outcome:
                shown = "Timeout"
                raise requests.Timeout("no complete answer in time")
            done, value = outcome[0]
            if not done:
                shown = type(value).__name__
                raise value
            reply: _Reply = value
            shown = f"HTTP {reply.status}"
            return reply
        finally:
            if self._log is not None:
                elapsed = self._clock() - started
                self._log(f"debug: GitHub {label} -> {shown} in {elapsed:.3f}s")

    def _answer(self, reply: _Reply) -> Answer:
        try:
            data: object = json_bounds.parse(reply.body, max_bytes=MAX_ANSWER_BYTES)
        except JSONRefused:
            data = reply.body[:300].decode("utf-8", "replace")
        return classify(reply.status, data, reply.headers, now=self._wall(), secrets=(self._token,))

    def _pause(
        self, label: str, attempt: int, problem: Answer | BaseException, budget: Budget
    ) -> None:
        pause(label, attempt, problem, budget, hint=self._hint, sleep=self._sleep)

    def _get(self, label: str, url: str, budget: Budget) -> _Reply | Answer:
        """A 200 answer to GET ``url``, retried while retrying can help; else GitHub's refusal."""
        attempt = 0
        while True:
            attempt += 1
            problem: Answer | BaseException
            try:
                reply = self._attempt("GET", url, label, budget)
            except OSError as exc:  # requests' exceptions are OSErrors too
                problem = transient(exc, label)
            else:
                if reply.status == 200:
                    return reply
                problem = self._answer(reply)
                if problem.kind not in RATE_LIMITED and problem.kind != SERVER:
                    return problem
            self._pause(label, attempt, problem, budget)

    # -- finding the package and its versions --

    def _list(self, budget: Budget) -> dict[str, int]:
        """digest -> version id over every page (remembered for the next delete_version)."""
        if self._place is not None:
            found = self._walk(self._place, budget)
            if isinstance(found, Answer):
                raise self._no_package(found, (self._place,))
        else:
            org, mine, user = owners(self.owner, self.package)
            place = org
            found = self._walk(org, budget)
            if isinstance(found, Answer):  # not an organization's package: a user's
                place = mine if self._is_token_user(budget) else user
                found = self._walk(place, budget)
                if isinstance(found, Answer):
                    raise self._no_package(found, (org, place))
            self._place = place
        self._known = found
        return found

    def _walk(self, place: Owner, budget: Budget) -> dict[str, int] | Answer:
        """digest -> version id over every page; GitHub's 404 when the first page has it (the
        package is not under that owner)."""
        url = self.api_url + place.versions + (f"?per_page={PER_PAGE}" if place.paged else "")
        label = f"GET {self._shown}{place.versions}"
        found: dict[str, int] = {}
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            seen.add(url)
            got = self._get(label, url, budget)
            if isinstance(got, Answer):
                if got.status == 404 and page == 1:
                    return got
                raise self._read_refusal(got, label)
            try:
                data = json_bounds.parse(got.body, max_bytes=MAX_ANSWER_BYTES)
            except JSONRefused as exc:
                raise self._not_the_api(label, exc.problem) from None
            versions = parse_versions(data)
            if versions is None:
                raise self._not_the_api(label, "is not a list of package versions")
            for version in versions:
                found.setdefault(version.name, version.id)
            following = next_page(got.headers.get("Link", ""), self.api_url)
            if following is None:
                return found
            if following in seen:
                raise GitHubError(
                    f"{label}: GitHub's Link header leads back to a page already read "
                    f"(page {page}); rerun later",
                    OTHER,
                )
            url = following
        raise GitHubError(f"{label}: more than {MAX_PAGES} pages of versions; rerun later", OTHER)

    def _is_token_user(self, budget: Budget) -> bool:
        """Whether the token's user is the owner (asked once; an installation token is not)."""
        label = f"GET {self._shown}/user"
        got = self._get(label, self.api_url + "/user", budget)
        if isinstance(got, Answer):
            if got.kind in (NO_PERMISSION, NOT_FOUND):
                return False  # an installation token (GITHUB_TOKEN) has no user
            raise self._read_refusal(got, label)
        try:
            data = json_bounds.parse(got.body, max_bytes=MAX_ANSWER_BYTES)
        except JSONRefused as exc:
            raise self._not_the_api(label, exc.problem) from None
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str):
            raise self._not_the_api(label, "has no login")
        return login.lower() == self.owner.lower()

    # -- deleting --

    def _delete(self, digest: str, version_id: int, budget: Budget) -> bool:
        """DELETE by id; after an answer that may hide an applied DELETE, list before resending."""
        attempt = 0
        while True:
            attempt += 1
            sent = self._delete_once(digest, version_id, budget)
            if isinstance(sent, bool):
                return sent
            problem, unsure = sent
            label = self._delete_label(version_id)
            try:
                self._pause(label, attempt, problem, budget)
                if not unsure:
                    continue  # a rate-limit refusal applied nothing: send it again
                known = self._list(budget)
            except GitHubError as exc:
                if not unsure:
                    raise
                raise GitHubError(
                    f"{exc}; whether GitHub deleted {digest} is unknown: rerun (a deleted "
                    "version then counts as already gone)",
                    exc.kind,
                    exc.status,
                ) from None
            if digest not in known:
                return True  # the DELETE whose answer was lost did it
            version_id = known[digest]

    def _delete_label(self, version_id: int) -> str:
        assert self._place is not None  # the versions were listed first
        return f"DELETE {self._shown}{self._place.version(version_id)}"

    def _delete_once(
        self, digest: str, version_id: int, budget: Budget
    ) -> bool | tuple[Answer | BaseException, bool]:
        """True/False when settled, else (the problem, whether the DELETE may have applied)."""
        assert self._place is not None
        label = self._delete_label(version_id)
        try:
            reply = self._attempt(
                "DELETE", self.api_url + self._place.version(version_id), label, budget
            )
        except OSError as exc:
            return transient(exc, label), True
        if reply.status == 204:
            if self._known is not None:
                self._known.pop(digest, None)
            return True
        answer = self._answer(reply)
        if answer.status == 404:
            # Deleted meanwhile, or hidden from a token that may read but not delete it.
            if digest not in self._list(budget):
                return False
            raise self._not_admin(answer, label, digest, version_id)
        if answer.kind not in RATE_LIMITED and answer.kind != SERVER:
            raise self._delete_refusal(answer, label, digest)
        return answer, answer.kind == SERVER

    # -- what a refusal means --

    def _not_the_api(self, label: str, problem: str) -> GitHubError:
        return GitHubError(
            f"{label}: GitHub's answer {problem}, not its REST API's; check GITHUB_API_URL", OTHER
        )

    def _bad_token(self, answer: Answer, label: str) -> GitHubError:
        return GitHubError(
            f"GitHub rejected the token from {self._token_source} ({answer.http} at {label}): "
            "it is invalid, expired or revoked; use a valid token",
            BAD_TOKEN,
            answer.status,
        )

    @staticmethod
    def _wants(answer: Answer) -> str:
        return f" (GitHub asks for {answer.permissions})" if answer.permissions else ""

    def _read_refusal(self, answer: Answer, label: str) -> GitHubError:
        if answer.kind == BAD_TOKEN:
            return self._bad_token(answer, label)
        if answer.kind == NO_PERMISSION:
            if "saml" in answer.said.lower() or "single sign-on" in answer.said.lower():
                advice = "authorize the token for the organization's SAML single sign-on"
            else:
                advice = (
                    f"the token may not read container package {self.package} of "
                    f"{self.owner}: a personal access token needs the read:packages scope, a "
                    "job's GITHUB_TOKEN 'permissions: packages: read' and the repository listed "
                    f"under the package's 'Manage Actions access'{self._wants(answer)}"
                )
            return GitHubError(
                f"GitHub refused {label} ({answer.http}): {advice}", answer.kind, 403
            )
        return GitHubError(f"{label}: {answer.http}", answer.kind, answer.status)

    def _no_package(self, answer: Answer, tried: Sequence[Owner]) -> GitHubError:
        asked = " and ".join(f"GET {self._shown}{place.versions}" for place in tried)
        return GitHubError(
            f"GitHub has no container package '{self.package}' of '{self.owner}' that this token "
            f"can see ({answer.http} at {asked}); check the repository ({self.where}), and that "
            "the token may read the package: the read:packages scope for a personal access "
            "token; for a job's GITHUB_TOKEN, 'permissions: packages: read' and the repository "
            "listed under the package's 'Manage Actions access'",
            NOT_FOUND,
            answer.status,
        )

    def _admin_advice(self) -> str:
        place = self._place
        org = place is not None and place.kind == ORG
        return (
            "the token's user needs the Admin role on the package (package settings → "
            f"Manage access){' or to own the organization' if org else ''}; a job's "
            "GITHUB_TOKEN needs 'permissions: packages: write' and the Admin role for this "
            "repository under the package's 'Manage Actions access'"
        )

    def _not_admin(self, answer: Answer, label: str, digest: str, version_id: int) -> GitHubError:
        return GitHubError(
            f"GitHub answered {answer.http} to {label}, yet version {version_id} ({digest}) of "
            f"{self.where} is still listed: the token may read the package but not delete from "
            f"it (GitHub hides what a token may not administer); {self._admin_advice()}",
            NO_PERMISSION,
            answer.status,
        )

    def _delete_refusal(self, answer: Answer, label: str, digest: str) -> GitHubError:
        if is_last_version(answer):
            place = self._place
            package = f"DELETE {self._shown}{place.package}" if place is not None else "its page"
            return GitHubError(
                f"GitHub keeps {digest} in {self.where} ({answer.http} at {label}): it is the "
                "package's last (tagged) version, and GitHub deletes that only with the whole "
                f"package; keep this version, or delete the package itself ({package}, or its "
                "settings page)",
                LAST_VERSION,
                answer.status,
            )
        if answer.kind == BAD_TOKEN:
            return self._bad_token(answer, label)
        if answer.kind == NO_PERMISSION:
            said = answer.said.lower()
            if "later" in said:  # e.g. a package being migrated
                return GitHubError(
                    f"GitHub refused {label} ({answer.http}); rerun later", answer.kind, 403
                )
            return GitHubError(
                f"GitHub refused {label} ({answer.http}): the token may not delete versions of "
                f"{self.where}: a personal access token (classic) needs the delete:packages and "
                f"read:packages scopes, and {self._admin_advice()}{self._wants(answer)}",
                answer.kind,
                answer.status,
            )
        return GitHubError(f"GitHub refused {label} ({answer.http})", answer.kind, answer.status)

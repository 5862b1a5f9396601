"""GitHub package versions without a network: the pure parts, and the client over a scripted
``requests`` transport (a BaseAdapter answering from a list) on a fake clock."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from ci_modelver.adapters.github import Answer
from ci_modelver.adapters.github_packages import (
    LAST_VERSION,
    PackageVersions,
    api_url_from,
    is_last_version,
    next_page,
    owners,
    parse_versions,
    split_repository,
    token_from,
)
from ci_modelver.core.refs import check_digest
from ci_modelver.errors import GitHubError, InputError, exit_code_of

API = "https://api.github.com"
TOKEN = "ghp_" + "T0k3n" * 8
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
ORG_VERSIONS = f"{API}/orgs/acme/packages/container/models%2Fchurn/versions"


# ---------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("acme/models", ("acme", "models")),
        ("acme/models/churn", ("acme", "models/churn")),
        ("Octo-Cat/a.b_c__d-e/f", ("Octo-Cat", "a.b_c__d-e/f")),
    ],
)
def test_split_repository(path: str, expected: tuple[str, str]) -> None:
    assert split_repository(path) == expected


@pytest.mark.parametrize(
    "path",
    ["ghcr.io/acme/models", "localhost:5000/a/b", "acme", "acme/", "acme//x", "-acme/x", "a/x y"],
)
def test_split_repository_refuses(path: str) -> None:
    with pytest.raises(InputError):
        split_repository(path)


def test_checked_digest() -> None:
    assert check_digest(D1) == D1
    for bad in ("1" * 64, "sha256:", "SHA256:abc", "sha256:a b"):
        with pytest.raises(InputError):
            check_digest(bad)


def test_owners_encode_the_package_name_as_one_segment() -> None:
    org, mine, user = owners("acme", "models/churn")
    assert org.versions == "/orgs/acme/packages/container/models%2Fchurn/versions"
    assert mine.version(7) == "/user/packages/container/models%2Fchurn/versions/7"
    assert user.package == "/users/acme/packages/container/models%2Fchurn"
    assert (org.paged, mine.paged, user.paged) == (True, True, False)


def test_next_page() -> None:
    link = (
        f'<{ORG_VERSIONS}?per_page=100&page=3>; rel="next", '
        f'<{ORG_VERSIONS}?per_page=100&page=9>; rel="last"'
    )
    assert next_page(link, API) == f"{ORG_VERSIONS}?per_page=100&page=3"
    assert next_page(f'<{ORG_VERSIONS}?page=1>; rel="prev"', API) is None
    assert next_page("", API) is None
    ghes = "https://ghe.example/api/v3"
    assert next_page(f'<{ghes}/x?page=2>; rel="next"', ghes) == f"{ghes}/x?page=2"


@pytest.mark.parametrize(
    ("link", "api"),
    [
        ('<https://evil.example/orgs/x?page=2>; rel="next"', API),
        ('<http://api.github.com/orgs/x?page=2>; rel="next"', API),
        ('<https://ghe.example/other/x?page=2>; rel="next"', "https://ghe.example/api/v3"),
    ],
)
def test_next_page_never_leads_the_token_elsewhere(link: str, api: str) -> None:
    with pytest.raises(GitHubError, match="the token is not sent there"):
        next_page(link, api)


def _version(version_id: Any, name: Any = D1, tags: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": version_id, "name": name}
    if tags is not None:
        item["metadata"] = {"package_type": "container", "container": {"tags": tags}}
    return item


def test_parse_versions() -> None:
    parsed = parse_versions([_version(1, D1, ["1.0.0"]), _version(2, D2)])
    assert parsed is not None
    assert [(v.id, v.name, v.tags) for v in parsed] == [(1, D1, ("1.0.0",)), (2, D2, ())]
    for bad in ({"id": 1}, [_version(True)], [_version(1, 5)], ["x"], None):
        assert parse_versions(bad) is None


def _answer(status: int, said: str) -> Answer:
    return Answer(status, "other", said)


def test_is_last_version() -> None:
    last = "You cannot delete the last version of a package. You must delete the package instead."
    tagged = last.replace("last version", "last tagged version")
    assert is_last_version(_answer(400, last)) and is_last_version(_answer(400, tagged))
    assert not is_last_version(_answer(403, last))
    assert not is_last_version(_answer(400, "Invalid argument."))


def test_token_and_api_from_the_environment() -> None:
    assert token_from({"MODELVER_GITHUB_TOKEN": "a", "GITHUB_TOKEN": "b"}) == (
        "MODELVER_GITHUB_TOKEN",
        "a",
    )
    assert token_from({"MODELVER_GITHUB_TOKEN": " ", "GITHUB_TOKEN": "b"}) == ("GITHUB_TOKEN", "b")
    with pytest.raises(InputError, match="MODELVER_GITHUB_TOKEN or GITHUB_TOKEN"):
        token_from({})
    with pytest.raises(InputError, match="not a token"):
        token_from({"GITHUB_TOKEN": "a\nX-Evil: 1"})
    assert api_url_from({}) == API
    assert api_url_from({"GITHUB_API_URL": "https://ghe.example/api/v3/"}) == (
        "https://ghe.example/api/v3"
    )
    with pytest.raises(InputError, match="not an http"):
        api_url_from({"GITHUB_API_URL": "ftp://x"})


# ---------------------------------------------------------------------------------------------
# The client over a scripted transport


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


Reply = tuple[int, Any, Mapping[str, str]] | BaseException


@dataclass
class Scripted(BaseAdapter):
    """Answers each request with the next planned reply (or raises it)."""

    replies: list[Reply]
    sent: list[tuple[str, str, Any, Mapping[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.sent.append((str(request.method), str(request.url), timeout, request.headers))
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        status, body, headers = reply
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        response.raw = io.BytesIO(raw)
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        return None

    def calls(self) -> list[str]:
        return [f"{method} {url.removeprefix(API)}" for method, url, _, _ in self.sent]


def make(
    *replies: Reply, budget: float = 60.0, log: list[str] | None = None
) -> tuple[PackageVersions, Scripted, Clock]:
    scripted = Scripted(list(replies))
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", scripted)
    clock = Clock()
    versions = PackageVersions(
        API,
        TOKEN,
        "acme",
        "models/churn",
        budget=budget,
        token_source="MODELVER_GITHUB_TOKEN",
        session=session,
        sleep=clock.sleep,
        clock=clock,
        wall=lambda: 1_800_000_000.0,
        log=log.append if log is not None else None,
    )
    return versions, scripted, clock


def page(*items: dict[str, Any], link: str = "") -> Reply:
    return (200, list(items), {"Link": link} if link else {})


LISTED = page(_version(11, D1, ["1.0.0"]), _version(12, D2, ["1.1.0"]))
ONLY_D2 = page(_version(12, D2, ["1.1.0"]))
GONE: Reply = (204, None, {})
SERVER_ERROR: Reply = (502, {"message": "Server Error"}, {})


def test_requests_carry_the_token_the_version_and_a_bounded_timeout() -> None:
    log: list[str] = []
    versions, scripted, _ = make(LISTED, GONE, budget=20.0, log=log)
    assert versions.delete_version(D1) is True
    assert scripted.calls() == [
        "GET /orgs/acme/packages/container/models%2Fchurn/versions?per_page=100",
        "DELETE /orgs/acme/packages/container/models%2Fchurn/versions/11",
    ]
    _, _, timeout, headers = scripted.sent[1]
    assert timeout == (5.0, 5.0)  # a quarter of the budget
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["Accept"] == "application/vnd.github+json"
    assert len(log) == 2 and all(TOKEN not in line for line in log)
    assert "-> HTTP 204" in log[1]


def test_a_5xx_on_delete_is_checked_by_listing_again() -> None:
    versions, scripted, _ = make(LISTED, SERVER_ERROR, ONLY_D2)
    assert versions.delete_version(D1) is True  # GitHub had applied it
    assert [c.split()[0] for c in scripted.calls()] == ["GET", "DELETE", "GET"]


def test_a_delete_not_applied_is_sent_again_after_the_check() -> None:
    versions, scripted, _ = make(LISTED, requests.ReadTimeout("slow"), LISTED, GONE)
    assert versions.delete_version(D1) is True
    assert [c.split()[0] for c in scripted.calls()] == ["GET", "DELETE", "GET", "DELETE"]


def test_a_rate_limited_delete_waits_and_is_sent_again_without_a_check() -> None:
    limited: Reply = (
        429,
        {"message": "API rate limit exceeded"},
        {"Retry-After": "7"},
    )
    versions, scripted, clock = make(LISTED, limited, GONE)
    assert versions.delete_version(D1) is True
    assert clock.slept == [7.0]
    assert [c.split()[0] for c in scripted.calls()] == ["GET", "DELETE", "DELETE"]


def test_a_wait_past_the_budget_is_not_slept() -> None:
    limited: Reply = (
        403,
        {"message": "You have exceeded a secondary rate limit."},
        {"Retry-After": "300"},
    )
    versions, _, clock = make(LISTED, limited, budget=30.0)
    with pytest.raises(GitHubError) as raised:
        versions.delete_version(D1)
    assert clock.slept == []
    assert raised.value.kind == "secondary-rate-limit" and "300s" in str(raised.value)


def test_an_unsure_delete_that_cannot_be_checked_says_so() -> None:
    versions, _, _ = make(LISTED, *([SERVER_ERROR] * 6), budget=60.0)
    # DELETE 502, then every listing fails too: the outcome is unknown.
    with pytest.raises(GitHubError) as raised:
        versions.delete_version(D1)
    assert "whether GitHub deleted" in str(raised.value)
    assert exit_code_of(raised.value) == 3


def test_reads_give_up_after_the_attempts() -> None:
    versions, scripted, clock = make(*([SERVER_ERROR] * 5))
    with pytest.raises(GitHubError, match="gave up after 5 attempt"):
        versions.delete_version(D1)
    assert len(scripted.sent) == 5 and len(clock.slept) == 4


def test_a_bad_token_names_its_variable() -> None:
    versions, _, _ = make((401, {"message": "Bad credentials"}, {}))
    with pytest.raises(GitHubError) as raised:
        versions.delete_version(D1)
    assert raised.value.kind == "bad-token"
    assert "MODELVER_GITHUB_TOKEN" in str(raised.value)


def test_an_html_page_is_not_the_api() -> None:
    versions, _, _ = make((200, b"<html>login</html>", {"Content-Type": "text/html"}))
    with pytest.raises(GitHubError, match="check GITHUB_API_URL"):
        versions.delete_version(D1)


def test_a_redirect_is_not_followed() -> None:
    versions, scripted, _ = make((302, None, {"Location": "https://evil.example/x"}))
    with pytest.raises(GitHubError, match="HTTP 302"):
        versions.delete_version(D1)
    assert len(scripted.sent) == 1


def test_a_link_back_to_a_page_already_read_is_a_loop() -> None:
    first = f"{ORG_VERSIONS}?per_page=100"
    versions, _, _ = make(
        page(_version(1, D2), link=f'<{first}&page=2>; rel="next"'),
        page(_version(2, "sha256:" + "3" * 64), link=f'<{first}&page=2>; rel="next"'),
    )
    with pytest.raises(GitHubError, match="leads back to a page already read"):
        versions.delete_version(D1)


def test_a_connection_error_of_another_kind_is_not_retried() -> None:
    versions, scripted, _ = make(requests.exceptions.InvalidURL("bad"))
    with pytest.raises(GitHubError, match="InvalidURL"):
        versions.delete_version(D1)
    assert len(scripted.sent) == 1


def test_the_last_version_refusal_is_its_own_error() -> None:
    refused: Reply = (
        400,
        {
            "message": "You cannot delete the last version of a package. You must delete the "
            "package instead."
        },
        {},
    )
    versions, _, _ = make(page(_version(11, D1, ["1.0.0"])), refused)
    with pytest.raises(GitHubError) as raised:
        versions.delete_version(D1)
    assert raised.value.kind == LAST_VERSION and exit_code_of(raised.value) == 3
    assert "ghcr.io/acme/models/churn" in str(raised.value)

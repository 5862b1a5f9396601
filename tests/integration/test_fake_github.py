"""The fake GitHub REST API itself: behaviour through PyGithub and raw HTTP, and its OpenAPI checks."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import github_fixtures, npm_packages
from tests.support.fake_github import (
    MAX_COMMENT_LENGTH,
    FakeGitHub,
    iter_link_header,
)
from tests.support.github_fixtures import WebhookFactory
from tests.support.openapi import OpenAPIChecker, convert_schema

try:
    import github
    from github import Auth, Github, GithubException
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("PyGithub is not installed", allow_module_level=True)

pytestmark = pytest.mark.integration

OWNER, REPO, NUMBER = "acme", "widgets", 7
COMMENTS = f"/repos/{OWNER}/{REPO}/issues/{NUMBER}/comments"


def client(fake: FakeGitHub, token: str = FakeGitHub.INSTALLATION_TOKEN) -> Github:
    # PyGithub sleeps between requests (0.25 s) and writes (1 s) by default; not needed here.
    return Github(
        base_url=fake.base_url,
        auth=Auth.Token(token),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def raw(
    fake: FakeGitHub,
    method: str,
    path: str,
    token: str | None = FakeGitHub.INSTALLATION_TOKEN,
    scheme: str = "token",
    **kwargs: Any,
) -> requests.Response:
    headers = {"Accept": "application/vnd.github+json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    return requests.request(method, fake.base_url + path, headers=headers, timeout=10, **kwargs)


# ---------------------------------------------------------------------------------------------
# Comments through PyGithub


def test_create_comment_as_the_actions_bot(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    pull = client(fake_github).get_repo(f"{OWNER}/{REPO}").get_pull(NUMBER)
    created = pull.create_issue_comment("hello <!-- marker -->")

    assert created.body == "hello <!-- marker -->"
    assert created.user.login == "github-actions[bot]"
    assert created.user.type == "Bot"
    assert created.html_url.startswith(f"{fake_github.root_url}/{OWNER}/{REPO}/pull/{NUMBER}#")
    stored = fake_github.comments(OWNER, REPO, NUMBER)
    assert [(c.id, c.body, c.login) for c in stored] == [
        (created.id, "hello <!-- marker -->", "github-actions[bot]")
    ]
    post = fake_github.requests_matching("POST", COMMENTS)
    assert [(r.status, r.login, r.operation_id) for r in post] == [
        (201, "github-actions[bot]", "issues/create-comment")
    ]


def test_pygithub_iterates_every_page_of_comments(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.add_comment(OWNER, REPO, NUMBER, "LGTM <!-- marker -->", login="alice")
    for i in range(150):
        fake_github.add_comment(OWNER, REPO, NUMBER, f"filler {i}", login="bob")
    pull = client(fake_github).get_repo(f"{OWNER}/{REPO}").get_pull(NUMBER)
    ours = pull.create_issue_comment("ours <!-- marker -->")

    listed = list(pull.get_issue_comments())

    assert len(listed) == 152
    assert [c.id for c in listed] == sorted(c.id for c in listed)
    assert listed[0].user.login == "alice"
    assert listed[-1].id == ours.id and listed[-1].user.type == "Bot"
    pages = fake_github.requests_matching("GET", r"/issues/7/comments$")
    assert len(pages) == 6  # 152 comments, 30 a page
    assert all(r.status == 200 for r in pages)
    # Later pages were reached through GitHub-style /repositories/{id}/... Link URLs.
    assert any("/repositories/" in r.raw_path for r in pages)


def test_edit_and_get_a_comment(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    repo = client(fake_github).get_repo(f"{OWNER}/{REPO}")
    created = repo.get_pull(NUMBER).create_issue_comment("v1")
    before = fake_github.comment(created.id)
    assert before is not None

    created.edit("v2")

    fetched = repo.get_issue(NUMBER).get_comment(created.id)
    assert fetched.body == "v2"
    after = fake_github.comment(created.id)
    assert after is not None
    assert after.body == "v2" and after.updated_at > before.updated_at
    assert after.created_at == before.created_at


def test_read_only_token_cannot_write(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER, head_repo_full_name="forker/widgets")
    existing = fake_github.add_comment(
        OWNER, REPO, NUMBER, "old", login="github-actions[bot]", type="Bot"
    )
    pull = (
        client(fake_github, FakeGitHub.READONLY_TOKEN).get_repo(f"{OWNER}/{REPO}").get_pull(NUMBER)
    )
    assert pull.head.repo.full_name == "forker/widgets" and pull.head.repo.fork

    with pytest.raises(GithubException) as raised:
        pull.create_issue_comment("nope")
    assert raised.value.status == 403
    assert raised.value.data["message"] == "Resource not accessible by integration"

    patch = raw(
        fake_github,
        "PATCH",
        f"/repos/{OWNER}/{REPO}/issues/comments/{existing.id}",
        FakeGitHub.READONLY_TOKEN,
        json={"body": "x"},
    )
    assert patch.status_code == 403
    assert patch.headers["X-Accepted-GitHub-Permissions"] == "issues=write; pull_requests=write"
    assert [c.body for c in fake_github.comments(OWNER, REPO, NUMBER)] == ["old"]


def test_too_long_body_is_422(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    pull = client(fake_github).get_repo(f"{OWNER}/{REPO}").get_pull(NUMBER)

    with pytest.raises(GithubException) as raised:
        pull.create_issue_comment("x" * (MAX_COMMENT_LENGTH + 1))
    assert raised.value.status == 422
    assert raised.value.data["errors"][0]["message"] == (
        "Body is too long (maximum is 65536 characters)"
    )

    exact = pull.create_issue_comment("y" * MAX_COMMENT_LENGTH)
    with pytest.raises(GithubException) as edit_raised:
        exact.edit("z" * (MAX_COMMENT_LENGTH + 1))
    assert edit_raised.value.status == 422
    assert [len(c.body) for c in fake_github.comments(OWNER, REPO, NUMBER)] == [MAX_COMMENT_LENGTH]


def test_unknown_comment_and_issue_are_404(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    patch = raw(
        fake_github, "PATCH", f"/repos/{OWNER}/{REPO}/issues/comments/123", json={"body": "x"}
    )
    assert patch.status_code == 404
    assert patch.json()["message"] == "Not Found"
    assert patch.json()["documentation_url"].startswith("https://docs.github.com/rest/")
    assert raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}/issues/8/comments").status_code == 404
    assert raw(fake_github, "GET", "/repos/acme/missing").status_code == 404


# ---------------------------------------------------------------------------------------------
# Identity and authentication


def test_user_endpoint_by_token_kind(fake_github: FakeGitHub) -> None:
    with pytest.raises(GithubException) as raised:
        _ = client(fake_github).get_user().login
    assert raised.value.status == 403
    assert raised.value.data["message"] == "Resource not accessible by integration"

    me = client(fake_github, FakeGitHub.PERSONAL_TOKEN).get_user()
    assert me.login == "octocat"
    assert me.type == "User"

    fake_github.add_token("ghp_other", "hubot", type="User", can_write=False)
    answer = raw(fake_github, "GET", "/user", "ghp_other", scheme="Bearer")
    assert answer.status_code == 200 and answer.json()["login"] == "hubot"


def test_bad_or_missing_credentials_are_401(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    bad = raw(fake_github, "GET", COMMENTS, "ghp_unknown")
    assert bad.status_code == 401
    assert bad.json()["message"] == "Bad credentials"
    assert bad.json()["documentation_url"].startswith("https://docs.github.com/")
    missing = raw(fake_github, "POST", COMMENTS, None, json={"body": "x"})
    assert missing.status_code == 401
    assert missing.json()["message"] == "Requires authentication"
    with pytest.raises(github.BadCredentialsException):
        client(fake_github, "ghp_unknown").get_repo(f"{OWNER}/{REPO}")


def test_headers_look_like_github(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    first = raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}")
    second = requests.get(
        fake_github.base_url + f"/repos/{OWNER}/{REPO}",
        headers={
            "Authorization": f"Bearer {FakeGitHub.INSTALLATION_TOKEN}",
            "X-GitHub-Api-Version": "2022-11-28",
        },
        timeout=10,
    )
    for answer in (first, second):
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
        assert answer.headers["X-RateLimit-Limit"] == "5000"
        assert answer.headers["X-RateLimit-Resource"] == "core"
        assert answer.headers["X-GitHub-Api-Version-Selected"] == "2022-11-28"
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in (first, second)]
    assert remaining[1] == remaining[0] - 1


def test_concurrent_writers_get_distinct_comments(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)

    def post(i: int) -> int:
        with requests.Session() as session:
            for j in range(10):
                answer = session.post(
                    fake_github.base_url + COMMENTS,
                    headers={"Authorization": "token ghs_installation"},
                    json={"body": f"{i}-{j}"},
                    timeout=10,
                )
                assert answer.status_code == 201
        return i

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert sorted(pool.map(post, range(6))) == list(range(6))
    stored = fake_github.comments(OWNER, REPO, NUMBER)
    assert len({c.id for c in stored}) == 60
    assert {c.body for c in stored} == {f"{i}-{j}" for i in range(6) for j in range(10)}


# ---------------------------------------------------------------------------------------------
# Pagination on the wire


def test_link_headers_like_github(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    for i in range(250):
        fake_github.add_comment(OWNER, REPO, NUMBER, f"c{i}", login="bob")
    repository = fake_github.repository(OWNER, REPO)
    assert repository is not None
    repo_id = repository.id

    first = raw(fake_github, "GET", COMMENTS, params={"per_page": 100})
    links = dict(iter_link_header(first.headers["Link"]))
    assert set(links) == {"next", "last"}
    prefix = f"{fake_github.base_url}/repositories/{repo_id}/issues/{NUMBER}/comments?"
    assert links["next"] == prefix + "per_page=100&page=2"
    assert links["last"] == prefix + "per_page=100&page=3"
    assert len(first.json()) == 100

    third = requests.get(
        links["last"], headers={"Authorization": "token ghs_installation"}, timeout=10
    )
    assert len(third.json()) == 50
    assert set(dict(iter_link_header(third.headers["Link"]))) == {"prev", "first"}

    capped = raw(fake_github, "GET", COMMENTS, params={"per_page": 500})
    assert len(capped.json()) == 100
    default = raw(fake_github, "GET", COMMENTS)
    assert len(default.json()) == 30

    fake_github.add_pull_request(OWNER, REPO, NUMBER + 1)
    fake_github.add_comment(OWNER, REPO, NUMBER + 1, "only one", login="bob")
    single = raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}/issues/{NUMBER + 1}/comments")
    assert len(single.json()) == 1 and "Link" not in single.headers


# ---------------------------------------------------------------------------------------------
# GitHub Enterprise Server layout


def test_enterprise_prefix_with_pygithub(fake_github_enterprise: FakeGitHub) -> None:
    fake = fake_github_enterprise
    assert fake.base_url.endswith("/api/v3")
    fake.add_pull_request(OWNER, REPO, NUMBER)
    for i in range(40):
        fake.add_comment(OWNER, REPO, NUMBER, f"filler {i}", login="bob")
    # PyGithub wants the GHES REST root, https://HOST/api/v3, as base_url.
    pull = client(fake).get_repo(f"{OWNER}/{REPO}").get_pull(NUMBER)
    created = pull.create_issue_comment("ours")
    assert created.url == f"{fake.base_url}/repos/{OWNER}/{REPO}/issues/comments/{created.id}"
    assert len(list(pull.get_issue_comments())) == 41
    created.edit("ours, edited")
    assert fake.comments(OWNER, REPO, NUMBER)[-1].body == "ours, edited"
    assert all(r.raw_path.startswith("/api/v3/") for r in fake.requests)


def test_enterprise_request_outside_the_prefix_is_a_violation(
    fake_github_enterprise: FakeGitHub,
) -> None:
    fake = fake_github_enterprise
    fake.add_pull_request(OWNER, REPO, NUMBER)
    answer = requests.get(
        f"{fake.root_url}/repos/{OWNER}/{REPO}",
        headers={"Authorization": "token ghs_installation"},
        timeout=10,
    )
    assert answer.status_code == 404
    assert len(fake.violations) == 1 and "outside the API prefix" in fake.violations[0]
    fake.violations.clear()


# ---------------------------------------------------------------------------------------------
# OpenAPI checks


def test_invalid_request_body_is_a_violation(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    answer = raw(fake_github, "POST", COMMENTS, json={"bodyx": 1})
    assert answer.status_code == 422
    assert "wasn't supplied" in answer.json()["message"]
    assert any("'body' is a required property" in v for v in fake_github.violations)
    assert all(v.startswith(f"POST {COMMENTS}") for v in fake_github.violations)
    fake_github.violations.clear()


def test_unserved_operation_is_a_violation(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    assert raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}/pulls").status_code == 404
    assert raw(fake_github, "GET", "/no/such/endpoint").status_code == 404
    assert any("FakeGitHub does not serve it" in v for v in fake_github.violations)
    assert any("no operation in the OpenAPI description" in v for v in fake_github.violations)
    fake_github.violations.clear()


def test_checker_rejects_bad_responses_and_statuses(
    fake_github: FakeGitHub, github_openapi_checker: OpenAPIChecker
) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    created = raw(fake_github, "POST", COMMENTS, json={"body": "x"}).json()
    path = f"/repos/{OWNER}/{REPO}/issues/comments/{created['id']}"
    check = github_openapi_checker.check_response

    assert check("GET", path, 200, created) == []
    assert check("GET", path, 200, {**created, "user": None}) == []  # nullable-simple-user
    broken = {k: v for k, v in created.items() if k != "issue_url"}
    assert check("GET", path, 200, broken) == [
        "200 response body $: 'issue_url' is a required property"
    ]
    bad_user = {**created, "user": {**created["user"], "id": "1"}}
    assert check("GET", path, 200, bad_user) == [
        "200 response body $.user.id: '1' is not of type 'integer'"
    ]
    assert check("PATCH", path, 409, {"message": "x"})[0].startswith("status 409 is not documented")
    assert check("PATCH", path, 404, {"message": "Not Found"}) == []  # implicit error status
    assert github_openapi_checker.check_request("GET", "/repos/o/r/issues/x/comments") == [
        "path parameter 'issue_number' $: 'x' is not of type 'integer'"
    ]
    assert github_openapi_checker.check_request("GET", COMMENTS, {"per_page": "many"}) == [
        "query parameter 'per_page' $: 'many' is not of type 'integer'"
    ]


def test_nullable_conversion() -> None:
    assert convert_schema({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert convert_schema({"type": "string", "nullable": True, "enum": ["a"]}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert convert_schema({"$ref": "#/components/schemas/x", "nullable": True}) == {
        "anyOf": [
            {"type": "null"},
            {"$ref": "urn:github-openapi:api.github.com#/components/schemas/x"},
        ]
    }
    assert convert_schema({"allOf": [{"type": "object"}], "nullable": True}) == {
        "anyOf": [{"type": "null"}, {"allOf": [{"type": "object"}]}]
    }
    lifted = convert_schema({"oneOf": [{"type": "string", "nullable": True}, {"type": "integer"}]})
    assert lifted == {
        "anyOf": [{"type": "null"}, {"oneOf": [{"type": "string"}, {"type": "integer"}]}]
    }
    assert convert_schema({"nullable": True, "description": "anything"}) == {
        "description": "anything"
    }
    assert convert_schema({"type": "integer", "minimum": 0, "exclusiveMinimum": True}) == {
        "type": "integer",
        "exclusiveMinimum": 0,
    }
    # A property named like a keyword is a property, not a keyword.
    assert convert_schema({"properties": {"nullable": {"type": "boolean"}}}) == {
        "properties": {"nullable": {"type": "boolean"}}
    }


# ---------------------------------------------------------------------------------------------
# Faults: answers and waits the way GitHub and networks misbehave


def test_pygithubs_default_retry_posts_twice_when_an_answer_is_lost(
    fake_github: FakeGitHub,
) -> None:
    """The fault that made the sticky comment double: PyGithub's default retry repeats a POST."""
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.lose_answer("POST", COMMENTS)
    retrying = Github(
        base_url=fake_github.base_url,
        auth=Auth.Token(FakeGitHub.INSTALLATION_TOKEN),
        retry=github.GithubRetry(),
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
    )
    issue = retrying.get_repo(f"{OWNER}/{REPO}").get_issue(NUMBER)
    issue.create_comment("sticky")
    assert [c.body for c in fake_github.comments(OWNER, REPO, NUMBER)] == ["sticky", "sticky"]


def test_a_lost_answer_is_a_connection_error_after_the_write_is_applied(
    fake_github: FakeGitHub,
) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.lose_answer("POST", COMMENTS)
    with pytest.raises(requests.ConnectionError):
        raw(fake_github, "POST", COMMENTS, json={"body": "applied"})
    assert [c.body for c in fake_github.comments(OWNER, REPO, NUMBER)] == ["applied"]
    assert raw(fake_github, "POST", COMMENTS, json={"body": "next"}).status_code == 201  # once


def test_a_late_answer_outlives_the_client_timeout(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.lose_answer("POST", COMMENTS, after=30)
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            fake_github.base_url + COMMENTS,
            headers={"Authorization": f"token {FakeGitHub.INSTALLATION_TOKEN}"},
            json={"body": "late"},
            timeout=0.5,
        )
    assert [c.body for c in fake_github.comments(OWNER, REPO, NUMBER)] == ["late"]


def test_a_dropped_request_is_never_applied(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.drop_request("POST", COMMENTS)
    with pytest.raises(requests.ConnectionError):
        raw(fake_github, "POST", COMMENTS, json={"body": "lost"})
    assert fake_github.comments(OWNER, REPO, NUMBER) == []
    assert fake_github.dropped == [("POST", COMMENTS)]
    assert not fake_github.requests_matching("POST", "")


def test_a_stalled_answer_times_out_once_then_answers(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.stall("GET", COMMENTS, 600, times=1)  # stop() ends the wait at teardown
    with pytest.raises(requests.ReadTimeout):
        requests.get(
            fake_github.base_url + COMMENTS,
            headers={"Authorization": f"token {FakeGitHub.INSTALLATION_TOKEN}"},
            timeout=0.5,
        )
    assert raw(fake_github, "GET", COMMENTS).status_code == 200


def test_a_dripped_answer_outlasts_the_read_timeout(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.add_comment(OWNER, REPO, NUMBER, "hello", "someone")
    fake_github.drip("GET", COMMENTS, 0.1, until=1.5)
    answer = requests.get(  # timeout=1: no read waits that long, the whole answer does
        fake_github.base_url + COMMENTS,
        headers={"Authorization": f"token {FakeGitHub.INSTALLATION_TOKEN}"},
        timeout=1,
    )
    assert answer.status_code == 200
    assert [c["body"] for c in answer.json()] == ["hello"]


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limit_answers_like_github(fake_github: FakeGitHub, status: int) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.rate_limit("POST", COMMENTS, retry_after=120, status=status)
    fake_github.rate_limit("GET", COMMENTS, secondary=False, status=status)
    secondary = raw(fake_github, "POST", COMMENTS, json={"body": "x"})
    assert secondary.status_code == status
    assert secondary.headers["Retry-After"] == "120"
    assert "secondary rate limit" in secondary.json()["message"]
    primary = raw(fake_github, "GET", COMMENTS)
    assert primary.status_code == status
    assert primary.headers["X-RateLimit-Remaining"] == "0"
    assert int(primary.headers["X-RateLimit-Reset"]) > time.time()
    assert primary.json()["message"].startswith("API rate limit exceeded")
    assert raw(fake_github, "GET", COMMENTS).status_code == 200  # each fault once
    assert fake_github.comments(OWNER, REPO, NUMBER) == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_injected_server_errors_conform(fake_github: FakeGitHub, status: int) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.answer_with("POST", COMMENTS, status, "Server Error")
    assert raw(fake_github, "POST", COMMENTS, json={"body": "x"}).status_code == status
    assert fake_github.comments(OWNER, REPO, NUMBER) == []


def test_an_injected_answer_is_still_checked(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    fake_github.answer_with("POST", COMMENTS, 418, "I'm a teapot")
    assert raw(fake_github, "POST", COMMENTS, json={"body": "x"}).status_code == 418
    assert any("status 418 is not documented" in v for v in fake_github.violations)
    fake_github.violations.clear()


def test_a_422_carries_errors_messages(fake_github: FakeGitHub) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    errors = [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "no"}]
    fake_github.answer_with("POST", COMMENTS, 422, "Validation Failed", errors=errors)
    answer = raw(fake_github, "POST", COMMENTS, json={"body": "x"})
    assert answer.status_code == 422
    assert answer.json()["errors"] == errors


@pytest.mark.parametrize("status", [403, 422])
def test_a_locked_conversation(fake_github: FakeGitHub, status: int) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER)
    existing = fake_github.add_comment(OWNER, REPO, NUMBER, "old", "github-actions[bot]", "Bot")
    fake_github.lock(OWNER, REPO, NUMBER, reason="too heated", status=status)
    fake_github.add_token("ghp_owner", OWNER)
    issue = raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}/issues/{NUMBER}").json()
    assert issue["locked"] is True and issue["active_lock_reason"] == "too heated"
    pull = raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}/pulls/{NUMBER}").json()
    assert pull["locked"] is True
    refused = raw(fake_github, "POST", COMMENTS, json={"body": "x"})
    assert refused.status_code == status
    said = refused.json()
    words = said["message"] if status == 403 else said["errors"][0]["message"]
    assert words == "Unable to create comment because issue is locked."
    edit = raw(
        fake_github,
        "PATCH",
        f"/repos/{OWNER}/{REPO}/issues/comments/{existing.id}",
        json={"body": "new"},
    )
    assert edit.status_code == status
    assert raw(fake_github, "POST", COMMENTS, "ghp_owner", json={"body": "mine"}).status_code == 201
    assert [c.body for c in fake_github.comments(OWNER, REPO, NUMBER)] == ["old", "mine"]


# ---------------------------------------------------------------------------------------------
# Webhook payloads


def _pull_request_urls(payload: dict[str, Any]) -> list[str]:
    pull = payload["pull_request"]
    return [pull["url"], pull["issue_url"], pull["comments_url"], pull["html_url"]]


def test_webhook_pull_request_opened(
    webhook_payload: WebhookFactory, fake_github: FakeGitHub
) -> None:
    event = webhook_payload(
        "pull_request",
        "opened",
        owner=OWNER,
        repo=REPO,
        number=NUMBER,
        api_url=fake_github.base_url,
    )
    payload = event.payload
    assert payload["action"] == "opened" and payload["number"] == NUMBER
    assert payload["repository"]["full_name"] == f"{OWNER}/{REPO}"
    assert payload["repository"]["name"] == REPO
    assert payload["repository"]["owner"]["login"] == OWNER
    pull = payload["pull_request"]
    assert pull["number"] == NUMBER
    assert (
        pull["base"]["repo"]["full_name"] == pull["head"]["repo"]["full_name"] == f"{OWNER}/{REPO}"
    )
    assert pull["head"]["repo"]["fork"] is False
    assert pull["url"] == f"{fake_github.base_url}/repos/{OWNER}/{REPO}/pulls/{NUMBER}"
    assert (
        pull["comments_url"]
        == f"{fake_github.base_url}/repos/{OWNER}/{REPO}/issues/{NUMBER}/comments"
    )
    assert pull["html_url"].endswith(f"/{OWNER}/{REPO}/pull/{NUMBER}")
    assert "Hello-World" not in str(_pull_request_urls(payload))
    assert json.loads(event.path.read_text()) == payload
    assert event.env() == {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event.path),
        "GITHUB_REPOSITORY": f"{OWNER}/{REPO}",
    }


def test_webhook_pull_request_synchronize(webhook_payload: WebhookFactory) -> None:
    sha = "1" * 40
    event = webhook_payload(
        "pull_request", "synchronize", owner=OWNER, repo=REPO, number=3, head_sha=sha
    )
    payload = event.payload
    assert payload["action"] == "synchronize"
    assert payload["after"] == payload["pull_request"]["head"]["sha"] == sha
    assert len(payload["before"]) == 40
    assert payload["pull_request"]["number"] == payload["number"] == 3


def test_webhook_fork_pull_request_matches_the_fake(
    webhook_payload: WebhookFactory, fake_github: FakeGitHub
) -> None:
    fake_github.add_pull_request(OWNER, REPO, NUMBER, head_repo_full_name="forker/widgets")
    event = webhook_payload(
        "pull_request",
        "opened",
        owner=OWNER,
        repo=REPO,
        number=NUMBER,
        fork=True,
        fork_owner="forker",
        pull_request__title="From a fork",
    )
    pull = event.payload["pull_request"]
    assert pull["head"]["repo"]["full_name"] == "forker/widgets"
    assert pull["base"]["repo"]["full_name"] == f"{OWNER}/{REPO}"
    assert pull["head"]["repo"]["fork"] is True
    assert pull["head"]["repo"]["owner"]["login"] == "forker"
    assert pull["head"]["label"] == f"forker:{pull['head']['ref']}"
    assert pull["user"]["login"] == event.payload["sender"]["login"] == "forker"
    assert pull["title"] == "From a fork"
    assert pull["head"]["repo"]["id"] != pull["base"]["repo"]["id"]
    # The payload and the fake agree on which pull request this is.
    answer = raw(fake_github, "GET", f"/repos/{OWNER}/{REPO}/pulls/{pull['number']}")
    assert answer.json()["head"]["repo"]["full_name"] == pull["head"]["repo"]["full_name"]
    parsed = urllib.parse.urlsplit(event.payload["repository"]["url"])
    assert parsed.path == f"/repos/{OWNER}/{REPO}"


def test_webhook_unknown_action_says_which_exist(webhook_payload: WebhookFactory) -> None:
    with pytest.raises(KeyError, match="synchronize"):
        webhook_payload("pull_request", "no-such-action")


# ---------------------------------------------------------------------------------------------
# Installing the npm packages


def test_missing_npm_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(npm_packages, "NODE_MODULES", tmp_path / "node_modules")
    monkeypatch.setattr(npm_packages.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"^npm not found") as raised:
        npm_packages.ensure_npm_packages()
    assert "\n" not in str(raised.value)

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm not found"):
        github_fixtures.node_modules_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="npm not found"):
        github_fixtures.node_modules_or_skip()


def test_installed_packages_are_found_without_npm(monkeypatch: pytest.MonkeyPatch) -> None:
    npm_packages.ensure_npm_packages()
    monkeypatch.setattr(npm_packages.shutil, "which", lambda name: None)
    assert npm_packages.ensure_npm_packages() == npm_packages.NODE_MODULES

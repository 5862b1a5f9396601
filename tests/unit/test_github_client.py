"""The sticky comment's mechanism without a network: answers, the budget, re-checked writes, events.

``Script`` stands in for GitHub behind the adapter's small ``Api`` port: it keeps the comments,
raises what a test plans for each call (PyGithub's GithubException with a status, body and
headers, or requests' connection errors, applied or not), and spends time on a fake clock, so
every wait and timeout is measured exactly and nothing sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from github import GithubException

from ci_modelver.adapters import github as gh
from ci_modelver.adapters.github import (
    NO_RETRY,
    Found,
    GitHubClient,
    PyGithubApi,
    classify,
    pull_request_from_event,
    scrub,
)
from ci_modelver.errors import GitHubError, InputError, exit_code_of

REPO, PR = "acme/models", 7
MARKER = "<!-- ci-modelver:report name=demo -->"
BODY = f"{MARKER}\nreport"
TOKEN = "ghs_" + "T0k3n" * 8
NOW = 1_800_000_000.0

LOCKED_403 = (403, {"message": "Unable to create comment because issue is locked."})
LOCKED_422 = (
    422,
    {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "IssueComment",
                "code": "unprocessable",
                "field": "data",
                "message": "Unable to create comment because issue is locked.",
            }
        ],
    },
)
TOO_LONG = (
    422,
    {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "IssueComment",
                "code": "unprocessable",
                "field": "data",
                "message": "Body is too long (maximum is 65536 characters)",
            }
        ],
    },
)
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


# ---------------------------------------------------------------------------------------------
# A scripted GitHub


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Plan:
    """What one call does instead of succeeding: ``error`` raised, after applying it or not."""

    error: BaseException
    applied: bool = False


@dataclass
class Script:
    clock: Clock
    state: list[Found] = field(default_factory=list)  # the comments on the pull request
    plans: dict[str, list[Plan]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    login_answer: BaseException | str = "github-actions[bot]"
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(100, 10_000)))

    def plan(self, call: str, *plans: Plan) -> None:
        self.plans.setdefault(call, []).extend(plans)

    def connect(self, timeout: float) -> Script:
        self.timeouts.append(timeout)
        return self

    def _next(self, call: str) -> Plan | None:
        self.calls.append(call)
        queue = self.plans.get(call)
        plan = queue.pop(0) if queue else None
        if plan is not None and isinstance(plan.error, requests.Timeout):
            self.clock.now += self.timeouts[-1]  # a timeout takes the whole request timeout
        return plan

    def _fail(self, plan: Plan | None) -> None:
        if plan is not None:
            raise plan.error

    # -- the Api port --

    def login(self) -> str:
        self._fail(self._next("login"))
        if isinstance(self.login_answer, BaseException):
            raise self.login_answer
        return self.login_answer

    def comments(self, repo: str, number: int) -> Iterator[Found]:
        self._fail(self._next("list"))
        yield from list(self.state)

    def comment(self, repo: str, number: int, comment_id: int) -> Found:
        self._fail(self._next("get"))
        return next(c for c in self.state if c.id == comment_id)

    def create(self, repo: str, number: int, body: str) -> Found:
        plan = self._next("create")
        found = Found(next(self._ids), f"https://github.com/{repo}/pull/{number}", body, BOT)
        if plan is None or plan.applied:
            self.state.append(found)
        self._fail(plan)
        return found

    def edit(self, repo: str, number: int, comment_id: int, body: str) -> Found:
        plan = self._next("edit")
        index = next(i for i, c in enumerate(self.state) if c.id == comment_id)
        if plan is None or plan.applied:
            old = self.state[index]
            self.state[index] = Found(old.id, old.html_url, body, old.login)
        self._fail(plan)
        return self.state[index]


BOT = "github-actions[bot]"


def answer(status: int, data: Any, headers: dict[str, str] | None = None) -> GithubException:
    return GithubException(status, data, headers or {})


def client(script: Script, budget: float = 120.0, **kwargs: Any) -> GitHubClient:
    return GitHubClient(
        "https://api.github.com",
        TOKEN,
        budget=budget,
        connect=script.connect,
        sleep=script.clock.sleep,
        clock=script.clock,
        wall=lambda: NOW + script.clock.now,
        **kwargs,
    )


@pytest.fixture
def script() -> Script:
    return Script(Clock())


def post(script: Script, budget: float = 120.0, **kwargs: Any) -> gh.CommentOutcome:
    return client(script, budget, **kwargs).upsert_comment(REPO, PR, BODY, MARKER)


# ---------------------------------------------------------------------------------------------
# The library retries nothing


def test_pygithub_is_configured_to_retry_nothing() -> None:
    assert NO_RETRY.total == 0 and NO_RETRY.connect == 0 and NO_RETRY.read is False
    assert NO_RETRY.status == 0 and not NO_RETRY.status_forcelist
    assert not NO_RETRY.respect_retry_after_header  # a Retry-After is judged against the budget
    assert NO_RETRY.allowed_methods and {"POST", "PATCH"}.isdisjoint(NO_RETRY.allowed_methods)
    api = PyGithubApi("https://api.github.com", TOKEN, 7)  # builds no connection
    settings = api.github.requester.kwargs
    assert settings["retry"] is NO_RETRY
    assert settings["timeout"] == 7
    assert settings["seconds_between_writes"] is None


def test_each_request_gets_at_most_what_is_left_of_the_budget(script: Script) -> None:
    script.plan("list", Plan(requests.ReadTimeout()), Plan(requests.ReadTimeout()))
    post(script, budget=10.0)
    assert script.timeouts[0] == 2.5  # a quarter of the budget
    assert all(t <= 2.5 for t in script.timeouts)
    big = Script(Clock())
    post(big, budget=1000.0)
    assert max(big.timeouts) == 60.0  # at most a minute per request


# ---------------------------------------------------------------------------------------------
# Writes are never blindly repeated


def test_a_post_applied_but_unanswered_is_found_not_posted_again(script: Script) -> None:
    script.plan("create", Plan(requests.ReadTimeout(), applied=True))
    outcome = post(script)
    assert outcome.action == "created"
    assert script.calls.count("create") == 1
    assert [c.body for c in script.state] == [BODY]


def test_a_post_whose_connection_dropped_after_applying_is_found(script: Script) -> None:
    script.plan("create", Plan(requests.ConnectionError(), applied=True))
    assert post(script).action == "created"
    assert script.calls.count("create") == 1 and len(script.state) == 1


def test_a_post_that_never_arrived_is_sent_again_after_looking(script: Script) -> None:
    script.plan("create", Plan(requests.ConnectionError(), applied=False))
    assert post(script).action == "created"
    assert script.calls == ["list", "create", "list", "create"]
    assert len(script.state) == 1


def test_a_5xx_on_a_post_is_checked_before_posting_again(script: Script) -> None:
    script.plan("create", Plan(answer(502, {"message": "Server Error"}), applied=True))
    assert post(script).action == "created"
    assert script.calls.count("create") == 1 and len(script.state) == 1


def test_a_rate_limited_post_is_repeated_without_a_check(script: Script) -> None:
    limited = answer(403, {"message": SECONDARY}, {"Retry-After": "3"})
    script.plan("create", Plan(limited))
    assert post(script).action == "created"
    assert script.calls == ["list", "create", "create"]
    assert script.clock.slept == [3.0]


def test_an_edit_that_timed_out_is_read_back_not_repeated(script: Script) -> None:
    script.state.append(Found(1, "https://x/1", f"{MARKER}\nold", BOT))
    script.plan("edit", Plan(requests.ReadTimeout(), applied=True))
    assert post(script).action == "updated"
    assert script.calls.count("edit") == 1
    assert script.state[0].body == BODY


def test_an_edit_that_was_lost_is_sent_again(script: Script) -> None:
    script.state.append(Found(1, "https://x/1", f"{MARKER}\nold", BOT))
    script.plan("edit", Plan(requests.ConnectionError(), applied=False))
    assert post(script).action == "updated"
    assert script.calls.count("edit") == 2 and script.state[0].body == BODY


def test_only_our_identity_counts_and_it_is_asked_only_when_needed(script: Script) -> None:
    assert post(script).action == "created"
    assert "login" not in script.calls  # no comment carries the marker: nobody to recognise
    script.state[0] = Found(script.state[0].id, None, BODY, "mallory")
    assert post(script).action == "created"
    assert script.calls.count("login") == 1
    assert [c.login for c in script.state] == ["mallory", BOT]


# ---------------------------------------------------------------------------------------------
# Waits fit in the budget, or we give up at once saying how long GitHub asked for


def test_retry_after_longer_than_the_budget_gives_up_at_once(script: Script) -> None:
    script.plan("create", Plan(answer(403, {"message": SECONDARY}, {"Retry-After": "600"})))
    with pytest.raises(GitHubError) as caught:
        post(script, budget=30.0)
    error = caught.value
    assert exit_code_of(error) == 3 and error.kind == "secondary-rate-limit"
    assert "asked to wait 600s (Retry-After: 600)" in str(error)
    assert "30s budget" in str(error) and "--timeout" in str(error)
    assert script.clock.slept == []  # not a second spent waiting
    assert script.calls.count("create") == 1


def test_a_spent_rate_limit_window_names_its_reset(script: Script) -> None:
    reset = int(NOW) + 900
    limited = answer(
        403,
        {"message": SECONDARY},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    script.plan("list", Plan(limited))
    with pytest.raises(GitHubError, match=rf"asked to wait 901s \(x-ratelimit-reset {reset}\)"):
        post(script)
    assert script.clock.slept == []


def test_retry_after_as_an_http_date(script: Script) -> None:
    when = "Fri, 15 Jan 2027 09:00:00 GMT"
    script.plan("list", Plan(answer(429, {"message": "Too Many Requests"}, {"Retry-After": when})))
    with pytest.raises(GitHubError, match="Retry-After: Fri, 15 Jan 2027"):
        post(script)


def test_a_secondary_limit_without_a_time_waits_a_minute_when_it_fits(script: Script) -> None:
    script.plan("list", Plan(answer(403, {"message": SECONDARY})))
    assert post(script, budget=120.0).action == "created"
    assert script.clock.slept == [60.0]
    again = Script(Clock())
    again.plan("list", Plan(answer(403, {"message": SECONDARY})))
    with pytest.raises(GitHubError, match="at least a minute"):
        post(again, budget=30.0)


def test_a_read_that_never_answers_stops_within_the_budget(script: Script) -> None:
    script.plan("list", *[Plan(requests.ReadTimeout()) for _ in range(50)])
    with pytest.raises(GitHubError) as caught:
        post(script, budget=20.0)
    assert caught.value.kind == "timeout"
    assert "no answer in time; gave up after" in str(caught.value)
    assert script.clock.now <= 20.0
    assert script.calls.count("list") <= gh.MAX_ATTEMPTS


def test_an_answer_that_never_completes_is_cut_at_the_budget() -> None:
    """A server that keeps a read busy (a byte now and then) is not waited for past the budget;
    this one uses the real clock: the call blocks until the test releases it."""
    release = threading.Event()

    class Trickling(Script):
        def comments(self, repo: str, number: int) -> Iterator[Found]:
            release.wait(30)
            yield from ()

    script = Trickling(Clock())
    github = GitHubClient("https://api.github.com", TOKEN, budget=1.0, connect=script.connect)
    try:
        with pytest.raises(GitHubError) as caught:
            github.upsert_comment(REPO, PR, BODY, MARKER)
    finally:
        release.set()
    assert caught.value.kind == "timeout"
    assert "no answer in time; gave up after 1 attempt(s) within the 1s budget" in str(caught.value)


def test_server_errors_are_retried_a_bounded_number_of_times(script: Script) -> None:
    script.plan("list", *[Plan(answer(503, {"message": "Unavailable"})) for _ in range(50)])
    with pytest.raises(GitHubError, match=r"HTTP 503 Unavailable; gave up after 5 attempt"):
        post(script, budget=10_000.0)
    assert script.calls.count("list") == gh.MAX_ATTEMPTS


def test_the_hint_names_what_the_user_can_set(script: Script) -> None:
    script.plan("list", Plan(answer(403, {"message": SECONDARY}, {"Retry-After": "999"})))
    with pytest.raises(GitHubError, match="raise env MODELVER_TIMEOUT to wait longer"):
        post(script, wait_hint="raise env MODELVER_TIMEOUT to wait longer")


# ---------------------------------------------------------------------------------------------
# Each answer its own message


@pytest.mark.parametrize("refusal", [LOCKED_403, LOCKED_422], ids=["403", "422"])
def test_a_locked_conversation_is_said_so(script: Script, refusal: tuple[int, Any]) -> None:
    script.plan("create", Plan(answer(*refusal)))
    with pytest.raises(GitHubError) as caught:
        post(script)
    text = str(caught.value)
    assert caught.value.kind == "locked"
    assert "the conversation is locked" in text
    assert "Unable to create comment because issue is locked." in text
    assert "cannot write comments" not in text and "read-only" not in text


def test_body_too_long_quotes_githubs_error_message(script: Script) -> None:
    script.plan("create", Plan(answer(*TOO_LONG)))
    with pytest.raises(GitHubError, match=r"too long .*Body is too long \(maximum is 65536"):
        post(script)


def test_any_422_keeps_githubs_errors_messages(script: Script) -> None:
    data = {"message": "Validation Failed", "errors": [{"code": "custom", "message": "nope"}]}
    script.plan("create", Plan(answer(422, data)))
    with pytest.raises(GitHubError, match=r"HTTP 422 Validation Failed: nope"):
        post(script)


def test_an_expired_token_is_said_so(script: Script) -> None:
    script.state.append(Found(1, None, BODY, BOT))  # so that GET /user is asked
    script.login_answer = answer(401, {"message": "Bad credentials"})
    with pytest.raises(GitHubError) as caught:
        post(script, token_source="--github-token")
    assert caught.value.kind == "bad-token"
    assert "rejected the token from --github-token (HTTP 401 Bad credentials" in str(caught.value)
    assert "invalid, expired or revoked" in str(caught.value)


@pytest.mark.parametrize(
    ("message", "advice"),
    [
        ("Resource not accessible by integration", "permissions: pull-requests: write"),
        ("Resource not accessible by personal access token", "grant it 'Pull requests: write'"),
        (
            "Resource protected by organization SAML enforcement. You must grant your Personal "
            "Access token access to this organization.",
            "SAML single sign-on",
        ),
    ],
)
def test_a_token_that_may_not_write_is_a_read_only_outcome_with_advice(
    script: Script, message: str, advice: str
) -> None:
    headers = {"X-Accepted-GitHub-Permissions": "issues=write; pull_requests=write"}
    script.plan("create", Plan(answer(403, {"message": message}, headers)))
    outcome = post(script)
    assert outcome.action == "read-only" and outcome.url is None
    assert outcome.detail.startswith("HTTP 403 Resource")
    assert advice in outcome.advice


def test_a_pull_request_that_is_not_there(script: Script) -> None:
    script.plan("list", Plan(answer(404, {"message": "Not Found"})))
    with pytest.raises(GitHubError) as caught:
        post(script)
    assert caught.value.kind == "not-found"
    assert "no pull request acme/models#7 that this token can see" in str(caught.value)


def test_the_user_endpoint_refused_means_the_actions_bot(script: Script) -> None:
    script.state.append(Found(1, None, f"{MARKER}\nold", BOT))
    script.login_answer = answer(403, {"message": "Resource not accessible by integration"})
    assert post(script).action == "updated"


# ---------------------------------------------------------------------------------------------
# classify and scrub, directly


@pytest.mark.parametrize(
    ("status", "data", "headers", "kind"),
    [
        (401, {"message": "Bad credentials"}, {}, "bad-token"),
        (403, {"message": "Resource not accessible by integration"}, {}, "no-permission"),
        (403, {"message": SECONDARY}, {}, "secondary-rate-limit"),
        (429, {"message": SECONDARY}, {}, "secondary-rate-limit"),
        (
            403,
            {"message": "You have triggered an abuse detection mechanism."},
            {},
            "secondary-rate-limit",
        ),
        (403, {"message": "API rate limit exceeded for user ID 1."}, {}, "rate-limit"),
        (
            403,
            {"message": "x"},
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"},
            "rate-limit",
        ),
        (403, {"message": "x"}, {"Retry-After": "5"}, "rate-limit"),
        (429, None, {}, "rate-limit"),
        (*LOCKED_403, {}, "locked"),
        (*LOCKED_422, {}, "locked"),
        (*TOO_LONG, {}, "too-long"),
        (404, {"message": "Not Found"}, {}, "not-found"),
        (502, "<html>Bad gateway</html>", {}, "server"),
        (422, {"message": "Validation Failed"}, {}, "invalid"),
        (410, {"message": "Issues are disabled for this repo"}, {}, "other"),
    ],
)
def test_classify(status: int, data: Any, headers: dict[str, str], kind: str) -> None:
    assert classify(status, data, headers, now=NOW).kind == kind


def test_classify_shows_githubs_words_escaped_on_one_line() -> None:
    said = classify(422, {"message": "a\nb", "errors": ["c\r::add-mask::x"]}, {}, now=NOW).said
    assert said == "a\\nb: c\\r::add-mask::x"


@pytest.mark.parametrize(
    "echo",
    [
        f"Authorization: token {TOKEN}",
        f'{{"authorization": "Bearer {TOKEN}"}}',
        f"request had {TOKEN} in it",
        "AUTHORIZATION=basic dXNlcjpzM2NyM3Q=",
        "leaked ghp_" + "a1B2" * 9,
        "leaked github_pat_" + "x_Y" * 20,
    ],
)
def test_credentials_echoed_by_github_are_redacted(echo: str) -> None:
    said = classify(422, {"message": f"bad request: {echo}"}, {}, now=NOW, secrets=[TOKEN]).said
    assert TOKEN not in said and "dXNlcjpzM2NyM3Q" not in said and "a1B2a1B2" not in said
    assert "x_Yx_Y" not in said
    assert "<redacted>" in said


def test_scrub_leaves_ordinary_words_alone() -> None:
    text = "acc\n::add-mask::x ##[add-mask]x EOF the token was fine"
    assert scrub(text, [TOKEN]) == text


def test_a_refused_write_never_shows_the_token(script: Script) -> None:
    script.plan("create", Plan(answer(422, {"message": f"Authorization: token {TOKEN}"})))
    with pytest.raises(GitHubError) as caught:
        post(script)
    assert TOKEN not in str(caught.value) and "Authorization: <redacted>" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# The event payload


def test_an_event_nested_100000_deep_is_bad_input(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError) as caught:
        pull_request_from_event(event)
    assert exit_code_of(caught.value) == 2
    assert str(event) in str(caught.value) and "nests deeper than 64 levels" in str(caught.value)


def test_an_event_65_objects_deep_is_refused_64_accepted(tmp_path: Path) -> None:
    def nested(depth: int) -> str:
        return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)

    ok = tmp_path / "ok.json"
    ok.write_text(nested(64))
    assert pull_request_from_event(ok) == (None, None, False)
    deep = tmp_path / "deep.json"
    deep.write_text(nested(65))
    with pytest.raises(InputError, match="nests deeper"):
        pull_request_from_event(deep)


def test_brackets_inside_strings_are_not_nesting(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    payload = {
        "pull_request": {"number": 7, "title": "[" * 10_000},
        "repository": {"full_name": "acme/models"},
    }
    event.write_text(json.dumps(payload))
    assert pull_request_from_event(event) == ("acme/models", 7, False)


def test_an_oversized_event_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gh, "MAX_EVENT_BYTES", 1024)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "body": "x" * 4096}}))
    with pytest.raises(InputError, match=r"event.json: .*over 1,024 bytes"):
        pull_request_from_event(event)

"""Bad-input corpus, GitHub part: event payloads past their bounds, GitHub's answers and waits.

The same contract as ``test_bad_input_corpus.py`` (its ``Case``, ``check`` and ``World``): the
exact exit code, one last ``error:`` line saying what, where and what to do, never a traceback.
The sticky comment goes to the fake GitHub API (every request and answer checked against
GitHub's OpenAPI description), made to misbehave with its faults: locked conversations, 401,
403, 404 and 422 answers, primary and secondary rate limits with ``Retry-After`` or
``x-ratelimit-reset``, answers slower than ``--timeout``. A wait GitHub asks for that does not
fit in the budget ends the run at once, so no case here waits for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.integration.test_bad_input_corpus import (
    Call,
    Case,
    World,
    after,
    case,
    check,
)
from tests.support.fake_github import FakeGitHub

pytestmark = pytest.mark.integration

OWNER, REPO, PR = "acme", "models", 7
COMMENTS = rf"^/repos/{OWNER}/{REPO}/issues/{PR}/comments$"
USER = r"^/user$"
EDIT = r"^/repos/[^/]+/[^/]+/issues/comments/\d+$"
MARKER = "<!-- ci-modelver:report name=demo -->"
EVENT = {
    "pull_request": {
        "number": PR,
        "head": {"repo": {"full_name": f"{OWNER}/{REPO}", "fork": False}},
        "base": {"repo": {"full_name": f"{OWNER}/{REPO}", "fork": False}},
    },
    "repository": {"full_name": f"{OWNER}/{REPO}"},
}
DEEP = 100_000
TOO_LONG = "Body is too long (maximum is 65536 characters)"


@dataclass
class GitHubWorld(World):
    """A corpus world with the fake GitHub API holding pull request acme/models#7."""

    fake: FakeGitHub | None = None

    @property
    def gh(self) -> FakeGitHub:
        assert self.fake is not None
        return self.fake

    def github_env(self, event: Any = None, **env: str) -> dict[str, str]:
        return {
            "GITHUB_TOKEN": self.gh.INSTALLATION_TOKEN,
            "GITHUB_API_URL": self.gh.base_url,
            "GITHUB_REPOSITORY": f"{OWNER}/{REPO}",
            "GITHUB_EVENT_PATH": self.event(EVENT if event is None else event),
            **env,
        }

    def pr(self, *extra: str, event: Any = None, **env: str) -> Call:
        """``compare --comment`` of a first version on the pull request, to the fake."""
        return Call(
            (
                "compare",
                str(self.model()),
                "--repository",
                self.empty,
                "--comment",
                "--comment-file",
                str(self.tmp / "c.md"),
                *extra,
            ),
            self.github_env(event, **env),
        )

    def later(self, *extra: str, **env: str) -> Call:
        """``comment --from-file`` of a saved report (as a workflow_run job does)."""
        report = self.write("saved.md", f"{MARKER}\n## report\n")
        return Call(
            ("comment", "--from-file", str(report), "--pr", str(PR), *extra),
            self.github_env(**env),
        )


def nested(depth: int, inner: Any = None, opener: str = "[", closer: str = "]") -> bytes:
    """A JSON text nested ``depth`` containers deep."""
    core = json.dumps(inner)
    if opener == "{":
        return ('{"a": ' * depth + core + "}" * depth).encode()
    return (opener * depth + core + closer * depth).encode()


def errors(message: str) -> list[dict[str, str]]:
    return [{"resource": "IssueComment", "code": "custom", "field": "body", "message": message}]


# ---------------------------------------------------------------------------------------------
# 1. Event payloads past their bounds (GITHUB_EVENT_PATH is read before GitHub is asked)

EVENTS = [
    case(
        "event-arrays-nested-100000-deep",
        2,
        "not a readable JSON event payload (it nests deeper than 64 levels)",
        lambda w: w.pr(event=nested(DEEP)),
    ),
    case(
        "event-objects-nested-100000-deep",
        2,
        "nests deeper than 64 levels",
        lambda w: w.pr(event=nested(DEEP, opener="{")),
    ),
    case(
        "event-pull-request-nested-65-deep",
        2,
        "nests deeper than 64 levels",
        lambda w: w.pr(
            event=b'{"pull_request": {"number": 7, "head": '
            + nested(63, opener="{")
            + b"}, "
            + b'"repository": {"full_name": "acme/models"}}'
        ),
    ),
    case(
        "event-names-the-file",
        2,
        "GITHUB_EVENT_PATH ",
        lambda w: w.pr(event=nested(DEEP)),
    ),
    case(
        "event-over-25-mib",
        2,
        "(it is over 26,214,400 bytes, more than GitHub sends)",
        lambda w: w.pr(
            event=b'{"pull_request": {"number": 7, "body": "' + b"x" * (25 << 20) + b'"}}'
        ),
    ),
    case(
        "event-number-with-5000-digits",
        2,
        "not a readable JSON event payload (it is not valid JSON)",
        lambda w: w.pr(event=b'{"pull_request": {"number": 1' + b"0" * 5000 + b"}}"),
    ),
    case(
        "event-nan",
        2,
        "not a readable JSON event payload (it is not standard JSON ('NaN'",
        lambda w: w.pr(event=b'{"pull_request": {"number": NaN}}'),
    ),
    case(
        "event-number-a-float",
        2,
        "no pull request number",
        lambda w: w.pr(event={"pull_request": {"number": 7.0}}),
    ),
    case(
        "event-number-negative",
        2,
        "no pull request number",
        lambda w: w.pr(event={"pull_request": {"number": -7}}),
    ),
    case(
        "event-brackets-inside-strings-are-not-nesting",
        0,
        "demo 1.0.0: first version",
        lambda w: w.pr(event={**EVENT, "title": "[{" * DEEP}),
    ),
    case(
        "github-api-url-not-http",
        2,
        "GITHUB_API_URL 'ftp://github.example/api' is not an http(s) URL",
        lambda w: w.pr(GITHUB_API_URL="ftp://github.example/api"),
    ),
    case(
        "github-api-url-without-host",
        2,
        "GITHUB_API_URL 'https://' is not an http(s) URL",
        lambda w: w.pr(GITHUB_API_URL="https://"),
    ),
]


# ---------------------------------------------------------------------------------------------
# 2. GitHub's answers: each its own one-line message

ANSWERS = [
    case(
        "github-locked-403",
        3,
        "cannot comment on acme/models#7: the conversation is locked (HTTP 403 Unable to create "
        "comment because issue is locked.",
        lambda w: after(w.gh.lock(OWNER, REPO, PR), w.pr()),
    ),
    case(
        "github-locked-422",
        3,
        "the conversation is locked (HTTP 422 Validation Failed: Unable to create comment",
        lambda w: after(w.gh.lock(OWNER, REPO, PR, status=422), w.pr()),
    ),
    case(
        "github-locked-on-edit",
        3,
        "the conversation is locked",
        lambda w: after(
            (
                w.gh.add_comment(OWNER, REPO, PR, f"{MARKER}\nold", "github-actions[bot]", "Bot"),
                w.gh.lock(OWNER, REPO, PR),
            ),
            w.pr(),
        ),
    ),
    case(
        "github-locked-comment-from-file",
        3,
        "the conversation is locked",
        lambda w: after(w.gh.lock(OWNER, REPO, PR), w.later()),
    ),
    case(
        "github-body-too-long",
        3,
        f"refused the comment on acme/models#7 as too long (HTTP 422 Validation Failed: {TOO_LONG}",
        lambda w: after(
            w.gh.answer_with("POST", COMMENTS, 422, "Validation Failed", errors=errors(TOO_LONG)),
            w.pr(),
        ),
    ),
    case(
        "github-422-keeps-errors-message",
        3,
        "HTTP 422 Validation Failed: body is spam; body is empty",
        lambda w: after(
            w.gh.answer_with(
                "POST",
                COMMENTS,
                422,
                "Validation Failed",
                errors=[*errors("body is spam"), *errors("body is empty")],
            ),
            w.pr(),
        ),
    ),
    case(
        "github-422-error-without-message",
        3,
        "HTTP 422 Validation Failed: IssueComment body missing_field",
        lambda w: after(
            w.gh.answer_with(
                "POST",
                COMMENTS,
                422,
                "Validation Failed",
                errors=[{"resource": "IssueComment", "field": "body", "code": "missing_field"}],
            ),
            w.pr(),
        ),
    ),
    case(
        "github-401-unknown-token",
        3,
        "GitHub rejected the token from GITHUB_TOKEN (HTTP 401 Bad credentials",
        lambda w: w.pr(GITHUB_TOKEN="ghp_expired_or_revoked"),
    ),
    case(
        "github-401-on-the-user-endpoint",
        3,
        "it is invalid, expired or revoked",
        lambda w: after(
            (
                w.gh.add_comment(OWNER, REPO, PR, f"{MARKER}\nold", "someone"),
                w.gh.answer_with("GET", USER, 401, "Bad credentials"),
            ),
            w.pr(),
        ),
    ),
    case(
        "github-401-token-from-the-flag",
        3,
        "rejected the token from --github-token",
        lambda w: w.pr("--github-token", "ghp_expired_or_revoked"),
    ),
    case(
        "github-404-no-such-pull-request",
        3,
        "GitHub has no pull request acme/models#99 that this token can see (HTTP 404 Not Found",
        lambda w: w.pr("--pr", "99"),
    ),
    case(
        "github-404-no-such-repository",
        3,
        "GitHub has no pull request acme/elsewhere#7",
        lambda w: w.pr(GITHUB_REPOSITORY="acme/elsewhere"),
    ),
    case(
        "github-403-reading-the-comments",
        3,
        "GitHub refused GET ",
        lambda w: after(
            w.gh.answer_with("GET", COMMENTS, 403, "Resource not accessible by integration"),
            w.pr(),
        ),
    ),
    case(
        "github-403-token-may-not-write-warns",
        0,
        "demo 1.0.0: first version",
        lambda w: after(
            w.gh.answer_with(
                "POST", COMMENTS, 403, "Resource not accessible by personal access token"
            ),
            w.pr(),
        ),
    ),
    case(
        "github-error-body-echoes-the-authorization-header",
        3,
        "bad request: Authorization: <redacted> was refused",
        lambda w: after(
            w.gh.answer_with(
                "POST",
                COMMENTS,
                422,
                f"bad request: Authorization: token {w.gh.INSTALLATION_TOKEN} was refused",
            ),
            w.pr(),
        ),
    ),
    case(
        "github-error-body-echoes-the-token",
        3,
        "HTTP 422 echo <redacted> echo",
        lambda w: after(
            w.gh.answer_with("POST", COMMENTS, 422, f"echo {w.gh.INSTALLATION_TOKEN} echo"),
            w.pr(),
        ),
    ),
    case(
        "github-error-message-with-control-characters",
        3,
        "HTTP 422 line one\\nline two\\r::add-mask::x",
        lambda w: after(
            w.gh.answer_with("POST", COMMENTS, 422, "line one\nline two\r::add-mask::x"),
            w.pr(),
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# 3. Waits: a wait GitHub asks for fits in --timeout, or the run ends at once naming it

WAITS = [
    case(
        "github-secondary-rate-limit-retry-after-600",
        3,
        "GitHub's secondary rate limit (HTTP 403 You have exceeded a secondary rate limit",
        lambda w: after(
            w.gh.rate_limit("POST", COMMENTS, retry_after=600), w.pr("--timeout", "30")
        ),
    ),
    case(
        "github-retry-after-is-named",
        3,
        "GitHub asked to wait 600s (Retry-After: 600), more than the ",
        lambda w: after(
            w.gh.rate_limit("POST", COMMENTS, retry_after=600), w.pr("--timeout", "30")
        ),
    ),
    case(
        "github-retry-after-an-http-date",
        3,
        "(Retry-After: Fri, 01 Jan 2100 00:00:00 GMT)",
        lambda w: after(
            w.gh.rate_limit("GET", COMMENTS, retry_after="Fri, 01 Jan 2100 00:00:00 GMT"),
            w.pr("--timeout", "30"),
        ),
    ),
    case(
        "github-secondary-rate-limit-reset",
        3,
        "(x-ratelimit-reset ",
        lambda w: after(w.gh.rate_limit("POST", COMMENTS, reset_in=3600), w.pr("--timeout", "30")),
    ),
    case(
        "github-secondary-rate-limit-429-without-a-time",
        3,
        "GitHub asked to wait 60s (at least a minute for a secondary rate limit)",
        lambda w: after(w.gh.rate_limit("POST", COMMENTS, status=429), w.pr("--timeout", "30")),
    ),
    case(
        "github-secondary-rate-limit-garbage-retry-after",
        3,
        "at least a minute for a secondary rate limit",
        lambda w: after(
            w.gh.rate_limit("POST", COMMENTS, retry_after="soon"), w.pr("--timeout", "30")
        ),
    ),
    case(
        "github-primary-rate-limit",
        3,
        "GitHub's rate limit (HTTP 403 API rate limit exceeded",
        lambda w: after(w.gh.rate_limit("GET", COMMENTS, secondary=False), w.pr("--timeout", "30")),
    ),
    case(
        "github-rate-limit-on-the-user-endpoint",
        3,
        "GET http",
        lambda w: after(
            (
                w.gh.add_comment(OWNER, REPO, PR, f"{MARKER}\nold", "someone"),
                w.gh.rate_limit("GET", USER, retry_after=900),
            ),
            w.pr("--timeout", "30"),
        ),
    ),
    case(
        "github-rate-limit-on-the-edit",
        3,
        "PATCH http",
        lambda w: after(
            (
                w.gh.add_comment(OWNER, REPO, PR, f"{MARKER}\nold", "github-actions[bot]", "Bot"),
                w.gh.rate_limit("PATCH", EDIT, retry_after=900),
            ),
            w.pr("--timeout", "30"),
        ),
    ),
    case(
        "github-rate-limit-comment-from-file-names-modelver-timeout",
        3,
        "rerun later, or raise --timeout (env MODELVER_TIMEOUT) to wait longer",
        lambda w: after(
            w.gh.rate_limit("POST", COMMENTS, retry_after=600), w.later(MODELVER_TIMEOUT="20")
        ),
    ),
    case(
        "github-negative-retry-after-retries-at-once",
        0,
        "demo 1.0.0: first version",
        lambda w: after(w.gh.rate_limit("POST", COMMENTS, retry_after=-5), w.pr("--timeout", "30")),
    ),
    case(
        "github-answers-slower-than-the-timeout",
        3,
        "no answer in time; gave up after",
        lambda w: after(w.gh.stall("GET", COMMENTS, 120), w.pr("--timeout", "2")),
    ),
    case(
        "github-server-error-every-time",
        3,
        "HTTP 502 Server Error; gave up after",
        lambda w: after(
            w.gh.answer_with("GET", COMMENTS, 502, "Server Error", times=None),
            w.pr("--timeout", "2"),
        ),
    ),
    case(
        "github-server-error-on-every-post",
        3,
        "gave up",
        lambda w: after(
            w.gh.answer_with("POST", COMMENTS, 503, "Service Unavailable", times=None),
            w.pr("--timeout", "2"),
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# Running a case


@pytest.fixture
def gh_world(tmp_path: Path, template: Path, fake_github: FakeGitHub) -> Iterator[GitHubWorld]:
    fake_github.add_repo(OWNER, REPO)
    fake_github.add_pull_request(OWNER, REPO, PR)
    w = GitHubWorld(tmp_path, template, fake=fake_github)
    yield w
    w.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Unused by these cases (nothing is published); World wants one."""
    return tmp_path_factory.mktemp("template")


def run(world: GitHubWorld, case: Case) -> tuple[int, str, str]:
    invocation = case.make(world)
    result = run_cli(*invocation.args, env={**world.env, **invocation.env})
    check(result, case)
    # Whatever GitHub echoed, the token is never shown.
    assert world.gh.INSTALLATION_TOKEN not in result.out + result.err
    return result.code, result.out, result.err


@pytest.mark.parametrize("case", EVENTS)
def test_event_payload(gh_world: GitHubWorld, case: Case) -> None:
    run(gh_world, case)
    if case.code == 2:
        assert not gh_world.gh.requests, "the event is read before GitHub is asked"


@pytest.mark.parametrize("case", ANSWERS)
def test_github_answer(gh_world: GitHubWorld, case: Case) -> None:
    code, _, err = run(gh_world, case)
    if code == 3:
        assert "warning:" not in err
        reports = [gh_world.tmp / "c.md", gh_world.tmp / "saved.md"]
        assert any(p.read_text().startswith(MARKER) for p in reports if p.is_file())
        assert "; the report is kept in " in err


@pytest.mark.parametrize("case", WAITS)
def test_github_wait(gh_world: GitHubWorld, case: Case) -> None:
    code, _, _ = run(gh_world, case)
    limits = [f for f in gh_world.gh.faults if "rate limit" in str((f.body or {}).get("message"))]
    if code == 3 and limits:
        # A wait that does not fit is not waited for: the rate-limited request was the last.
        assert gh_world.gh.requests[-1].status in (403, 429)


def test_a_deep_event_ends_as_bad_input_naming_the_file(gh_world: GitHubWorld) -> None:
    invocation = gh_world.pr(event=nested(DEEP))
    result = run_cli(*invocation.args, env={**gh_world.env, **invocation.env})
    assert result.code == 2
    assert f"GITHUB_EVENT_PATH {gh_world.tmp / 'event.json'}: " in result.err
    assert result.err.count("\n") == 1 and "RecursionError" not in result.err


def test_brackets_inside_strings_still_comment(gh_world: GitHubWorld) -> None:
    invocation = gh_world.pr(event={**EVENT, "title": "[{" * DEEP})
    result = run_cli(*invocation.args, env={**gh_world.env, **invocation.env})
    assert result.code == 0, result.err
    [ours] = gh_world.gh.comments(OWNER, REPO, PR)
    assert ours.body.startswith(MARKER)


def test_a_token_that_may_not_write_warns_and_keeps_the_report(gh_world: GitHubWorld) -> None:
    gh_world.gh.answer_with(
        "POST", COMMENTS, 403, "Resource not accessible by personal access token"
    )
    invocation = gh_world.pr()
    result = run_cli(*invocation.args, env={**gh_world.env, **invocation.env})
    assert result.code == 0, result.err
    [warning] = [line for line in result.err.splitlines() if line.startswith("warning: ")]
    assert "HTTP 403 Resource not accessible by personal access token" in warning
    assert "grant it 'Pull requests: write'" in warning
    assert (gh_world.tmp / "c.md").read_text().startswith(MARKER)


def test_corpus_size() -> None:
    ids = [param.id for group in (EVENTS, ANSWERS, WAITS) for param in group]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(ids) >= 40

"""The sticky PR comment against a fake GitHub API checked with GitHub's OpenAPI description."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.fake_github import Comment, FakeGitHub
from tests.support.github_fixtures import WebhookFactory

pytestmark = pytest.mark.integration

OWNER, REPO, PR = "acme", "models", 7
MARKER = "<!-- ci-modelver:report name=demo -->"


def _setup(
    fake: FakeGitHub,
    webhook_payload: WebhookFactory,
    tmp_path: Path,
    *,
    fork: bool = False,
    token: str | None = None,
) -> dict[str, str]:
    fake.add_repo(OWNER, REPO)
    fake.add_pull_request(OWNER, REPO, PR, f"forker/{REPO}" if fork else None)
    event = webhook_payload(
        "pull_request",
        "opened",
        owner=OWNER,
        repo=REPO,
        number=PR,
        fork=fork,
        api_url=fake.base_url,
    )
    return base_env(
        tmp_path,
        GITHUB_ACTIONS="true",
        GITHUB_API_URL=fake.base_url,
        GITHUB_TOKEN=token or (fake.READONLY_TOKEN if fork else fake.INSTALLATION_TOKEN),
        GITHUB_OUTPUT=str(tmp_path / "output.txt"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        RUNNER_TEMP=str(tmp_path / "runner-temp"),
        **event.env(),
    )


def _compare(
    tmp_path: Path, env: dict[str, str], acc: float = 0.9, *extra: str
) -> tuple[int, str, str]:
    manifest = make_model(
        tmp_path / f"m-{acc}",
        name="demo",
        metrics={"validation": {"accuracy": acc}},
        gates={"accuracy": {"direction": "higher", "min": 0.5}},
    )
    result = run_cli(
        "compare",
        str(manifest),
        "--repository",
        f"oci:{tmp_path / 'store'}",
        "--comment",
        *extra,
        env=env,
    )
    return result.code, result.out, result.err


def _ours(fake: FakeGitHub, login: str = "github-actions[bot]") -> list[Comment]:
    return [
        c for c in fake.comments(OWNER, REPO, PR) if c.body.startswith(MARKER) and c.login == login
    ]


def test_first_run_creates_then_updates_in_place(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    code, _, err = _compare(tmp_path, env, 0.9)
    assert code == 0, err
    [first] = _ours(fake_github)
    assert "comment created: " in err
    outputs = (tmp_path / "output.txt").read_text()
    assert f"#issuecomment-{first.id}\n" in outputs
    code, _, err = _compare(tmp_path, env, 0.4)  # below the minimum: a failing gate
    assert code == 1
    [second] = _ours(fake_github)
    assert second.id == first.id
    assert "❌" in second.body and "below the minimum 0.5" in second.body
    assert "comment updated: " in err
    assert len(fake_github.comments(OWNER, REPO, PR)) == 1
    assert len(fake_github.requests_matching("POST", r"/comments$")) == 1


def test_our_comment_on_a_later_page_is_found(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    for i in range(150):
        fake_github.add_comment(OWNER, REPO, PR, f"filler {i}", "someone")
    assert _compare(tmp_path, env)[0] == 0  # ours is comment 151: page 2 at 100 per page
    assert _compare(tmp_path, env, 0.95)[0] == 0
    assert len(_ours(fake_github)) == 1
    assert len(fake_github.comments(OWNER, REPO, PR)) == 151
    pages = {
        r.query.get("page")
        for r in fake_github.requests
        if r.method == "GET" and r.path.endswith("/comments")
    }
    assert len(pages) > 1  # it walked past page 1


def test_human_comment_with_the_marker_is_never_edited(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    human_body = f"{MARKER}\nI pasted the marker on purpose"
    fake_github.add_comment(OWNER, REPO, PR, human_body, "mallory")
    assert _compare(tmp_path, env)[0] == 0
    comments = fake_github.comments(OWNER, REPO, PR)
    assert [c.body for c in comments if c.login == "mallory"] == [human_body]
    assert len(_ours(fake_github)) == 1
    assert not fake_github.requests_matching("PATCH", r"/comments/")


def test_fork_pr_read_only_token_does_not_fail(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path, fork=True)
    code, _, err = _compare(tmp_path, env)
    assert code == 0, err
    assert "warning: could not comment on acme/models#7" in err
    assert "comes from a fork" in err
    assert err.count("warning: could not comment") == 1
    assert fake_github.comments(OWNER, REPO, PR) == []
    comment_file = tmp_path / "runner-temp" / "ci-modelver-comment-demo.md"
    assert comment_file.read_text().startswith(MARKER)
    assert (tmp_path / "summary.md").read_text().startswith(MARKER)
    assert f"\n{comment_file}\n" in (tmp_path / "output.txt").read_text()
    # Later, a workflow_run job with a write token posts the saved report.
    later = {**env, "GITHUB_TOKEN": fake_github.INSTALLATION_TOKEN}
    posted = run_cli("comment", "--from-file", str(comment_file), "--pr", str(PR), env=later)
    assert posted.code == 0, posted.err
    assert [c.body for c in _ours(fake_github)] == [comment_file.read_text()]


def test_huge_report_stays_under_the_comment_limit(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    metrics = {
        f"set{s}": {f"metric_{i:04d}_" + "n" * 50: 0.9 for i in range(400)} for s in range(4)
    }
    manifest = make_model(tmp_path / "big", name="demo", metrics=metrics)
    result = run_cli(
        "compare", str(manifest), "--repository", f"oci:{tmp_path / 'store'}", "--comment", env=env
    )
    assert result.code == 0, result.err
    [ours] = _ours(fake_github)
    assert len(ours.body) <= 65_536
    assert not [r for r in fake_github.requests if r.status == 422]


def test_matrix_keys_get_separate_comments(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    assert _compare(tmp_path, env, 0.9, "--comment-key", "py311")[0] == 0
    assert _compare(tmp_path, env, 0.9, "--comment-key", "py312")[0] == 0
    assert _compare(tmp_path, env, 0.8, "--comment-key", "py311")[0] == 0
    bodies = [c.body.splitlines()[0] for c in fake_github.comments(OWNER, REPO, PR)]
    assert sorted(bodies) == [
        "<!-- ci-modelver:report name=demo key=py311 -->",
        "<!-- ci-modelver:report name=demo key=py312 -->",
    ]


def test_enterprise_server_base_url(
    fake_github_enterprise: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github_enterprise, webhook_payload, tmp_path)
    assert env["GITHUB_API_URL"].endswith("/api/v3")
    code, _, err = _compare(tmp_path, env)
    assert code == 0, err
    assert len(_ours(fake_github_enterprise)) == 1


def test_personal_token_identity_and_no_secret_leaks(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path, token=fake_github.PERSONAL_TOKEN)
    code, out, err = _compare(tmp_path, env)
    assert code == 0, err
    users = {c.login for c in fake_github.comments(OWNER, REPO, PR)}
    assert users == {"octocat"}
    for text in (
        out,
        err,
        *(
            p.read_text(errors="replace")
            for p in tmp_path.rglob("*")
            if p.is_file() and p.suffix in (".md", ".txt", ".json")
        ),
    ):
        assert fake_github.PERSONAL_TOKEN not in text


def test_bad_token_is_exit_3_without_the_token(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path, token="ghp_not_a_real_token_123")
    code, out, err = _compare(tmp_path, env)
    assert code == 3
    assert "ghp_not_a_real_token_123" not in out + err
    assert err.count("\n") == 1 and "401" in err
    assert "GitHub rejected the token from GITHUB_TOKEN (HTTP 401 Bad credentials" in err
    assert "invalid, expired or revoked" in err


def test_missing_pr_number_is_a_usage_error(fake_github: FakeGitHub, tmp_path: Path) -> None:
    env = base_env(
        tmp_path,
        GITHUB_TOKEN=fake_github.INSTALLATION_TOKEN,
        GITHUB_API_URL=fake_github.base_url,
        GITHUB_REPOSITORY="acme/models",
        RUNNER_TEMP=str(tmp_path),
    )
    manifest = make_model(tmp_path / "m", name="demo")
    result = run_cli(
        "compare", str(manifest), "--repository", f"oci:{tmp_path / 'store'}", "--comment", env=env
    )
    assert result.code == 2
    assert "--pr N" in result.err
    assert (tmp_path / "ci-modelver-comment-demo.md").is_file()  # the report is kept for later


# ---------------------------------------------------------------------------------------------
# GitHub answers and waits: the fake's faults (every wait bounded by --timeout)

COMMENTS = rf"^/repos/{OWNER}/{REPO}/issues/{PR}/comments$"


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    return errors[0]


def _report_kept(tmp_path: Path) -> None:
    comment_file = tmp_path / "runner-temp" / "ci-modelver-comment-demo.md"
    assert comment_file.read_text().startswith(MARKER)


def test_a_post_applied_whose_answer_is_lost_leaves_one_comment(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.lose_answer("POST", COMMENTS)  # created, then the connection closes unanswered
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "20")
    assert code == 0, err
    assert len(fake_github.requests_matching("POST", COMMENTS)) == 1
    [ours] = _ours(fake_github)
    assert f"#issuecomment-{ours.id}" in err
    assert len(fake_github.comments(OWNER, REPO, PR)) == 1


def test_a_post_answered_after_the_client_timeout_leaves_one_comment(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.lose_answer("POST", COMMENTS, after=60)  # far past the 2 s request timeout
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "8")
    assert code == 0, err
    assert len(fake_github.requests_matching("POST", COMMENTS)) == 1
    assert len(_ours(fake_github)) == 1 and len(fake_github.comments(OWNER, REPO, PR)) == 1


def test_a_post_lost_before_it_was_applied_is_sent_again(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.drop_request("POST", COMMENTS)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "20")
    assert code == 0, err
    assert len(fake_github.dropped) == 1
    assert len(fake_github.requests_matching("POST", COMMENTS)) == 1  # the second one
    assert len(_ours(fake_github)) == 1


def test_an_edit_whose_answer_is_lost_is_read_back(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    assert _compare(tmp_path, env, 0.9)[0] == 0
    fake_github.lose_answer("PATCH", r"/issues/comments/\d+$")
    code, _, err = _compare(tmp_path, env, 0.95, "--timeout", "20")
    assert code == 0, err
    assert len(fake_github.requests_matching("PATCH", "")) == 1
    [ours] = _ours(fake_github)
    assert "0.95" in ours.body


def test_answers_slower_than_the_timeout_give_up_within_it(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.stall("GET", COMMENTS, 60)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "3")
    assert code == 3
    line = _one_error_line(err)
    assert "no answer in time; gave up after" in line and "3s budget" in line
    assert "raise --timeout (env MODELVER_TIMEOUT) to wait longer" in line
    assert fake_github.comments(OWNER, REPO, PR) == []
    _report_kept(tmp_path)


def test_an_answer_that_trickles_in_is_cut_at_the_budget(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    """Each read is quick (a byte every half second), the whole answer is not: the per-request
    timeout never fires, the budget does."""
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.add_comment(OWNER, REPO, PR, "filler", "someone")
    fake_github.drip("GET", COMMENTS, 0.5, until=40, times=None)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "4")
    assert code == 3
    assert "no answer in time; gave up after" in _one_error_line(err)
    assert len(fake_github.comments(OWNER, REPO, PR)) == 1  # nothing posted


def test_retry_after_longer_than_the_budget_gives_up_at_once(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.rate_limit("POST", COMMENTS, retry_after=600, times=None)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "30")
    assert code == 3
    line = _one_error_line(err)
    assert "secondary rate limit" in line
    assert "GitHub asked to wait 600s (Retry-After: 600)" in line and "30s budget" in line
    assert len(fake_github.requests_matching("POST", COMMENTS)) == 1  # no second try
    assert fake_github.comments(OWNER, REPO, PR) == []


def test_retry_after_within_the_budget_is_waited_for(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.rate_limit("POST", COMMENTS, retry_after=1)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "30")
    assert code == 0, err
    assert [r.status for r in fake_github.requests_matching("POST", COMMENTS)] == [403, 201]
    assert len(_ours(fake_github)) == 1


@pytest.mark.parametrize("status", [403, 429])
def test_a_spent_rate_limit_names_its_reset(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path, status: int
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.rate_limit("GET", COMMENTS, reset_in=3600, status=status)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "30")
    assert code == 3
    line = _one_error_line(err)
    assert "(x-ratelimit-reset " in line and "GitHub asked to wait 36" in line
    assert len(fake_github.requests_matching("GET", COMMENTS)) == 1


@pytest.mark.parametrize("status", [403, 422])
def test_a_locked_conversation_is_its_own_error(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path, status: int
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.lock(OWNER, REPO, PR, status=status)
    code, _, err = _compare(tmp_path, env)
    assert code == 3
    line = _one_error_line(err)
    assert "cannot comment on acme/models#7: the conversation is locked" in line
    assert f"HTTP {status} " in line and "Unable to create comment because issue is locked." in line
    assert "warning:" not in err and "cannot write comments" not in err
    assert "the report is kept in " in line
    _report_kept(tmp_path)


def test_a_422_keeps_githubs_errors_message(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    errors = [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "x is y"}]
    fake_github.answer_with("POST", COMMENTS, 422, "Validation Failed", errors=errors)
    code, _, err = _compare(tmp_path, env)
    assert code == 3
    assert "HTTP 422 Validation Failed: x is y" in _one_error_line(err)


def test_a_body_too_long_for_github_says_so(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    message = "Body is too long (maximum is 65536 characters)"
    errors = [{"resource": "IssueComment", "code": "custom", "field": "body", "message": message}]
    fake_github.answer_with("POST", COMMENTS, 422, "Validation Failed", errors=errors)
    code, _, err = _compare(tmp_path, env)
    assert code == 3
    line = _one_error_line(err)
    assert "refused the comment on acme/models#7 as too long" in line and message in line


def test_a_token_without_the_permission_warns_with_advice(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.answer_with(
        "POST",
        COMMENTS,
        403,
        "Resource not accessible by integration",
        headers={"X-Accepted-GitHub-Permissions": "issues=write; pull_requests=write"},
    )
    code, _, err = _compare(tmp_path, env)
    assert code == 0, err
    [warning] = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert "HTTP 403 Resource not accessible by integration" in warning
    assert "'permissions: pull-requests: write'" in warning
    assert "issues=write; pull_requests=write" in warning
    _report_kept(tmp_path)


def test_an_error_body_echoing_the_token_is_redacted(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    token = fake_github.INSTALLATION_TOKEN
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.answer_with("POST", COMMENTS, 422, f"bad header 'Authorization: token {token}'")
    code, out, err = _compare(tmp_path, env)
    assert code == 3
    assert "Authorization: <redacted>" in _one_error_line(err)
    for text in (out, err, *(p.read_text() for p in tmp_path.rglob("*") if p.is_file())):
        assert token not in text


def test_a_pull_request_that_does_not_exist(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    code, _, err = _compare(tmp_path, env, 0.9, "--pr", "99")
    assert code == 3
    assert "GitHub has no pull request acme/models#99 that this token can see" in (
        _one_error_line(err)
    )


def test_the_comment_command_obeys_modelver_timeout(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path, fork=True)
    assert _compare(tmp_path, env)[0] == 0  # read-only: the report is saved for later
    comment_file = tmp_path / "runner-temp" / "ci-modelver-comment-demo.md"
    fake_github.rate_limit("POST", COMMENTS, retry_after=300)
    later = {**env, "GITHUB_TOKEN": fake_github.INSTALLATION_TOKEN, "MODELVER_TIMEOUT": "10"}
    posted = run_cli("comment", "--from-file", str(comment_file), "--pr", str(PR), env=later)
    assert posted.code == 3
    line = _one_error_line(posted.err)
    assert "asked to wait 300s" in line and "10s budget" in line
    assert "raise --timeout (env MODELVER_TIMEOUT) to wait longer" in line
    assert fake_github.comments(OWNER, REPO, PR) == []


def test_faults_apply_under_the_enterprise_prefix(
    fake_github_enterprise: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github_enterprise, webhook_payload, tmp_path)
    fake_github_enterprise.lose_answer("POST", COMMENTS)
    code, _, err = _compare(tmp_path, env, 0.9, "--timeout", "20")
    assert code == 0, err
    assert len(fake_github_enterprise.requests_matching("POST", COMMENTS)) == 1
    assert len(_ours(fake_github_enterprise)) == 1


def test_debug_shows_each_github_call_without_the_token(
    fake_github: FakeGitHub, webhook_payload: WebhookFactory, tmp_path: Path
) -> None:
    env = _setup(fake_github, webhook_payload, tmp_path)
    fake_github.lose_answer("POST", COMMENTS)
    code, out, err = _compare(tmp_path, env, 0.9, "--debug", "--timeout", "20")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("debug: GitHub ")]
    assert [line.split(" -> ")[0].split(" ")[2] for line in lines] == ["GET", "POST", "GET", "GET"]
    assert " -> ConnectionError in " in lines[1] and " -> ok in " in lines[2]
    assert fake_github.INSTALLATION_TOKEN not in out + err

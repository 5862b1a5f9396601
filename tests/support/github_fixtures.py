"""pytest fixtures for code that talks to GitHub: a fake REST API and real webhook payloads.

Registered for the whole suite by ``pytest_plugins`` in tests/conftest.py.

- ``fake_github``: a started :class:`FakeGitHub` (api.github.com layout); teardown fails the test
  if any request or response broke GitHub's OpenAPI description.
- ``fake_github_enterprise``: the same with the GitHub Enterprise Server prefix ``/api/v3``.
- ``webhook_payload``: a factory ``(name, action, **overrides) -> WebhookEvent`` that writes an
  example payload from ``@octokit/webhooks-examples`` to a file for GITHUB_EVENT_PATH.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.npm_packages import ensure_npm_packages
from tests.support.openapi import OpenAPIChecker, default_spec_path, load_document

WEBHOOK_EXAMPLES = Path("@octokit/webhooks-examples/api.github.com/index.json")
EXAMPLE_API_URL = "https://api.github.com"


def _missing(reason: str) -> None:
    """Fail under CI=true (the tests must run there), skip elsewhere."""
    message = f"GitHub API test data unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def node_modules_or_skip() -> Path:
    try:
        return ensure_npm_packages()
    except RuntimeError as exc:
        _missing(str(exc))
        raise  # unreachable: _missing raises


@pytest.fixture(scope="session")
def github_openapi_checker() -> OpenAPIChecker:
    """GitHub's OpenAPI description, loaded and converted once per session."""
    return OpenAPIChecker(load_document(default_spec_path(node_modules_or_skip())))


def _running_fake(checker: OpenAPIChecker, prefix: str) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(checker, prefix=prefix).start()
    try:
        yield fake
    finally:
        fake.stop()
    if fake.violations:
        pytest.fail(
            "FakeGitHub saw requests or responses that break GitHub's OpenAPI description "
            "(clear fake.violations in tests that provoke them on purpose):\n"
            + "\n".join(fake.violations),
            pytrace=False,
        )


@pytest.fixture
def fake_github(github_openapi_checker: OpenAPIChecker) -> Iterator[FakeGitHub]:
    """A fake api.github.com on http://127.0.0.1:PORT."""
    yield from _running_fake(github_openapi_checker, "")


@pytest.fixture
def fake_github_enterprise(github_openapi_checker: OpenAPIChecker) -> Iterator[FakeGitHub]:
    """A fake GitHub Enterprise Server: the API under http://127.0.0.1:PORT/api/v3."""
    yield from _running_fake(github_openapi_checker, "/api/v3")


# ---------------------------------------------------------------------------------------------
# Webhook payloads


@functools.lru_cache(maxsize=2)
def _examples(index_path: Path) -> dict[str, list[dict[str, Any]]]:
    events = json.loads(index_path.read_text("utf-8"))
    return {event["name"]: event["examples"] for event in events}


def webhook_examples(name: str, action: str | None = None) -> list[dict[str, Any]]:
    """The example payloads of event ``name`` (with ``action`` only, if given), as published."""
    examples = _examples(node_modules_or_skip() / WEBHOOK_EXAMPLES)
    if name not in examples:
        raise KeyError(
            f"no webhook examples for event {name!r}; known: {', '.join(sorted(examples))}"
        )
    found = [e for e in examples[name] if action is None or e.get("action") == action]
    if not found:
        actions = sorted({str(e.get("action")) for e in examples[name]})
        raise KeyError(f"no {name!r} example with action {action!r}; known: {', '.join(actions)}")
    return found


def _replace_strings(node: Any, change: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {key: _replace_strings(value, change) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_strings(value, change) for value in node]
    if isinstance(node, str):
        return change(node)
    return node


def _set_path(payload: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split("__")
    node: Any = payload
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[int(part)]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _fork_repository(
    base: dict[str, Any], fork_owner: str, fork_owner_user: dict[str, Any]
) -> dict[str, Any]:
    """The base repository as seen in ``fork_owner``'s fork: other owner, id and URLs, fork=true."""
    old_full = base["full_name"]
    new_full = f"{fork_owner}/{base['name']}"
    fork: dict[str, Any] = _replace_strings(base, lambda s: s.replace(old_full, new_full))
    fork.update(
        {
            "id": int(base["id"]) + 1,
            "node_id": f"{base['node_id']}F",
            "full_name": new_full,
            "owner": fork_owner_user,
            "fork": True,
        }
    )
    return fork


def build_webhook_payload(
    name: str,
    action: str,
    *,
    owner: str | None = None,
    repo: str | None = None,
    number: int | None = None,
    fork: bool = False,
    fork_owner: str = "forker",
    head_sha: str | None = None,
    api_url: str | None = None,
    index: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    """A real example payload of ``name``/``action``, rewritten to match a test's state.

    owner, repo: the base repository (every URL and name under it follows).
    number: the pull request or issue number (``number``, ``pull_request.number`` and URLs).
    fork: make the pull request come from ``fork_owner``'s fork: head.repo.full_name differs from
        base.repo.full_name and head.repo.fork is true; the author and sender are the fork owner.
    head_sha: pull_request.head.sha (and ``after`` for synchronize).
    api_url: put every https://api.github.com URL on this API root instead (e.g. fake.base_url).
    index: which example when the package has several for this action.
    overrides: other fields by path, ``__`` between keys: ``pull_request__title="Fix"``.
    """
    payload: dict[str, Any] = copy.deepcopy(webhook_examples(name, action)[index])
    payload = _move_repository_and_number(payload, owner, repo, number)
    pull = payload.get("pull_request")
    if isinstance(pull, dict):
        if fork:
            _make_fork(payload, pull, fork_owner)
        if head_sha is not None:
            pull["head"]["sha"] = head_sha
            if "after" in payload:
                payload["after"] = head_sha
    elif fork:
        raise ValueError(f"fork=True needs a pull_request payload, not {name!r}")
    if api_url is not None:
        root = api_url.rstrip("/")
        payload = _replace_strings(
            payload,
            lambda s: root + s[len(EXAMPLE_API_URL) :] if s.startswith(EXAMPLE_API_URL) else s,
        )
    for dotted, value in overrides.items():
        _set_path(payload, dotted, value)
    return payload


def _move_repository_and_number(
    payload: dict[str, Any], owner: str | None, repo: str | None, number: int | None
) -> dict[str, Any]:
    """The payload about owner/repo#number: names, logins, numbers and the URLs that hold them."""
    repository = payload.get("repository") or {}
    old_full = str(repository.get("full_name", ""))
    old_owner, _, old_repo = old_full.partition("/")
    new_owner, new_repo = owner or old_owner, repo or old_repo
    new_full = f"{new_owner}/{new_repo}"
    item = payload.get("pull_request") or payload.get("issue")
    old_number = item.get("number") if isinstance(item, dict) else payload.get("number")

    def rewrite(text: str) -> str:
        if old_full and new_full != old_full:
            text = re.sub(rf"(?<![\w.-]){re.escape(old_full)}(?![\w-])", new_full, text)
        if number is not None and old_number is not None:
            text = re.sub(
                rf"({re.escape(new_full)}/(?:pulls|issues|pull)/){old_number}(?![0-9])",
                rf"\g<1>{number}",
                text,
            )
        return text

    payload = _replace_strings(payload, rewrite)
    if new_full != old_full:
        payload = _rename_repository(payload, old_owner, new_owner, new_repo)
    if number is not None:
        if "number" in payload:
            payload["number"] = number
        for key in ("pull_request", "issue"):
            if isinstance(payload.get(key), dict):
                payload[key]["number"] = number
    return payload


def _rename_repository(
    payload: dict[str, Any], old_owner: str, new_owner: str, new_repo: str
) -> dict[str, Any]:
    """Base repository names, and every user object of the old owner (login, URLs, labels)."""
    new_full = f"{new_owner}/{new_repo}"

    def user_urls(text: str) -> str:
        return re.sub(rf"(?<=/){re.escape(old_owner)}(?=$|[/{{?#])", new_owner, text)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(value) for value in node]
        if not isinstance(node, dict):
            return node
        node = {key: walk(value) for key, value in node.items()}
        if node.get("login") == old_owner:
            node = _replace_strings(node, user_urls)
            node["login"] = new_owner
        if node.get("full_name") == new_full:
            node["name"] = new_repo
        if isinstance(node.get("label"), str) and node["label"].startswith(f"{old_owner}:"):
            node["label"] = f"{new_owner}:{node['label'].split(':', 1)[1]}"
        return node

    renamed: dict[str, Any] = walk(payload)
    return renamed


def _make_fork(payload: dict[str, Any], pull: dict[str, Any], fork_owner: str) -> None:
    base_repo = pull["base"]["repo"]
    if fork_owner == base_repo["owner"]["login"]:
        raise ValueError("fork_owner must differ from the base repository's owner")
    template = copy.deepcopy(pull["user"])
    old_login = template["login"]
    user = _replace_strings(template, lambda s: s.replace(old_login, fork_owner))
    user.update({"login": fork_owner, "id": int(template["id"]) + 1000, "type": "User"})
    user["node_id"] = f"{template['node_id']}F"
    head_repo = _fork_repository(base_repo, fork_owner, user)
    pull["head"]["repo"] = head_repo
    pull["head"]["user"] = user
    pull["head"]["label"] = f"{fork_owner}:{pull['head']['ref']}"
    pull["user"] = user
    pull["author_association"] = "FIRST_TIME_CONTRIBUTOR"
    pull["maintainer_can_modify"] = True
    payload["sender"] = copy.deepcopy(user)


@dataclass(frozen=True)
class WebhookEvent:
    """A payload written to ``path``, ready for GITHUB_EVENT_PATH."""

    name: str
    path: Path
    payload: dict[str, Any]

    def env(self) -> dict[str, str]:
        """GITHUB_EVENT_NAME, GITHUB_EVENT_PATH and GITHUB_REPOSITORY as Actions sets them."""
        env = {"GITHUB_EVENT_NAME": self.name, "GITHUB_EVENT_PATH": str(self.path)}
        repository = self.payload.get("repository")
        if isinstance(repository, dict) and "full_name" in repository:
            env["GITHUB_REPOSITORY"] = str(repository["full_name"])
        return env


WebhookFactory = Callable[..., WebhookEvent]


@pytest.fixture
def webhook_payload(tmp_path: Path) -> WebhookFactory:
    """``webhook_payload(name, action, **overrides) -> WebhookEvent``; see build_webhook_payload."""
    counter = iter(range(1, 1_000_000))

    def make(name: str, action: str, **overrides: Any) -> WebhookEvent:
        payload = build_webhook_payload(name, action, **overrides)
        path = tmp_path / f"event-{next(counter)}-{name}-{action}.json"
        path.write_text(json.dumps(payload, indent=2), "utf-8")
        return WebhookEvent(name, path, payload)

    return make

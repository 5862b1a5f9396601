"""Registry authentication: htpasswd (Basic) on the real registry, and a bearer-token front like GHCR."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.integration.conftest import require_binary
from tests.support.registry import Registry, start_registry, stop_registry
from tests.support.token_proxy import TokenProxy

pytestmark = pytest.mark.integration

USER, PASSWORD = "modeler", "s3cret-registry-pass"
# bcrypt of PASSWORD (cost 6), as docker-registry's htpasswd auth requires
BCRYPT = "$2b$06$MutIZW/lXf8S6riUz7ryg.3YeyXOxvTQH2Y6kUc09aRFoDfcVnYEa"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    binary = require_binary("docker-registry", "registry")
    work = tmp_path_factory.mktemp("basic-registry")
    (work / "htpasswd").write_text(f"{USER}:{BCRYPT}\n")
    reg = start_registry(
        work, binary, f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {work / 'htpasswd'}\n"
    )
    yield reg
    stop_registry(reg)


@pytest.fixture
def token_front(registry: Registry) -> Iterator[TokenProxy]:
    proxy = TokenProxy(registry.host, USER, PASSWORD).start()
    yield proxy
    proxy.stop()


def _publish(
    tmp_path: Path, repo: str, env: dict[str, str], name: str = "authed", *extra: str
) -> Run:
    manifest = make_model(tmp_path / name, name=name)
    args = ("publish", str(manifest), "--repository", repo, "--format", "json", "--timeout", "20")
    return run_cli(*args, *extra, env=env)


def _no_secret_anywhere(run: Run, folder: Path, secret: str) -> None:
    assert secret not in run.out and secret not in run.err
    for path in folder.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000 and "docker" not in path.parts:
            assert secret.encode() not in path.read_bytes(), path


def test_basic_auth_from_environment(basic_registry: Registry, tmp_path: Path) -> None:
    env = base_env(tmp_path, MODELVER_REGISTRY_USERNAME=USER, MODELVER_REGISTRY_PASSWORD=PASSWORD)
    ok = _publish(tmp_path, f"{basic_registry.host}/auth/basic", env)
    assert ok.code == 0, ok.err
    _no_secret_anywhere(ok, tmp_path, PASSWORD)
    wrong = {**env, "MODELVER_REGISTRY_PASSWORD": "not-the-password"}
    denied = _publish(tmp_path, f"{basic_registry.host}/auth/basic2", wrong, name="other")
    assert denied.code == 3
    assert denied.err.count("\n") == 1
    assert (
        "401" in denied.err
        and "tried: MODELVER_REGISTRY_USERNAME/MODELVER_REGISTRY_PASSWORD" in denied.err
    )
    assert "not-the-password" not in denied.err + denied.out
    anonymous = _publish(
        tmp_path, f"{basic_registry.host}/auth/basic3", base_env(tmp_path), name="anon"
    )
    assert anonymous.code == 3 and "tried: no credentials (anonymous)" in anonymous.err


def test_basic_auth_from_docker_config(basic_registry: Registry, tmp_path: Path) -> None:
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": auth}}})
    )
    env = base_env(tmp_path, DOCKER_CONFIG=str(config_dir))
    ok = _publish(tmp_path, f"{basic_registry.host}/auth/dockercfg", env)
    assert ok.code == 0, ok.err
    _no_secret_anywhere(ok, tmp_path, PASSWORD)
    bad = base64.b64encode(f"{USER}:wrong".encode()).decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": bad}}})
    )
    denied = _publish(tmp_path, f"{basic_registry.host}/auth/dockercfg2", env, name="other")
    assert denied.code == 3
    assert f"tried: docker config {config_dir / 'config.json'}" in denied.err


def test_bearer_token_flow_with_push_scope_and_refresh(
    token_front: TokenProxy, tmp_path: Path
) -> None:
    env = base_env(tmp_path, MODELVER_REGISTRY_USERNAME=USER, MODELVER_REGISTRY_PASSWORD=PASSWORD)
    repo = f"{token_front.host}/auth/bearer"
    ok = _publish(tmp_path, repo, env)
    assert ok.code == 0, ok.err
    scopes = [r["scope"] for r in token_front.token_requests]
    assert "repository:auth/bearer:pull,push" in scopes  # asked for before uploading
    assert all(r["authenticated"] == "True" for r in token_front.token_requests)
    _no_secret_anywhere(ok, tmp_path, PASSWORD)
    # tokens now expire every 4 requests in the middle of a publish: each 401 refreshes once
    # (one transfer at a time, so no request can meet two expiries in a row)
    token_front.expire_every = 4
    before, rejected = len(token_front.token_requests), token_front.rejected
    again = _publish(
        tmp_path, f"{token_front.host}/auth/bearer-expiring", env, "expiring", "--concurrency", "1"
    )
    assert again.code == 0, again.err
    assert token_front.rejected - rejected >= 2
    assert len(token_front.token_requests) - before >= 2
    token_front.expire_every = None
    # wrong password: the token endpoint refuses, exit 3 at once
    denied = _publish(
        tmp_path,
        f"{token_front.host}/auth/bearer2",
        {**env, "MODELVER_REGISTRY_PASSWORD": "nope"},
        name="other",
    )
    assert denied.code == 3
    assert "access denied" in denied.err and "nope" not in denied.err


def test_pull_anonymous_token_on_public_read(token_front: TokenProxy, tmp_path: Path) -> None:
    env = base_env(tmp_path, MODELVER_REGISTRY_USERNAME=USER, MODELVER_REGISTRY_PASSWORD=PASSWORD)
    assert _publish(tmp_path, f"{token_front.host}/auth/pub", env).code == 0
    anonymous = run_cli("show", f"{token_front.host}/auth/pub:1.0.0", env=base_env(tmp_path))
    assert anonymous.code == 3  # this front has no anonymous access
    assert anonymous.err.count("\n") == 1


def test_debug_http_log_redacts_credentials(token_front: TokenProxy, tmp_path: Path) -> None:
    env = base_env(tmp_path, MODELVER_REGISTRY_USERNAME=USER, MODELVER_REGISTRY_PASSWORD=PASSWORD)
    result = _publish(tmp_path, f"{token_front.host}/auth/debug", env, "debugged", "--debug")
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("debug: HTTP ")]
    assert any(" PUT " in line and "/manifests/1.0.0" in line for line in lines)
    assert any("[Authorization: Bearer <redacted>]" in line for line in lines)
    assert any("/token?" in line for line in lines)  # the token request is logged …
    assert any(
        "[Authorization: Basic <redacted>]" in line for line in lines
    )  # … without its credentials
    assert any("_state=REDACTED" in line for line in lines if "/blobs/uploads/" in line) or not any(
        "_state=" in line for line in lines
    )
    tokens = list(token_front.granted)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, *tokens):
        assert secret not in result.err and secret not in result.out

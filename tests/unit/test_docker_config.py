"""docker config.json credentials: inline auths, credential helpers (real scripts on PATH), errors."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from ci_modelver.adapters import docker_config
from ci_modelver.adapters.docker_config import DOCKER_HUB, DockerCredentials
from ci_modelver.adapters.http import _parse_challenge, find_credentials
from ci_modelver.errors import ExitCode, InputError, ModelverError, RemoteError

HOST = "reg.example:5000"
USER, SECRET = "modeler", "s3cret-from-the-config"
HELPER_SECRET = "s3cret-from-the-helper"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _env(tmp_path: Path, config: object, **extra: str) -> dict[str, str]:
    """A hermetic environment whose DOCKER_CONFIG holds ``config`` (a str is written as is)."""
    folder = tmp_path / "docker"
    folder.mkdir(exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / "config.json").write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return {
        "HOME": str(tmp_path / "home"),
        "DOCKER_CONFIG": str(folder),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        **extra,
    }


def _helper(tmp_path: Path, name: str, body: str) -> Path:
    """``docker-credential-<name>`` in tmp_path/bin: a shell script that has ``$server`` (its
    stdin) and records each request in tmp_path/<name>.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    log = tmp_path / f"{name}.log"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 9; }\n'
        "server=$(cat)\n"
        f'printf "%s\\n" "$server" >> "{log}"\n'
        f"{body}\n"
    )
    script.chmod(0o755)
    return log


def _answers(user: str, secret: str) -> str:
    return f"echo '{json.dumps({'ServerURL': 'x', 'Username': user, 'Secret': secret})}'"


NOT_FOUND = "echo 'credentials not found in native keychain'; exit 1"


def _config_file(env: dict[str, str]) -> str:
    return str(Path(env["DOCKER_CONFIG"]) / "config.json")


def _one_line_error(exc: ModelverError, *secrets: str) -> str:
    message = str(exc)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message
    return message


# --- where the file is ---------------------------------------------------------------------


def test_docker_config_names_the_folder_else_home(tmp_path: Path) -> None:
    assert docker_config.config_path({"DOCKER_CONFIG": "/x/y", "HOME": "/h"}) == Path(
        "/x/y/config.json"
    )
    assert docker_config.config_path({"HOME": "/h"}) == Path("/h/.docker/config.json")


def test_no_config_file_is_anonymous(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    assert docker_config.find(HOST, env) is None
    creds = find_credentials(HOST, env)
    assert creds.basic is None and creds.source == "no credentials (anonymous)"


def test_home_docker_config_is_read_without_docker_config_variable(tmp_path: Path) -> None:
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(
        json.dumps({"auths": {HOST: {"auth": _b64(f"{USER}:{SECRET}")}}})
    )
    creds = find_credentials(HOST, {"HOME": str(tmp_path)})
    assert creds.basic == _b64(f"{USER}:{SECRET}")
    assert creds.source == f"docker config {tmp_path / '.docker' / 'config.json'} ({HOST})"


def test_environment_credentials_win_and_the_config_is_not_read(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        "{not json",
        MODELVER_REGISTRY_USERNAME="ci",
        MODELVER_REGISTRY_PASSWORD="pw",
    )
    creds = find_credentials(HOST, env)
    assert creds.basic == _b64("ci:pw")
    assert creds.source == "MODELVER_REGISTRY_USERNAME/MODELVER_REGISTRY_PASSWORD"


# --- inline auths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [HOST, f"https://{HOST}", f"http://{HOST}", f"https://{HOST}/v1/", f"{HOST}/v2/"]
)
def test_inline_auth_matches_every_key_form(tmp_path: Path, key: str) -> None:
    env = _env(tmp_path, {"auths": {key: {"auth": _b64(f"{USER}:{SECRET}")}}})
    creds = find_credentials(HOST, env)
    assert creds.basic == _b64(f"{USER}:{SECRET}")
    assert creds.source == f"docker config {_config_file(env)} ({key})"
    assert SECRET not in creds.source


def test_inline_exact_key_wins_over_other_forms(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {
            "auths": {
                f"https://{HOST}/v1/": {"auth": _b64("old:one")},
                HOST: {"auth": _b64(f"{USER}:{SECRET}")},
            }
        },
    )
    assert find_credentials(HOST, env).basic == _b64(f"{USER}:{SECRET}")


def test_inline_username_and_password_fields(tmp_path: Path) -> None:
    env = _env(tmp_path, {"auths": {HOST: {"username": USER, "password": SECRET}}})
    found = docker_config.find(HOST, env)
    assert found == DockerCredentials(f"docker config {_config_file(env)} ({HOST})", USER, SECRET)


def test_password_may_contain_colons(tmp_path: Path) -> None:
    env = _env(tmp_path, {"auths": {HOST: {"auth": _b64(f"{USER}:a:b:c")}}})
    found = docker_config.find(HOST, env)
    assert found is not None and (found.username, found.password) == (USER, "a:b:c")


@pytest.mark.parametrize("key", [DOCKER_HUB, "index.docker.io", "docker.io", "https://docker.io"])
@pytest.mark.parametrize("host", ["docker.io", "registry-1.docker.io", "index.docker.io"])
def test_docker_hub_keys(tmp_path: Path, key: str, host: str) -> None:
    env = _env(tmp_path, {"auths": {key: {"auth": _b64(f"{USER}:{SECRET}")}}})
    assert find_credentials(host, env).basic == _b64(f"{USER}:{SECRET}")


@pytest.mark.parametrize(
    ("host", "key"),
    [("localhost:5000", "127.0.0.1:5000"), ("127.0.0.1:5000", "http://localhost:5000")],
)
def test_localhost_and_loopback_address_stand_for_each_other(
    tmp_path: Path, host: str, key: str
) -> None:
    env = _env(tmp_path, {"auths": {key: {"auth": _b64(f"{USER}:{SECRET}")}}})
    assert find_credentials(host, env).basic == _b64(f"{USER}:{SECRET}")


@pytest.mark.parametrize(
    "key", ["reg.example", "reg.example:5001", "reg.example:5000.evil", "evil/reg.example:5000"]
)
def test_other_registries_do_not_match(tmp_path: Path, key: str) -> None:
    env = _env(tmp_path, {"auths": {key: {"auth": _b64(f"{USER}:{SECRET}")}}})
    assert docker_config.find(HOST, env) is None
    assert find_credentials(HOST, env).basic is None


def test_empty_entry_is_skipped(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {"auths": {HOST: {}, f"https://{HOST}": {"auth": _b64(f"{USER}:{SECRET}")}}},
    )
    assert find_credentials(HOST, env).basic == _b64(f"{USER}:{SECRET}")


def test_identity_token_is_reported_not_sent(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {"auths": {HOST: {"auth": _b64("00000000-0000:"), "identitytoken": "refresh-me"}}},
    )
    found = docker_config.find(HOST, env)
    assert found is not None and found.token_only
    creds = find_credentials(HOST, env)
    assert creds.basic is None
    assert "identity token" in creds.source and _config_file(env) in creds.source
    assert "refresh-me" not in creds.source


def test_auth_that_is_not_base64_user_password_is_an_input_error(tmp_path: Path) -> None:
    for bad in ("%%%not-base64%%%", _b64("no-colon-" + SECRET)):
        env = _env(tmp_path, {"auths": {HOST: {"auth": bad}}})
        with pytest.raises(InputError) as caught:
            find_credentials(HOST, env)
        message = _one_line_error(caught.value, bad, SECRET)
        assert message.startswith(_config_file(env)) and "docker login" in message


# --- malformed files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"auths": []}', "'auths' entry"),
        ('{"auths": {"h": "x"}}', "'auths' entry"),
        ('{"auths": {"h": {"auth": 5}}}', "'auths' entry"),
        ('{"auths": {"h": {"password": ["x"]}}}', "'auths' entry"),
        ('{"credHelpers": {"h": 1}}', "'credHelpers' entry"),
        ('{"credHelpers": {"h": "../../tmp/evil"}}', "'credHelpers' entry"),
        ('{"credsStore": 3}', "'credsStore'"),
        ('{"credsStore": "a b"}', "'credsStore'"),
    ],
)
def test_malformed_config_is_one_line_input_error_naming_the_file(
    tmp_path: Path, text: str, says: str
) -> None:
    env = _env(tmp_path, text)
    with pytest.raises(InputError) as caught:
        find_credentials(HOST, env)
    assert caught.value.exit_code == ExitCode.INVALID_INPUT
    message = _one_line_error(caught.value)
    assert message.startswith(f"{_config_file(env)}: ") and says in message
    assert "fix or remove" in message


# --- credential helpers --------------------------------------------------------------------


def test_cred_helper_for_the_host(tmp_path: Path) -> None:
    log = _helper(tmp_path, "fake", _answers(USER, HELPER_SECRET))
    env = _env(tmp_path, {"credHelpers": {HOST: "fake"}})
    creds = find_credentials(HOST, env)
    assert creds.basic == _b64(f"{USER}:{HELPER_SECRET}")
    assert log.read_text() == f"{HOST}\n"  # the server on stdin, action "get"
    assert "docker-credential-fake" in creds.source and _config_file(env) in creds.source
    assert HELPER_SECRET not in creds.source


def test_cred_helper_comes_before_creds_store_and_inline_auths(tmp_path: Path) -> None:
    _helper(tmp_path, "host-helper", _answers("from-helper", HELPER_SECRET))
    store_log = _helper(tmp_path, "store", _answers("from-store", "x"))
    env = _env(
        tmp_path,
        {
            "credHelpers": {HOST: "host-helper"},
            "credsStore": "store",
            "auths": {HOST: {"auth": _b64("inline:x")}},
        },
    )
    assert find_credentials(HOST, env).basic == _b64(f"from-helper:{HELPER_SECRET}")
    assert not store_log.exists()


def test_creds_store_comes_before_inline_auths(tmp_path: Path) -> None:
    _helper(tmp_path, "store", _answers("from-store", HELPER_SECRET))
    env = _env(
        tmp_path,
        {"credsStore": "store", "auths": {HOST: {"auth": _b64("inline:x")}}},
    )
    creds = find_credentials(HOST, env)
    assert creds.basic == _b64(f"from-store:{HELPER_SECRET}")
    assert "credsStore" in creds.source


def test_cred_helpers_of_other_hosts_are_not_asked(tmp_path: Path) -> None:
    log = _helper(tmp_path, "gcr", _answers(USER, HELPER_SECRET))
    env = _env(tmp_path, {"credHelpers": {"gcr.io": "gcr"}})
    assert docker_config.find(HOST, env) is None
    assert not log.exists()


def test_creds_store_is_asked_for_docker_hub_by_its_index_url(tmp_path: Path) -> None:
    log = _helper(tmp_path, "store", _answers(USER, HELPER_SECRET))
    env = _env(tmp_path, {"credsStore": "store"})
    assert find_credentials("docker.io", env).basic == _b64(f"{USER}:{HELPER_SECRET}")
    assert log.read_text() == f"{DOCKER_HUB}\n"


def test_helper_not_found_falls_through_to_inline_auths(tmp_path: Path) -> None:
    helper_log = _helper(tmp_path, "host-helper", NOT_FOUND)
    store_log = _helper(tmp_path, "store", NOT_FOUND)
    env = _env(
        tmp_path,
        {
            "credHelpers": {HOST: "host-helper"},
            "credsStore": "store",
            "auths": {HOST: {"auth": _b64(f"{USER}:{SECRET}")}},
        },
    )
    creds = find_credentials(HOST, env)
    assert creds.basic == _b64(f"{USER}:{SECRET}")
    assert creds.source == f"docker config {_config_file(env)} ({HOST})"
    assert helper_log.read_text() == store_log.read_text() == f"{HOST}\n"


def test_helper_not_found_and_nothing_inline_is_anonymous(tmp_path: Path) -> None:
    _helper(tmp_path, "store", NOT_FOUND)
    env = _env(tmp_path, {"credsStore": "store", "auths": {HOST: {}}})
    assert find_credentials(HOST, env).source == "no credentials (anonymous)"


def test_helper_not_found_on_stderr_is_also_none(tmp_path: Path) -> None:
    _helper(tmp_path, "store", "echo 'Credentials not found' >&2; exit 1")
    env = _env(tmp_path, {"credsStore": "store"})
    assert docker_config.find(HOST, env) is None


def test_helper_empty_secret_is_none(tmp_path: Path) -> None:
    _helper(tmp_path, "store", _answers("", ""))
    env = _env(tmp_path, {"credsStore": "store"})
    assert docker_config.find(HOST, env) is None


def test_helper_identity_token_is_reported_not_sent(tmp_path: Path) -> None:
    _helper(tmp_path, "store", _answers("<token>", HELPER_SECRET))
    env = _env(tmp_path, {"credsStore": "store"})
    creds = find_credentials(HOST, env)
    assert creds.basic is None and "identity token" in creds.source
    assert HELPER_SECRET not in creds.source


def test_helper_missing_from_path_is_input_error(tmp_path: Path) -> None:
    env = _env(tmp_path, {"credsStore": "desktop", "auths": {HOST: {"auth": _b64("u:p")}}})
    with pytest.raises(InputError) as caught:
        find_credentials(HOST, env)
    message = _one_line_error(caught.value)
    assert "docker-credential-desktop" in message and _config_file(env) in message
    assert "not on PATH" in message and "MODELVER_REGISTRY_USERNAME" in message


def test_helper_failure_is_one_line_remote_error(tmp_path: Path) -> None:
    _helper(tmp_path, "store", "echo 'error: keychain is locked'; echo 'more detail'; exit 2")
    env = _env(tmp_path, {"credsStore": "store"})
    with pytest.raises(RemoteError) as caught:
        find_credentials(HOST, env)
    assert caught.value.exit_code == ExitCode.REMOTE_FAILURE
    message = _one_line_error(caught.value)
    assert "docker-credential-store" in message and _config_file(env) in message
    assert "exit 2" in message and "keychain is locked" in message and HOST in message
    assert "more detail" not in message


def test_helper_failure_never_shows_a_credentials_answer(tmp_path: Path) -> None:
    _helper(tmp_path, "store", f"{_answers(USER, HELPER_SECRET)}; exit 1")
    env = _env(tmp_path, {"credsStore": "store"})
    with pytest.raises(RemoteError) as caught:
        find_credentials(HOST, env)
    _one_line_error(caught.value, HELPER_SECRET)


def test_helper_answer_that_is_not_json_is_not_echoed(tmp_path: Path) -> None:
    for body in (f"echo 'Username={USER} Secret={HELPER_SECRET}'", "echo '[1]'"):
        _helper(tmp_path, "store", body)
        env = _env(tmp_path, {"credsStore": "store"})
        with pytest.raises(RemoteError) as caught:
            find_credentials(HOST, env)
        message = _one_line_error(caught.value, HELPER_SECRET)
        assert "credentials JSON" in message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()  # a zombie is dead
    except OSError:
        return False


def test_helper_that_hangs_is_stopped_after_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    _helper(tmp_path, "slow", f'sleep 60 & echo $! > "{pid_file}"; wait')
    env = _env(tmp_path, {"credHelpers": {HOST: "slow"}})
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        docker_config.find(HOST, env, timeout=0.5)
    assert time.monotonic() - started < 10
    message = _one_line_error(caught.value)
    assert "docker-credential-slow" in message and "did not answer within 0.5s" in message
    # the helper's own children go too
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_helper_sees_the_environment_it_is_given(tmp_path: Path) -> None:
    _helper(tmp_path, "env", 'echo "{\\"Username\\": \\"$HELPER_USER\\", \\"Secret\\": \\"x\\"}"')
    env = _env(tmp_path, {"credsStore": "env"}, HELPER_USER="from-env")
    found = docker_config.find(HOST, env)
    assert found is not None and found.username == "from-env"


# --- WWW-Authenticate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"',
            (
                "bearer",
                {
                    "realm": "https://auth.example/token",
                    "service": "reg",
                    "scope": "repository:a/b:pull,push",
                },
            ),
        ),
        ('Basic realm="basic-realm"', ("basic", {"realm": "basic-realm"})),
        (
            'bearer Realm = "https://a/t" , service="s", Basic realm="other"',
            ("bearer", {"realm": "https://a/t", "service": "s"}),
        ),
        (
            'Bearer realm=https://a/t,error="say \\"no\\""',
            ("bearer", {"realm": "https://a/t", "error": 'say "no"'}),
        ),
        ('Bearer scope="",realm="r"', ("bearer", {"realm": "r"})),
        ("", ("", {})),
    ],
)
def test_parse_challenge(header: str, expected: tuple[str, dict[str, str]]) -> None:
    assert _parse_challenge(header) == expected

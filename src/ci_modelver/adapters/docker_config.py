"""Registry credentials from docker's config.json, resolved the way the docker CLI does.

The file is the one ``DOCKER_CONFIG`` names (``$DOCKER_CONFIG/config.json``), else
``~/.docker/config.json``. For a registry the sources are tried in docker's order, and the
first that has credentials wins:

1. ``credHelpers[<registry>]``: run ``docker-credential-<helper> get``;
2. ``credsStore``: the same with the default helper;
3. inline ``auths``: ``auth`` (base64 ``user:password``) or ``username``/``password``.

Where a helper answers "credentials not found", docker stops; this goes on to the next
source, which finds what an earlier ``docker login`` wrote inline before a helper was set.

Keys match as docker matches them: ``host``, ``https://host``, ``http://host`` and
``https://host/v1/`` all name ``host``; Docker Hub is ``https://index.docker.io/v1/``
(``docker.io``, ``index.docker.io`` and ``registry-1.docker.io`` too); ``localhost:PORT`` and
``127.0.0.1:PORT`` stand for each other.

Identity tokens (``identitytoken``, a helper's ``<token>`` user) need docker's OAuth2
refresh-token exchange, which ci-modelver does not do: such an entry is reported as found but
unusable, so an access-denied error names it instead of silently going anonymous.

A helper gets a bounded wait; "credentials not found" means none, any other failure is a
one-line error that never carries what the helper printed on stdout as JSON (the secret).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_modelver.core import json_bounds
from ci_modelver.core.text import one_line
from ci_modelver.errors import InputError, JSONRefused, RemoteError

DOCKER_HUB = "https://index.docker.io/v1/"
HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
HELPER_TIMEOUT = 30.0  # seconds; a helper may refresh a cloud token over the network
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a docker config.json; docker's own are a few KiB
MAX_HELPER_ANSWER_BYTES = 1024 * 1024  # a credential helper's JSON answer
TOKEN_USER = "<token>"  # docker-credential-helpers: the secret is an identity token
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_STRING_FIELDS = ("auth", "username", "password", "identitytoken", "registrytoken")


@dataclass(frozen=True)
class DockerCredentials:
    """What the config gave for a registry. ``source`` is safe to show; the rest is secret."""

    source: str
    username: str = ""
    password: str = ""
    token_only: bool = False  # an identity/registry token, which ci-modelver cannot use


def config_path(env: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``."""
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path(env.get("HOME") or str(Path.home())) / ".docker" / "config.json"


def load_config(path: Path) -> dict[str, Any]:
    """The parsed file, checked to have the shape docker writes (InputError otherwise)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the docker config ({exc.strerror or type(exc).__name__}); fix its permissions or remove it"
        ) from None
    config = json_bounds.load(
        data,
        source=f"{path}: the docker config",
        error=InputError,
        advice="fix or remove the docker config file",
        max_bytes=MAX_CONFIG_BYTES,
    )
    problem = _shape_problem(config)
    if problem or not isinstance(config, dict):
        raise InputError(f"{path}: the docker config {problem}; fix or remove it")
    return config


def _shape_problem(config: object) -> str | None:
    if not isinstance(config, dict):
        return "is not a JSON object"
    auths = config.get("auths", {})
    if not isinstance(auths, dict) or not all(
        isinstance(entry, dict) and all(isinstance(entry.get(f, ""), str) for f in _STRING_FIELDS)
        for entry in auths.values()
    ):
        return 'has an \'auths\' entry that is not {"host": {"auth": "…"}}'
    helpers = config.get("credHelpers", {})
    if not isinstance(helpers, dict) or not all(
        isinstance(name, str) and (not name or _HELPER_NAME.fullmatch(name))
        for name in helpers.values()
    ):
        return 'has a \'credHelpers\' entry that is not {"host": "helper-name"}'
    store = config.get("credsStore")
    if store is not None and not (
        isinstance(store, str) and (not store or _HELPER_NAME.fullmatch(store))
    ):
        return "has a 'credsStore' that is not a helper name"
    return None


def hostname(key: str) -> str:
    """docker's ConvertToHostname: ``https://host/v1/`` → ``host``."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            break
    return key.split("/", 1)[0]


def server_address(host: str) -> str:
    """The name docker stores a registry's credentials under (Docker Hub's index URL)."""
    return DOCKER_HUB if host in HUB_HOSTS else host


def registry_names(host: str) -> list[str]:
    """Every name a config key may give this registry, the canonical one first."""
    if host in HUB_HOSTS:
        return [DOCKER_HUB, *HUB_HOSTS]
    names = [host]
    for a, b in (("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")):
        if host == a or host.startswith(f"{a}:"):
            names.append(b + host[len(a) :])
    return names


def _matching_key(table: Mapping[str, object], names: list[str]) -> str | None:
    """The key naming this registry: an exact name first, then any key of the same host."""
    for name in names:
        if name in table:
            return name
    for key in table:
        if hostname(key) in names:
            return key
    return None


def find(
    host: str,
    env: Mapping[str, str],
    *,
    timeout: float = HELPER_TIMEOUT,
) -> DockerCredentials | None:
    """Credentials for ``host`` from the docker config, or None (no file, nothing for it)."""
    path = config_path(env)
    if not path.is_file():
        return None
    return resolve(host, load_config(path), path, env, timeout=timeout)


def resolve(
    host: str,
    config: Mapping[str, Any],
    path: Path,
    env: Mapping[str, str],
    *,
    timeout: float = HELPER_TIMEOUT,
) -> DockerCredentials | None:
    """Look ``host`` up in a loaded ``config`` (read from ``path``) in docker's order."""
    names = registry_names(host)
    helpers: Mapping[str, str] = config.get("credHelpers") or {}
    key = _matching_key({k: v for k, v in helpers.items() if v}, names)
    if key is not None:
        found = _ask_helper(helpers[key], key, f"credHelpers[{key!r}]", path, env, timeout)
        if found is not None:
            return found
    store = config.get("credsStore")
    if store:
        # docker asks the store only under the canonical name; the one alias (Docker Hub's
        # plain name, or localhost for 127.0.0.1) is asked when that has nothing.
        for server in (server_address(host), *names[1:2]):
            found = _ask_helper(store, server, "credsStore", path, env, timeout)
            if found is not None:
                return found
    auths: Mapping[str, Mapping[str, str]] = config.get("auths") or {}
    usable = {k: v for k, v in auths.items() if any(v.get(f) for f in _STRING_FIELDS)}
    key = _matching_key(usable, names)
    if key is None:
        return None
    return _inline(usable[key], key, path)


def _inline(entry: Mapping[str, str], key: str, path: Path) -> DockerCredentials:
    source = f"docker config {path} ({key})"
    username, password = entry.get("username", ""), entry.get("password", "")
    encoded = entry.get("auth", "")
    if encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InputError(
                f"{path}: the 'auth' of {key!r} is not base64 of user:password; run `docker login {key}` again or fix the entry"
            )
    if entry.get("identitytoken") or entry.get("registrytoken"):
        return DockerCredentials(source, token_only=True)
    return DockerCredentials(source, username, password)


def _ask_helper(
    name: str,
    server: str,
    field: str,
    path: Path,
    env: Mapping[str, str],
    timeout: float,
) -> DockerCredentials | None:
    """Run ``docker-credential-<name> get`` for ``server``; None when it has nothing for it."""
    program = f"docker-credential-{name}"
    where = f"{program} (named by {field} in {path})"
    executable = shutil.which(program, path=env.get("PATH", os.defpath))
    if executable is None:
        raise InputError(
            f"{where} is not on PATH; install it, remove the entry, or set MODELVER_REGISTRY_USERNAME and MODELVER_REGISTRY_PASSWORD"
        )
    code, out, err = _run(executable, server, env, timeout, where)
    text = (out.strip() or err.strip()).decode("utf-8", "replace")
    if code != 0:
        if b"credentials not found" in (out + err).lower():
            return None
        # Helpers report errors on stdout; anything shaped like the JSON answer is withheld.
        detail = "" if text.startswith("{") else one_line(text.splitlines()[0] if text else "", 200)
        raise RemoteError(
            f"{where} failed for {server} (exit {code}){': ' + detail if detail else ''}; check the helper (is it logged in?) or set MODELVER_REGISTRY_USERNAME and MODELVER_REGISTRY_PASSWORD"
        )
    try:
        answer = json_bounds.parse(out, max_bytes=MAX_HELPER_ANSWER_BYTES)
    except JSONRefused:  # the problem only: the answer itself may hold the secret
        answer = None
    user = answer.get("Username") if isinstance(answer, dict) else None
    secret = answer.get("Secret") if isinstance(answer, dict) else None
    if not isinstance(user, str) or not isinstance(secret, str):
        raise RemoteError(
            f"{where} answered for {server} with something other than its credentials JSON; check the helper"
        )
    if not secret:
        return None
    source = f"docker config {path} ({field} → {program} for {server})"
    if user == TOKEN_USER:
        return DockerCredentials(source, token_only=True)
    return DockerCredentials(source, user, secret)


def _run(
    executable: str, server: str, env: Mapping[str, str], timeout: float, where: str
) -> tuple[int, bytes, bytes]:
    """Exit code, stdout and stderr of ``<helper> get``; the helper's process group is
    killed when it outlives ``timeout``."""
    posix = os.name == "posix"
    try:
        proc = subprocess.Popen(
            [executable, "get"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=posix,
        )
    except OSError as exc:
        raise RemoteError(
            f"{where} could not be started ({exc.strerror or type(exc).__name__})"
        ) from None

    def stop() -> None:
        if posix:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()  # not communicate(): a helper's daemon may still hold the pipes
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    try:
        out, err = proc.communicate(server.encode(), timeout=timeout)
    except BaseException as exc:
        # A timeout, or Ctrl-C/SIGTERM: the helper runs in its own session, so no signal of the
        # terminal reaches it; it must not outlive us.
        stop()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        raise RemoteError(
            f"{where} did not answer within {timeout:g}s; check that `{Path(executable).name} get` works, or set MODELVER_REGISTRY_USERNAME and MODELVER_REGISTRY_PASSWORD"
        ) from None
    return proc.returncode, out, err

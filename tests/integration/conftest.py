"""Real parts for integration tests: Debian's docker-registry on a free loopback port, skopeo."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.registry import Registry, start_registry, stop_registry

REQUIRED_UNDER_CI = "under CI=true the integration tests must run: install it (./dev.sh test does)"


def require_binary(name: str, *alternatives: str) -> str:
    """Path of a tool; fail under CI=true, skip elsewhere when it is missing."""
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} not found; {REQUIRED_UNDER_CI}")
    pytest.skip(f"{name} not installed (./dev.sh test installs it)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    binary = require_binary("docker-registry", "registry")
    reg = start_registry(tmp_path_factory.mktemp("registry"), binary)
    yield reg
    stop_registry(reg)


@pytest.fixture(scope="session")
def skopeo() -> str:
    return require_binary("skopeo")


@pytest.fixture(scope="session")
def second_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Another docker-registry process with its own data dir: a second registry to copy into."""
    binary = require_binary("docker-registry", "registry")
    reg = start_registry(tmp_path_factory.mktemp("second-registry"), binary)
    yield reg
    stop_registry(reg)

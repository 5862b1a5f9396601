"""Real parts for integration tests: Debian's docker-registry on a free loopback port, skopeo."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

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


def require_free_disk(path: Path, needed: int) -> None:
    """Fail (skip outside CI) at once, not with a cascade of ENOSPC, when the disk is too full."""
    free = shutil.disk_usage(path).free
    if free >= needed:
        return
    message = (
        f"{needed / 2**30:.1f} GiB free needed in {path}, {free / 2**30:.1f} GiB there: "
        "free some disk or point TMPDIR at a bigger one"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def private_registry(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Registry]:
    """A registry for gigabyte tests, its data removed when the fixture using it ends.

    The session registry keeps every blob pushed into it until the run ends; a few 2 GiB tests
    into it add up to more disk than a CI machine may have free.
    """
    binary = require_binary("docker-registry", "registry")
    work = tmp_path_factory.mktemp(name)
    reg = start_registry(work, binary)
    try:
        yield reg
    finally:
        stop_registry(reg)
        shutil.rmtree(work, ignore_errors=True)

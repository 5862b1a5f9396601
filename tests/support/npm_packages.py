"""npm packages that the GitHub API tests read: GitHub's OpenAPI description and webhook examples.

They are installed on demand under ``tests/.npm`` (git-ignored) with the ordinary npm client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NPM_PREFIX = Path(__file__).resolve().parents[1] / ".npm"
NODE_MODULES = NPM_PREFIX / "node_modules"

# Package name -> accepted major version. A new major of the description can add required
# fields or rename schemas; bump these on purpose, not by accident on a fresh machine.
PACKAGES: dict[str, int] = {
    "@octokit/openapi": 23,
    "@octokit/webhooks-examples": 7,
    # The site's browser tests: accessibility rules and the Nu Html Checker.
    "axe-core": 4,
    "vnu-jar": 26,
}

# Files the tests read: their presence means the install finished.
REQUIRED_FILES = (
    "@octokit/openapi/generated/api.github.com.json",
    "@octokit/webhooks-examples/api.github.com/index.json",
    "axe-core/axe.min.js",
    "vnu-jar/build/dist/vnu.jar",
)

INSTALL_TIMEOUT_SECONDS = 600


def _installed_major(package: str) -> int | None:
    manifest = NODE_MODULES / package / "package.json"
    try:
        version = str(json.loads(manifest.read_text("utf-8"))["version"])
        return int(version.split(".", 1)[0])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_installed() -> bool:
    if not all((NODE_MODULES / name).is_file() for name in REQUIRED_FILES):
        return False
    return all(_installed_major(name) == major for name, major in PACKAGES.items())


@contextmanager
def _install_lock() -> Iterator[None]:
    """Exclusive lock across processes (pytest-xdist workers, parallel runs)."""
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with (NPM_PREFIX / ".install.lock").open("a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERR" in line]
    return (errors or lines or ["no output"])[-1]


def ensure_npm_packages() -> Path:
    """Install the packages under tests/.npm if needed; return its node_modules directory.

    Raises RuntimeError with a one-line reason when npm is missing or the install fails.
    """
    if _is_installed():
        return NODE_MODULES
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm not found: install Node.js and npm (Debian: apt-get install npm) to fetch "
            + ", ".join(PACKAGES)
        )
    with _install_lock():
        if _is_installed():  # another process finished while we waited
            return NODE_MODULES
        specs = [f"{name}@{major}" for name, major in PACKAGES.items()]
        command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_PREFIX), *specs]
        env = {**os.environ, "npm_config_update_notifier": "false"}
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"npm install {' '.join(specs)} timed out after {INSTALL_TIMEOUT_SECONDS}s"
            ) from exc
        except OSError as exc:
            raise RuntimeError(f"npm install could not start: {exc}") from exc
        if done.returncode != 0:
            reason = _last_line(done.stderr or done.stdout)
            raise RuntimeError(
                f"npm install {' '.join(specs)} failed (exit {done.returncode}): {reason}"
            )
        if not _is_installed():
            raise RuntimeError(
                f"npm install {' '.join(specs)} finished but {', '.join(REQUIRED_FILES)} are missing under {NODE_MODULES}"
            )
    return NODE_MODULES

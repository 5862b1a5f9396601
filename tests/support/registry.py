"""Start a real CNCF distribution registry (Debian's docker-registry) for tests and benchmarks."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def find_registry_binary() -> str | None:
    """docker-registry (Debian) or registry (upstream name), if installed."""
    return shutil.which("docker-registry") or shutil.which("registry")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Registry:
    """A running CNCF distribution registry."""

    host: str
    log: Path
    process: subprocess.Popen[bytes]

    def repo(self, name: str) -> str:
        return f"{self.host}/{name}"

    def requests_seen(self, method: str, pattern: str) -> int:
        """How many requests with this method and a URI matching ``pattern`` the registry logged."""
        text = self.log.read_text("utf-8", errors="replace")
        count = 0
        for line in text.splitlines():
            if "response completed" not in line:
                continue
            m = re.search(r"http\.request\.method=(\w+)", line)
            u = re.search(r'http\.request\.uri="?([^"\s]+)', line)
            if m and u and m.group(1) == method and re.search(pattern, u.group(1)):
                count += 1
        return count


def start_registry(workdir: Path, binary: str, extra_config: str = "") -> Registry:
    """Start docker-registry with its own data dir on a free 127.0.0.1 port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"{extra_config}"
    )
    log = workdir / "registry.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=handle, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as answer:
                if answer.status in (200, 401):
                    break
        except OSError as exc:
            if getattr(exc, "code", None) == 401:
                break
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("docker-registry did not answer within 20 s")
    return Registry(f"127.0.0.1:{port}", log, process)


def stop_registry(registry: Registry) -> None:
    """Terminate the registry process (kill it if it does not stop within 10 s)."""
    registry.process.terminate()
    try:
        registry.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        registry.process.kill()

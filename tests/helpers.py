"""Build small model folders for tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

EPOCH = "1767225600"  # 2026-01-01T00:00:00Z


def make_model(
    folder: Path,
    *,
    name: str = "demo",
    version: str = "1.0.0",
    weights: bytes = b"weights-v1" * 100,
    metrics: dict[str, dict[str, float]] | None = None,
    extra_files: dict[str, bytes] | None = None,
    **fields: Any,
) -> Path:
    """Write a valid model folder with ``modelver.yaml``; return the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "weights.bin").write_bytes(weights)
    (folder / "README.md").write_text(f"# {name}\n")
    files: list[dict[str, str]] = [
        {"path": "model/weights.bin", "type": "weight"},
        {"path": "README.md", "type": "doc"},
    ]
    for rel, data in (extra_files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
        files.append({"path": rel, "type": "code"})
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "files": files,
        "metrics": metrics or {"validation": {"accuracy": 0.9, "loss": 0.3}},
        "hyperparameters": {"lr": 0.1},
        **fields,
    }
    path = folder / "modelver.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A hermetic environment: own HOME (no docker config), pinned creation time."""
    return {"HOME": str(home), "SOURCE_DATE_EPOCH": EPOCH, "PATH": "/usr/bin:/bin", **extra}


def load_json(text: str) -> Any:
    return json.loads(text)

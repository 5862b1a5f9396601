#!/usr/bin/env python3
"""Regenerate docs/images/site-model.png: a model page of the registry site at 1280x800.

Publishes a few versions of an example model into a temporary OCI layout (no registry needed),
moves aliases, generates the site and takes the screenshot with Debian's chromium driven by
Playwright, as the browser tests do (tests/support/browser.py). Run from the repository root:

    .venv/bin/python scripts/site-screenshot.py [OUTPUT.png]
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ci_modelver.cli import main  # noqa: E402
from tests.support.browser import chromium_path, launch_chromium  # noqa: E402

EPOCH = "1767225600"  # 2026-01-01T00:00:00Z: the same bytes on every run
VERSIONS = [("1.0.0", 0.801, 0.861), ("1.1.0", 0.823, 0.874), ("1.2.0", 0.818, 0.879)]
GATES = {
    "accuracy": {"direction": "higher", "tolerance": 0.01},
    "auc": {"direction": "higher", "tolerance": 0.01},
}


def cli(env: dict[str, str], *args: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    if main(list(args), env=env, out=out, err=err) != 0:
        raise SystemExit(f"ci-modelver {' '.join(args)} failed: {err.getvalue().strip()}")


def write_model(folder: Path, version: str, accuracy: float, auc: float) -> Path:
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights.bin").write_bytes(f"weights {version}".encode() * 4096)
    (folder / "README.md").write_text("# churn-classifier\n")
    manifest = {
        "name": "churn-classifier",
        "version": version,
        "description": "Predicts which customers cancel within 90 days.",
        "files": [
            {"path": "model/weights.bin", "type": "weight"},
            {"path": "README.md", "type": "doc"},
        ],
        "metrics": {"validation": {"accuracy": accuracy, "auc": auc}},
        "gates": GATES,
        "hyperparameters": {"learning_rate": 0.05, "trees": 300},
        "code": {"repository": "https://github.com/acme/churn", "commit": version[0] * 40},
    }
    path = folder / "modelver.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def main_script() -> int:
    output = (
        Path(sys.argv[1]).resolve()
        if len(sys.argv) > 1
        else ROOT / "docs" / "images" / "site-model.png"
    )
    executable = chromium_path()
    if executable is None:
        print("chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {"HOME": str(tmp), "SOURCE_DATE_EPOCH": EPOCH, "PATH": "/usr/bin:/bin"}
        # A relative store path, so the page shows the same repository on every run.
        os.chdir(tmp)
        repo = "oci:models/churn-classifier"
        for version, accuracy, auc in VERSIONS:
            manifest = write_model(tmp / version, version, accuracy, auc)
            cli(env, "publish", str(manifest), "--repository", repo)
        moves = [
            ("1.0.0", "production", "first release", "maria"),
            ("1.1.0", "production", "better accuracy on the Q3 data", "release-bot"),
            ("1.2.0", "staging", "canary for the new features", "release-bot"),
        ]
        for version, alias, reason, actor in moves:
            cli(
                {**env, "GITHUB_ACTOR": actor},
                "promote",
                f"{repo}:{version}",
                "--alias",
                alias,
                "--reason",
                reason,
            )
        holdout = tmp / "holdout.json"
        holdout.write_text(json.dumps({"accuracy": 0.812, "auc": 0.869}))
        cli(env, "attach", f"{repo}:1.1.0", "--metrics", str(holdout), "--set", "holdout")
        site = tmp / "site"
        cli(env, "site", repo, "--output", str(site), "--title", "Acme model registry")
        with launch_chromium(executable) as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto((site / "churn-classifier" / "index.html").as_uri(), wait_until="load")
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output))
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main_script())

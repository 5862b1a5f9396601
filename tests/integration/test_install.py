"""The installed package: console script and ``python -m`` work from any folder (schemas ship)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE

pytestmark = pytest.mark.integration


def _script() -> str:
    script = Path(sys.executable).parent / "ci-modelver"
    assert script.exists(), "run the tests through ./dev.sh test (it installs the console script)"
    return str(script)


def test_console_script_validates_from_root_folder() -> None:
    done = subprocess.run(
        [_script(), "validate", str(EXAMPLE / "modelver.yaml")],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "valid — churn-classifier 1.0.0" in done.stdout


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ci_modelver", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("ci-modelver ")


def test_schemas_are_loaded_from_the_installed_package(tmp_path: Path) -> None:
    code = "import ci_modelver.adapters.files as f, pathlib; print(f.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    package = Path(done.stdout.strip()).parents[1]
    assert (package / "schemas" / "modelver.schema.json").is_file()


def test_example_training_is_reproducible(tmp_path: Path) -> None:
    copy = tmp_path / "churn"
    shutil.copytree(EXAMPLE, copy)
    for target in ("data", "model"):
        shutil.rmtree(copy / target)
    (copy / "metrics.json").unlink()
    for script in ("make_data.py", "train.py", "evaluate.py"):
        subprocess.run(
            [sys.executable, "-B", script],
            cwd=copy,
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
        )
    for produced in (
        "data/train.csv",
        "data/validation.csv",
        "data/test-shifted.csv",
        "model/model.safetensors",
        "model/config.json",
        "metrics.json",
    ):
        assert (copy / produced).read_bytes() == (EXAMPLE / produced).read_bytes(), produced


def test_variant_knob_gives_a_different_model(tmp_path: Path) -> None:
    copy = tmp_path / "churn"
    shutil.copytree(EXAMPLE, copy)
    env = {"PATH": "/usr/bin:/bin", "CHURN_VARIANT": "v2"}
    subprocess.run(
        [sys.executable, "-B", "train.py"], cwd=copy, check=True, capture_output=True, env=env
    )
    assert (copy / "model/model.safetensors").read_bytes() != (
        EXAMPLE / "model/model.safetensors"
    ).read_bytes()

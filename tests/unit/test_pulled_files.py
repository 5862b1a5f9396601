"""Pulled files: recorded modes under the umask, folders and FIFOs in the way, replaced files,
stale temp files of killed pulls; init never writes through a symlink out of its folder."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_modelver.adapters.store import TEMP_PREFIX
from tests.conftest import run_cli
from tests.helpers import base_env, make_model

SCRIPT = b"#!/bin/sh\necho hi\n"


@pytest.fixture()
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def _published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    """demo 1.0.0 with an executable script, in oci:.modelver/demo under tmp_path."""
    monkeypatch.chdir(tmp_path)
    manifest = make_model(tmp_path / "m", extra_files={"run.sh": SCRIPT})
    (tmp_path / "m" / "run.sh").chmod(0o755)
    (tmp_path / "m" / "model" / "weights.bin").chmod(0o600)  # recorded as a plain file: 0644
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1")
    published = run_cli("publish", str(manifest), env=env)
    assert published.code == 0, published.err
    return "oci:.modelver/demo:1.0.0", env


@pytest.mark.parametrize(
    ("mask", "plain", "executable"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_pulled_files_get_the_recorded_mode_under_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mask: int, plain: int, executable: int
) -> None:
    ref, env = _published(tmp_path, monkeypatch)
    old = os.umask(mask)
    try:
        result = run_cli("pull", ref, "-o", str(tmp_path / "out"), env=env)
    finally:
        os.umask(old)
    assert result.code == 0, result.err
    out = tmp_path / "out"
    assert _mode(out / "run.sh") == executable
    assert _mode(out / "model" / "weights.bin") == plain
    assert _mode(out / "README.md") == plain


def test_layout_blobs_are_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None
) -> None:
    _published(tmp_path, monkeypatch)
    layout = tmp_path / ".modelver" / "demo"
    blobs = list((layout / "blobs" / "sha256").iterdir())
    assert len(blobs) >= 5  # config, manifest and the three files
    assert {b.name: _mode(b) for b in blobs} == {b.name: 0o644 for b in blobs}
    assert _mode(layout / "index.json") == 0o644


def test_a_folder_in_the_way_is_named_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, env = _published(tmp_path, monkeypatch)
    out = tmp_path / "out"
    (out / "model" / "weights.bin").mkdir(parents=True)
    result = run_cli("pull", ref, "-o", str(out), env=env)
    assert result.code == 2
    assert f"{out / 'model' / 'weights.bin'} is a folder" in result.err
    assert TEMP_PREFIX not in result.err and ".partial" not in result.err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "model",
        "model/weights.bin",
    ]


def test_a_fifo_in_the_way_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, env = _published(tmp_path, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "README.md")
    result = run_cli("pull", ref, "-o", str(out), env=env)
    assert result.code == 2
    assert "is not a regular file" in result.err
    assert stat.S_ISFIFO((out / "README.md").lstat().st_mode)
    assert not (out / "model").exists()


def test_replaced_files_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, env = _published(tmp_path, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("my own notes\n")
    (out / "run.sh").write_bytes(SCRIPT)  # same content: kept, not replaced
    result = run_cli("pull", ref, "-o", str(out), env=env)
    assert result.code == 0, result.err
    assert "replaced 1 existing file(s) that had other content: README.md" in result.out
    assert (out / "README.md").read_text() == "# demo\n"
    again = run_cli("pull", ref, "-o", str(out), "--format", "json", env=env)
    doc = json.loads(again.out)
    assert doc["replaced"] == []
    (out / "README.md").write_text("changed again\n")
    third = json.loads(run_cli("pull", ref, "-o", str(out), "--format", "json", env=env).out)
    assert third["replaced"] == ["README.md"]
    assert [f["path"] for f in third["files"] if f["replaced"]] == ["README.md"]


def test_a_later_pull_removes_the_temp_files_of_a_killed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, env = _published(tmp_path, monkeypatch)
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    stale = [out / f"{TEMP_PREFIX}{'a' * 16}", out / "model" / f"{TEMP_PREFIX}{'b' * 16}"]
    for path in stale:
        path.write_bytes(b"\0" * 4096)
    (out / f"{TEMP_PREFIX}{'c' * 16}").mkdir()  # a tar layer's folder
    mine = out / ".partial-notes"
    mine.write_text("not ci-modelver's")
    result = run_cli("pull", ref, "-o", str(out), env=env)
    assert result.code == 0, result.err
    assert [p for p in out.rglob(f"{TEMP_PREFIX}*")] == []
    assert mine.read_text() == "not ci-modelver's"


# --- init ------------------------------------------------------------------------------------


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("link", [".github", ".github/workflows"])
def test_init_refuses_a_symlink_leading_outside(tmp_path: Path, link: str) -> None:
    folder = tmp_path / "model"
    outside = tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    (folder / "model.safetensors").write_bytes(b"w")
    (folder / link).parent.mkdir(parents=True, exist_ok=True)
    (folder / link).symlink_to(outside, target_is_directory=True)
    before = _tree(folder)
    result = run_cli("init", str(folder))
    assert result.code == 2
    assert f"{folder / link} leads outside {folder} (symlink)" in result.err
    assert "nothing was written" in result.err
    assert list(outside.iterdir()) == []
    assert _tree(folder) == before


def test_init_follows_a_symlink_that_stays_inside(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "ci").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w")
    (folder / ".github").symlink_to(folder / "ci", target_is_directory=True)
    result = run_cli("init", str(folder))
    assert result.code == 0, result.err
    assert (folder / "ci" / "workflows").is_dir()
    assert any((folder / "ci" / "workflows").iterdir())

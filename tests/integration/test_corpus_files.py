"""Bad-input corpus, files: what ``pull`` and ``init`` find on disk, and modes a registry records.

Cases follow the contract of tests/integration/test_bad_input_corpus.py (exit code, one last
``error:`` line saying what is wrong, never a traceback): a layer whose target is a folder or a
FIFO (named by its real path, checked before anything is written), ``init`` through symlinks
leading out of its folder (nothing written), hostile or malformed file metadata (only the
executable bit is honoured), and files replaced by a pull (said in the summary).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ci_modelver.adapters.store import TEMP_PREFIX
from ci_modelver.core.modelpack import ANN_FILE_METADATA
from tests.conftest import run_cli
from tests.integration.test_bad_input_corpus import Call, Case, T, World, call, case, check
from tests.support.hostile_registry import Artifact, canonical, model_artifact

pytestmark = pytest.mark.integration

SCRIPT = b"#!/bin/sh\necho hello\n"


def _out(w: World) -> Path:
    return w.tmp / "out"


def _pull(w: World, ref: str | None = None) -> Call:
    return call("pull", ref or w.serve(), "-o", str(_out(w)), *T)


def _in_the_way(
    make: Callable[[Path], None], relative: str = "model/weights.bin"
) -> Callable[[World], Call]:
    """A pull of the default model into a folder where ``relative`` is already something else."""

    def build(w: World) -> Call:
        target = _out(w) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        make(target)
        return _pull(w)

    return build


def _folder_with_a_file(path: Path) -> None:
    path.mkdir()
    (path / "keep.txt").write_text("mine")


def _with_metadata(meta: str, data: bytes = SCRIPT, path: str = "bin/run.sh") -> Artifact:
    """A model whose one layer carries ``meta`` as its file metadata annotation."""
    artifact = model_artifact({path: data})
    doc = artifact.doc()
    doc["layers"][0]["annotations"][ANN_FILE_METADATA] = meta
    return Artifact(canonical(doc), artifact.blobs)


def _init_through(link: str, target: Callable[[World], Path]) -> Callable[[World], Call]:
    """``init DIR`` where DIR/``link`` is a symlink to ``target(w)``."""

    def build(w: World) -> Call:
        folder = w.tmp / "project"
        folder.mkdir(exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"w")
        (folder / link).parent.mkdir(parents=True, exist_ok=True)
        (folder / link).symlink_to(target(w), target_is_directory=True)
        return call("init", str(folder))

    return build


def _elsewhere(w: World) -> Path:
    outside = w.tmp / "elsewhere"
    outside.mkdir(exist_ok=True)
    return outside


def _inside_then_out(w: World) -> Path:
    """DIR/ci (a real folder inside DIR) whose 'workflows' is a symlink out of DIR."""
    ci = w.tmp / "project" / "ci"
    ci.mkdir(parents=True, exist_ok=True)
    (ci / "workflows").symlink_to(_elsewhere(w), target_is_directory=True)
    return ci


def _replaced(w: World) -> Call:
    (_out(w)).mkdir(parents=True, exist_ok=True)
    (_out(w) / "README.md").write_bytes(b"my own notes\n")
    return _pull(w)


def _stale_temps(w: World) -> Call:
    (_out(w) / "model").mkdir(parents=True, exist_ok=True)
    (_out(w) / "model" / f"{TEMP_PREFIX}{'0' * 16}").write_bytes(b"\0" * 1024)
    return _pull(w)


FILES = [
    # pull: what is in the way
    case(
        "pull-layer-target-is-an-existing-folder",
        2,
        "out/model/weights.bin is a folder; move it away or pull into another folder",
        _in_the_way(lambda p: p.mkdir()),
    ),
    case(
        "pull-layer-target-is-a-folder-with-files",
        2,
        "is a folder",
        _in_the_way(_folder_with_a_file),
    ),
    case(
        "pull-layer-target-is-a-fifo",
        2,
        "exists and is not a regular file (a FIFO, socket or device)",
        _in_the_way(lambda p: os.mkfifo(p), "README.md"),
    ),
    case(
        "pull-layer-target-is-a-symlink-to-a-folder",
        2,
        "is a symlink; remove it first",
        _in_the_way(lambda p: p.symlink_to(p.parent, target_is_directory=True)),
    ),
    # pull: what a registry records about modes
    case(
        "pull-metadata-mode-setuid-world-writable",
        0,
        "1 downloaded",
        lambda w: _pull(w, w.serve(_with_metadata('{"mode": 3583}'))),  # 0o6777
    ),
    case(
        "pull-metadata-not-json",
        0,
        "1 downloaded",
        lambda w: _pull(w, w.serve(_with_metadata('{"mode": 493'))),
    ),
    case(
        "pull-metadata-mode-is-a-string",
        0,
        "1 downloaded",
        lambda w: _pull(w, w.serve(_with_metadata('{"mode": "0755"}'))),
    ),
    case(
        "pull-metadata-not-an-object",
        0,
        "1 downloaded",
        lambda w: _pull(w, w.serve(_with_metadata("[493]"))),
    ),
    case(
        "pull-metadata-mode-is-true",
        0,
        "1 downloaded",
        lambda w: _pull(w, w.serve(_with_metadata('{"mode": true}'))),
    ),
    # pull: what is said about files it replaces, and what earlier pulls left
    case(
        "pull-replaces-a-file-with-other-content",
        0,
        "replaced 1 existing file(s) that had other content: README.md",
        _replaced,
    ),
    case("pull-into-a-folder-with-stale-temp-files", 0, "2 downloaded", _stale_temps),
    # init: never through a symlink out of its folder
    case(
        "init-workflows-folder-is-a-symlink-outside",
        2,
        "project/.github/workflows leads outside",
        _init_through(".github/workflows", _elsewhere),
    ),
    case(
        "init-github-folder-is-a-symlink-outside",
        2,
        "project/.github leads outside",
        _init_through(".github", _elsewhere),
    ),
    case(
        "init-github-symlink-inside-whose-workflows-lead-outside",
        2,
        "project/.github/workflows leads outside",
        _init_through(".github", _inside_then_out),
    ),
    case(
        "init-workflows-symlink-to-the-filesystem-root",
        2,
        "leads outside",
        _init_through(".github/workflows", lambda _w: Path("/")),
    ),
]


@pytest.fixture()
def world(tmp_path: Path, template: Path) -> Iterator[World]:
    w = World(tmp_path, template)
    yield w
    w.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """World needs a layout template; these cases never use it."""
    return tmp_path_factory.mktemp("unused-template")


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("case", FILES)
def test_file_case(world: World, case: Case) -> None:
    invocation = case.make(world)
    before = _tree(world.tmp)
    result = run_cli(*invocation.args, env={**world.env, **invocation.env})
    check(result, case)
    if case.code != 0:
        # Refused before anything was written: the tree is exactly what the case set up.
        assert _tree(world.tmp) == before
        elsewhere = world.tmp / "elsewhere"
        assert not elsewhere.exists() or list(elsewhere.iterdir()) == []


def test_only_the_executable_bit_of_a_recorded_mode_reaches_the_disk(world: World) -> None:
    old = os.umask(0o022)
    try:
        modes: dict[str, int] = {}
        for meta, name in [
            ('{"mode": 3583}', "setuid"),  # 0o6777: setuid, setgid, world-writable
            ('{"mode": 493}', "exec"),  # 0o755
            ('{"mode": 420}', "plain"),  # 0o644
            ('{"mode": 384}', "private"),  # 0o600: still readable like any new file
            ("not json", "broken"),
        ]:
            ref = world.serve(_with_metadata(meta, path=f"bin/{name}.sh"), tag=f"1.0.{len(modes)}")
            result = run_cli("pull", ref, "-o", str(_out(world)), *T, env=world.env)
            assert result.code == 0, result.err
            modes[name] = (_out(world) / "bin" / f"{name}.sh").stat().st_mode & 0o7777
    finally:
        os.umask(old)
    assert modes == {
        "setuid": 0o755,
        "exec": 0o755,
        "plain": 0o644,
        "private": 0o644,
        "broken": 0o644,
    }


def test_a_refused_pull_writes_none_of_the_other_files(world: World) -> None:
    (_out(world) / "README.md").mkdir(parents=True)
    result = run_cli("pull", world.serve(), "-o", str(_out(world)), *T, env=world.env)
    check(result, Case(2, "README.md is a folder", lambda w: call()))
    assert not (_out(world) / "model").exists()
    assert [p.name for p in _out(world).iterdir()] == ["README.md"]


def test_stale_temp_files_go_and_files_of_others_stay(world: World) -> None:
    ref = world.serve()
    (_out(world) / "model").mkdir(parents=True)
    stale = _out(world) / "model" / f"{TEMP_PREFIX}{'a' * 16}"
    stale.write_bytes(b"\0" * 4096)
    others = [_out(world) / ".partial-abcdefgh", _out(world) / f"{TEMP_PREFIX}mine"]
    for path in others:
        path.write_text("not ci-modelver's")
    result = run_cli("pull", ref, "-o", str(_out(world)), *T, env=world.env)
    assert result.code == 0, result.err
    assert not stale.exists()
    assert all(p.read_text() == "not ci-modelver's" for p in others)

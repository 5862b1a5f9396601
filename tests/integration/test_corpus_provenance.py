"""Bad-input corpus, build provenance: the manifest's ``build`` block, ``publish --command``,
``reproduce --check-env`` and hostile ``build`` blocks in a registry's version record.

Cases follow the contract of tests/integration/test_bad_input_corpus.py (exact exit code, one last
``error:`` line saying what is wrong, never a traceback; manifest problems also as located
findings). A refused publish leaves no store behind. A record's ``build`` block comes from the
registry: fields of the wrong type are dropped (``show`` still works), its paths never lead
``reproduce --check-env`` to open anything but a regular file, and its text is shown escaped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run, run_cli
from tests.integration.test_bad_input_corpus import Call, Case, T, World, call, case, check
from tests.support.hostile_registry import canonical

pytestmark = pytest.mark.integration

D1 = "sha256:" + "1" * 64
EVIL = "v\x1b]0;owned\x07\x1b[2J\rX\x9b2J\u2028\n::add-mask::leak\n##[add-mask]y"


def _store(w: World) -> str:
    return f"oci:{w.tmp / 'store'}"


def _publish_build(w: World, build: Any, *extra: str) -> Call:
    return call("publish", str(w.model(build=build)), "--repository", _store(w), *extra)


def _publish_command(w: World, command: str) -> Call:
    return call("publish", str(w.model()), "--repository", _store(w), "--command", command)


def _record(build: Any) -> str:
    return canonical(
        {
            "schemaVersion": 1,
            "name": "model",
            "version": "1.0.0",
            "metrics": {"validation": {"accuracy": 0.9}},
            "hyperparameters": {},
            "code": {},
            "data": [],
            "gates": {},
            "build": build,
        }
    ).decode()


def _check_env(w: World, build: Any, files: dict[str, bytes] | None = None) -> Call:
    """``reproduce --check-env`` of a served record with ``build``, against a folder of ``files``."""
    folder = w.tmp / "checkout"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    return call("reproduce", w.record(_record(build)), "--check-env", str(folder), *T)


def _lock(path: str, digest: str = D1) -> dict[str, Any]:
    return {"path": path, "digest": digest, "size": 1}


UV_LOCK = b"version = 1\n"
UV_DIGEST = "sha256:" + hashlib.sha256(UV_LOCK).hexdigest()

PROVENANCE = [
    # -- the manifest's build block: located findings, nothing published
    case(
        "publish-build-not-a-mapping",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, "python train.py"),
        finding="'build' must be a mapping, got the string 'python train.py' ($.build)",
    ),
    case(
        "publish-build-unknown-key",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"lockfile": ["uv.lock"]}),
        finding="unknown key 'lockfile' — did you mean 'lockfiles'? ($.build.lockfile)",
    ),
    case(
        "publish-build-command-a-number",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"command": 42}),
        finding="expected a command line (a string) or a list of its words, got the number 42",
    ),
    case(
        "publish-build-command-empty-list",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"command": []}),
        finding="'command' must not be empty ($.build.command)",
    ),
    case(
        "publish-build-command-with-a-newline",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"command": "train\n::add-mask::x"}),
        finding="contains a control character (U+000A, line feed)",
    ),
    case(
        "publish-build-command-word-with-escape",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"command": ["train", "--x\x1b[2J"]}),
        finding="($.build.command[1])",
    ),
    case(
        "publish-build-lockfile-missing",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"lockfiles": ["../../uv.lock"]}),
        finding="lock file '../../uv.lock' does not exist ($.build.lockfiles[0])",
    ),
    case(
        "publish-build-lockfile-absolute",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"lockfiles": ["/etc/hostname"]}),
        finding="lock file path '/etc/hostname' must be relative to the manifest's folder",
    ),
    case(
        "publish-build-lockfile-a-folder",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"lockfiles": ["model"]}),
        finding="lock file 'model' is not a regular file ($.build.lockfiles[0])",
    ),
    case(
        "publish-build-lockfile-twice",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"lockfiles": ["README.md", "./README.md"]}),
        finding="is listed twice (also build.lockfiles[0]) ($.build.lockfiles[1])",
    ),
    case(
        "publish-build-lockfiles-a-string",
        2,
        "1 problem(s)",
        lambda w: _publish_build(w, {"lockfiles": "uv.lock"}),
        finding="($.build.lockfiles)",
    ),
    # -- publish --command
    case(
        "publish-command-flag-empty",
        2,
        "--command: the training command is empty",
        lambda w: _publish_command(w, ""),
    ),
    case(
        "publish-command-flag-carriage-return",
        2,
        "--command: the training command contains a control character (U+000D, carriage "
        "return) at character 6; commands must be printable: write it on one line",
        lambda w: _publish_command(w, "train\r::warning::x"),
    ),
    case(
        "publish-command-flag-not-quoted-back",
        2,
        "contains a control character (U+000A, line feed)",
        lambda w: _publish_command(w, "train --token ghp_" + "q" * 36 + "\n"),
    ),
    case(
        "publish-command-flag-too-long",
        2,
        "is 5,000 characters (limit 4,096); record a script and call it instead",
        lambda w: _publish_command(w, "x" * 5000),
    ),
    case(
        "publish-command-flag-without-value",
        2,
        "argument --command: expected one argument",
        lambda w: call("publish", str(w.model()), "--repository", _store(w), "--command"),
    ),
    # -- reproduce --check-env: local mistakes, then records from a hostile registry
    case(
        "reproduce-check-env-missing-folder",
        2,
        "--check-env",
        lambda w: call("reproduce", w.record(_record({})), "--check-env", str(w.tmp / "x"), *T),
    ),
    case(
        "reproduce-check-env-a-file",
        2,
        "not a folder; give the folder the version's manifest was published from",
        lambda w: call(
            "reproduce", w.record(_record({})), "--check-env", str(w.write("f", "x")), *T
        ),
    ),
    case(
        "reproduce-check-env-lock-file-changed",
        1,
        "lock file(s) differ from the ones recorded at publish time: uv.lock (mismatch)",
        lambda w: _check_env(w, {"lockfiles": [_lock("uv.lock")]}, {"uv.lock": UV_LOCK}),
    ),
    case(
        "reproduce-check-env-lock-file-missing",
        1,
        "uv.lock (missing)",
        lambda w: _check_env(w, {"lockfiles": [_lock("uv.lock")]}),
    ),
    case(
        "reproduce-check-env-record-path-absolute",
        1,
        "/etc/hostname (refused)",
        lambda w: _check_env(w, {"lockfiles": [_lock("/etc/hostname")]}),
    ),
    case(
        "reproduce-check-env-record-path-a-device",
        1,
        "dev/null (refused)",
        lambda w: _check_env(w, {"lockfiles": [_lock("../" * 40 + "dev/null")]}),
    ),
    case(
        "reproduce-check-env-record-path-backslash",
        1,
        "(refused)",
        lambda w: _check_env(w, {"lockfiles": [_lock("..\\..\\uv.lock")]}),
    ),
    case(
        "reproduce-check-env-record-path-with-escape",
        1,
        "uv\\x1b[2J.lock (refused)",
        lambda w: _check_env(w, {"lockfiles": [_lock("uv\x1b[2J.lock")]}),
    ),
    case(
        "reproduce-check-env-matching-lock-file",
        0,
        "  uv.lock: match",
        lambda w: _check_env(w, {"lockfiles": [_lock("uv.lock", UV_DIGEST)]}, {"uv.lock": UV_LOCK}),
    ),
    case(
        "reproduce-check-env-digest-with-trailing-newline-dropped",
        0,
        "build:",
        lambda w: _check_env(w, {"lockfiles": [_lock("uv.lock", UV_DIGEST + "\n")]}),
    ),
    # -- a record's build block of the wrong shape is dropped, the rest still shown
    case(
        "show-record-build-not-a-mapping",
        0,
        "model 1.0.0",
        lambda w: call("show", w.record(_record("python train.py")), *T),
    ),
    case(
        "show-record-build-fields-of-the-wrong-type",
        0,
        "  command:   none recorded",
        lambda w: call(
            "show",
            w.record(
                _record(
                    {
                        "command": {"run": "x"},
                        "lockfiles": "uv.lock",
                        "python": 3.12,
                        "platform": ["linux"],
                        "ci": {"runner": "big", "runId": 7, "workflow": "release"},
                    }
                )
            ),
            *T,
        ),
    ),
    case(
        "reproduce-record-build-lockfiles-of-the-wrong-type",
        0,
        "build:",
        lambda w: call(
            "reproduce",
            w.record(_record({"lockfiles": [7, "x", {"path": 1, "digest": D1}]})),
            *T,
        ),
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


@pytest.mark.parametrize("case", PROVENANCE)
def test_provenance_case(world: World, case: Case) -> None:
    invocation = case.make(world)
    result = run_cli(*invocation.args, env={**world.env, **invocation.env})
    check(result, case)
    assert "ghp_" not in result.out + result.err  # a command line is never quoted back
    if invocation.args[0] == "publish":
        # Refused before anything was written: no store, no layout folder.
        assert not (world.tmp / "store").exists()


# ---------------------------------------------------------------------------------------------
# A hostile build block is shown escaped, on a terminal and in GitHub Actions


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def _shown_safely(result: Run, actions: bool) -> None:
    assert "Traceback" not in result.err
    for stream in (result.out, result.err):
        assert _raw_controls(stream) == [] and "\u2028" not in stream, stream
        if actions:
            for line in stream.split("\n"):
                assert not line.lstrip().startswith("::"), line
                assert "##[" not in line, line


HOSTILE_BUILD = {
    "command": ["train", EVIL],
    "lockfiles": [_lock(EVIL), _lock("uv.lock")],
    "python": EVIL,
    "platform": EVIL,
    "ci": {
        "system": EVIL,
        "runner": {"os": EVIL, "arch": EVIL, "environment": EVIL, "image": EVIL},
        "workflow": EVIL,
        "runId": EVIL,
        "runUrl": EVIL,
    },
}


@pytest.mark.parametrize("actions", [False, True], ids=["terminal", "actions"])
def test_a_hostile_build_block_is_shown_escaped(world: World, actions: bool) -> None:
    ref = world.record(_record(HOSTILE_BUILD))
    folder = world.tmp / "checkout"
    folder.mkdir()
    (folder / "uv.lock").write_bytes(UV_LOCK)
    extra = {"GITHUB_ACTIONS": "true"} if actions else {}
    env = {**world.env, **extra}
    for args in (
        ("show", ref, *T),
        ("show", ref, "--format", "json", *T),
        ("reproduce", ref, *T),
        ("reproduce", ref, "--format", "json", *T),
    ):
        result = run_cli(*args, env=env)
        assert result.code == 0, (args, result.err)
        _shown_safely(result, actions)
    checked = run_cli("reproduce", ref, "--check-env", str(folder), *T, env=env)
    assert checked.code == 1, checked.err
    _shown_safely(checked, actions)
    assert "uv.lock (mismatch)" in checked.err.splitlines()[-1]
    # JSON keeps the values exactly.
    doc = json.loads(run_cli("show", ref, "--format", "json", *T, env=world.env).out)
    assert doc["record"]["build"]["command"] == ["train", EVIL]
    assert doc["record"]["build"]["ci"]["workflow"] == EVIL


def test_a_record_run_url_with_credentials_is_shown_without_them(world: World) -> None:
    url = "https://user:ghp_" + "s" * 36 + "@github.com/acme/models/actions/runs/1"
    ref = world.record(_record({"ci": {"system": "github-actions", "runUrl": url}}))
    for fmt in ("text", "json"):
        result = run_cli("show", ref, "--format", fmt, *T, env=world.env)
        assert result.code == 0, result.err
        assert "ghp_" not in result.out and "user:" not in result.out
        assert "https://github.com/acme/models/actions/runs/1" in result.out


def test_corpus_size() -> None:
    ids = [param.id for param in PROVENANCE]
    assert len(ids) == len(set(ids)) and len(ids) >= 25

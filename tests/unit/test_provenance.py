"""Build provenance: what the version record's ``build`` block holds, and that it stays deterministic.

Identical inputs give a byte-identical manifest, so re-publishing unchanged files is still the
no-op "already published": on the same machine, and on a re-run of the same workflow run (a new
attempt, another runner) too. What changes the build (a lock file, the command) changes the digest.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_modelver.commands.history import _check_lockfile
from ci_modelver.core.manifest import BuildSpec, build_manifest
from ci_modelver.core.modelpack import (
    PackedFile,
    Provenance,
    normalize_record,
    pack,
    parse_model_manifest,
)
from ci_modelver.core.provenance import (
    LockFile,
    build_record,
    check_command,
    ci_info,
    command_text,
    is_lockfile_name,
    lockfile_path_problem,
    lockfile_paths,
    normalize_build,
    redact_command,
    secret_values,
    with_command,
)
from ci_modelver.errors import ExitCode, InputError, exit_code_of
from ci_modelver.packing import machine_platform, prepare, python_version
from ci_modelver.settings import Settings
from ci_modelver.validation import validate_manifest
from tests.conftest import run_cli
from tests.helpers import base_env, make_model

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
CREATED = "2026-01-01T00:00:00Z"
# What a GitHub-hosted runner sets, and what changes when a job is re-run.
ACTIONS_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SHA": "a" * 40,
    "GITHUB_REPOSITORY": "acme/models",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_WORKFLOW": "Model release",
    "GITHUB_WORKFLOW_REF": "acme/models/.github/workflows/release.yml@refs/tags/v1.0.0",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "1",
    "RUNNER_OS": "Linux",
    "RUNNER_ARCH": "X64",
    "RUNNER_NAME": "GitHub Actions 1",
    "RUNNER_ENVIRONMENT": "github-hosted",
    "ImageOS": "ubuntu24",
    "ImageVersion": "20260101.1.0",
}
RERUN = {
    "GITHUB_RUN_ATTEMPT": "2",
    "RUNNER_NAME": "GitHub Actions 7",
    "ImageVersion": "20260108.2.0",
}


def _manifest(**fields: Any) -> Any:
    data = {
        "name": "demo",
        "version": "1.0.0",
        "files": [{"path": "w.bin", "type": "weight"}],
        **fields,
    }
    return build_manifest(data, {})


def _packed(build: dict[str, Any]) -> bytes:
    files = [PackedFile("w.bin", "weight", D1, 3)]
    return pack(_manifest(), files, Provenance(CREATED, build=build)).manifest


def _record_of(manifest: bytes) -> dict[str, Any]:
    artifact = parse_model_manifest(manifest, "sha256:" + "0" * 64, "test")
    assert artifact.record is not None
    return dict(artifact.record)


# ---------------------------------------------------------------------------------------------
# The block


def test_the_build_block_rides_in_the_record_and_reads_back() -> None:
    build = build_record(
        command=("python", "train.py", "--epochs", "3"),
        lockfiles=[LockFile("uv.lock", D2, 10), LockFile("requirements.txt", D1, 5)],
        python="CPython 3.12",
        platform="linux-x86_64",
        ci=ci_info(ACTIONS_ENV),
    )
    record = _record_of(_packed(build))
    assert record["build"] == {
        "command": ["python", "train.py", "--epochs", "3"],
        "lockfiles": [  # sorted by path: the order files are found in cannot matter
            {"path": "requirements.txt", "digest": D1, "size": 5},
            {"path": "uv.lock", "digest": D2, "size": 10},
        ],
        "python": "CPython 3.12",
        "platform": "linux-x86_64",
        "ci": {
            "system": "github-actions",
            "runner": {
                "os": "Linux",
                "arch": "X64",
                "environment": "github-hosted",
                "image": "ubuntu24",
            },
            "workflow": "Model release",
            "workflowRef": "acme/models/.github/workflows/release.yml@refs/tags/v1.0.0",
            "runId": "4242",
            "runUrl": "https://github.com/acme/models/actions/runs/4242",
        },
    }


def test_identical_inputs_give_identical_bytes() -> None:
    def build() -> dict[str, Any]:
        return build_record(
            command="python train.py",
            lockfiles=[LockFile("uv.lock", D2, 10)],
            python="CPython 3.12",
            platform="linux-x86_64",
            ci=ci_info(ACTIONS_ENV),
        )

    assert _packed(build()) == _packed(build())


def test_the_run_attempt_and_the_runner_name_are_not_recorded() -> None:
    """A re-run of the same workflow run must find its version "already published"."""
    assert ci_info(ACTIONS_ENV) == ci_info({**ACTIONS_ENV, **RERUN})
    text = json.dumps(ci_info(ACTIONS_ENV))
    assert "GitHub Actions 1" not in text and "20260101" not in text


def test_a_build_changes_the_digest() -> None:
    base = {"python": "CPython 3.12", "platform": "linux-x86_64"}
    variants = [
        base,
        {**base, "command": "python train.py"},
        {**base, "lockfiles": [{"path": "uv.lock", "digest": D1, "size": 1}]},
        {**base, "lockfiles": [{"path": "uv.lock", "digest": D2, "size": 1}]},
        {**base, "python": "CPython 3.13"},
    ]
    assert len({_packed(v) for v in variants}) == len(variants)


def test_python_is_recorded_to_the_minor_version_and_the_platform_without_a_kernel() -> None:
    assert python_version().endswith(f" {sys.version_info.major}.{sys.version_info.minor}")
    assert re.fullmatch(r"\S+ \d+\.\d+", python_version())
    assert re.fullmatch(r"[a-z0-9_.]+-[a-z0-9_.]+", machine_platform())


def test_a_record_without_build_has_no_block() -> None:
    assert "build" not in _record_of(_packed({}))


# ---------------------------------------------------------------------------------------------
# Untrusted records


def test_a_hostile_build_block_is_normalised() -> None:
    raw = {
        "command": ["ok", 3],
        "lockfiles": [
            {"path": "uv.lock", "digest": D1 + "\n", "size": 1},  # '$' would match before \n
            {"path": 7, "digest": D1},
            "x",
            {"path": "requirements.txt", "digest": D2, "size": True},
        ],
        "python": ["3"],
        "platform": "linux-x86_64",
        "ci": {
            "runUrl": "https://user:secret@github.com/a/b/actions/runs/1",
            "runId": 5,
            "runner": [],
        },
    }
    assert normalize_build(raw) == {
        "lockfiles": [{"path": "requirements.txt", "digest": D2}],
        "platform": "linux-x86_64",
        "ci": {"runUrl": "https://github.com/a/b/actions/runs/1"},
    }
    assert normalize_build("nope") == {}
    assert "build" not in normalize_record({"build": []})


# ---------------------------------------------------------------------------------------------
# The command


def test_command_text_quotes_a_list() -> None:
    assert command_text("python train.py") == "python train.py"
    assert command_text(["python", "train.py", "--name", "a b"]) == "python train.py --name 'a b'"
    assert command_text(["a", 1]) is None and command_text(None) is None


def test_secrets_in_a_command_are_not_recorded() -> None:
    env = {
        "GITHUB_TOKEN": "ghs_" + "x" * 36,
        "MODELVER_REGISTRY_PASSWORD": "hunter2-registry",
        "HF_API_KEY": "hf-abcdefgh",
        "PWD": "/home/me/project",
        "SHORT_TOKEN": "1",
        "HOME": "/home/me",
    }
    secrets = secret_values(env)
    assert sorted(secrets) == sorted(["ghs_" + "x" * 36, "hunter2-registry", "hf-abcdefgh"])
    command = (
        "python train.py --password hunter2-registry --hf hf-abcdefgh "
        "--data https://me:pw@data.example/x?sig=abc --gh ghp_"
        + "y" * 36
        + " --out /home/me/project/out"
    )

    def scrub(word: str) -> str:
        for secret in secrets:
            word = word.replace(secret, "<redacted>")
        return re.sub(r"ghp_\w+", "<redacted>", word)

    recorded = redact_command(command, scrub)
    assert isinstance(recorded, str)
    for secret in ("hunter2-registry", "hf-abcdefgh", "me:pw", "sig=abc", "ghp_"):
        assert secret not in recorded
    assert "https://***@data.example/x?sig=***" in recorded
    assert recorded.endswith("--out /home/me/project/out")  # PWD is no secret
    assert redact_command(("a", "hunter2-registry"), scrub) == ("a", "<redacted>")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the training command is empty"),
        ("   ", "the training command is empty"),
        ("a\nb", "contains a control character (U+000A, line feed) at character 2"),
        ("a\x1b[2Jb", "contains a control character (U+001B, escape) at character 2"),
        ("--token ghp_" + "t" * 36 + "\r", "at character 49; commands must be printable"),
        ("x" * 4097, "4,097 characters (limit 4,096)"),
    ],
)
def test_a_bad_command_flag_is_one_line_exit_2(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        check_command(text, "--command")
    error = caught.value
    assert exit_code_of(error) == ExitCode.INVALID_INPUT
    assert str(error).startswith("--command: ") and message in str(error)
    assert "\n" not in str(error) and "\x1b" not in str(error)
    assert "ghp_" not in str(error)  # a command line is never quoted back


def test_the_flag_wins_over_the_manifest() -> None:
    manifest = _manifest(build={"command": ["a"], "lockfiles": ["uv.lock"]})
    assert manifest.build == BuildSpec(("a",), ("uv.lock",))
    replaced = with_command(manifest, "b")
    assert replaced.build == BuildSpec("b", ("uv.lock",))
    assert with_command(_manifest(), "c").build == BuildSpec("c")


# ---------------------------------------------------------------------------------------------
# Lock files


@pytest.mark.parametrize(
    "name",
    [
        "requirements.txt",
        "requirements-dev.txt",
        "uv.lock",
        "poetry.lock",
        "environment.yml",
        "environment.yaml",
        "pyproject.toml",
    ],
)
def test_lock_file_names(name: str) -> None:
    assert is_lockfile_name(name)


@pytest.mark.parametrize(
    "name", ["README.md", "Requirements.txt", "requirements.txt.bak", "uv.lock~"]
)
def test_other_names_are_not_lock_files(name: str) -> None:
    assert not is_lockfile_name(name)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("uv.lock", None),
        ("../../uv.lock", None),  # a monorepo's root lock file
        ("./env/../requirements.txt", None),
        ("/etc/passwd", "must be relative"),
        ("C:/uv.lock", "must be relative"),
        ("env\\uv.lock", "must be relative"),
        ("a/..", "does not name a file"),
        (".", "does not name a file"),
        ("uv\x1b.lock", "contains a control character (U+001B, escape)"),
    ],
)
def test_lock_file_paths_follow_the_dataset_rule(path: str, problem: str | None) -> None:
    found = lockfile_path_problem(path)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_listed_lock_files_add_to_the_found_ones_each_once() -> None:
    assert lockfile_paths(["uv.lock", "pyproject.toml"], ["./uv.lock", "../../poetry.lock"]) == [
        "../../poetry.lock",
        "pyproject.toml",
        "uv.lock",
    ]


# ---------------------------------------------------------------------------------------------
# prepare(): what publish packs, from the file system and the environment


def _prepare(manifest_path: Path, env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    loaded = validate_manifest(manifest_path).manifest
    assert loaded is not None
    packed, _ = prepare(loaded, manifest_path.parent, Settings.build(env), lambda: 0.0)
    return packed.digest, dict(packed.record)


def test_lock_files_next_to_the_manifest_are_found_and_listed_ones_added(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    manifest = make_model(root / "models" / "churn", build={"lockfiles": ["../../uv.lock"]})
    (root / "uv.lock").write_text("uv lock\n")
    folder = manifest.parent
    (folder / "requirements.txt").write_text("numpy==2.0\n")
    (folder / "requirements-dev.txt").write_text("pytest\n")
    (folder / "pyproject.toml").mkdir()  # a folder of that name is not a lock file
    (folder / "poetry.lock").symlink_to(root / "missing")  # nor a dangling symlink
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1")
    _digest, record = _prepare(manifest, env)
    build = record["build"]
    assert [f["path"] for f in build["lockfiles"]] == [
        "../../uv.lock",
        "requirements-dev.txt",
        "requirements.txt",
    ]
    assert build["lockfiles"][2]["size"] == len("numpy==2.0\n")
    assert "ci" not in build  # not in GitHub Actions
    assert build["python"] == python_version() and build["platform"] == machine_platform()


def test_re_packing_unchanged_files_gives_the_same_digest(tmp_path: Path) -> None:
    manifest = make_model(tmp_path / "m", build={"command": "python train.py"})
    (manifest.parent / "uv.lock").write_text("a\n")
    env = base_env(tmp_path / "home")
    first, _ = _prepare(manifest, env)
    assert _prepare(manifest, env)[0] == first
    (manifest.parent / "uv.lock").write_text("b\n")  # the environment changed: a new build
    assert _prepare(manifest, env)[0] != first


def test_a_re_run_of_the_same_workflow_run_packs_the_same_digest(tmp_path: Path) -> None:
    manifest = make_model(tmp_path / "m")
    env = base_env(tmp_path / "home", **ACTIONS_ENV)
    first, record = _prepare(manifest, env)
    assert record["build"]["ci"]["runId"] == "4242"
    assert _prepare(manifest, {**env, **RERUN})[0] == first
    assert _prepare(manifest, {**env, "GITHUB_RUN_ID": "4243"})[0] != first  # another run


def test_a_secret_in_the_manifest_command_is_masked(tmp_path: Path) -> None:
    token = "ghp_" + "z" * 36
    manifest = make_model(tmp_path / "m", build={"command": ["train", "--token", token]})
    env = base_env(tmp_path / "home", GITHUB_TOKEN="not-this-one-either")
    _digest, record = _prepare(manifest, env)
    assert token not in json.dumps(record)
    assert record["build"]["command"][:2] == ["train", "--token"]


# ---------------------------------------------------------------------------------------------
# The manifest: schema and file checks


def _findings(folder: Path, build: Any) -> list[tuple[str, str]]:
    manifest = make_model(folder, build=build)
    result = validate_manifest(manifest, "modelver.yaml")
    return [(f.path, f.message) for f in result.findings]


@pytest.mark.parametrize(
    "build",
    [
        {"command": "python train.py"},
        {"command": ["python", "train.py"]},
        {"lockfiles": []},
        {},
    ],
)
def test_valid_build_blocks(tmp_path: Path, build: Any) -> None:
    assert _findings(tmp_path, build) == []


@pytest.mark.parametrize(
    ("build", "path"),
    [
        ({"command": ""}, "$.build.command"),
        ({"command": []}, "$.build.command"),
        ({"command": 3}, "$.build.command"),
        ({"command": "a\nb"}, "$.build.command"),
        ({"command": ["a", "b\x1b"]}, "$.build.command[1]"),
        ({"lockfiles": "uv.lock"}, "$.build.lockfiles"),
        ({"lockfile": ["uv.lock"]}, "$.build.lockfile"),
        ({"lockfiles": ["missing.lock"]}, "$.build.lockfiles[0]"),
        ({"lockfiles": ["/etc/hostname"]}, "$.build.lockfiles[0]"),
        ({"lockfiles": ["a\\uv.lock"]}, "$.build.lockfiles[0]"),
        ({"lockfiles": ["model"]}, "$.build.lockfiles[0]"),  # a folder
        ({"lockfiles": ["README.md", "./README.md"]}, "$.build.lockfiles[1]"),
        ("python train.py", "$.build"),
    ],
)
def test_invalid_build_blocks_are_located(tmp_path: Path, build: Any, path: str) -> None:
    found = _findings(tmp_path, build)
    assert found and all(p.startswith(path) for p, _ in found), found
    assert all("\n" not in m and "\x1b" not in m for _, m in found)


def test_the_manifest_example_of_the_reference_validates(tmp_path: Path) -> None:
    manifest = make_model(tmp_path)
    text = manifest.read_text() + yaml.safe_dump(
        {"build": {"command": ["python", "train.py", "--epochs", "3"]}}
    )
    manifest.write_text(text)
    assert validate_manifest(manifest).ok


# ---------------------------------------------------------------------------------------------
# publish --command, through the CLI, into a layout


def test_publish_command_is_recorded_and_re_publish_is_a_no_op(tmp_path: Path) -> None:
    manifest = make_model(tmp_path / "m", build={"command": "from the manifest"})
    (manifest.parent / "requirements.txt").write_text("numpy\n")
    env = base_env(tmp_path / "home")
    store = f"oci:{tmp_path / 'store'}"
    args = ("publish", str(manifest), "--repository", store, "--format", "json")
    first = run_cli(*args, "--command", "python train.py --epochs 3", env=env)
    assert first.code == 0, first.err
    again = run_cli(*args, "--command", "python train.py --epochs 3", env=env)
    assert again.code == 0, again.err
    assert json.loads(again.out)["status"] == "unchanged"
    assert json.loads(again.out)["digest"] == json.loads(first.out)["digest"]
    shown = run_cli("show", f"{store}:1.0.0", "--format", "json", env=env)
    build = json.loads(shown.out)["record"]["build"]
    assert build["command"] == "python train.py --epochs 3"
    assert [f["path"] for f in build["lockfiles"]] == ["requirements.txt"]
    # Another command is another build of the same version: refused like any changed content.
    other = run_cli(*args, "--command", "python train.py --epochs 4", env=env)
    assert other.code == ExitCode.CONFLICT, other.err


def test_a_bad_command_flag_writes_nothing(tmp_path: Path) -> None:
    manifest = make_model(tmp_path / "m")
    store = tmp_path / "store"
    result = run_cli(
        "publish",
        str(manifest),
        "--repository",
        f"oci:{store}",
        "--command",
        "a\rb",
        env=base_env(tmp_path / "home"),
    )
    assert result.code == ExitCode.INVALID_INPUT
    assert result.err.count("\n") == 1 and result.err.startswith("error: --command: ")
    assert "\r" not in result.err and not store.exists()


def test_a_command_of_the_wrong_type_says_what_it_may_be(tmp_path: Path) -> None:
    assert _findings(tmp_path, {"command": 3}) == [
        (
            "$.build.command",
            "expected a command line (a string) or a list of its words, got the number 3",
        )
    ]


# ---------------------------------------------------------------------------------------------
# reproduce --check-env and show, on a layout


def _published(tmp_path: Path, **fields: Any) -> tuple[Path, str, dict[str, str]]:
    root = tmp_path / "repo"
    manifest = make_model(root / "models" / "m", **fields)
    (root / "uv.lock").write_text("root lock\n")
    (manifest.parent / "requirements.txt").write_text("numpy==2.0\n")
    env = base_env(tmp_path / "home", MODELVER_NO_CACHE="1")
    store = f"oci:{tmp_path / 'store'}"
    published = run_cli(
        "publish",
        str(manifest),
        "--repository",
        store,
        "--command",
        "python train.py --seed 7",
        env=env,
    )
    assert published.code == 0, published.err
    return manifest.parent, f"{store}:1.0.0", env


def test_reproduce_prints_the_build_and_checks_matching_lock_files(tmp_path: Path) -> None:
    folder, ref, env = _published(tmp_path, build={"lockfiles": ["../../uv.lock"]})
    result = run_cli("reproduce", ref, "--check-env", str(folder), env=env)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "  command:   python train.py --seed 7" in lines
    assert (
        f"  python:    {python_version()} on {machine_platform()}  (the publishing machine)"
        in lines
    )
    assert any(line.startswith("  lock file: ../../uv.lock  sha256:") for line in lines)
    assert lines[lines.index("environment check:") + 1 :][:2] == [
        "  ../../uv.lock: match",
        "  requirements.txt: match",
    ]
    doc = json.loads(
        run_cli("reproduce", ref, "--check-env", str(folder), "--format", "json", env=env).out
    )
    assert doc["commands"] == ["python train.py --seed 7"]
    assert doc["build"]["command"] == "python train.py --seed 7"
    assert [c["status"] for c in doc["envCheck"]] == ["match", "match"]


def test_reproduce_with_a_changed_lock_file_exits_1_and_names_it(tmp_path: Path) -> None:
    folder, ref, env = _published(tmp_path)
    (folder / "requirements.txt").write_text("numpy==2.1\n")
    result = run_cli("reproduce", ref, "--check-env", str(folder), env=env)
    assert result.code == ExitCode.GATE_FAILED
    assert "  requirements.txt: mismatch (found sha256:" in result.out
    [error] = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert error == (
        "error: lock file(s) differ from the ones recorded at publish time: "
        "requirements.txt (mismatch)"
    )
    assert result.err.splitlines()[-1] == error


def test_reproduce_with_a_missing_lock_file_exits_1(tmp_path: Path) -> None:
    folder, ref, env = _published(tmp_path)
    (folder / "requirements.txt").unlink()
    result = run_cli("reproduce", ref, "--check-env", str(folder), env=env)
    assert result.code == ExitCode.GATE_FAILED
    assert "requirements.txt (missing)" in result.err.splitlines()[-1]


def test_reproduce_without_check_env_does_not_judge(tmp_path: Path) -> None:
    folder, ref, env = _published(tmp_path)
    (folder / "requirements.txt").write_text("changed\n")
    result = run_cli("reproduce", ref, env=env)
    assert result.code == 0, result.err
    assert "environment check:" not in result.out


def test_check_env_that_is_not_a_folder_is_refused_before_any_request(tmp_path: Path) -> None:
    # Sockets are off here: asking the registry first would be an internal error (exit 70).
    result = run_cli(
        "reproduce",
        "127.0.0.1:9/acme/m:1.0.0",
        "--check-env",
        str(tmp_path / "nope"),
        env=base_env(tmp_path / "home"),
    )
    assert result.code == ExitCode.INVALID_INPUT, result.err
    assert result.err.splitlines() == [
        f"error: --check-env {tmp_path / 'nope'}: not a folder; give the folder the version's "
        "manifest was published from"
    ]


def test_paths_from_a_record_only_ever_hash_regular_files(tmp_path: Path) -> None:
    """The record is untrusted: an absolute path is refused, a device is never opened."""
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    up = "../" * (len(folder.parts) + 2)
    device = _check_lockfile({"path": f"{up}dev/null", "digest": D1}, folder)
    assert device.status == "refused" and device.found is None  # opened, it would hash to e3b0…
    assert _check_lockfile({"path": "/etc/hostname", "digest": D1}, folder).status == "refused"
    assert _check_lockfile({"path": "a\\b", "digest": D1}, folder).status == "refused"
    (folder / "sub").mkdir()
    assert _check_lockfile({"path": "sub", "digest": D1}, folder).status == "refused"
    assert _check_lockfile({"path": "gone.lock", "digest": D1}, folder).status == "missing"


def test_show_prints_the_build_block(tmp_path: Path) -> None:
    _folder, ref, env = _published(tmp_path)
    result = run_cli("show", ref, env=env)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    start = lines.index("build:")
    assert lines[start + 1] == "  command:   python train.py --seed 7"
    assert any(line.startswith("  lock file: requirements.txt  sha256:") for line in lines[start:])
    shown = json.loads(run_cli("show", ref, "--format", "json", env=env).out)
    assert shown["record"]["build"]["lockfiles"][0]["path"] == "requirements.txt"


def test_the_registry_password_typed_into_a_command_is_not_published(tmp_path: Path) -> None:
    password = "s3cr3t-registry-pw"
    manifest = make_model(tmp_path / "m")
    env = base_env(tmp_path / "home", MODELVER_REGISTRY_PASSWORD=password)
    store = tmp_path / "store"
    result = run_cli(
        "publish",
        str(manifest),
        "--repository",
        f"oci:{store}",
        "--command",
        f"python train.py --pull-password {password} --data https://bot:{password}@data.example/x",
        env=env,
    )
    assert result.code == 0, result.err
    assert password not in result.out + result.err
    for path in store.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    shown = run_cli("show", f"oci:{store}:1.0.0", "--format", "json", env=env)
    command = json.loads(shown.out)["record"]["build"]["command"]
    assert command == (
        "python train.py --pull-password <redacted> --data https://***@data.example/x"
    )

"""Patterns in files[].path: expanded at validation, one entry per matching file in path order,
with the rules of listed paths; a pattern matching nothing is a located finding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ci_modelver.core.manifest import FileEntry
from ci_modelver.core.validate import is_pattern, name_matches
from ci_modelver.validation import expand_pattern, validate_manifest
from tests.conftest import run_cli
from tests.helpers import base_env


def _touch(base: Path, *names: str) -> None:
    for name in names:
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def _manifest(folder: Path, files_block: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "modelver.yaml"
    manifest.write_text(f"name: demo\nversion: 1.0.0\nfiles:\n{files_block}")
    return manifest


def _findings(manifest: Path) -> list[tuple[int, str, str]]:
    result = validate_manifest(manifest, "modelver.yaml")
    return [(f.line, f.path, f.message) for f in result.findings]


@pytest.mark.parametrize(
    ("path", "pattern"),
    [("model-*.bin", True), ("shard?.bin", True), ("w[0-9].bin", True), ("a/b.bin", False)],
)
def test_what_is_a_pattern(path: str, pattern: bool) -> None:
    assert is_pattern(path) is pattern


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*.bin", "model.bin", True),
        ("*.bin", "model.BIN", False),  # case-sensitive everywhere
        ("*", ".hidden", False),
        (".*", ".hidden", True),
        ("w?.bin", "w1.bin", True),
        ("w?.bin", "w10.bin", False),
        ("w[0-9].bin", "w7.bin", True),
        ("w[!0-9].bin", "w7.bin", False),
        ("weights[[]1].bin", "weights[1].bin", True),
    ],
)
def test_name_matching_rules(pattern: str, name: str, matches: bool) -> None:
    assert name_matches(pattern, name) is matches


def test_matches_are_sorted_by_code_point_and_files_only(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "model-00010-of-00012.safetensors",
        "model-00002-of-00012.safetensors",
        "model-00001-of-00012.safetensors",
        "Model-00003-of-00012.safetensors",  # capital: another name
        "model-index.json",
        "model-dir.safetensors/inner.bin",  # a folder matching the name: not a file
        ".model-hidden.safetensors",
    )
    assert expand_pattern(tmp_path, "model-*.safetensors") == [
        "model-00001-of-00012.safetensors",
        "model-00002-of-00012.safetensors",
        "model-00010-of-00012.safetensors",
    ]
    assert expand_pattern(tmp_path, "*-00003-*") == ["Model-00003-of-00012.safetensors"]
    assert expand_pattern(tmp_path, ".model-*") == [".model-hidden.safetensors"]


def test_code_point_order_is_not_natural_order(tmp_path: Path) -> None:
    _touch(tmp_path, "shard-9.bin", "shard-10.bin", "shard-1.bin", "shard-é.bin", "shard-z.bin")
    assert expand_pattern(tmp_path, "shard-*.bin") == [
        "shard-1.bin",
        "shard-10.bin",
        "shard-9.bin",
        "shard-z.bin",
        "shard-é.bin",
    ]


def test_patterns_in_folders_and_double_star(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "shards/a.bin",
        "shards/b.txt",
        "shards/deep/c.bin",
        "shards/deep/deeper/d.bin",
        "shards/.cache/e.bin",
        "other/f.bin",
    )
    assert expand_pattern(tmp_path, "shards/*.bin") == ["shards/a.bin"]
    assert expand_pattern(tmp_path, "./shards//*.bin") == ["shards/a.bin"]
    assert expand_pattern(tmp_path, "*/*.bin") == ["other/f.bin", "shards/a.bin"]
    assert expand_pattern(tmp_path, "shards/**/*.bin") == [
        "shards/a.bin",
        "shards/deep/c.bin",
        "shards/deep/deeper/d.bin",
    ]
    assert expand_pattern(tmp_path, "**/*.bin") == [
        "other/f.bin",
        "shards/a.bin",
        "shards/deep/c.bin",
        "shards/deep/deeper/d.bin",
    ]
    assert expand_pattern(tmp_path, "shards/**") == [
        "shards/a.bin",
        "shards/b.txt",
        "shards/deep/c.bin",
        "shards/deep/deeper/d.bin",
    ]
    assert expand_pattern(tmp_path, "s*/d*/*.bin") == ["shards/deep/c.bin"]
    assert expand_pattern(tmp_path, "nowhere/*.bin") == []


def test_a_wildcard_never_descends_a_symlinked_folder(tmp_path: Path) -> None:
    _touch(tmp_path, "shards/a.bin")
    (tmp_path / "shards" / "loop").symlink_to(".", target_is_directory=True)
    (tmp_path / "alias").symlink_to("shards", target_is_directory=True)
    assert expand_pattern(tmp_path, "**/*.bin") == ["shards/a.bin"]
    assert expand_pattern(tmp_path, "*/a.bin") == ["shards/a.bin"]
    # a literal part is taken as written, like a listed path
    assert expand_pattern(tmp_path, "alias/*.bin") == ["alias/a.bin"]


def test_a_pattern_becomes_one_entry_per_file_in_place(tmp_path: Path) -> None:
    _touch(tmp_path, "config.json", "model-2.safetensors", "model-1.safetensors", "README.md")
    manifest = _manifest(
        tmp_path,
        "  - {path: config.json, type: weight-config}\n"
        "  - {path: 'model-*.safetensors', type: weight, description: a shard}\n"
        "  - {path: README.md, type: doc}\n",
    )
    result = validate_manifest(manifest)
    assert result.ok, result.findings
    assert result.manifest is not None
    assert result.manifest.files == (
        FileEntry("config.json", "weight-config"),
        FileEntry("model-1.safetensors", "weight", "a shard"),
        FileEntry("model-2.safetensors", "weight", "a shard"),
        FileEntry("README.md", "doc"),
    )


def test_a_pattern_matching_nothing_is_a_located_finding(tmp_path: Path) -> None:
    _touch(tmp_path, "weights.bin")
    (tmp_path / "shards").mkdir()
    manifest = _manifest(
        tmp_path,
        "  - {path: weights.bin, type: weight}\n  - {path: 'shards/*.bin', type: weight}\n",
    )
    assert _findings(manifest) == [
        (
            5,
            "$.files[1].path",
            "file pattern 'shards/*.bin' matches no file; a pattern matches files only "
            "(list a folder by its name), and '*' skips names that start with '.'",
        )
    ]


def test_a_pattern_matching_nothing_exits_2(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "  - {path: 'model-*.safetensors', type: weight}\n")
    result = run_cli("validate", str(manifest), "--format", "json")
    assert result.code == 2
    [finding] = json.loads(result.out)["findings"]
    assert finding["path"] == "$.files[0].path"
    assert finding["line"] == 4
    published = run_cli("publish", str(manifest), env=base_env(tmp_path))
    assert published.code == 2
    assert "file pattern 'model-*.safetensors' matches no file" in published.out + published.err


def test_a_match_listed_again_clashes(tmp_path: Path) -> None:
    _touch(tmp_path, "model-1.bin", "model-2.bin")
    manifest = _manifest(
        tmp_path,
        "  - {path: model-2.bin, type: weight}\n  - {path: 'model-*.bin', type: weight}\n",
    )
    assert _findings(manifest) == [
        (
            5,
            "$.files[1].path",
            "file 'model-2.bin' (matched by 'model-*.bin') is listed twice (also files[0])",
        )
    ]


def test_matches_that_are_one_name_on_macos_clash(tmp_path: Path) -> None:
    _touch(tmp_path, "W.bin", "w.bin")
    manifest = _manifest(tmp_path, "  - {path: '*.bin', type: weight}\n")
    [(line, where, message)] = _findings(manifest)
    assert (line, where) == (4, "$.files[0].path")
    assert message.startswith(
        "file 'w.bin' (matched by '*.bin') is the same file as files[0] 'W.bin' (matched by '*.bin')"
    )


def test_a_match_that_is_a_symlink_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"not the model's")
    model = tmp_path / "m"
    _touch(model, "shards/a.bin")
    (model / "shards" / "b.bin").symlink_to("../../secret.bin")
    manifest = _manifest(model, "  - {path: 'shards/*.bin', type: weight}\n")
    assert _findings(manifest) == [
        (
            4,
            "$.files[0].path",
            "file 'shards/b.bin' (matched by 'shards/*.bin') resolves outside the manifest's "
            "folder (symlink)",
        )
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_match_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path, "a.bin")
    os.mkfifo(tmp_path / "b.bin")
    manifest = _manifest(tmp_path, "  - {path: '*.bin', type: weight}\n")
    assert _findings(manifest) == [
        (4, "$.files[0].path", "file 'b.bin' (matched by '*.bin') is not a regular file")
    ]


def test_a_match_with_a_name_pull_refuses_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path, "a.bin", "b\\c.bin")
    manifest = _manifest(tmp_path, "  - {path: '*.bin', type: weight}\n")
    assert _findings(manifest) == [
        (
            4,
            "$.files[0].path",
            "file path 'b\\c.bin' (matched by '*.bin') use '/' as separator, not '\\'",
        )
    ]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "../*.bin",
            "file path '../*.bin' must stay inside the manifest's folder ('..' is not allowed)",
        ),
        (
            "/tmp/*.bin",
            "file path '/tmp/*.bin' must be relative to the manifest's folder, not absolute",
        ),
    ],
)
def test_a_pattern_meets_the_path_rules_itself(tmp_path: Path, pattern: str, message: str) -> None:
    (tmp_path.parent / "x.bin").write_bytes(b"x")
    manifest = _manifest(tmp_path, f"  - {{path: '{pattern}', type: weight}}\n")
    assert _findings(manifest) == [(4, "$.files[0].path", message)]


def test_patterns_publish_and_pull_one_layer_per_file(tmp_path: Path) -> None:
    model = tmp_path / "m"
    _touch(model, "shards/model-2.bin", "shards/model-1.bin", "shards/notes.txt", "config.json")
    manifest = _manifest(
        model,
        "  - {path: 'shards/model-*.bin', type: weight}\n  - {path: config.json, type: weight-config}\n",
    )
    env = base_env(tmp_path / "home")
    store = f"oci:{tmp_path / 'store'}"
    published = run_cli("publish", str(manifest), "--repository", store, env=env)
    assert published.code == 0, published.err
    out = tmp_path / "out"
    pulled = run_cli("pull", f"{store}:1.0.0", "-o", str(out), "--format", "json", env=env)
    assert pulled.code == 0, pulled.err
    assert [f["path"] for f in json.loads(pulled.out)["files"]] == [
        "shards/model-1.bin",
        "shards/model-2.bin",
        "config.json",
    ]
    assert (out / "shards" / "model-1.bin").read_bytes() == b"shards/model-1.bin"
    assert not (out / "shards" / "notes.txt").exists()

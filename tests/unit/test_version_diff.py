"""The core of ``diff A B`` on hand-made records: files, data, hyperparameters, metrics, code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ci_modelver.core.version_diff import (
    FileState,
    VersionInput,
    diff_values,
    diff_versions,
    github_compare_url,
    github_repository,
    record_gates,
)

DA = "sha256:" + "a" * 64
DB = "sha256:" + "b" * 64
C1, C2 = "1" * 40, "2" * 40
REPO = "https://github.com/acme/churn"


def _file(
    path: str, digest: str, size: int = 10, kind: str = "weight", folder: bool = False
) -> FileState:
    media = f"application/vnd.cncf.model.{kind}.v1.{'tar' if folder else 'raw'}"
    return FileState(path, kind, media, folder, size, "sha256:" + digest * 64)


def _side(
    digest: str = DA,
    *,
    version: str = "1.0.0",
    files: tuple[FileState, ...] = (),
    aliases: tuple[str, ...] = (),
    **record: Any,
) -> VersionInput:
    full = {"name": "churn", "version": version, "created": "2026-01-01T00:00:00Z", **record}
    return VersionInput(
        ref=f"ghcr.io/acme/churn@{digest}",
        digest=digest,
        name="churn",
        version=version,
        created=full["created"],
        record=full,
        files=files,
        aliases=aliases,
    )


def test_files_added_removed_changed_and_folders() -> None:
    a = _side(
        files=(
            _file("model.bin", "1", 100),
            _file("README.md", "2", 5, "doc"),
            _file("old.txt", "3"),
        )
    )
    b = _side(
        DB,
        files=(
            _file("model.bin", "4", 104),
            _file("README.md", "2", 5, "doc"),
            _file("tokenizer", "5", 2048, "weight-config", folder=True),
        ),
    )
    diff = diff_versions(a, b)
    assert [(f.path, f.change) for f in diff.files] == [
        ("model.bin", "changed"),
        ("old.txt", "removed"),
        ("tokenizer", "added"),
    ]
    assert diff.unchanged_files == 1
    doc = diff.to_json()["files"]
    assert doc[0]["a"]["size"] == 100 and doc[0]["b"]["size"] == 104
    assert doc[0]["b"]["digest"] == "sha256:" + "4" * 64
    assert doc[2]["a"] is None
    assert doc[2]["b"]["folder"] is True
    assert doc[2]["b"]["mediaType"] == "application/vnd.cncf.model.weight-config.v1.tar"


def test_a_media_type_change_alone_is_a_change() -> None:
    a = _side(files=(_file("data", "1", 10, "dataset"),))
    b = _side(DB, files=(_file("data", "1", 10, "dataset", folder=True),))
    assert [f.change for f in diff_versions(a, b).files] == ["changed"]


def test_nested_hyperparameters_as_dotted_paths_lists_as_values() -> None:
    a = {"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.99], "eps": 1e-8}, "epochs": 10}
    b = {
        "lr": 0.1,
        "optimizer": {"name": "sgd", "betas": [0.9, 0.999], "momentum": 0.9},
        "seed": None,
    }
    changes = {c.key: (c.change, c.a, c.b) for c in diff_values(a, b)}
    assert changes == {
        "epochs": ("removed", 10, None),
        "optimizer.betas": ("changed", [0.9, 0.99], [0.9, 0.999]),
        "optimizer.eps": ("removed", 1e-8, None),
        "optimizer.momentum": ("added", None, 0.9),
        "optimizer.name": ("changed", "adam", "sgd"),
        "seed": ("added", None, None),  # present with null is not absent
    }


def test_values_compare_by_value_not_spelling() -> None:
    assert diff_values({"n": 1, "l": [1, 2]}, {"n": 1.0, "l": [1, 2]}) == ()
    assert [c.key for c in diff_values({"flag": True}, {"flag": 1})] == ["flag"]
    assert [c.key for c in diff_values({"l": [1, 2]}, {"l": [2, 1]})] == ["l"]


def test_dotted_keys_and_nesting_do_not_collide() -> None:
    changes = diff_values({"a.b": 1, "a": {"b": 1}}, {"a": {"b": 2}})
    # ("a", "b") sorts before ("a.b",): the nested key changed, the dotted one is gone
    assert [(c.key, c.change) for c in changes] == [("a.b", "changed"), ("a.b", "removed")]


def test_metric_deltas_and_gates_from_b_else_a() -> None:
    gates_a = {"accuracy": {"direction": "higher", "tolerance": 0.01}}
    gates_b = {"validation/loss": {"direction": "lower", "tolerance": "5%"}}
    a = _side(
        metrics={"validation": {"accuracy": 0.80, "loss": 0.40, "gone": 1.0}, "set10": {"x": 1}},
        gates=gates_a,
    )
    b = _side(
        DB,
        metrics={"validation": {"accuracy": 0.76, "loss": 0.41, "new": 2.0}, "set2": {"x": 1}},
        gates=gates_b,
    )
    diff = diff_versions(a, b)
    assert diff.gates_from == "b"
    rows = {(m.set, m.metric): m for m in diff.metrics}
    assert [s for s in dict.fromkeys(m.set for m in diff.metrics)] == [
        "set2",
        "set10",
        "validation",
    ]
    loss = rows[("validation", "loss")]
    assert loss.gated and loss.direction == "lower" and loss.verdict == "worse-within-tolerance"
    assert loss.delta == pytest.approx(0.01)
    assert loss.delta_percent == pytest.approx(2.5)
    accuracy = rows[("validation", "accuracy")]
    assert not accuracy.gated and accuracy.verdict == "changed"  # B's gates win over A's
    assert rows[("validation", "gone")].change == "removed"
    assert rows[("validation", "new")].change == "added"
    assert rows[("validation", "new")].delta is None
    doc = diff.to_json()
    assert doc["gatesFrom"] == "b"
    entry = next(m for m in doc["metrics"] if m["metric"] == "loss")
    assert entry["gated"] is True and entry["deltaPercent"] == pytest.approx(2.5)

    without = diff_versions(a, _side(DB, metrics=b.record["metrics"]))
    assert without.gates_from == "a"
    acc = next(m for m in without.metrics if m.metric == "accuracy")
    assert acc.gated and acc.verdict == "failed"
    assert diff_versions(_side(), _side(DB)).gates_from is None


def test_hostile_gates_are_left_out() -> None:
    gates = record_gates(
        {
            "gates": {
                "a": {"direction": "sideways"},
                "b": "higher",
                "c": {"direction": "lower", "tolerance": "abc%", "min": "x", "max": float("inf")},
                "d": {"direction": "higher", "tolerance": -3},
            }
        }
    )
    assert [(g.key, g.tolerance.value, g.min, g.max) for g in gates] == [
        ("c", 0.0, None, None),
        ("d", 0.0, None, None),
    ]
    assert record_gates({"gates": ["accuracy"]}) == ()


def test_data_framework_record_and_build() -> None:
    a = _side(
        data=[
            {"name": "train", "uri": "s3://b/train.csv", "digest": "sha256:" + "c" * 64},
            {"name": "eval", "uri": "s3://b/eval.csv"},
        ],
        framework={"name": "sklearn", "version": "1.4"},
        description="old",
        build={"python": "3.11.9", "ci": {"runUrl": "https://x/1"}},
    )
    b = _side(
        DB,
        data=[
            {"name": "train", "uri": "s3://b/train.csv", "digest": "sha256:" + "d" * 64},
            {"name": "holdout", "uri": "s3://b/h.csv"},
        ],
        framework={"name": "sklearn", "version": "1.5", "extra": {"cuda": "12"}},
        description="new",
        license="MIT",
        build={"python": "3.12.1", "ci": {"runUrl": "https://x/2"}},
    )
    diff = diff_versions(a, b)
    assert [(d.name, d.change) for d in diff.data] == [
        ("eval", "removed"),
        ("holdout", "added"),
        ("train", "changed"),
    ]
    assert diff.data[2].b is not None and diff.data[2].b.digest == "sha256:" + "d" * 64
    assert [(c.key, c.change) for c in diff.framework] == [
        ("extra.cuda", "added"),
        ("version", "changed"),
    ]
    assert [(c.key, c.a, c.b) for c in diff.record] == [
        ("description", "old", "new"),
        ("license", None, "MIT"),
    ]
    assert [c.key for c in diff.build] == ["python"]  # the CI run differs every time


def test_identical_versions() -> None:
    side = _side(
        files=(_file("model.bin", "1"),),
        metrics={"validation": {"accuracy": 0.8}},
        code={"repository": REPO, "commit": C1},
        aliases=("production",),
    )
    diff = diff_versions(side, side)
    assert diff.identical and not diff.changed
    assert diff.files == () and diff.unchanged_files == 1
    assert [m.change for m in diff.metrics] == ["unchanged"]
    assert diff.code.compare_url is None
    doc = diff.to_json()
    assert doc["identical"] is True and doc["changed"] is False
    assert doc["a"]["aliases"] == ["production"]
    json.dumps(doc)  # plain JSON


def test_other_digest_same_content_is_not_identical_but_unchanged() -> None:
    diff = diff_versions(_side(), _side(DB, created="2026-02-01T00:00:00Z"))
    assert not diff.identical and not diff.changed
    assert diff.b.created == "2026-02-01T00:00:00Z"


def test_code_compare_link_for_the_same_github_repository() -> None:
    a = _side(code={"repository": REPO, "commit": C1})
    b = _side(DB, code={"repository": "https://github.com/Acme/Churn.git", "commit": C2})
    diff = diff_versions(a, b)
    assert diff.code.compare_url == f"https://github.com/Acme/Churn/compare/{C1}...{C2}"
    assert diff.code.commits == (C1, C2)
    assert {c.key for c in diff.code.changes} == {"commit", "repository"}


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/acme/churn",
        "https://github.com.evil.example/acme/churn",
        "https://evil.example/github.com/acme/churn",
        "https://user:token@github.com/acme/churn",
        "https://github.com:443/acme/churn",
        "https://github.com/acme/churn?x=1",
        "https://github.com/acme/churn#frag",
        "https://github.com/acme/churn/tree/main",
        "https://github.com/acme",
        "https://github.com/../churn",
        "https://github.com/acme/..",
        "https://github.com/acme/churn)[x](https://evil.example",
        "https://github.com/acme/ch urn",
        "https://github.com/acme/churn\n",
        "https://github.com/acme/<script>",
        "https://github.com/ac%2Fme/churn",
        "https://github.com/\u0430cme/churn",  # a Cyrillic a
        "javascript:alert(1)//https://github.com/acme/churn",
        "git@github.com:acme/churn.git",
        "",
    ],
)
def test_no_link_from_anything_but_a_plain_github_url(url: str) -> None:
    assert github_repository(url) is None
    assert github_compare_url(url, url, C1, C2) is None
    assert github_compare_url(REPO, url, C1, C2) is None


@pytest.mark.parametrize(
    ("commit_a", "commit_b"),
    [
        (C1, C1),  # the same commit
        (C1, None),
        (C1, "main"),
        (C1, "1" * 39 + ")"),
        (C1, f"{C2}...evil"),
        (C1, "../../settings"),
        (C1, "abc"),  # too short
        (C1, 12345),
    ],
)
def test_no_link_without_two_different_hex_commits(commit_a: Any, commit_b: Any) -> None:
    assert github_compare_url(REPO, REPO, commit_a, commit_b) is None


def test_no_link_across_repositories() -> None:
    assert github_compare_url(REPO, "https://github.com/acme/other", C1, C2) is None
    assert github_compare_url(REPO, None, C1, C2) is None
    assert github_repository("https://github.com/acme/churn/") == ("acme", "churn")
    assert github_repository("https://github.com/my.org/my_repo-1.git") == ("my.org", "my_repo-1")


def test_untrusted_record_shapes_do_not_crash() -> None:
    a = _side(data="nope", hyperparameters=["x"], framework="tf", code="x", gates=None, metrics=[1])
    b = _side(DB, data=[{"name": 3}, "x", {"uri": "s3://x"}], metrics={"s": {"m": "high"}})
    diff = diff_versions(a, b)
    assert diff.data == () and diff.hyperparameters == () and diff.metrics == ()

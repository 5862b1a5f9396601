"""The registry site's view model, built from hand-made version records (no store)."""

from __future__ import annotations

import json
from typing import Any

from ci_modelver.core.audit import AliasMove, Evaluation
from ci_modelver.core.modelpack import (
    ANN_FILEPATH,
    ANN_RECORD,
    ANN_TITLE,
    LAYER_TYPES,
    MODEL_ARTIFACT,
    MODEL_CONFIG,
    OCI_MANIFEST,
    ModelArtifact,
    parse_model_manifest,
    sha256_digest,
)
from ci_modelver.core.site_model import (
    RepoSnapshot,
    VersionSnapshot,
    commit_url,
    plain_https,
    site_view,
    slug,
)

GATES = {"accuracy": {"direction": "higher"}}


def artifact(version: str, accuracy: float, **record: Any) -> ModelArtifact:
    """A model manifest (as a store returns it) with a version record in its annotations."""
    full = {
        "name": "churn",
        "version": version,
        "created": f"2026-01-0{int(version.split('.')[1]) + 1}T00:00:00Z",
        "code": {"repository": "https://github.com/acme/models", "commit": "a" * 40},
        "data": [{"name": "train", "uri": "s3://bucket/train.csv", "digest": "sha256:" + "b" * 64}],
        "hyperparameters": {"lr": 0.1, "tree": {"depth": 6}},
        "metrics": {"validation": {"accuracy": accuracy, "loss": 0.3}},
        "gates": GATES,
        **record,
    }
    weights = f"weights-{version}".encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODEL_ARTIFACT,
        "config": {"mediaType": MODEL_CONFIG, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [
            {
                "mediaType": LAYER_TYPES["weight"],
                "digest": sha256_digest(weights),
                "size": 2048,
                "annotations": {ANN_FILEPATH: "model/weights.bin", ANN_TITLE: "model/weights.bin"},
            }
        ],
        "annotations": {ANN_RECORD: json.dumps(full, sort_keys=True)},
    }
    data = json.dumps(doc, sort_keys=True).encode()
    return parse_model_manifest(data, sha256_digest(data), f"test:{version}")


def snapshot(**overrides: Any) -> RepoSnapshot:
    """Three versions; production promoted twice (to 1.0.0, then 1.1.0); one evaluation."""
    v1, v2, v3 = artifact("1.0.0", 0.80), artifact("1.1.0", 0.82), artifact("1.2.0", 0.81)
    evaluation = Evaluation(
        {"holdout": {"accuracy": 0.79}},
        "2026-02-01T00:00:00Z",
        "qa",
        "eval.json",
        "sha256:" + "e" * 64,
    )
    moves = (
        AliasMove(
            "production",
            v1.digest,
            "2026-01-05T00:00:00Z",
            "alice",
            to_version="1.0.0",
            reason="first",
            record_digest="sha256:" + "1" * 64,
        ),
        AliasMove(
            "production",
            v2.digest,
            "2026-01-06T00:00:00Z",
            "bob",
            from_digest=v1.digest,
            from_version="1.0.0",
            to_version="1.1.0",
            reason="better AUC",
            record_digest="sha256:" + "2" * 64,
        ),
    )
    fields: dict[str, Any] = {
        "repository": "127.0.0.1:5000/acme/churn",
        "versions": (
            VersionSnapshot("1.1.0", v2, (evaluation,), 1),
            VersionSnapshot("1.0.0", v1),
            VersionSnapshot("1.2.0", v3),
        ),
        "aliases": {"production": v2.digest, "latest": v3.digest},
        "moves": moves,
        **overrides,
    }
    return RepoSnapshot(**fields)


def test_versions_newest_first_with_aliases_and_parents() -> None:
    model = site_view("Registry", None, [snapshot()]).models[0]
    assert model.name == "churn" and model.slug == "churn"
    assert [v.version for v in model.versions] == ["1.2.0", "1.1.0", "1.0.0"]
    assert model.latest is not None and model.latest.version == "1.2.0"
    assert [(a.alias, a.version) for a in model.aliases] == [
        ("latest", "1.2.0"),
        ("production", "1.1.0"),
    ]
    by = {v.version: v for v in model.versions}
    assert by["1.1.0"].aliases == ("production",)
    assert by["1.1.0"].parent == "1.0.0" and by["1.0.0"].parent is None
    assert by["1.1.0"].signatures == 1
    assert by["1.2.0"].files[0].path == "model/weights.bin" and by["1.2.0"].files[0].size == 2048


def test_alias_log_newest_first_and_last_move() -> None:
    model = site_view("Registry", None, [snapshot()]).models[0]
    assert [(m.to_version, m.actor, m.reason) for m in model.moves] == [
        ("1.1.0", "bob", "better AUC"),
        ("1.0.0", "alice", "first"),
    ]
    assert model.last_move is not None and model.last_move.actor == "bob"


def test_evaluations_overlay_the_published_metrics() -> None:
    model = site_view("Registry", None, [snapshot()]).models[0]
    v = next(v for v in model.versions if v.version == "1.1.0")
    metrics = {(m.set, m.metric): (m.value, m.gated, m.source) for m in v.metrics}
    assert metrics[("holdout", "accuracy")] == (0.79, True, "evaluation")
    assert metrics[("validation", "accuracy")] == (0.82, True, "published")
    assert metrics[("validation", "loss")] == (0.3, False, "published")
    assert v.evaluations[0].actor == "qa" and v.evaluations[0].metrics == (
        ("holdout", "accuracy", "0.79"),
    )


def test_one_chart_per_set_and_gated_metric_with_alias_markers() -> None:
    model = site_view("Registry", None, [snapshot()]).models[0]
    assert [(c.set, c.metric) for c in model.charts] == [
        ("holdout", "accuracy"),
        ("validation", "accuracy"),
    ]
    validation = model.charts[1]
    assert [(p.label, p.value, p.markers) for p in validation.points] == [
        ("1.0.0", 0.80, ()),
        ("1.1.0", 0.82, ("production",)),
        ("1.2.0", 0.81, ("latest",)),
    ]
    assert validation.direction == "higher"
    assert model.main_metric == "validation/accuracy"
    assert "<svg" in model.sparkline


def test_hyperparameters_flattened_and_code_links() -> None:
    model = site_view("Registry", None, [snapshot()]).models[0]
    v = model.versions[0]
    assert v.hyperparameters == (("lr", "0.1"), ("tree.depth", "6"))
    assert v.code is not None
    assert v.code.repository_url == "https://github.com/acme/models"
    assert v.code.commit_url == "https://github.com/acme/models/commit/" + "a" * 40


def test_links_only_for_plain_https() -> None:
    assert plain_https("https://github.com/acme/models") == "https://github.com/acme/models"
    for bad in (
        "http://github.com/acme/models",
        "javascript:alert(1)",
        "https://user:pass@github.com/x",
        "https://github.com/x?token=1",
        'https://github.com/x"onmouseover="alert(1)',
        "git@github.com:acme/models.git",
        "https://github.com/x\n",
        None,
    ):
        assert plain_https(bad) is None, bad
    assert commit_url("https://example.org/repo", "a" * 40) is None  # unknown host: no guess
    assert commit_url("https://github.com/acme/models", "not-a-sha") is None
    assert commit_url("https://gitlab.com/acme/models.git", "b" * 40) == (
        "https://gitlab.com/acme/models/-/commit/" + "b" * 40
    )


def test_slugs_are_plain_unique_and_never_dot_names() -> None:
    taken: set[str] = set()
    assert slug("churn", taken, "model") == "churn"
    assert slug("Churn", taken, "model") == "Churn-2"  # one folder on case-insensitive disks
    assert slug("..", taken, "model") == "model"
    assert slug("../../etc", taken, "model") == "_.._etc"
    assert slug("a/b", taken, "model") == "a_b"
    assert slug("assets", taken, "model") == "assets-"
    assert slug("1.0.0+build.1", set(), "v") == "1.0.0_build.1"


def test_two_repositories_with_one_model_name_get_two_folders() -> None:
    view = site_view("Registry", None, [snapshot(), snapshot(repository="127.0.0.1:5000/b/churn")])
    assert [m.slug for m in view.models] == ["churn", "churn-2"]


def test_models_json_data_is_the_page_data() -> None:
    doc = site_view("Registry", "2026-01-01T00:00:00Z", [snapshot()]).to_json()
    model = doc["models"][0]
    assert doc["generated"] == "2026-01-01T00:00:00Z"
    assert model["aliases"]["production"]["version"] == "1.1.0"
    assert [v["version"] for v in model["versions"]] == ["1.2.0", "1.1.0", "1.0.0"]
    assert model["versions"][1]["gatedMetrics"] == {
        "holdout/accuracy": 0.79,
        "validation/accuracy": 0.82,
    }
    assert [m["reason"] for m in model["aliasLog"]] == ["better AUC", "first"]


def test_a_repository_without_versions() -> None:
    view = site_view("Registry", None, [RepoSnapshot("oci:/tmp/empty-store", ())])
    model = view.models[0]
    assert model.name == "empty-store" and model.versions == () and model.sparkline == ""


def test_each_version_carries_its_changes_since_the_previous_one() -> None:
    v1 = artifact("1.0.0", 0.80)
    v2 = artifact("1.1.0", 0.82, hyperparameters={"lr": 0.05, "tree": {"depth": 6}})
    view = site_view(
        "R",
        None,
        [RepoSnapshot("r/churn", (VersionSnapshot("1.0.0", v1), VersionSnapshot("1.1.0", v2)))],
    )
    newest, oldest = view.models[0].versions
    assert oldest.changes is None
    assert newest.changes is not None
    assert [(c.key, c.a, c.b) for c in newest.changes.hyperparameters] == [("lr", 0.1, 0.05)]
    assert [(m.metric, m.a, m.b) for m in newest.changes.metric_changes] == [
        ("accuracy", 0.80, 0.82)
    ]
    assert [f.change for f in newest.changes.files] == ["changed"]
    doc = view.to_json()["models"][0]["versions"]
    assert doc[1]["changesFromParent"] is None
    assert doc[0]["changesFromParent"]["hyperparameters"][0]["key"] == "lr"

"""Deterministic ModelPack bytes, spec conformance, and refusal of what is not a model artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ci_modelver.core.manifest import FileEntry, Manifest, build_manifest
from ci_modelver.core.modelpack import (
    ANN_RECORD,
    MODEL_ARTIFACT,
    MODEL_CONFIG,
    ArtifactError,
    PackedFile,
    Provenance,
    canonical_json,
    pack,
    parse_model_manifest,
    safe_layer_paths,
    sha256_digest,
)

CONFORMANCE = (
    Path(__file__).resolve().parents[3] / "shared" / "conformance" / "modelpack-config.schema.json"
)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def _manifest() -> Manifest:
    return build_manifest(
        {
            "name": "demo",
            "version": "1.2.0",
            "description": "A demo",
            "license": "MIT",
            "files": [
                {"path": "model/w.safetensors", "type": "weight"},
                {"path": "README.md", "type": "doc"},
            ],
            "hyperparameters": {"lr": 0.1, "layers": [64, 32]},
            "gates": {"accuracy": {"direction": "higher", "tolerance": "2%"}},
            "framework": {"name": "pytorch", "version": "2.3"},
        },
        {"validation": {"accuracy": 0.91}},
    )


def _pack() -> Any:
    files = [
        PackedFile("model/w.safetensors", "weight", D1, 10),
        PackedFile("README.md", "doc", D2, 5),
    ]
    provenance = Provenance(
        created="2026-01-01T00:00:00Z",
        code={"repository": "https://github.com/acme/demo", "commit": "c" * 40, "dirty": False},
        data=[{"name": "train", "uri": "s3://b/train.csv", "digest": D1}],
    )
    return pack(_manifest(), files, provenance)


def test_identical_inputs_give_identical_bytes() -> None:
    a, b = _pack(), _pack()
    assert a.manifest == b.manifest
    assert a.digest == b.digest == sha256_digest(a.manifest)
    assert a.config == b.config


def test_any_input_change_changes_the_digest() -> None:
    base = _pack()
    files = [
        PackedFile("model/w.safetensors", "weight", D1, 10),
        PackedFile("README.md", "doc", D2, 5),
    ]
    later = pack(_manifest(), files, Provenance(created="2026-01-02T00:00:00Z"))
    other_weights = pack(
        _manifest(),
        [PackedFile("model/w.safetensors", "weight", D2, 10)],
        Provenance(created="2026-01-01T00:00:00Z"),
    )
    assert len({base.digest, later.digest, other_weights.digest}) == 3


def test_manifest_shape_and_annotations() -> None:
    packed = _pack()
    doc = json.loads(packed.manifest)
    assert packed.manifest == canonical_json(doc)
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["artifactType"] == MODEL_ARTIFACT
    assert doc["config"]["mediaType"] == MODEL_CONFIG
    assert [layer["mediaType"] for layer in doc["layers"]] == [
        "application/vnd.cncf.model.weight.v1.raw",
        "application/vnd.cncf.model.doc.v1.raw",
    ]
    for layer in doc["layers"]:
        ann = layer["annotations"]
        assert ann["org.cncf.model.filepath"] == ann["org.opencontainers.image.title"]
        meta = json.loads(ann["org.cncf.model.file.metadata+json"])
        assert meta["uid"] == meta["gid"] == 0 and meta["mtime"] == "2026-01-01T00:00:00Z"
    ann = doc["annotations"]
    assert ann["org.opencontainers.image.version"] == "1.2.0"
    assert ann["org.opencontainers.image.revision"] == "c" * 40
    assert ann["org.opencontainers.image.source"] == "https://github.com/acme/demo"
    assert ann["org.opencontainers.image.licenses"] == "MIT"
    record = json.loads(ann[ANN_RECORD])
    assert record["metrics"] == {"validation": {"accuracy": 0.91}}
    assert record["hyperparameters"] == {"lr": 0.1, "layers": [64, 32]}
    assert record["data"] == [{"name": "train", "uri": "s3://b/train.csv", "digest": D1}]
    assert record["gates"] == {"accuracy": {"direction": "higher", "tolerance": "2%"}}


@pytest.mark.skipif(not CONFORMANCE.is_file(), reason="../shared/conformance is not present")
def test_config_validates_against_the_modelpack_schema() -> None:
    schema = json.loads(CONFORMANCE.read_text("utf-8"))
    config = json.loads(_pack().config)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        config
    )
    assert config["modelfs"]["diffIds"] == [D1, D2]
    assert config["config"] == {"format": "safetensors"}


def _model_manifest(layers: list[dict[str, Any]], **top: Any) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": MODEL_ARTIFACT,
        "config": {"mediaType": MODEL_CONFIG, "digest": D1, "size": 2},
        "layers": layers,
        **top,
    }
    return json.dumps(doc).encode()


def _layer(path: str) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.cncf.model.weight.v1.raw",
        "digest": D2,
        "size": 1,
        "annotations": {"org.cncf.model.filepath": path},
    }


@pytest.mark.parametrize(
    ("paths", "fragment"),
    [
        (["../escape"], "'..'"),
        (["/etc/passwd"], "absolute"),
        (["a/../../x"], "'..'"),
        (["a.bin", "./a.bin"], "collides"),
        (["A.bin", "a.bin"], "collides"),
        (["a", "a/b"], "parent folder is also a file"),
        (["x\\..\\y"], "separator"),
        ([""], "no org.cncf.model.filepath"),
    ],
)
def test_hostile_layer_paths_are_refused(paths: list[str], fragment: str) -> None:
    artifact = parse_model_manifest(_model_manifest([_layer(p) for p in paths]), D1, "src")
    with pytest.raises(ArtifactError, match=fragment):
        safe_layer_paths(artifact, "src")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [],
                }
            ).encode(),
            "image index",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "x", "digest": D1, "size": 1},
                    "layers": [],
                }
            ).encode(),
            "Docker container image",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": D1,
                        "size": 1,
                    },
                    "layers": [],
                }
            ).encode(),
            "not a ModelPack model artifact",
        ),
        (
            _model_manifest([{"mediaType": "x", "digest": "md5:1", "size": 1}]),
            "not a sha256 digest",
        ),
        (_model_manifest([{"mediaType": "x", "digest": D1, "size": -1}]), "negative"),
    ],
)
def test_non_model_manifests_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(ArtifactError, match=fragment):
        parse_model_manifest(data, D1, "src")


def test_record_readable_from_manifest_alone() -> None:
    packed = _pack()
    artifact = parse_model_manifest(packed.manifest, packed.digest, "src")
    assert artifact.record is not None
    assert artifact.record["version"] == "1.2.0"
    assert [artifact.file_path(layer) for layer in artifact.layers] == [
        "model/w.safetensors",
        "README.md",
    ]
    assert FileEntry("README.md", "doc") in _manifest().files

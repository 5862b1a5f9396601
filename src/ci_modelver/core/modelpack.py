"""Deterministic ModelPack (CNCF model-spec v0.0.7) manifest and config bytes, and their parsing.

Identical inputs give byte-identical JSON (sorted keys, compact separators, no clock reads), so
the manifest digest identifies the version's content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ci_modelver.core import json_bounds
from ci_modelver.core.manifest import FileType, Manifest
from ci_modelver.core.provenance import normalize_build
from ci_modelver.core.refs import DIGEST_RE
from ci_modelver.core.text import strip_userinfo
from ci_modelver.core.validate import (
    is_finite_number,
    normalise_relative,
    path_clashes,
    relative_path_problem,
)
from ci_modelver.errors import ArtifactError, InputError, ManifestTooLarge

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MODEL_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
LAYER_TYPES: Mapping[FileType, str] = {
    "weight": "application/vnd.cncf.model.weight.v1.raw",
    "weight-config": "application/vnd.cncf.model.weight.config.v1.raw",
    "doc": "application/vnd.cncf.model.doc.v1.raw",
    "code": "application/vnd.cncf.model.code.v1.raw",
    "dataset": "application/vnd.cncf.model.dataset.v1.raw",
}
# A folder is one layer: ModelPack's .tar variant of the same type.
TAR_LAYER_TYPES: Mapping[FileType, str] = {
    k: v[: -len(".raw")] + ".tar" for k, v in LAYER_TYPES.items()
}
FILE_TYPE_OF: Mapping[str, FileType] = {v: k for k, v in LAYER_TYPES.items()} | {
    v: k for k, v in TAR_LAYER_TYPES.items()
}


def is_tar_layer(layer: Descriptor) -> bool:
    """ModelPack's ``.tar`` layer variant: a directory archived by another tool (modctl, kit)."""
    return layer.media_type.startswith("application/vnd.cncf.model.") and layer.media_type.endswith(
        ".tar"
    )


ANN_FILEPATH = "org.cncf.model.filepath"
ANN_FILE_METADATA = "org.cncf.model.file.metadata+json"
ANN_TITLE = "org.opencontainers.image.title"
ANN_VERSION = "org.opencontainers.image.version"
ANN_REVISION = "org.opencontainers.image.revision"
ANN_SOURCE = "org.opencontainers.image.source"
ANN_CREATED = "org.opencontainers.image.created"
ANN_DESCRIPTION = "org.opencontainers.image.description"
ANN_LICENSES = "org.opencontainers.image.licenses"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
PREFIX = "dev.ci-modelver."
# The version record rides in a manifest annotation rather than an extra layer: the manifest
# digest covers it, `show` reads it with the one manifest GET, and ModelPack consumers
# (kit, modctl, CRI-O mounts) never meet a layer type they do not know.
ANN_RECORD = PREFIX + "record"
RECORD_SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 512 * 1024
# The largest OCI manifest ci-modelver writes (publish, layouts) and reads (registries): the
# distribution spec's recommended limit, which registries enforce on PUT (CNCF distribution
# 2.8.2 and later, GHCR, Docker Hub). One limit for every store, so that whatever a layout holds
# can be copied to any registry.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MANIFEST_SIZE_FIX = (
    "list fewer files (list a folder of many small files as the folder: one layer), "
    "or shorten description and hyperparameters"
)

_TAR_TYPEFLAG_REGULAR = ord("0")
_TAR_TYPEFLAG_DIRECTORY = ord("5")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8: the one serialisation that defines digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of in-memory bytes (small documents only)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True)
class PackedFile:
    """One model file (or folder: ``digest`` and ``size`` of its tar) after hashing: what the
    layer descriptor needs."""

    path: str
    type: FileType
    digest: str
    size: int
    executable: bool = False
    folder: bool = False


@dataclass(frozen=True)
class Provenance:
    """Everything resolved at publish time that the manifest alone does not say."""

    created: str
    code: Mapping[str, Any] = field(default_factory=dict)
    data: Sequence[Mapping[str, str]] = ()
    # How it was built (core/provenance.py); empty for versions packed without it.
    build: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Packed:
    """The artifact ready to push: config and manifest bytes plus the layer descriptors."""

    config: bytes
    config_descriptor: Descriptor
    layers: tuple[Descriptor, ...]
    manifest: bytes
    digest: str
    record: Mapping[str, Any]


def require_manifest_size(data: bytes, where: str, detail: str = "") -> None:
    """ManifestTooLarge unless ``data`` fits MAX_MANIFEST_BYTES (checked before anything is sent)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(
            f"{where}: the OCI manifest is {len(data):,} bytes, over the {MAX_MANIFEST_BYTES:,} "
            f"bytes (4 MiB) registries accept{detail}; {MANIFEST_SIZE_FIX}",
            len(data),
        )


def version_record(manifest: Manifest, provenance: Provenance) -> dict[str, Any]:
    """The full version record: code, data with digests, hyperparameters, metrics, framework."""
    record: dict[str, Any] = {
        "schemaVersion": RECORD_SCHEMA_VERSION,
        "name": manifest.name,
        "version": manifest.version,
        "created": provenance.created,
        "code": dict(provenance.code),
        "data": [dict(d) for d in provenance.data],
        "hyperparameters": dict(manifest.hyperparameters),
        "metrics": {s: dict(v) for s, v in manifest.metrics.items()},
        "gates": {
            g.key: _gate_json(g.direction, g.tolerance.value, g.tolerance.percent, g.min, g.max)
            for g in manifest.gates
        },
    }
    if manifest.description:
        record["description"] = manifest.description
    if manifest.license:
        record["license"] = manifest.license
    if manifest.framework:
        fw: dict[str, Any] = {"name": manifest.framework.name}
        if manifest.framework.version:
            fw["version"] = manifest.framework.version
        if manifest.framework.extra:
            fw["extra"] = dict(manifest.framework.extra)
        record["framework"] = fw
    if manifest.baseline:
        record["baseline"] = manifest.baseline
    if provenance.build:
        record["build"] = dict(provenance.build)
    return record


def _gate_json(
    direction: str, tolerance: float, percent: bool, low: float | None, high: float | None
) -> dict[str, Any]:
    gate: dict[str, Any] = {"direction": direction}
    if tolerance:
        gate["tolerance"] = f"{tolerance:g}%" if percent else tolerance
    if low is not None:
        gate["min"] = low
    if high is not None:
        gate["max"] = high
    return gate


def _file_metadata(packed: PackedFile, created: str) -> str:
    # Git does not keep mtimes or owners, so they are normalised: the created time, uid/gid 0.
    # A folder is described like its own tar entry: a directory (typeflag '5') of size 0.
    meta = {
        "name": packed.path.rsplit("/", 1)[-1],
        "mode": 0o755 if packed.executable or packed.folder else 0o644,
        "uid": 0,
        "gid": 0,
        "size": 0 if packed.folder else packed.size,
        "mtime": created,
        "typeflag": _TAR_TYPEFLAG_DIRECTORY if packed.folder else _TAR_TYPEFLAG_REGULAR,
    }
    return canonical_json(meta).decode()


def layer_media_type(file_type: FileType, *, folder: bool) -> str:
    """``…<type>.v1.raw`` for a file, ``…<type>.v1.tar`` for a folder."""
    return (TAR_LAYER_TYPES if folder else LAYER_TYPES)[file_type]


def layer_descriptor(packed: PackedFile, created: str) -> Descriptor:
    """The ModelPack layer descriptor of one raw file or one folder's tar."""
    return Descriptor(
        layer_media_type(packed.type, folder=packed.folder),
        packed.digest,
        packed.size,
        {
            ANN_FILEPATH: packed.path,
            ANN_FILE_METADATA: _file_metadata(packed, created),
            ANN_TITLE: packed.path,
        },
    )


_WEIGHT_FORMATS = {
    "safetensors": "safetensors",
    "gguf": "gguf",
    "onnx": "onnx",
    "pt": "pytorch",
    "pth": "pytorch",
    "bin": "bin",
    "h5": "keras",
    "keras": "keras",
    "pkl": "pickle",
    "joblib": "joblib",
    "json": "json",
    "ubj": "xgboost",
    "tflite": "tflite",
}


def model_config(
    manifest: Manifest, provenance: Provenance, layers: Sequence[Descriptor]
) -> dict[str, Any]:
    """The ModelPack config: only the spec's own fields (its schema forbids any others)."""
    descriptor: dict[str, Any] = {
        "name": manifest.name,
        "version": manifest.version,
        "createdAt": provenance.created,
    }
    if manifest.description:
        descriptor["description"] = manifest.description
    if manifest.license:
        descriptor["licenses"] = [manifest.license]
    repository = provenance.code.get("repository")
    if repository:
        descriptor["sourceURL"] = repository
    commit = provenance.code.get("commit")
    if commit:
        descriptor["revision"] = commit
    config: dict[str, Any] = {}
    weights = [f.path for f in manifest.files if f.type == "weight"]
    if weights:
        ext = weights[0].rsplit(".", 1)[-1].lower() if "." in weights[0] else ""
        if ext in _WEIGHT_FORMATS:
            config["format"] = _WEIGHT_FORMATS[ext]
    return {
        "descriptor": descriptor,
        "config": config,
        "modelfs": {"type": "layers", "diffIds": [layer.digest for layer in layers]},
    }


# The URLs of a version record: recorded (and shown) without credentials.
_CODE_URLS = ("repository", "runUrl")
_DATA_URLS = ("uri",)


def _without_credentials(entry: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {
        k: strip_userinfo(v) if k in keys and isinstance(v, str) else v for k, v in entry.items()
    }


def pack(manifest: Manifest, files: Sequence[PackedFile], provenance: Provenance) -> Packed:
    """Build config and manifest bytes. Pure: the same arguments give the same bytes."""
    # Every URL of the artifact comes from here: a git remote's user:token@ or a presigned
    # query never reaches the record, the config's sourceURL or the annotations.
    provenance = replace(
        provenance,
        code=_without_credentials(provenance.code, _CODE_URLS),
        data=[_without_credentials(d, _DATA_URLS) for d in provenance.data],
        build=normalize_build(dict(provenance.build)) if provenance.build else {},
    )
    layers = tuple(layer_descriptor(f, provenance.created) for f in files)
    config = canonical_json(model_config(manifest, provenance, layers))
    config_descriptor = Descriptor(MODEL_CONFIG, sha256_digest(config), len(config))
    record = version_record(manifest, provenance)
    record_json = canonical_json(record).decode()
    if len(record_json.encode()) > MAX_RECORD_BYTES:
        raise InputError(
            f"the version record is {len(record_json.encode())} bytes (limit {MAX_RECORD_BYTES}); "
            "keep large hyperparameter tables or metrics in a file listed under 'files'"
        )
    annotations = {
        ANN_VERSION: manifest.version,
        ANN_CREATED: provenance.created,
        ANN_TITLE: manifest.name,
        ANN_RECORD: record_json,
    }
    if manifest.description:
        annotations[ANN_DESCRIPTION] = manifest.description
    if manifest.license:
        annotations[ANN_LICENSES] = manifest.license
    if provenance.code.get("commit"):
        annotations[ANN_REVISION] = str(provenance.code["commit"])
    if provenance.code.get("repository"):
        annotations[ANN_SOURCE] = str(provenance.code["repository"])
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODEL_ARTIFACT,
        "config": config_descriptor.to_json(),
        "layers": [layer.to_json() for layer in layers],
        "annotations": annotations,
    }
    data = canonical_json(document)
    if len(data) > MAX_MANIFEST_BYTES:
        layers_bytes = len(canonical_json(document["layers"]))
        record_bytes = len(canonical_json(record_json))
        require_manifest_size(
            data,
            f"{manifest.name} {manifest.version}",
            f" ($.files: {len(layers):,} files take {layers_bytes:,} bytes of it, "
            f"the version record {record_bytes:,})",
        )
    return Packed(config, config_descriptor, layers, data, sha256_digest(data), record)


@dataclass(frozen=True)
class ModelArtifact:
    """A parsed model manifest as read back from a store."""

    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    record: Mapping[str, Any] | None

    def file_path(self, layer: Descriptor) -> str:
        return layer.annotations.get(ANN_FILEPATH) or layer.annotations.get(ANN_TITLE, "")

    def file_type(self, layer: Descriptor) -> str:
        return FILE_TYPE_OF.get(layer.media_type, layer.media_type)


def parse_descriptor(raw: Any, where: str, source: str) -> Descriptor:
    """One OCI descriptor, checked; ArtifactError naming ``where`` when it cannot be trusted."""
    if not isinstance(raw, dict):
        raise ArtifactError(f"{source}: {where} is not a descriptor object")
    digest, size, media = raw.get("digest"), raw.get("size"), raw.get("mediaType")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ArtifactError(f"{source}: {where}.digest is missing or not a sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArtifactError(f"{source}: {where}.size is missing or negative")
    if not isinstance(media, str):
        raise ArtifactError(f"{source}: {where}.mediaType is missing")
    annotations = raw.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(v, str) for v in annotations.values()
    ):
        raise ArtifactError(f"{source}: {where}.annotations must map strings to strings")
    artifact = raw.get("artifactType")
    return Descriptor(
        media, digest, size, annotations, artifact if isinstance(artifact, str) else None
    )


def parse_model_manifest(data: bytes, digest: str, source: str) -> ModelArtifact:
    """Parse manifest bytes; raise ArtifactError unless it is a ModelPack model artifact."""
    doc = json_bounds.load(data, source=f"{source}: the manifest", error=ArtifactError)
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: the manifest is not a JSON object")
    media = doc.get("mediaType")
    if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
        raise ArtifactError(
            f"{source}: is an image index (several manifests), not a model artifact"
        )
    if media == DOCKER_MANIFEST:
        raise ArtifactError(f"{source}: is a Docker container image, not a model artifact")
    config = parse_descriptor(doc.get("config"), "config", source)
    if doc.get("artifactType") != MODEL_ARTIFACT and config.media_type != MODEL_CONFIG:
        kind = doc.get("artifactType") or config.media_type
        raise ArtifactError(
            f"{source}: is not a ModelPack model artifact (its type is '{kind}'); "
            "ci-modelver reads artifacts made by 'ci-modelver publish', kit or modctl"
        )
    raw_layers = doc.get("layers")
    if not isinstance(raw_layers, list):
        raise ArtifactError(f"{source}: the manifest has no layers list")
    layers = tuple(
        parse_descriptor(layer, f"layers[{i}]", source) for i, layer in enumerate(raw_layers)
    )
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ArtifactError(f"{source}: manifest annotations are not a mapping")
    record: Mapping[str, Any] | None = None
    if isinstance(annotations.get(ANN_RECORD), str):
        parsed = json_bounds.load(
            annotations[ANN_RECORD],
            source=f"{source}: the version record annotation",
            error=ArtifactError,
        )
        record = normalize_record(parsed) if isinstance(parsed, dict) else None
    return ModelArtifact(digest, config, layers, annotations, record)


_RECORD_TEXT = ("name", "version", "created", "description", "license", "baseline")
_RECORD_MAPPINGS = ("code", "hyperparameters", "gates", "framework")


def metric_values(values: Any) -> dict[str, float]:
    """The finite numbers of an untrusted {metric: value} mapping (others dropped)."""
    if not isinstance(values, dict):
        return {}
    return {str(k): float(v) for k, v in values.items() if is_finite_number(v)}


def normalize_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The version record read from a store, with every field of the expected type.

    The record comes from a registry, so it is untrusted: a field of the wrong type is dropped
    (or emptied) here rather than crashing every reader downstream.
    """
    record: dict[str, Any] = {k: raw[k] for k in _RECORD_TEXT if isinstance(raw.get(k), str)}
    for key in _RECORD_MAPPINGS:
        if isinstance(raw.get(key), dict):
            record[key] = raw[key]
    if "code" in record:  # a version published elsewhere may still carry a remote's token
        code = {
            k: v
            for k, v in record["code"].items()
            if isinstance(v, str) or (k == "dirty" and isinstance(v, bool))
        }
        record["code"] = _without_credentials(code, _CODE_URLS)
    framework = record.get("framework")
    if framework is not None:
        # Readers index name/version as text and extra as a mapping: keep only those shapes.
        fixed = {k: v for k, v in framework.items() if k != "extra" and isinstance(v, str)}
        if isinstance(framework.get("extra"), dict):
            fixed["extra"] = framework["extra"]
        record["framework"] = fixed
    metrics = raw.get("metrics")
    if isinstance(metrics, dict):
        record["metrics"] = {
            str(s): metric_values(v) for s, v in metrics.items() if isinstance(v, dict)
        }
    data = raw.get("data")
    if isinstance(data, list):
        record["data"] = [
            _without_credentials(
                {str(k): v for k, v in d.items() if isinstance(v, str)}, _DATA_URLS
            )
            for d in data
            if isinstance(d, dict)
        ]
    build = normalize_build(raw.get("build"))
    if build:
        record["build"] = build
    if isinstance(raw.get("schemaVersion"), int):
        record["schemaVersion"] = raw["schemaVersion"]
    return record


def safe_layer_paths(artifact: ModelArtifact, source: str) -> list[str]:
    """The relative path of every layer, refusing absolute, '..', duplicate or clashing paths.

    Clashes follow :func:`path_clashes`, the rule ``validate`` and ``publish`` apply to the
    manifest's files, so a version that was published can always be pulled.
    """
    raw: list[str] = []
    for i, layer in enumerate(artifact.layers):
        path = artifact.file_path(layer)
        if not path:
            raise ArtifactError(f"{source}: layers[{i}] has no {ANN_FILEPATH} annotation")
        problem = relative_path_problem(path) if "\x00" not in path else "contains a NUL byte"
        if problem:
            raise ArtifactError(f"{source}: refusing layers[{i}] path '{path}': it {problem}")
        raw.append(path)
    for clash in path_clashes(raw):
        i, j = clash.index, clash.other
        if clash.kind == "duplicate":
            why = f"it collides with layers[{j}] '{raw[j]}'"
        elif clash.kind == "same-name":
            why = (
                f"it collides with layers[{j}] '{raw[j]}' (one file on case-insensitive or "
                "Unicode-normalising file systems)"
            )
        elif clash.kind == "below-a-file":
            why = f"a parent folder is also a file (layers[{j}] '{raw[j]}')"
        else:
            why = f"a parent folder is also a file (this one, for layers[{j}] '{raw[j]}')"
        raise ArtifactError(f"{source}: refusing layers[{i}] path '{raw[i]}': {why}")
    return [normalise_relative(path) for path in raw]

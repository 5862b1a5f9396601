"""A tiny OCI distribution server on a free 127.0.0.1 port that serves crafted, hostile answers.

It speaks just enough of the distribution API for ``show``, ``pull``, ``versions``, ``compare``
and ``promote``: ``GET``/``HEAD`` of ``/v2/``, ``/v2/<name>/manifests/<ref>``,
``/v2/<name>/blobs/<digest>`` and ``/v2/<name>/tags/list``; ``/v2/<name>/referrers/<digest>``
answers 404 (no referrers API); manifest ``PUT`` and monolithic blob uploads are stored. Every
test configures what it serves:

- ``add_manifest(tags, body)`` serves ``body`` under each tag and under its own digest, with any
  Content-Type or ``Docker-Content-Digest`` (which may lie);
- ``add_blob(body, digest=...)`` serves ``body`` under a digest it may not hash to;
- ``add_model(tag, artifact)`` serves a whole artifact built by :func:`model_artifact`;
- ``rule(method, pattern, answer)`` answers every matching request with a fixed :class:`Answer`
  (500 forever, 401 without a challenge, 403, a redirect loop, a truncated body, ...), first
  match wins, before any stored content.

Loopback hosts get plain HTTP from ci-modelver automatically, so ``reg.ref("1.0.0")`` is a
reference the CLI can use as is.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MODEL_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODEL_WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
MODEL_DOC = "application/vnd.cncf.model.doc.v1.raw"
ANN_FILEPATH = "org.cncf.model.filepath"
ANN_TITLE = "org.opencontainers.image.title"
ANN_VERSION = "org.opencontainers.image.version"
ANN_RECORD = "dev.ci-modelver.record"

_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags/list|referrers|blobs/uploads)"
    r"(?:/(?P<ref>[^/]*))?$"
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# Building documents


def descriptor(media_type: str, data: bytes, **annotations: str) -> dict[str, Any]:
    """A content descriptor of ``data``."""
    out: dict[str, Any] = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out


@dataclass(frozen=True)
class Artifact:
    """Manifest bytes and every blob it references (digest → bytes)."""

    manifest: bytes
    blobs: Mapping[str, bytes]
    media_type: str = OCI_MANIFEST

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def doc(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.manifest)
        return loaded


def model_config(name: str = "model", version: str = "1.0.0") -> bytes:
    return canonical(
        {
            "descriptor": {"name": name, "version": version},
            "config": {},
            "modelfs": {"type": "layers", "diffIds": []},
        }
    )


def model_artifact(
    files: Mapping[str, bytes] | None = None,
    *,
    name: str = "model",
    version: str = "1.0.0",
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    config: bytes | None = None,
    layers: Iterable[dict[str, Any]] | None = None,
    record: str | None = None,
    **extra: Any,
) -> Artifact:
    """A ModelPack model artifact like ``ci-modelver publish`` writes (``extra`` overrides keys)."""
    files = {"model/weights.bin": b"w" * 64, "README.md": b"# model\n"} if files is None else files
    config_bytes = model_config(name, version) if config is None else config
    blobs: dict[str, bytes] = {sha256(config_bytes): config_bytes}
    layer_list: list[dict[str, Any]] = []
    for path, data in files.items():
        media = MODEL_DOC if path.endswith(".md") else MODEL_WEIGHT
        layer_list.append(descriptor(media, data, **{ANN_FILEPATH: path, ANN_TITLE: path}))
        blobs[sha256(data)] = data
    record_text = (
        record
        if record is not None
        else canonical(
            {
                "schemaVersion": 1,
                "name": name,
                "version": version,
                "metrics": dict(metrics or {"validation": {"accuracy": 0.9}}),
                "hyperparameters": {},
                "code": {},
                "data": [],
                "gates": {},
            }
        ).decode()
    )
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODEL_ARTIFACT,
        "config": descriptor(MODEL_CONFIG, config_bytes),
        "layers": list(layers) if layers is not None else layer_list,
        "annotations": {ANN_VERSION: version, ANN_TITLE: name, ANN_RECORD: record_text},
    }
    doc.update(extra)
    return Artifact(canonical(doc), blobs)


def image_manifest() -> Artifact:
    """A plain OCI container image (gzip tar layer, image config): not a model."""
    config = canonical({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer = b"\x1f\x8b" + b"\x00" * 30
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_IMAGE_CONFIG, config),
        "layers": [descriptor(OCI_LAYER_GZIP, layer)],
    }
    return Artifact(canonical(doc), {sha256(config): config, sha256(layer): layer})


def docker_manifest() -> Artifact:
    """A Docker image manifest v2 schema 2."""
    config = canonical({"architecture": "amd64", "os": "linux"})
    layer = b"\x1f\x8b" + b"\x01" * 30
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER, layer)],
    }
    return Artifact(canonical(doc), {sha256(config): config, sha256(layer): layer}, DOCKER_MANIFEST)


def image_index(*children: Artifact) -> Artifact:
    """An OCI image index over ``children`` (their blobs come along)."""
    blobs: dict[str, bytes] = {}
    entries = []
    for child in children or (image_manifest(),):
        entry = descriptor(child.media_type, child.manifest)
        entry["platform"] = {"architecture": "amd64", "os": "linux"}
        entries.append(entry)
        blobs.update(child.blobs)
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return Artifact(canonical(doc), blobs, OCI_INDEX)


# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class Answer:
    """One crafted HTTP answer.

    ``declared_length`` sends that Content-Length whatever the body is (more than the body: the
    connection closes early, a truncated transfer). ``drop`` closes the connection without any
    answer. ``headers`` replace the defaults (Content-Type, Docker-Content-Digest).
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    declared_length: int | None = None
    drop: bool = False


@dataclass
class _Stored:
    body: bytes
    media_type: str
    headers: Mapping[str, str]


def error_body(code: str, message: str) -> bytes:
    return canonical({"errors": [{"code": code, "message": message}]})


class HostileRegistry:
    """The server; ``start()`` it, configure it, ``stop()`` it."""

    def __init__(self) -> None:
        self.manifests: dict[str, _Stored] = {}
        self.blobs: dict[str, bytes] = {}
        self.tags_answer: Answer | None = None
        self.rules: list[tuple[str, re.Pattern[str], Answer]] = []
        self.requests: list[tuple[str, str]] = []
        self.accept_manifest_puts = True
        self._uploads: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> HostileRegistry:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.registry = self  # type: ignore[attr-defined]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def host(self) -> str:
        assert self._server is not None, "start() the registry first"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def repo(self, path: str = "acme/model") -> str:
        return f"{self.host}/{path}"

    def ref(self, target: str = "1.0.0", path: str = "acme/model") -> str:
        """``HOST/PATH:TAG`` or ``HOST/PATH@sha256:…``."""
        sep = "@" if target.startswith("sha256:") else ":"
        return f"{self.repo(path)}{sep}{target}"

    # -- configuration

    def add_manifest(
        self,
        tags: str | Iterable[str],
        body: bytes,
        media_type: str = OCI_MANIFEST,
        *,
        headers: Mapping[str, str] | None = None,
        by_digest: bool = True,
    ) -> str:
        """Serve ``body`` under each tag (and its own digest); return that digest."""
        stored = _Stored(body, media_type, dict(headers or {}))
        digest = sha256(body)
        with self._lock:
            for tag in [tags] if isinstance(tags, str) else list(tags):
                self.manifests[tag] = stored
            if by_digest:
                self.manifests[digest] = stored
        return digest

    def add_blob(self, body: bytes, *, digest: str | None = None) -> str:
        """Serve ``body`` under ``digest`` (default: its own)."""
        key = digest or sha256(body)
        with self._lock:
            self.blobs[key] = body
        return key

    def add_model(self, tags: str | Iterable[str], artifact: Artifact, **options: Any) -> str:
        for data in artifact.blobs.values():
            self.add_blob(data)
        return self.add_manifest(tags, artifact.manifest, artifact.media_type, **options)

    def rule(self, method: str, pattern: str, answer: Answer) -> None:
        """Answer requests whose method matches (``*`` for any) and path matches ``pattern``."""
        self.rules.append((method.upper(), re.compile(pattern), answer))

    def always(self, answer: Answer) -> None:
        self.rule("*", r".*", answer)

    # -- answering

    def _ruled(self, method: str, path: str) -> Answer | None:
        for rule_method, pattern, answer in self.rules:
            if rule_method in ("*", method) and pattern.search(path):
                return answer
        return None

    def answer(self, method: str, target: str, body: bytes) -> Answer:
        path = urlsplit(target).path
        with self._lock:
            self.requests.append((method, target))
        ruled = self._ruled(method, path)
        if ruled is not None:
            return ruled
        if path in ("/v2", "/v2/"):
            return Answer(200, b"{}", {"Content-Type": "application/json"})
        match = _ROUTE.match(path)
        if not match:
            return _not_found("NAME_UNKNOWN", "no such route")
        kind, ref = match["kind"], match["ref"] or ""
        if kind == "manifests":
            return self._manifest(method, ref, body)
        if kind == "blobs":
            return self._blob(ref)
        if kind == "tags/list":
            return self._tags(match["name"])
        if kind == "blobs/uploads":
            return self._upload(method, match["name"], ref, target, body)
        return _not_found("NAME_UNKNOWN", "referrers API not supported")

    def _manifest(self, method: str, ref: str, body: bytes) -> Answer:
        if method == "PUT":
            if not self.accept_manifest_puts:
                return Answer(400, error_body("MANIFEST_INVALID", "manifest invalid"))
            self.add_manifest(ref, body)
            return Answer(201, b"", {"Docker-Content-Digest": sha256(body)})
        stored = self.manifests.get(ref)
        if stored is None:
            return _not_found("MANIFEST_UNKNOWN", "manifest unknown")
        headers = {"Content-Type": stored.media_type, "Docker-Content-Digest": sha256(stored.body)}
        headers.update(stored.headers)
        return Answer(200, stored.body, headers)

    def _blob(self, digest: str) -> Answer:
        data = self.blobs.get(digest)
        if data is None:
            return _not_found("BLOB_UNKNOWN", "blob unknown to registry")
        return Answer(
            200,
            data,
            {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest},
        )

    def _tags(self, name: str) -> Answer:
        if self.tags_answer is not None:
            return self.tags_answer
        tags = sorted(t for t in self.manifests if not t.startswith("sha256:"))
        return Answer(
            200, canonical({"name": name, "tags": tags}), {"Content-Type": "application/json"}
        )

    def _upload(self, method: str, name: str, session: str, target: str, body: bytes) -> Answer:
        if method == "POST":
            new = uuid.uuid4().hex
            with self._lock:
                self._uploads[new] = b""
            return Answer(202, b"", {"Location": f"/v2/{name}/blobs/uploads/{new}"})
        with self._lock:
            if session not in self._uploads:
                return _not_found("BLOB_UPLOAD_UNKNOWN", "upload unknown")
            self._uploads[session] += body
            data = self._uploads[session]
        if method == "PATCH":
            return Answer(202, b"", {"Location": f"/v2/{name}/blobs/uploads/{session}"})
        digest = parse_qs(urlsplit(target).query).get("digest", [""])[0]
        if sha256(data) != digest:
            return Answer(400, error_body("DIGEST_INVALID", "digest mismatch"))
        self.add_blob(data)
        return Answer(201, b"", {"Docker-Content-Digest": digest})


def _not_found(code: str, message: str) -> Answer:
    return Answer(404, error_body(code, message), {"Content-Type": "application/json"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _handle(self) -> None:
        registry: HostileRegistry = self.server.registry  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = registry.answer(self.command, self.path, body)
        if answer.drop:
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(answer.status)
        headers = {"Content-Type": "application/json", **answer.headers}
        declared = len(answer.body) if answer.declared_length is None else answer.declared_length
        headers.setdefault("Content-Length", str(declared))
        for key, value in headers.items():
            self.send_header(key, value)
        if answer.declared_length is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(answer.body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

"""Bad-input corpus: hostile registry answers, bad references, flags, files, events and variables.

Every case runs one CLI command and checks the documented contract: the exact exit code, exactly
one ``error: `` line on stderr (the last one; progress lines may precede it) that says what is
wrong, and never a traceback. Manifest and metrics problems also print ``FILE:LINE:COL: message
($.path)`` findings on stdout, like ``validate``.

Cases marked xfail (strict) are product bugs: they state the documented behaviour and fail until
the bug is fixed, then XPASS and fail the suite so that the marker gets removed.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.hostile_registry import (
    ANN_FILEPATH,
    MODEL_WEIGHT,
    OCI_MANIFEST,
    Answer,
    Artifact,
    HostileRegistry,
    canonical,
    docker_manifest,
    error_body,
    image_index,
    image_manifest,
    model_artifact,
    sha256,
)

pytestmark = pytest.mark.integration

T = ("--timeout", "2")  # hostile answers that fail at once
FAST = ("--timeout", "1")  # answers that are retried until the budget is spent
FINDING = re.compile(r"^\S.*:\d+:\d+: .+ \(\$.*\)$")
GATED = {"accuracy": {"direction": "higher"}}


# ---------------------------------------------------------------------------------------------
# The world a case runs in


@dataclass(frozen=True)
class Call:
    """The command line of one case and the variables it adds to the hermetic environment."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def call(*args: str, **env: str) -> Call:
    return Call(tuple(args), dict(env))


@dataclass
class World:
    """A case's temporary folder, a lazily started hostile registry and a layout with demo 1.0.0."""

    tmp: Path
    template: Path
    _registry: HostileRegistry | None = None
    _store: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return base_env(self.tmp / "home", MODELVER_NO_CACHE="1")

    @property
    def reg(self) -> HostileRegistry:
        if self._registry is None:
            self._registry = HostileRegistry().start()
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.stop()

    # -- local stores

    @property
    def store(self) -> str:
        """``oci:DIR`` of a private copy of a layout holding demo 1.0.0 (accuracy 0.9)."""
        if self._store is None:
            target = self.tmp / "store"
            shutil.copytree(self.template, target)
            self._store = f"oci:{target}"
        return self._store

    @property
    def version(self) -> str:
        return f"{self.store}:1.0.0"

    @property
    def empty(self) -> str:
        """A layout that does not exist yet (compare: nothing published)."""
        return f"oci:{self.tmp / 'empty-store'}"

    # -- files

    def model(self, name: str = "m", **fields: Any) -> Path:
        return make_model(self.tmp / name, **fields)

    def candidate(self) -> Path:
        """demo 1.1.0 whose gated accuracy (0.5) regresses against the store's 1.0.0 (0.9)."""
        return self.model(
            "candidate",
            version="1.1.0",
            metrics={"validation": {"accuracy": 0.5, "loss": 0.3}},
            gates=GATED,
        )

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def event(self, payload: Any) -> str:
        """An event payload file for GITHUB_EVENT_PATH (bytes are written as given)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return str(self.write("event.json", data))

    # -- the hostile registry

    def serve(
        self,
        artifact: Artifact | None = None,
        tag: str = "1.0.0",
        *,
        blobs: dict[str, bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``artifact`` (default: a valid model) under ``tag``; ``blobs`` replace blobs."""
        self.reg.add_model(tag, artifact or model_artifact(), headers=headers)
        for digest, body in (blobs or {}).items():
            self.reg.add_blob(body, digest=digest)
        return self.reg.ref(tag)

    def serve_bytes(self, body: bytes, media_type: str = OCI_MANIFEST, tag: str = "1.0.0") -> str:
        self.reg.add_manifest(tag, body, media_type)
        return self.reg.ref(tag)

    def serve_as(self, digest: str, body: bytes) -> str:
        """``body`` served under a digest it does not hash to: ``HOST/PATH@digest``."""
        for data in GOOD.blobs.values():
            self.reg.add_blob(data)
        self.reg.add_manifest(digest, body, by_digest=False)
        return self.reg.ref(digest)

    def hostile(self, method: str, pattern: str, answer: Answer, tag: str = "1.0.0") -> str:
        """A valid model under ``tag`` behind a rule answering matching requests with ``answer``."""
        ref = self.serve(tag=tag)
        self.reg.rule(method, pattern, answer)
        return ref

    def hostile_repo(self, method: str, pattern: str, answer: Answer) -> str:
        """Like :meth:`hostile`, but ``HOST/PATH`` (for versions)."""
        return bare(self.hostile(method, pattern, answer))

    def record(self, text: str, tag: str = "1.0.0") -> str:
        """A model whose version record annotation is ``text``."""
        return self.serve(model_artifact(record=text), tag)

    def layers(self, *layers: dict[str, Any]) -> str:
        return self.serve(model_artifact(layers=list(layers)))

    def compare(self, baseline: str, *extra: str) -> Call:
        model = self.model(gates=GATED)
        return call(
            "compare",
            str(model),
            "--repository",
            self.reg.repo(),
            "--baseline",
            baseline,
            *T,
            *extra,
        )


class Case(NamedTuple):
    code: int
    fragment: str  # in the 'error: ' line
    make: Callable[[World], Call]
    finding: str | None = None  # in a FILE:LINE:COL finding on stdout


def case(
    id: str,
    code: int,
    fragment: str,
    make: Callable[[World], Call],
    *,
    finding: str | None = None,
    bug: str | None = None,
) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(Case(code, fragment, make, finding), id=id, marks=marks)


def after(_setup: object, then: Call) -> Call:
    """``then``, once ``_setup`` (evaluated first, for its effect on the registry) is done."""
    return then


def bare(ref: str) -> str:
    """``HOST/PATH`` of ``HOST/PATH:TAG``."""
    return ref.rsplit(":", 1)[0]


def config_digest(artifact: Artifact) -> str:
    digest: str = artifact.doc()["config"]["digest"]
    return digest


def layer_digest(artifact: Artifact, path: str = "model/weights.bin") -> str:
    for layer in artifact.doc()["layers"]:
        if layer["annotations"][ANN_FILEPATH] == path:
            digest: str = layer["digest"]
            return digest
    raise KeyError(path)


def weight_layer(path: str, digest: str = "sha256:" + "a" * 64, size: int = 1) -> dict[str, Any]:
    return {
        "mediaType": MODEL_WEIGHT,
        "digest": digest,
        "size": size,
        "annotations": {ANN_FILEPATH: path},
    }


GOOD = model_artifact()
WEIGHTS = layer_digest(GOOD)
CONFIG = config_digest(GOOD)


# ---------------------------------------------------------------------------------------------
# 1. Registry answers (the hostile registry) for show, pull, versions, compare --baseline, promote

REGISTRY = [
    # show: what the manifest is
    case(
        "show-malformed-json-manifest",
        3,
        "the manifest is not valid JSON",
        lambda w: call("show", w.serve_bytes(b'{"schemaVersion": 2, "layers": ['), *T),
    ),
    case(
        "show-html-page-with-wrong-content-type",
        3,
        "the manifest is an HTML page (text/html), not JSON",
        lambda w: call(
            "show", w.serve_bytes(b"<html><body>Sign in</body></html>", "text/html"), *T
        ),
    ),
    case(
        "show-docker-v2-schema2-image",
        2,
        "is a Docker container image, not a model artifact",
        lambda w: call("show", w.serve(docker_manifest()), *T),
    ),
    case(
        "show-oci-image-index",
        2,
        "is an image index (several manifests), not a model artifact",
        lambda w: call("show", w.serve(image_index()), *T),
    ),
    case(
        "show-plain-oci-container-image",
        2,
        "is not a ModelPack model artifact (its type is 'application/vnd.oci.image.config.v1+json')",
        lambda w: call("show", w.serve(image_manifest()), *T),
    ),
    case(
        "show-layers-not-a-list",
        2,
        "the manifest has no layers list",
        lambda w: call(
            "show", w.serve_bytes(canonical({**GOOD.doc(), "layers": "weights.bin"})), *T
        ),
    ),
    case(
        "show-layer-negative-size",
        2,
        "layers[0].size is missing or negative",
        lambda w: call("show", w.layers(weight_layer("w.bin", size=-1)), *T),
    ),
    case(
        "show-layer-digest-not-sha256",
        2,
        "layers[0].digest is missing or not a sha256 digest",
        lambda w: call("show", w.layers(weight_layer("w.bin", digest="md5:" + "a" * 32)), *T),
    ),
    case(
        "show-annotations-not-a-mapping",
        2,
        "manifest annotations are not a mapping",
        lambda w: call("show", w.serve(model_artifact(annotations=["a", "b"])), *T),
    ),
    case(
        "show-version-record-not-json",
        2,
        "the version record annotation is not valid JSON",
        lambda w: call("show", w.record('{"name": "model",'), *T),
    ),
    case(
        "show-version-record-code-not-a-mapping",
        0,
        "1.0.0",
        lambda w: call("show", w.record('{"code": "main"}'), *T),
    ),
    case(
        "show-version-record-metrics-not-a-mapping",
        0,
        "1.0.0",
        lambda w: call("show", w.record('{"metrics": "high"}'), *T),
    ),
    case(
        "show-version-record-hyperparameters-a-list",
        0,
        "1.0.0",
        lambda w: call("show", w.record('{"hyperparameters": [1, 2]}'), *T),
    ),
    case(
        "show-config-descriptor-not-a-mapping",
        0,
        "model/weights.bin",
        lambda w: call(
            "show", w.serve(model_artifact(config=b'{"descriptor": "x"}', record="{}")), *T
        ),
    ),
    # show: the config blob
    case(
        "show-config-blob-not-json",
        2,
        "the config blob is not JSON (not UTF-8 text)",
        lambda w: call("show", w.serve(model_artifact(config=b"\x00\x01 not json")), *T),
    ),
    case(
        "show-config-blob-not-an-object",
        2,
        "the config blob is not a JSON object",
        lambda w: call("show", w.serve(model_artifact(config=b"[1, 2]")), *T),
    ),
    case(
        "show-config-blob-does-not-match-digest",
        3,
        "content does not match its digest",
        lambda w: call("show", w.serve(blobs={CONFIG: b"X" * len(GOOD.blobs[CONFIG])}), *T),
    ),
    case(
        "show-config-blob-over-1mib",
        3,
        "bytes is over the 1048576 byte limit",
        lambda w: call("show", w.serve(model_artifact(config=b" " * (1024 * 1024 + 1))), *T),
    ),
    case(
        "show-config-blob-truncated",
        3,
        f"blob {CONFIG}",
        lambda w: call(
            "show",
            w.hostile("GET", f"/blobs/{CONFIG}$", Answer(200, b"{", declared_length=300)),
            *T,
        ),
    ),
    # show: the manifest transfer
    case(
        "show-manifest-over-4mib",
        3,
        "is over the 4 MiB limit",
        lambda w: call("show", w.serve(model_artifact(description="x" * (4 * 1024 * 1024))), *T),
    ),
    case(
        "show-manifest-truncated",
        3,
        "transfer failed",
        lambda w: call(
            "show", w.hostile("GET", "/manifests/", Answer(200, b"{}", declared_length=5000)), *T
        ),
    ),
    case(
        "show-by-digest-registry-returns-other-bytes",
        3,
        "the registry returned bytes hashing to",
        lambda w: call("show", w.serve_as(sha256(b"expected"), GOOD.manifest), *T),
    ),
    case(
        "show-tag-not-found",
        2,
        ":9.9.9: not found; check the tag or digest",
        lambda w: call("show", w.serve(tag="1.0.0").replace(":1.0.0", ":9.9.9"), *T),
    ),
    # show: status codes and connections
    case(
        "show-500-forever",
        3,
        "500 Internal Server Error; gave up after",
        lambda w: call("show", w.hostile("*", ".*", Answer(500, b"oops")), *FAST),
    ),
    case(
        "show-connection-dropped-forever",
        3,
        "ConnectionError; gave up after",
        lambda w: call("show", w.hostile("*", ".*", Answer(drop=True)), *FAST),
    ),
    case(
        "show-401-without-www-authenticate",
        3,
        "401 UNAUTHORIZED: authentication required — access denied to",
        lambda w: call(
            "show",
            w.hostile(
                "*", ".*", Answer(401, error_body("UNAUTHORIZED", "authentication required"))
            ),
            *T,
        ),
    ),
    case(
        "show-403",
        3,
        "403 DENIED: requested access to the resource is denied — access denied to",
        lambda w: call(
            "show",
            w.hostile(
                "*",
                ".*",
                Answer(403, error_body("DENIED", "requested access to the resource is denied")),
            ),
            *T,
        ),
    ),
    case(
        "show-bearer-realm-unreachable",
        3,
        "token request to http://127.0.0.1:9/token failed",
        lambda w: call(
            "show",
            w.hostile(
                "*",
                ".*",
                Answer(
                    401, headers={"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:9/token"'}
                ),
            ),
            *T,
        ),
    ),
    case(
        "show-429-retry-after-beyond-budget",
        3,
        "429 Too Many Requests; gave up after 1 attempt(s)",
        lambda w: call(
            "show", w.hostile("*", ".*", Answer(429, headers={"Retry-After": "3600"})), *T
        ),
    ),
    case(
        "show-418-unexpected-status",
        3,
        "418",
        lambda w: call("show", w.hostile("*", ".*", Answer(418, b"teapot")), *T),
    ),
    case(
        "show-redirect-loop",
        3,
        "TooManyRedirects",
        lambda w: call(
            "show",
            w.hostile(
                "GET",
                "/manifests/",
                Answer(307, headers={"Location": "/v2/acme/model/manifests/1.0.0"}),
            ),
            *T,
        ),
    ),
    # pull
    case(
        "pull-layer-does-not-match-digest",
        3,
        f"blob content hashes to {sha256(b'x' * 64)}, expected {WEIGHTS}",
        lambda w: call("pull", w.serve(blobs={WEIGHTS: b"x" * 64}), "-o", str(w.tmp / "out"), *T),
    ),
    case(
        "pull-layer-longer-than-declared",
        3,
        "sends more than its declared 64 bytes; nothing was written",
        lambda w: call(
            "pull",
            w.serve(blobs={WEIGHTS: GOOD.blobs[WEIGHTS] + b"extra"}),
            "-o",
            str(w.tmp / "out"),
            *T,
        ),
    ),
    case(
        "pull-layer-truncated",
        3,
        "transfer failed: ChunkedEncodingError",
        lambda w: call(
            "pull",
            w.hostile("GET", f"/blobs/{WEIGHTS}$", Answer(200, b"w" * 10, declared_length=64)),
            "-o",
            str(w.tmp / "out"),
            *T,
        ),
    ),
    case(
        "pull-layer-missing",
        3,
        "404 BLOB_UNKNOWN",
        lambda w: call(
            "pull",
            w.hostile(
                "GET", f"/blobs/{WEIGHTS}$", Answer(404, error_body("BLOB_UNKNOWN", "blob unknown"))
            ),
            "-o",
            str(w.tmp / "out"),
            *T,
        ),
    ),
    case(
        "pull-layer-path-with-dotdot",
        2,
        "refusing layers[0] path '../evil.txt': it must stay inside the manifest's folder ('..' is not allowed)",
        lambda w: call(
            "pull", w.serve(model_artifact({"../evil.txt": b"x"})), "-o", str(w.tmp / "out"), *T
        ),
    ),
    case(
        "pull-layer-absolute-path",
        2,
        "refusing layers[0] path '/etc/evil': it must be relative",
        lambda w: call(
            "pull", w.serve(model_artifact({"/etc/evil": b"x"})), "-o", str(w.tmp / "out"), *T
        ),
    ),
    case(
        "pull-layers-collide-case-insensitively",
        2,
        "refusing layers[1] path 'a.bin': it collides with layers[0]",
        lambda w: call(
            "pull",
            w.layers(weight_layer("A.bin"), weight_layer("a.bin", digest="sha256:" + "b" * 64)),
            "-o",
            str(w.tmp / "out"),
            *T,
        ),
    ),
    case(
        "pull-layer-without-file-path",
        2,
        "layers[0] has no org.cncf.model.filepath annotation",
        lambda w: call(
            "pull",
            w.layers({"mediaType": MODEL_WEIGHT, "digest": "sha256:" + "a" * 64, "size": 1}),
            "-o",
            str(w.tmp / "out"),
            *T,
        ),
    ),
    case(
        "pull-declared-size-over-max-size",
        2,
        "the files declare 1000000000000000 bytes in all, over --max-size 1073741824",
        lambda w: call(
            "pull",
            w.layers(weight_layer("w.bin", size=10**15)),
            "-o",
            str(w.tmp / "out"),
            "--max-size",
            "1G",
            *T,
        ),
    ),
    case(
        "pull-oci-image-index",
        2,
        "is an image index",
        lambda w: call("pull", w.serve(image_index()), "-o", str(w.tmp / "out"), *T),
    ),
    # versions
    case(
        "versions-tags-list-invalid-json",
        3,
        "tags: the tag list is not valid JSON",
        lambda w: call("versions", w.hostile_repo("GET", "/tags/list$", Answer(200, b"{nope")), *T),
    ),
    case(
        "versions-tags-list-json-array",
        3,
        "tags",
        lambda w: call(
            "versions",
            w.hostile_repo("GET", "/tags/list$", Answer(200, b'["1.0.0"]')),
            *T,
        ),
    ),
    case(
        "versions-tags-list-500-forever",
        3,
        "tags: 500 Internal Server Error; gave up after",
        lambda w: call("versions", w.hostile_repo("GET", "/tags/list$", Answer(500)), *FAST),
    ),
    case(
        "versions-tags-list-401",
        3,
        "access denied to",
        lambda w: call(
            "versions",
            w.hostile_repo("GET", "/tags/list$", Answer(401, error_body("UNAUTHORIZED", "no"))),
            *T,
        ),
    ),
    case(
        "versions-head-manifest-500-forever",
        3,
        ":1.0.0: 500 Internal Server Error; gave up after",
        lambda w: call("versions", w.hostile_repo("HEAD", "/manifests/", Answer(500)), *FAST),
    ),
    case(
        "versions-head-content-length-garbage",
        0,
        "1.0.0",
        lambda w: call(
            "versions",
            w.hostile_repo(
                "HEAD",
                "/manifests/",
                Answer(
                    200, headers={"Docker-Content-Digest": GOOD.digest, "Content-Length": "lots"}
                ),
            ),
            *T,
        ),
    ),
    # compare --baseline
    case(
        "compare-baseline-docker-image",
        2,
        "is a Docker container image",
        lambda w: after(w.serve(docker_manifest(), "old"), w.compare("old")),
    ),
    case(
        "compare-baseline-image-index",
        2,
        "is an image index",
        lambda w: after(w.serve(image_index(), "old"), w.compare("old")),
    ),
    case(
        "compare-baseline-tag-missing",
        2,
        "--baseline 'missing': not found in",
        lambda w: after(w.serve(), w.compare("missing")),
    ),
    case(
        "compare-baseline-digest-missing",
        2,
        "@sha256:" + "1" * 64 + ": not found",
        lambda w: after(w.serve(), w.compare("sha256:" + "1" * 64)),
    ),
    case(
        "compare-baseline-record-not-json",
        2,
        "the version record annotation is not valid JSON",
        lambda w: after(w.record("{nope", "old"), w.compare("old")),
    ),
    case(
        "compare-baseline-record-code-not-a-mapping",
        0,
        "1.0.0",
        lambda w: after(w.record('{"code": "main"}', "old"), w.compare("old")),
    ),
    case(
        "compare-baseline-config-does-not-match-digest",
        3,
        "content does not match its digest",
        lambda w: after(
            w.serve(tag="old", blobs={CONFIG: b"Y" * len(GOOD.blobs[CONFIG])}), w.compare("old")
        ),
    ),
    case(
        "compare-registry-500-forever",
        3,
        "gave up after",
        lambda w: after(w.hostile("*", ".*", Answer(500)), w.compare("1.0.0", *FAST)),
    ),
    # promote
    case(
        "promote-image-index",
        2,
        "is an image index",
        lambda w: call("promote", w.serve(image_index()), "--alias", "production", *T),
    ),
    case(
        "promote-docker-image",
        2,
        "is a Docker container image",
        lambda w: call("promote", w.serve(docker_manifest()), "--alias", "production", *T),
    ),
    case(
        "promote-manifest-put-rejected",
        3,
        "PUT",
        lambda w: call(
            "promote",
            w.hostile(
                "PUT",
                "/manifests/production$",
                Answer(400, error_body("MANIFEST_INVALID", "manifest invalid")),
            ),
            "--alias",
            "production",
            *T,
        ),
    ),
    case(
        "promote-manifest-put-403",
        3,
        "403 DENIED: read-only token — access denied to",
        lambda w: call(
            "promote",
            w.hostile("PUT", "/manifests/", Answer(403, error_body("DENIED", "read-only token"))),
            "--alias",
            "production",
            *T,
        ),
    ),
    case(
        "promote-alias-digest-header-lies",
        4,
        "another publish or promotion ran at the same time",
        lambda w: call(
            "promote",
            w.hostile(
                "HEAD",
                "/manifests/production$",
                Answer(200, headers={"Docker-Content-Digest": "sha256:" + "0" * 64}),
            ),
            "--alias",
            "production",
            *T,
        ),
    ),
    case(
        "promote-by-digest-registry-returns-other-bytes",
        3,
        "the registry returned bytes hashing to",
        lambda w: call(
            "promote",
            w.serve_as(sha256(b"wanted"), GOOD.manifest),
            "--alias",
            "production",
            *T,
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# 2. References

HOST = "127.0.0.1:9"  # never contacted: every reference below fails before any request

REFERENCES = [
    case(
        "uppercase-repository",
        2,
        "(repository names must be lowercase)",
        lambda w: call("show", f"{HOST}/Acme/Model:1.0.0"),
    ),
    case(
        "tag-over-128-characters",
        2,
        "longer than 128 characters",
        lambda w: call("show", f"{HOST}/acme/model:" + "a" * 129),
    ),
    case(
        "tag-with-bad-character",
        2,
        "invalid tag '1.0.0!': has a character outside A-Z a-z 0-9 . _ -",
        lambda w: call("show", f"{HOST}/acme/model:1.0.0!"),
    ),
    case(
        "tag-starting-with-dash-in-layout",
        2,
        "invalid tag '-rc'",
        lambda w: call("show", f"{w.store}:-rc"),
    ),
    case(
        "tag-empty",
        2,
        "invalid tag ''",
        lambda w: call("show", f"{HOST}/acme/model:"),
    ),
    case(
        "digest-sha512",
        2,
        "only sha256 digests are supported",
        lambda w: call("show", f"{HOST}/acme/model@sha512:" + "a" * 128),
    ),
    case(
        "digest-too-short",
        2,
        "expected sha256: followed by 64 lowercase hex digits (got 3 characters)",
        lambda w: call("show", f"{HOST}/acme/model@sha256:abc"),
    ),
    case(
        "digest-uppercase-hex",
        2,
        "64 lowercase hex digits",
        lambda w: call("show", f"{HOST}/acme/model@sha256:" + "A" * 64),
    ),
    case(
        "digest-sha512-in-pull",
        2,
        "only sha256 digests are supported",
        lambda w: call("pull", f"{w.store}@sha512:" + "b" * 128),
    ),
    case(
        "oci-folder-does-not-exist",
        2,
        "does not exist; check the path or publish a version first",
        lambda w: call("show", f"oci:{w.tmp / 'nowhere'}:1.0.0"),
    ),
    case(
        "oci-path-is-a-file",
        2,
        "is not an OCI image layout (no index.json)",
        lambda w: call("show", f"oci:{w.write('a-file', 'x')}:1.0.0"),
    ),
    case(
        "oci-folder-with-next-line-character",
        2,
        "control characters",
        lambda w: call("show", f"oci:{w.tmp}/first\x85second:1.0.0"),
    ),
    case(
        "oci-folder-name-too-long",
        2,
        "too long",
        lambda w: call("show", f"oci:{w.tmp}/{'a' * 300}:1.0.0"),
    ),
    case(
        "oci-without-folder",
        2,
        "oci: needs a directory",
        lambda w: call("show", "oci:"),
    ),
    case(
        "missing-host",
        2,
        "'acme' is not a registry host; write it in full, e.g. docker.io/acme/model:1.0.0",
        lambda w: call("show", "acme/model:1.0.0"),
    ),
    case(
        "missing-host-in-versions",
        2,
        "'acme' is not a registry host",
        lambda w: call("versions", "acme/model"),
    ),
    case(
        "scheme-given",
        2,
        "drop the scheme",
        lambda w: call("show", "https://ghcr.io/acme/model:1.0.0"),
    ),
    case(
        "scheme-given-in-promote",
        2,
        "drop the scheme",
        lambda w: call("promote", "http://ghcr.io/acme/model:1.0.0", "--alias", "production"),
    ),
    case(
        "scheme-given-in-publish-repository",
        2,
        "drop the scheme",
        lambda w: call("publish", str(w.model()), "--repository", "https://ghcr.io/acme/demo"),
    ),
    case(
        "empty",
        2,
        "empty reference",
        lambda w: call("show", ""),
    ),
    case(
        "whitespace-only",
        2,
        "empty reference",
        lambda w: call("pull", "   "),
    ),
    case(
        "space-inside",
        2,
        "it contains control characters or spaces",
        lambda w: call("show", "ghcr.io/acme/my model:1.0.0"),
    ),
    case(
        "newline-inside",
        2,
        "it contains control characters or spaces",
        lambda w: call("show", "ghcr.io/acme/model:1.0.0\nrm -rf /"),
    ),
    case(
        "nul-inside",
        2,
        "it contains control characters or spaces",
        lambda w: call("show", "ghcr.io/acme/model\x00:1.0.0"),
    ),
    case(
        "host-without-path",
        2,
        "give the registry host and repository path",
        lambda w: call("show", "ghcr.io/"),
    ),
    case(
        "empty-path-component",
        2,
        "invalid repository path 'acme//model'",
        lambda w: call("show", "ghcr.io/acme//model:1.0.0"),
    ),
    case(
        "non-ascii-path",
        2,
        "invalid repository path 'acme/modèle'",
        lambda w: call("show", "ghcr.io/acme/modèle:1.0.0"),
    ),
    case(
        "repository-name-over-255",
        2,
        "repository name longer than 255 characters",
        lambda w: call("show", "ghcr.io/" + "a" * 300 + ":1.0.0"),
    ),
    case(
        "port-out-of-range",
        2,
        "port",
        lambda w: call("show", "ghcr.io:99999999/acme/model:1.0.0"),
    ),
    case(
        "versions-with-tag",
        2,
        "versions: give the repository without tag or digest",
        lambda w: call("versions", w.version),
    ),
    case(
        "rollback-with-tag",
        2,
        "rollback: give the repository without tag or digest",
        lambda w: call("rollback", w.version, "--alias", "production"),
    ),
    case(
        "compare-baseline-uppercase",
        2,
        "(repository names must be lowercase)",
        lambda w: call(
            "compare", str(w.model()), "--repository", w.empty, "--baseline", "ghcr.io/Acme/x:1.0.0"
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# 3. Command-line arguments

ARGUMENTS = [
    case("unknown-command", 2, "invalid choice: 'frobnicate'", lambda w: call("frobnicate")),
    case("no-command", 2, "a command is required", lambda w: call()),
    case(
        "unknown-flag",
        2,
        "unrecognized arguments: --frob",
        lambda w: call("show", w.version, "--frob"),
    ),
    case(
        "promote-without-alias",
        2,
        "the following arguments are required: --alias",
        lambda w: call("promote", w.version),
    ),
    case(
        "comment-without-from-file",
        2,
        "the following arguments are required: --from-file",
        lambda w: call("comment"),
    ),
    case(
        "concurrency-zero",
        2,
        "--concurrency (env MODELVER_CONCURRENCY) must be between 1 and 64, got 0",
        lambda w: call("show", w.version, "--concurrency", "0"),
    ),
    case(
        "concurrency-65",
        2,
        "--concurrency (env MODELVER_CONCURRENCY) must be between 1 and 64, got 65",
        lambda w: call("pull", w.version, "--concurrency", "65"),
    ),
    case(
        "concurrency-not-a-number",
        2,
        "argument --concurrency: invalid int value: 'many'",
        lambda w: call("show", w.version, "--concurrency", "many"),
    ),
    case(
        "timeout-negative",
        2,
        "--timeout (env MODELVER_TIMEOUT) must be a positive number of seconds, got -1",
        lambda w: call("show", w.version, "--timeout", "-1"),
    ),
    case(
        "timeout-zero",
        2,
        "--timeout (env MODELVER_TIMEOUT) must be a positive number of seconds, got 0",
        lambda w: call("versions", w.store, "--timeout", "0"),
    ),
    case(
        "timeout-nan",
        2,
        "--timeout",
        lambda w: call("show", w.version, "--timeout", "nan"),
    ),
    case(
        "format-xml",
        2,
        "argument --format: invalid choice: 'xml'",
        lambda w: call("show", w.version, "--format", "xml"),
    ),
    case(
        "max-size-lots",
        2,
        "--max-size 'lots': use a size such as 500M, 20G or a number of bytes",
        lambda w: call("pull", w.version, "-o", str(w.tmp / "out"), "--max-size", "lots"),
    ),
    case(
        "max-size-zero",
        2,
        "--max-size '0': must be positive",
        lambda w: call("pull", w.version, "-o", str(w.tmp / "out"), "--max-size", "0"),
    ),
    case(
        "max-size-nan",
        2,
        "--max-size 'nan'",
        lambda w: call("pull", w.version, "-o", str(w.tmp / "out"), "--max-size", "nan"),
    ),
    case(
        "max-file-size-infinite",
        2,
        "--max-file-size '1e400'",
        lambda w: call("pull", w.version, "-o", str(w.tmp / "out"), "--max-file-size", "1e400"),
    ),
    case(
        "only-unknown-type",
        2,
        "--only: unknown file type(s) weights; use weight, weight-config, doc, code, dataset",
        lambda w: call("pull", w.version, "-o", str(w.tmp / "out"), "--only", "weights"),
    ),
    case(
        "pull-without-tag",
        2,
        "pull: '",
        lambda w: call("pull", w.store, "-o", str(w.tmp / "out")),
    ),
    case(
        "show-without-tag",
        2,
        "names no version; add ':VERSION', ':ALIAS' or '@sha256:…'",
        lambda w: call("show", f"{HOST}/acme/model"),
    ),
    case(
        "promote-alias-looks-like-a-version",
        2,
        "alias '1.2.0' looks like a version",
        lambda w: call("promote", w.version, "--alias", "1.2.0"),
    ),
    case(
        "promote-alias-v2",
        2,
        "alias 'v2' looks like a version",
        lambda w: call("promote", w.version, "--alias", "v2"),
    ),
    case(
        "promote-alias-reserved-prefix",
        2,
        "alias 'sha256-prod' starts with a reserved prefix",
        lambda w: call("promote", w.version, "--alias", "sha256-prod"),
    ),
    case(
        "promote-alias-empty",
        2,
        "invalid alias ''",
        lambda w: call("promote", w.version, "--alias", ""),
    ),
    case(
        "rollback-with-no-history",
        2,
        "has no recorded moves; name the target with --to VERSION",
        lambda w: call("rollback", w.store, "--alias", "production"),
    ),
    case(
        "rollback-to-missing-version",
        2,
        ":9.9.9: not found",
        lambda w: call("rollback", w.store, "--alias", "production", "--to", "9.9.9"),
    ),
    case(
        "history-limit-negative",
        2,
        "--limit",
        lambda w: call("history", w.store, "--limit", "-1"),
    ),
    case(
        "attach-metrics-invalid-json",
        2,
        "1 problem(s) in the metrics file",
        lambda w: call(
            "attach", w.version, "--metrics", str(w.write("m.json", '{"validation": {'))
        ),
        finding="not valid YAML",
    ),
    case(
        "attach-metrics-missing",
        2,
        "m.json: file not found; check the path",
        lambda w: call("attach", w.version, "--metrics", str(w.tmp / "m.json")),
    ),
    case(
        "attach-metrics-not-utf8",
        2,
        "not UTF-8 text (invalid byte 0xe9",
        lambda w: call(
            "attach",
            w.version,
            "--metrics",
            str(w.write("m.json", b'{"validation": {"acc\xe9": 0.5}}')),
        ),
    ),
    case(
        "attach-metrics-is-a-folder",
        2,
        "is a directory",
        lambda w: call("attach", w.version, "--metrics", str(w.tmp)),
    ),
    case(
        "attach-metrics-value-not-a-number",
        2,
        "1 problem(s) in the metrics file",
        lambda w: call(
            "attach",
            w.version,
            "--metrics",
            str(w.write("m.json", '{"validation": {"acc": "high"}}')),
        ),
        finding="'acc' must be a number, got the string 'high'",
    ),
    case(
        "attach-set-name-with-slash",
        2,
        "1 problem(s) in the metrics file",
        lambda w: call(
            "attach", w.version, "--metrics", str(w.write("m.json", '{"acc": 0.5}')), "--set", "a/b"
        ),
        finding="invalid evaluation set name 'a/b'",
    ),
    case(
        "chunk-size-10",
        2,
        "--chunk-size (env MODELVER_CHUNK_SIZE) must be at least 1024 bytes, got 10",
        lambda w: call("publish", str(w.model()), "--repository", w.empty, "--chunk-size", "10"),
    ),
    case(
        "publish-tag-with-space",
        2,
        "invalid --tag 'bad tag'",
        lambda w: call("publish", str(w.model()), "--repository", w.empty, "--tag", "bad tag"),
    ),
    case(
        "publish-tag-reserved-prefix",
        2,
        "reserved prefix",
        lambda w: call(
            "publish", str(w.model()), "--repository", w.empty, "--tag", "sha256-" + "c" * 64
        ),
    ),
    case(
        "compare-pr-not-a-number",
        2,
        "argument --pr: invalid int value: 'abc'",
        lambda w: call("compare", str(w.model()), "--repository", w.empty, "--pr", "abc"),
    ),
    case(
        "compare-template-missing",
        2,
        "nope.j2: file not found",
        lambda w: call(
            "compare", str(w.model()), "--repository", w.empty, "--template", str(w.tmp / "nope.j2")
        ),
    ),
    case(
        "compare-template-syntax-error",
        2,
        "bad.j2",
        lambda w: call(
            "compare",
            str(w.model()),
            "--repository",
            w.empty,
            "--template",
            str(w.write("bad.j2", "{% for %}")),
        ),
    ),
    case(
        "compare-template-undefined-variable",
        2,
        "bad.j2",
        lambda w: call(
            "compare",
            str(w.model()),
            "--repository",
            w.empty,
            "--template",
            str(w.write("bad.j2", "{{ nothing.here() }}")),
        ),
    ),
    case(
        "compare-output-in-missing-folder",
        2,
        "no/such/report.txt",
        lambda w: call(
            "compare",
            str(w.model()),
            "--repository",
            w.empty,
            "--output",
            str(w.tmp / "no/such/report.txt"),
        ),
    ),
    case(
        "compare-output-is-a-folder",
        2,
        "--output",
        lambda w: call("compare", str(w.model()), "--repository", w.empty, "--output", str(w.tmp)),
    ),
    case(
        "compare-comment-file-below-a-file",
        2,
        "a-file",
        lambda w: call(
            "compare",
            str(w.model()),
            "--repository",
            w.empty,
            "--comment-file",
            str(w.write("a-file", "x") / "comment.md"),
        ),
    ),
    case(
        "pull-output-is-a-file",
        2,
        "exists and is not a folder",
        lambda w: call("pull", w.version, "-o", str(w.write("a-file", "x"))),
    ),
    case(
        "pull-output-below-a-file",
        2,
        "a-file",
        lambda w: call("pull", w.version, "-o", str(w.write("a-file", "x") / "out")),
    ),
    case(
        "publish-repository-is-a-file",
        2,
        "a-file",
        lambda w: call("publish", str(w.model()), "--repository", f"oci:{w.write('a-file', 'x')}"),
    ),
    case(
        "schema-unknown",
        2,
        "argument which: invalid choice: 'xml'",
        lambda w: call("schema", "xml"),
    ),
    case(
        "init-on-a-file",
        2,
        "is not a folder; create it or give another",
        lambda w: call("init", str(w.write("a-file", "x"))),
    ),
    case(
        "reproduce-check-data-missing-folder",
        2,
        "--check-data",
        lambda w: call("reproduce", w.version, "--check-data", str(w.tmp / "no-data")),
    ),
    case(
        "comment-from-missing-file",
        2,
        "report.md: file not found",
        lambda w: call("comment", "--from-file", str(w.tmp / "report.md"), "--pr", "1"),
    ),
    case(
        "comment-from-file-not-a-report",
        2,
        "not a ci-modelver report (its first line must be the report marker)",
        lambda w: call(
            "comment", "--from-file", str(w.write("report.md", "# hello\n")), "--pr", "1"
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# 4. Manifests and metrics files, through publish and compare (validate has tests/fixtures/invalid)


def _with_metrics_file(w: World, data: bytes) -> Path:
    manifest = w.model(metrics="metrics.json")
    w.write("m/metrics.json", data)
    return manifest


def _without_weights(w: World) -> Path:
    manifest = w.model()
    (w.tmp / "m" / "model" / "weights.bin").unlink()
    return manifest


BOM_BROKEN = b'\xef\xbb\xbf{"validation": {"accuracy": 0.9,}'

MANIFESTS = [
    case(
        "publish-manifest-is-a-folder",
        2,
        "is a directory; give the path of the YAML file",
        lambda w: call("publish", str(w.model().parent), "--repository", w.empty),
    ),
    case(
        "compare-manifest-is-a-folder",
        2,
        "is a directory; give the path of the YAML file",
        lambda w: call("compare", str(w.model().parent), "--repository", w.empty),
    ),
    case(
        "publish-manifest-missing",
        2,
        "modelver.yaml: file not found",
        lambda w: call("publish", str(w.tmp / "modelver.yaml"), "--repository", w.empty),
    ),
    case(
        "compare-manifest-not-utf8",
        2,
        "not UTF-8 text (invalid byte 0xe9",
        lambda w: call(
            "compare",
            str(w.write("modelver.yaml", b"name: demo\nversion: 1.0.0\ndescription: caf\xe9\n")),
            "--repository",
            w.empty,
        ),
    ),
    case(
        "publish-metrics-file-bom-and-invalid-json",
        2,
        "1 problem(s); run 'ci-modelver validate",
        lambda w: call("publish", str(_with_metrics_file(w, BOM_BROKEN)), "--repository", w.empty),
        finding="metrics.json:1:",
    ),
    case(
        "compare-metrics-file-bom-and-invalid-json",
        2,
        "1 problem(s); run 'ci-modelver validate",
        lambda w: call("compare", str(_with_metrics_file(w, BOM_BROKEN)), "--repository", w.empty),
        finding="not valid YAML",
    ),
    case(
        "publish-metrics-file-empty",
        2,
        "1 problem(s)",
        lambda w: call("publish", str(_with_metrics_file(w, b"")), "--repository", w.empty),
        finding="file is empty",
    ),
    case(
        "publish-metrics-file-duplicate-key",
        2,
        "1 problem(s)",
        lambda w: call(
            "publish",
            str(_with_metrics_file(w, b'{"validation": {"accuracy": 0.9, "accuracy": 0.8}}')),
            "--repository",
            w.empty,
        ),
        finding="duplicate key 'accuracy'",
    ),
    case(
        "publish-gate-on-missing-metric",
        2,
        "1 problem(s)",
        lambda w: call(
            "publish", str(w.model(gates={"f1": {"direction": "higher"}})), "--repository", w.empty
        ),
        finding="gate 'f1' names metric 'f1', which is not in metrics",
    ),
    case(
        "compare-gate-min-above-max",
        2,
        "1 problem(s)",
        lambda w: call(
            "compare",
            str(w.model(gates={"accuracy": {"direction": "higher", "min": 0.9, "max": 0.8}})),
            "--repository",
            w.empty,
        ),
        finding="gate 'accuracy': min 0.9 is above max 0.8",
    ),
    case(
        "publish-version-with-leading-v",
        2,
        "1 problem(s)",
        lambda w: call("publish", str(w.model(version="v1.2.0")), "--repository", w.empty),
        finding="version 'v1.2.0' must not start with 'v'; write '1.2.0'",
    ),
    case(
        "compare-version-with-leading-v",
        2,
        "1 problem(s)",
        lambda w: call("compare", str(w.model(version="v1.2.0")), "--repository", w.empty),
        finding="must not start with 'v'",
    ),
    case(
        "publish-listed-file-deleted",
        2,
        "1 problem(s)",
        lambda w: call("publish", str(_without_weights(w)), "--repository", w.empty),
        finding="file 'model/weights.bin' does not exist",
    ),
    case(
        "publish-version-record-too-large",
        2,
        "the version record is",
        lambda w: call(
            "publish",
            str(w.model(hyperparameters={"table": "x" * 600_000})),
            "--repository",
            w.empty,
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# 5. GitHub event payloads: compare --comment and the action (mode auto)

GH = {"GITHUB_TOKEN": "t0ken", "GITHUB_API_URL": "http://127.0.0.1:9"}


def comment(w: World, payload: Any, **env: str) -> Call:
    manifest = w.model()
    return Call(
        (
            "compare",
            str(manifest),
            "--repository",
            w.empty,
            "--comment",
            "--comment-file",
            str(w.tmp / "c.md"),
        ),
        {**GH, "GITHUB_EVENT_PATH": w.event(payload), **env},
    )


def action(w: World, manifest: Path | None = None, **env: str) -> Call:
    """``ci-modelver action``; keys in upper case are variables, others INPUT_<NAME> inputs."""
    variables = {"GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(w.tmp / "runner")}
    variables["INPUT_MANIFEST"] = str(manifest or w.model())
    for key, value in env.items():
        variables[key if key.isupper() else f"INPUT_{key.upper()}"] = value
    return Call(("action",), variables)


PR = {"pull_request": {"number": 7}, "repository": {"full_name": "acme/models"}}

EVENTS = [
    case(
        "comment-event-not-json",
        2,
        "not a readable JSON event payload",
        lambda w: comment(w, b"{this is not json", GITHUB_REPOSITORY="acme/models"),
    ),
    case(
        "comment-event-not-utf8",
        2,
        "not a readable JSON event payload",
        lambda w: comment(w, b'\xff\xfe{"pull_request": {}}', GITHUB_REPOSITORY="acme/models"),
    ),
    case(
        "comment-event-json-array",
        2,
        "the event payload is not a JSON object",
        lambda w: comment(w, [PR], GITHUB_REPOSITORY="acme/models"),
    ),
    case(
        "comment-pull-request-without-number",
        2,
        "no pull request number; pass --pr N",
        lambda w: comment(
            w, {"pull_request": {"title": "x"}, "repository": {"full_name": "acme/models"}}
        ),
    ),
    case(
        "comment-pull-request-number-a-string",
        2,
        "no pull request number",
        lambda w: comment(
            w, {"pull_request": {"number": "7"}, "repository": {"full_name": "acme/models"}}
        ),
    ),
    case(
        "comment-pull-request-number-a-boolean",
        2,
        "no pull request number",
        lambda w: comment(
            w, {"pull_request": {"number": True}, "repository": {"full_name": "acme/models"}}
        ),
    ),
    case(
        "comment-missing-repository",
        2,
        "no repository; set GITHUB_REPOSITORY=owner/name",
        lambda w: comment(w, {"pull_request": {"number": 7}}),
    ),
    case(
        "comment-repository-not-an-object",
        2,
        "no repository",
        lambda w: comment(w, {"pull_request": {"number": 7}, "repository": "acme/models"}),
    ),
    case(
        "comment-without-token",
        2,
        "no GitHub token; set GITHUB_TOKEN or pass --github-token",
        lambda w: comment(w, PR, GITHUB_TOKEN=""),
    ),
    case(
        "comment-head-repo-a-string",
        3,
        "comments",
        lambda w: comment(
            w, {**PR, "pull_request": {"number": 7, "head": {"repo": "forker/models"}}}
        ),
    ),
    case(
        "action-auto-on-branch-push",
        2,
        "input 'mode' is auto, but a 'push' event is neither a pull request nor a tag or release",
        lambda w: action(
            w, GITHUB_EVENT_NAME="push", GITHUB_REF="refs/heads/main", repository=w.empty
        ),
    ),
    case(
        "action-auto-on-workflow-dispatch",
        2,
        "a 'workflow_dispatch' event is neither a pull request nor a tag or release",
        lambda w: action(w, GITHUB_EVENT_NAME="workflow_dispatch", repository=w.empty),
    ),
    case(
        "action-unknown-mode",
        2,
        "input 'mode': 'deploy' is not one of auto, check, publish, promote, rollback",
        lambda w: action(
            w, GITHUB_EVENT_NAME="workflow_dispatch", mode="deploy", repository=w.empty
        ),
    ),
    case(
        "action-tag-does-not-match-version",
        2,
        "tag 'v2.0.0' means version '2.0.0', but",
        lambda w: action(
            w, GITHUB_EVENT_NAME="push", GITHUB_REF="refs/tags/v2.0.0", repository=w.empty
        ),
    ),
    case(
        "action-publish-on-branch-push",
        2,
        "publish needs a tag: GITHUB_REF is 'refs/heads/main'",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="push",
            GITHUB_REF="refs/heads/main",
            mode="publish",
            repository=w.empty,
        ),
    ),
    case(
        "action-release-without-tag",
        2,
        "publish needs a tag",
        lambda w: action(w, GITHUB_EVENT_NAME="release", repository=w.empty),
    ),
    case(
        "action-check-event-not-json",
        2,
        "not a readable JSON event payload",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_EVENT_PATH=w.event(b"not json"),
            GITHUB_REPOSITORY="acme/models",
            github_token="t0ken",
            repository=w.empty,
        ),
    ),
    case(
        "action-check-event-json-array",
        2,
        "the event payload is not a JSON object",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_EVENT_PATH=w.event([1, 2]),
            GITHUB_REPOSITORY="acme/models",
            github_token="t0ken",
            repository=w.empty,
        ),
    ),
    case(
        "action-check-pull-request-without-number",
        2,
        "no pull request number",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_EVENT_PATH=w.event(
                {"pull_request": {}, "repository": {"full_name": "acme/models"}}
            ),
            github_token="t0ken",
            repository=w.empty,
        ),
    ),
    case(
        "action-check-missing-repository",
        2,
        "no repository; set GITHUB_REPOSITORY",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_EVENT_PATH=w.event({"pull_request": {"number": 7}}),
            github_token="t0ken",
            repository=w.empty,
        ),
    ),
    case(
        "action-no-repository-input-and-no-github-repository",
        2,
        "input 'repository' is empty and GITHUB_REPOSITORY is not set",
        lambda w: action(w, GITHUB_EVENT_NAME="pull_request", comment="false"),
    ),
    case(
        "action-fail-on-regression-not-a-boolean",
        2,
        "input 'fail-on-regression': expected true or false, got 'maybe'",
        lambda w: action(
            w,
            w.candidate(),
            GITHUB_EVENT_NAME="pull_request",
            repository=w.store,
            comment="false",
            fail_on_regression="maybe",
        ),
    ),
    case(
        "action-fail-on-regression-not-a-boolean-without-regression",
        2,
        "input 'fail-on-regression'",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="pull_request",
            repository=w.store,
            comment="false",
            fail_on_regression="maybe",
        ),
    ),
    case(
        "action-comment-not-a-boolean",
        2,
        "input 'comment': expected true or false, got 'sure'",
        lambda w: action(w, GITHUB_EVENT_NAME="pull_request", repository=w.empty, comment="sure"),
    ),
    case(
        "action-move-latest-not-a-boolean",
        2,
        "input 'move-latest': expected true or false, got 'perhaps'",
        lambda w: action(
            w,
            GITHUB_EVENT_NAME="push",
            GITHUB_REF="refs/tags/v1.0.0",
            repository=w.empty,
            move_latest="perhaps",
        ),
    ),
    case(
        "action-promote-without-to",
        2,
        "mode promote needs the 'to' input",
        lambda w: action(w, mode="promote", repository=w.store),
    ),
]


# ---------------------------------------------------------------------------------------------
# 6. Environment variables


def docker_config(w: World, content: bytes) -> Call:
    folder = w.tmp / "docker"
    folder.mkdir()
    (folder / "config.json").write_bytes(content)
    return Call(("show", w.serve(), *T), {"DOCKER_CONFIG": str(folder)})


def publish_with(w: World, **env: str) -> Call:
    return Call(("publish", str(w.model()), "--repository", w.empty), env)


ENVIRONMENT = [
    case(
        "source-date-epoch-a-word",
        2,
        "SOURCE_DATE_EPOCH='yesterday' is not a number of seconds since 1970",
        lambda w: publish_with(w, SOURCE_DATE_EPOCH="yesterday"),
    ),
    case(
        "source-date-epoch-negative",
        2,
        "SOURCE_DATE_EPOCH='-5' is not a number",
        lambda w: publish_with(w, SOURCE_DATE_EPOCH="-5"),
    ),
    case(
        "source-date-epoch-fraction",
        2,
        "SOURCE_DATE_EPOCH='1.5' is not a number",
        lambda w: publish_with(w, SOURCE_DATE_EPOCH="1.5"),
    ),
    case(
        "source-date-epoch-superscript-digit",
        2,
        "SOURCE_DATE_EPOCH",
        lambda w: publish_with(w, SOURCE_DATE_EPOCH="²"),
    ),
    case(
        "source-date-epoch-after-year-9999",
        2,
        "SOURCE_DATE_EPOCH",
        lambda w: publish_with(w, SOURCE_DATE_EPOCH="253402300800"),
    ),
    case(
        "modelver-concurrency-a-word",
        2,
        "environment variable MODELVER_CONCURRENCY='four' is not an integer",
        lambda w: Call(("show", w.version), {"MODELVER_CONCURRENCY": "four"}),
    ),
    case(
        "modelver-concurrency-zero",
        2,
        "must be between 1 and 64, got 0",
        lambda w: Call(("show", w.version), {"MODELVER_CONCURRENCY": "0"}),
    ),
    case(
        "modelver-timeout-a-word",
        2,
        "environment variable MODELVER_TIMEOUT='soon' is not a number",
        lambda w: Call(("show", w.version), {"MODELVER_TIMEOUT": "soon"}),
    ),
    case(
        "modelver-chunk-size-a-word",
        2,
        "environment variable MODELVER_CHUNK_SIZE='big' is not an integer",
        lambda w: publish_with(w, MODELVER_CHUNK_SIZE="big"),
    ),
    case(
        "modelver-repository-with-space",
        2,
        "invalid reference 'Bad Repo': it contains control characters or spaces",
        lambda w: Call(("publish", str(w.model())), {"MODELVER_REPOSITORY": "Bad Repo"}),
    ),
    case(
        "modelver-repository-missing-host",
        2,
        "'acme' is not a registry host",
        lambda w: Call(("publish", str(w.model())), {"MODELVER_REPOSITORY": "acme/model"}),
    ),
    case(
        "docker-config-invalid-json",
        2,
        "config.json: the docker config is not valid JSON (line 1 column 12); fix or remove the docker config file",
        lambda w: docker_config(w, b'{"auths": {'),
    ),
    case(
        "docker-config-auths-a-string",
        2,
        "config.json",
        lambda w: docker_config(w, b'{"auths": "ghcr.io"}'),
    ),
    case(
        "docker-config-auth-entry-a-string",
        2,
        "config.json",
        lambda w: docker_config(w, json.dumps({"auths": {w.reg.host: "user:pass"}}).encode()),
    ),
    case(
        "github-output-is-a-folder",
        2,
        "GITHUB_OUTPUT",
        lambda w: publish_with(w, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(w.tmp)),
    ),
    case(
        "github-step-summary-is-a-folder",
        2,
        "GITHUB_STEP_SUMMARY",
        lambda w: Call(
            ("compare", str(w.model()), "--repository", w.empty),
            {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(w.tmp)},
        ),
    ),
]


# ---------------------------------------------------------------------------------------------
# Running a case


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout holding demo 1.0.0 (validation accuracy 0.9), copied by cases that need it."""
    root = tmp_path_factory.mktemp("template")
    manifest = make_model(root / "model")
    store = root / "store"
    env = base_env(root / "home", MODELVER_NO_CACHE="1")
    published = run_cli("publish", str(manifest), "--repository", f"oci:{store}", env=env)
    assert published.code == 0, published.err
    return store


@pytest.fixture
def world(tmp_path: Path, template: Path) -> Iterator[World]:
    w = World(tmp_path, template)
    yield w
    w.close()


def run_case(world: World, case: Case) -> Run:
    invocation = case.make(world)
    result = run_cli(*invocation.args, env={**world.env, **invocation.env})
    check(result, case)
    return result


def check(result: Run, case: Case) -> None:
    """The documented contract: exit code, one last 'error: ' line saying what is wrong."""
    assert "Traceback" not in result.out + result.err
    assert result.code == case.code, (
        f"exit {result.code}, expected {case.code}; stderr: {result.err!r}"
    )
    if case.code == 0:
        # Tolerated: a malformed optional field is ignored, the rest is still shown.
        assert not [line for line in result.err.splitlines() if line.startswith("error: ")]
        assert case.fragment in result.out, f"{case.fragment!r} not in {result.out!r}"
        return
    lines = result.err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, f"expected exactly one 'error: ' line on stderr, got {result.err!r}"
    assert lines[-1] == errors[0], f"the error line must come last on stderr: {result.err!r}"
    assert case.fragment in errors[0], f"{case.fragment!r} not in {errors[0]!r}"
    if case.finding is not None:
        findings = [line for line in result.out.splitlines() if FINDING.match(line)]
        assert any(case.finding in line for line in findings), (
            f"no FILE:LINE:COL finding with {case.finding!r} on stdout: {result.out!r}"
        )


@pytest.mark.parametrize("case", REGISTRY)
def test_registry_answer(world: World, case: Case) -> None:
    run_case(world, case)


@pytest.mark.parametrize("case", REFERENCES)
def test_reference(world: World, case: Case) -> None:
    run_case(world, case)


@pytest.mark.parametrize("case", ARGUMENTS)
def test_argument(world: World, case: Case) -> None:
    run_case(world, case)


@pytest.mark.parametrize("case", MANIFESTS)
def test_manifest_or_metrics(world: World, case: Case) -> None:
    run_case(world, case)


@pytest.mark.parametrize("case", EVENTS)
def test_github_event(world: World, case: Case) -> None:
    run_case(world, case)


@pytest.mark.parametrize("case", ENVIRONMENT)
def test_environment(world: World, case: Case) -> None:
    run_case(world, case)


def test_pull_mismatch_writes_nothing(world: World) -> None:
    """A layer that does not match its digest leaves neither the file nor a partial file behind."""
    ref = world.serve(blobs={WEIGHTS: b"x" * 64})
    out = world.tmp / "out"
    result = run_cli("pull", ref, "-o", str(out), *T, env=world.env)
    check(result, Case(3, "blob content hashes to", lambda w: call()))
    assert not (out / "model" / "weights.bin").exists()
    assert not list(out.rglob(".partial-*"))


def test_corpus_size() -> None:
    groups = [REGISTRY, REFERENCES, ARGUMENTS, MANIFESTS, EVENTS, ENVIRONMENT]
    ids = [param.id for group in groups for param in group]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(ids) >= 70

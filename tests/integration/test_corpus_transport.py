"""Transport corpus: bounded waits, bounded parsing of outside JSON, TLS, servers' echoes.

The cases follow the contract of ``test_bad_input_corpus`` (exact exit code, one last
``error:`` line that says what is wrong, never a traceback), against
:class:`~tests.support.hostile_transport.TransportRegistry` (the hostile registry plus
trickled answers, slow readers, echoed credentials and TLS):

- every wait is bounded: a registry trickling a byte every half second (the body, or the
  headers too) makes ``show``, ``versions``, ``pull`` and ``publish`` end with exit 3 and one
  line naming the URL and that it was too slow; these run as a subprocess with a generous
  timeout, so a regression fails the test instead of hanging it;
- outside JSON goes through one bounded parser: documents nested 100,000 deep, oversized,
  ``NaN``, or an HTML page (a captive portal) are exit 3 from a registry (every command) and
  exit 2 from a local layout or docker config;
- a TLS certificate we cannot verify is exit 3 at once (one connection, no retries) with the
  way to trust a CA; SSL_CERT_FILE and REQUESTS_CA_BUNDLE do trust it;
- an error body that echoes our Authorization header shows neither the token nor the password;
- blob transfers get ``--timeout`` plus their size at the minimum throughput, and no more.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci_modelver.adapters.http import Credentials, RegistryHTTP, RetryPolicy
from ci_modelver.adapters.registry import RegistryStore
from ci_modelver.adapters.store import BlobSource, NoProgress
from ci_modelver.core.modelpack import Descriptor
from ci_modelver.errors import TooSlow
from tests.conftest import Run
from tests.integration.test_bad_input_corpus import (
    CONFIG,
    GOOD,
    WEIGHTS,
    Call,
    Case,
    World,
    bare,
    call,
    case,
    check,
    docker_config,
    run_case,
    template,
)
from tests.support.hostile_registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    Answer,
    canonical,
    model_artifact,
)
from tests.support.hostile_transport import (
    TLS_HOST,
    EchoAuth,
    SlowRead,
    TransportRegistry,
    Trickle,
    resolves_to_loopback,
    self_signed,
    server_context,
)

pytestmark = pytest.mark.integration

__all__ = ["template"]  # the corpus's module fixture: a layout holding demo 1.0.0

T = ("--timeout", "2")
SLOW = ("--timeout", "3")  # trickled answers: the whole request must end within this
DEEP = b"[" * 100_000 + b"]" * 100_000
HTML = b"<html><head><title>Hotel Wi-Fi</title></head><body>Sign in to continue</body></html>"
PORTAL = Answer(200, HTML, {"Content-Type": "text/html; charset=utf-8"})
HTML_PAGE = "is an HTML page (text/html), not JSON"
USER, PASSWORD = "ci-bot", "pa55-Wörd-9f3e1c"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"
CREDENTIALS = {"MODELVER_REGISTRY_USERNAME": USER, "MODELVER_REGISTRY_PASSWORD": PASSWORD}


@dataclass
class TransportWorld(World):
    """The corpus world, with the transport registry instead of the plain hostile one."""

    @property
    def reg(self) -> TransportRegistry:
        if self._registry is None:
            self._registry = TransportRegistry().start()
        assert isinstance(self._registry, TransportRegistry)
        return self._registry


@pytest.fixture
def tworld(tmp_path: Path, template: Path) -> Iterator[TransportWorld]:
    w = TransportWorld(tmp_path, template)
    yield w
    w.close()


def run_process(args: tuple[str, ...], env: dict[str, str], timeout: float = 120) -> Run:
    """The CLI as a subprocess; a run that does not end within ``timeout`` fails the test."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ci_modelver", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ci-modelver {' '.join(args)} did not end within {timeout}s")
    return Run(done.returncode, done.stdout, done.stderr)


# ---------------------------------------------------------------------------------------------
# 1. Outside JSON: nested, oversized, not standard, not JSON at all


def _portal(w: World, *args: str) -> Call:
    w.reg.always(PORTAL)
    return call(*args, *T)


def _fallback_index(w: World, body: bytes) -> str:
    ref = w.serve()
    w.reg.add_manifest("sha256-" + GOOD.digest.split(":")[1], body, OCI_INDEX)
    return ref


def _token_service(w: World, answer: Answer) -> str:
    ref = w.serve()
    w.reg.rule("GET", "^/token$", answer)
    challenge = f'Bearer realm="http://{w.reg.host}/token",service="registry"'
    w.reg.rule("*", "^/v2/", Answer(401, headers={"WWW-Authenticate": challenge}))
    return ref


def _layout_index(w: World, body: bytes) -> str:
    version = w.version
    (Path(w.store.removeprefix("oci:")) / "index.json").write_bytes(body)
    return version


def _layout_manifest(w: World, body: bytes) -> str:
    """The layout's 1.0.0 tag pointing at ``body`` (stored under its own digest)."""
    root = Path(w.store.removeprefix("oci:"))
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    (root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(body)
    index = json.loads((root / "index.json").read_bytes())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == "1.0.0":
            entry.update(digest=digest, size=len(body))
    (root / "index.json").write_bytes(canonical(index))
    return w.version


def _alias_move(w: World, record: str) -> str:
    """A model 1.0.0 and an alias-move record (the audit trail) whose annotation is ``record``."""
    ref = w.serve()
    move = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.ci-modelver.alias-move.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [],
        "annotations": {"dev.ci-modelver.alias-move": record},
    }
    w.reg.add_manifest("modelver-audit-production-20260101T000000000000-abcd", canonical(move))
    return ref


def _helper_answering(w: World, answer: bytes) -> Call:
    """A docker credential helper for the registry that prints ``answer``."""
    ref = w.serve()
    bin_dir = w.tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "answer.out").write_bytes(answer)
    helper = bin_dir / "docker-credential-odd"
    helper.write_text(f"#!/bin/sh\ncat '{bin_dir / 'answer.out'}'\n")
    helper.chmod(0o755)
    folder = w.tmp / "docker"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"credHelpers": {w.reg.host: "odd"}}))
    return Call(
        ("show", ref, *T), {"DOCKER_CONFIG": str(folder), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    )


JSON_CASES = [
    # From a registry: exit 3, naming what was asked for.
    case(
        "show-manifest-nested-100000-deep",
        3,
        "1.0.0: the manifest nests deeper than 64 levels",
        lambda w: call("show", w.serve_bytes(DEEP), *T),
    ),
    case(
        "pull-manifest-nested-100000-deep",
        3,
        "the manifest nests deeper than 64 levels",
        lambda w: call("pull", w.serve_bytes(DEEP), "-o", str(w.tmp / "out"), *T),
    ),
    case(
        "promote-manifest-nested-100000-deep",
        3,
        "the manifest nests deeper than 64 levels",
        lambda w: call("promote", w.serve_bytes(DEEP), "--alias", "production", *T),
    ),
    case(
        "show-manifest-object-nested-100000-deep",
        3,
        "the manifest nests deeper than 64 levels",
        lambda w: call("show", w.serve_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), *T),
    ),
    case(
        "show-manifest-with-nan",
        3,
        "the manifest is not standard JSON ('NaN' is not a JSON value)",
        lambda w: call("show", w.serve_bytes(b'{"schemaVersion": NaN}'), *T),
    ),
    case(
        "versions-tag-list-nested-100000-deep",
        3,
        "tags: the tag list nests deeper than 64 levels",
        lambda w: call("versions", w.hostile_repo("GET", "/tags/list$", Answer(200, DEEP)), *T),
    ),
    case(
        "history-tag-list-nested-100000-deep",
        3,
        "tags: the tag list nests deeper than 64 levels",
        lambda w: call("history", w.hostile_repo("GET", "/tags/list$", Answer(200, DEEP)), *T),
    ),
    case(
        "versions-tag-list-over-16mib",
        3,
        "tags: the tag list is over the 16 MiB limit",
        lambda w: call(
            "versions",
            w.hostile_repo("GET", "/tags/list$", Answer(200, b" " * (16 * 1024 * 1024 + 1))),
            *T,
        ),
    ),
    case(
        "show-referrers-api-index-nested-100000-deep",
        3,
        "referrers of " + GOOD.digest + ": the referrers index nests deeper than 64 levels",
        lambda w: call(
            "show",
            w.hostile("GET", "/referrers/", Answer(200, DEEP, {"Content-Type": OCI_INDEX})),
            *T,
        ),
    ),
    case(
        "show-referrers-api-index-is-html",
        3,
        "the referrers index is an HTML page, not JSON",
        lambda w: call(
            "show",
            w.hostile("GET", "/referrers/", Answer(200, HTML, {"Content-Type": OCI_INDEX})),
            *T,
        ),
    ),
    case(
        "show-referrers-fallback-index-nested-100000-deep",
        3,
        ":sha256-" + GOOD.digest.split(":")[1] + ": the manifest nests deeper than 64 levels",
        lambda w: call("show", _fallback_index(w, DEEP), *T),
    ),
    case(
        "show-error-body-nested-100000-deep",
        3,
        "1.0.0: 418 I'm a Teapot",
        lambda w: call("show", w.hostile("GET", "/manifests/", Answer(418, DEEP)), *T),
    ),
    case(
        "show-token-answer-nested-100000-deep",
        3,
        "access denied to",
        lambda w: call("show", _token_service(w, Answer(200, DEEP)), *T),
    ),
    case(
        "show-token-answer-is-html",
        3,
        "access denied to",
        lambda w: call("show", _token_service(w, PORTAL), *T),
    ),
    # Parsed outside the adapters, through the same bounded parser.
    case(
        "show-version-record-nested-100000-deep",
        2,
        "nests deeper than 64 levels",
        lambda w: call("show", w.record("[" * 100_000 + "]" * 100_000), *T),
    ),
    case(
        "show-config-blob-nested-100000-deep",
        2,
        "nests deeper than 64 levels",
        lambda w: call("show", w.serve(model_artifact(config=DEEP)), *T),
    ),
    case(
        "history-alias-move-record-nested-100000-deep",
        0,
        "1.0.0",
        lambda w: call("history", bare(_alias_move(w, "[" * 100_000 + "]" * 100_000)), *T),
    ),
    # From local files: exit 2, naming the file.
    case(
        "show-layout-index-nested-100000-deep",
        2,
        "index.json: the layout's index nests deeper than 64 levels; repair or remove it",
        lambda w: call("show", _layout_index(w, b'{"manifests": ' + DEEP + b"}")),
    ),
    case(
        "versions-layout-index-not-json",
        2,
        "index.json: the layout's index is not valid JSON (line 1 column 2); repair or remove it",
        lambda w: call("versions", _layout_index(w, b"{nope").rsplit(":", 1)[0]),
    ),
    case(
        "show-layout-manifest-nested-100000-deep",
        2,
        "the manifest nests deeper than 64 levels; the layout is corrupted",
        lambda w: call("show", _layout_manifest(w, DEEP)),
    ),
    case(
        "show-layout-manifest-over-4mib",
        2,
        "the manifest is over the 4 MiB limit; the layout is corrupted",
        lambda w: call("show", _layout_manifest(w, b" " * (4 * 1024 * 1024 + 1) + b"{}")),
    ),
    case(
        "docker-config-nested-100000-deep",
        2,
        "config.json: the docker config nests deeper than 64 levels; fix or remove the docker config file",
        lambda w: docker_config(w, b'{"auths": ' + DEEP + b"}"),
    ),
    case(
        "docker-config-over-4mib",
        2,
        "config.json: the docker config is over the 4 MiB limit",
        lambda w: docker_config(w, b"{}" + b" " * (4 * 1024 * 1024)),
    ),
    case(
        "docker-config-with-infinity",
        2,
        "config.json: the docker config is not standard JSON ('Infinity' is not a JSON value)",
        lambda w: docker_config(w, b'{"auths": {}, "timeout": Infinity}'),
    ),
    case(
        "credential-helper-answers-nested-100000-deep",
        3,
        "with something other than its credentials JSON",
        lambda w: _helper_answering(w, DEEP),
    ),
]

# A captive portal (200 OK, text/html for every request) is exit 3 for every command.
PORTAL_CASES = [
    case("portal-show", 3, HTML_PAGE, lambda w: _portal(w, "show", w.reg.ref())),
    case("portal-pull", 3, HTML_PAGE, lambda w: _portal(w, "pull", w.reg.ref(), "-o", str(w.tmp))),
    case("portal-versions", 3, HTML_PAGE, lambda w: _portal(w, "versions", w.reg.repo())),
    case("portal-history", 3, HTML_PAGE, lambda w: _portal(w, "history", w.reg.repo())),
    case("portal-reproduce", 3, HTML_PAGE, lambda w: _portal(w, "reproduce", w.reg.ref())),
    case(
        "portal-promote",
        3,
        HTML_PAGE,
        lambda w: _portal(w, "promote", w.reg.ref(), "--alias", "production"),
    ),
    case(
        "portal-rollback",
        3,
        HTML_PAGE,
        lambda w: _portal(w, "rollback", w.reg.repo(), "--alias", "production"),
    ),
    case(
        "portal-attach",
        3,
        HTML_PAGE,
        lambda w: _portal(
            w,
            "attach",
            w.reg.ref(),
            "--metrics",
            str(w.write("later.json", '{"holdout": {"accuracy": 0.8}}')),
        ),
    ),
    case(
        "portal-publish",
        3,
        HTML_PAGE,
        lambda w: _portal(w, "publish", str(w.model()), "--repository", w.reg.repo()),
    ),
    case(
        "portal-compare",
        3,
        HTML_PAGE,
        lambda w: _portal(w, "compare", str(w.model()), "--repository", w.reg.repo()),
    ),
    case(
        "portal-compare-baseline",
        3,
        HTML_PAGE,
        lambda w: _portal(
            w, "compare", str(w.model()), "--repository", w.reg.repo(), "--baseline", "1.0.0"
        ),
    ),
]


@pytest.mark.parametrize("case", JSON_CASES)
def test_outside_json(tworld: TransportWorld, case: Case) -> None:
    result = run_case(tworld, case)
    assert "RecursionError" not in result.err


@pytest.mark.parametrize("case", PORTAL_CASES)
def test_captive_portal(tworld: TransportWorld, case: Case) -> None:
    run_case(tworld, case)


# ---------------------------------------------------------------------------------------------
# 2. Servers that echo our credentials


def _echo(w: World, answer: EchoAuth, token: bool = False) -> str:
    ref = w.serve()
    if token:
        w.reg.rule("GET", "^/token$", Answer(200, json.dumps({"token": TOKEN}).encode()))
    w.reg.rule("*", "^/v2/", answer)
    return ref


def _bearer(w: World) -> str:
    return f'Bearer realm="http://{w.reg.host}/token",service="registry"'


ECHOES = [
    case(
        "show-403-echoes-basic-authorization",
        3,
        "403 DENIED: Authorization <redacted> may not pull — access denied to",
        lambda w: Call(
            ("show", _echo(w, EchoAuth(403, message="Authorization {auth} may not pull")), *T),
            CREDENTIALS,
        ),
    ),
    case(
        "show-403-echoes-decoded-password",
        3,
        "403 DENIED: <redacted> is not a valid login",
        lambda w: Call(
            ("show", _echo(w, EchoAuth(403, message="{decoded} is not a valid login")), *T),
            CREDENTIALS,
        ),
    ),
    case(
        "show-401-echoes-bare-bearer-token",
        3,
        "401 DENIED: token <redacted> is expired",
        lambda w: Call(
            (
                "show",
                _echo(
                    w,
                    EchoAuth(401, challenge=_bearer(w), message="token {credential} is expired"),
                    token=True,
                ),
                *T,
            ),
            CREDENTIALS,
        ),
    ),
    case(
        "show-418-echoes-authorization-header-in-json",
        3,
        "418 DENIED: headers were",
        lambda w: Call(
            (
                "show",
                _echo(
                    w,
                    EchoAuth(
                        418,
                        challenge=_bearer(w),
                        message='headers were {{"Authorization": "{auth}"}}',
                    ),
                    token=True,
                ),
                *T,
            ),
            CREDENTIALS,
        ),
    ),
]


@pytest.mark.parametrize("case", ECHOES)
def test_echoed_credentials_are_redacted(tworld: TransportWorld, case: Case) -> None:
    result = run_case(tworld, case)
    shown = result.out + result.err
    for secret in (PASSWORD, TOKEN, f"{USER}:{PASSWORD}"):
        assert secret not in shown
    basic = __import__("base64").b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert basic not in shown
    assert "<redacted>" in shown
    assert any(method == "GET" for method, _ in tworld.reg.requests)


# ---------------------------------------------------------------------------------------------
# 3. Every wait is bounded: trickling registries (subprocess, generous timeout)


@dataclass(frozen=True)
class Slow:
    """A trickling scenario: its command line and the URL path the error must name."""

    make: Callable[[TransportWorld], tuple[str, ...]]
    url: str


def _trickled_manifest(w: TransportWorld, headers_too: bool = False) -> tuple[str, ...]:
    ref = w.serve()
    w.reg.rule(
        "GET",
        "/manifests/1.0.0$",
        Trickle(200, GOOD.manifest, {"Content-Type": OCI_MANIFEST}, headers_too=headers_too),
    )
    return ("show", ref, *SLOW)


def _trickled_blob(w: TransportWorld, digest: str, verb: str) -> tuple[str, ...]:
    ref = w.serve()
    w.reg.rule(
        "GET",
        f"/blobs/{digest}$",
        Trickle(200, GOOD.blobs[digest], {"Content-Type": "application/octet-stream"}),
    )
    if verb == "pull":
        return ("pull", ref, "-o", str(w.tmp / "out"), *SLOW)
    return ("show", ref, *SLOW)


def _trickled_tags(w: TransportWorld) -> tuple[str, ...]:
    ref = w.serve()
    w.reg.rule(
        "GET", "/tags/list$", Trickle(200, canonical({"name": "acme/model", "tags": ["1.0.0"]}))
    )
    return ("versions", bare(ref), *SLOW)


def _trickled_upload(w: TransportWorld) -> tuple[str, ...]:
    w.reg.rule("PUT", "/blobs/uploads/", Trickle(201, b"", headers_too=True))
    return ("publish", str(w.model()), "--repository", w.reg.repo(), *SLOW)


def _trickled_token(w: TransportWorld) -> tuple[str, ...]:
    ref = _token_service(w, Trickle(200, json.dumps({"token": TOKEN}).encode()))
    return ("show", ref, *SLOW)


def _trickled_error(w: TransportWorld) -> tuple[str, ...]:
    ref = w.serve()
    w.reg.rule("GET", "/manifests/", Trickle(418, b"x" * 200))
    return ("show", ref, *SLOW)


SLOW_CASES = {
    "show-manifest-body-trickled": Slow(_trickled_manifest, "/v2/acme/model/manifests/1.0.0"),
    "show-manifest-headers-trickled": Slow(
        lambda w: _trickled_manifest(w, headers_too=True), "/v2/acme/model/manifests/1.0.0"
    ),
    "show-config-blob-trickled": Slow(
        lambda w: _trickled_blob(w, CONFIG, "show"), f"/v2/acme/model/blobs/{CONFIG}"
    ),
    "pull-weight-blob-trickled": Slow(
        lambda w: _trickled_blob(w, WEIGHTS, "pull"), f"/v2/acme/model/blobs/{WEIGHTS}"
    ),
    "versions-tag-list-trickled": Slow(_trickled_tags, "/v2/acme/model/tags/list"),
    "publish-blob-upload-answer-trickled": Slow(_trickled_upload, "/v2/acme/model/blobs/uploads/"),
    "show-token-answer-trickled": Slow(_trickled_token, "/token"),
}


@pytest.mark.parametrize("scenario", list(SLOW_CASES.values()), ids=list(SLOW_CASES))
def test_a_trickling_registry_is_too_slow(tworld: TransportWorld, scenario: Slow) -> None:
    args = scenario.make(tworld)
    result = run_process(args, tworld.env)
    check(result, Case(3, "too slow: http://" + tworld.reg.host + scenario.url, lambda w: call()))
    assert "did not answer in full within" in result.err
    assert tworld.reg.trickled > 0, "the registry never trickled: the case tested nothing"
    out = tworld.tmp / "out"
    assert not (out / "model" / "weights.bin").exists()
    assert not list(tworld.tmp.rglob(".partial*")), "a partial download was kept"


def test_a_trickled_error_body_still_ends(tworld: TransportWorld) -> None:
    """An error answer is read only to describe it, within the same deadline."""
    result = run_process(_trickled_error(tworld), tworld.env)
    check(result, Case(3, "1.0.0: 418", lambda w: call()))
    assert tworld.reg.trickled > 0


# ---------------------------------------------------------------------------------------------
# 4. Blob transfers: --timeout plus the size at the minimum throughput


MIB = 1024 * 1024


def _store(reg: TransportRegistry, *, budget: float, floor: int) -> RegistryStore:
    http = RegistryHTTP(
        reg.host,
        plain_http=True,
        credentials=Credentials("no credentials (anonymous)", None),
        # Per attempt, 30 s between two bytes: only the allowance can end these transfers.
        policy=RetryPolicy(budget=budget, timeout=30.0, min_throughput=floor),
        env={},
    )
    return RegistryStore(http, "acme/model")


def _blob(size: int) -> BlobSource:
    data = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return BlobSource(
        Descriptor("application/octet-stream", digest, size), "weights.bin", data=data
    )


def test_an_upload_slower_than_the_floor_is_cut_off() -> None:
    reg = TransportRegistry().start()
    try:
        # 128 KiB/s against a floor of 1 MiB/s: 4 MiB may take 1 + 4 s, and would need 32 s.
        reg.rule("PUT", "/blobs/uploads/", SlowRead(201, interval=0.5, block=64 * 1024))
        source = _blob(4 * MIB)
        with pytest.raises(TooSlow) as caught:
            _store(reg, budget=1.0, floor=MIB).push_blob(source, NoProgress())
        message = str(caught.value)
        assert "too slow: http://" + reg.host + "/v2/acme/model/blobs/uploads/" in message
        assert "within 5s (1s plus 4.0 MiB at 1 MiB/s)" in message
        assert "MODELVER_MIN_THROUGHPUT" in message
        assert 0 < reg.received < source.descriptor.size
    finally:
        reg.stop()


def test_an_upload_above_the_floor_completes() -> None:
    reg = TransportRegistry().start()
    try:
        # The same reader, fast enough (about 6 MiB/s) for the default floor.
        reg.rule("PUT", "/blobs/uploads/", SlowRead(201, interval=0.01, block=64 * 1024))
        source = _blob(2 * MIB)
        assert _store(reg, budget=2.0, floor=64 * 1024).push_blob(source, NoProgress())
        assert reg.received == source.descriptor.size
    finally:
        reg.stop()


def test_a_download_slower_than_the_floor_is_cut_off(tmp_path: Path) -> None:
    reg = TransportRegistry().start()
    try:
        source = _blob(4 * MIB)
        data = source.data or b""
        # 256 KiB/s against a floor of 1 MiB/s: allowed 1 + 4 s, would need 16 s.
        reg.rule(
            "GET",
            "/blobs/",
            Trickle(
                200,
                data,
                {"Content-Type": "application/octet-stream"},
                interval=0.25,
                block=64 * 1024,
            ),
        )
        dest = tmp_path / "out" / "weights.bin"
        with pytest.raises(TooSlow, match="within 5s"):
            _store(reg, budget=1.0, floor=MIB).fetch_blob(
                source.descriptor, dest, NoProgress(), "weights.bin"
            )
        assert not dest.exists() and not list(dest.parent.glob(".partial*"))
        assert 0 < reg.trickled < len(data)
    finally:
        reg.stop()


def _paced_weights(w: TransportWorld) -> tuple[str, ...]:
    """A 1 MiB weight served steadily at 256 KiB/s: 4 s, twice the --timeout of 2 s."""
    weights = os.urandom(MIB)
    artifact = model_artifact({"model/weights.bin": weights})
    ref = w.serve(artifact)
    digest = "sha256:" + hashlib.sha256(weights).hexdigest()
    w.reg.rule(
        "GET",
        f"/blobs/{digest}$",
        Trickle(
            200,
            weights,
            {"Content-Type": "application/octet-stream"},
            interval=0.25,
            block=64 * 1024,
        ),
    )
    return ("pull", ref, "-o", str(w.tmp / "out"), *T)


def test_a_slow_steady_download_gets_its_size_allowance(tworld: TransportWorld) -> None:
    """--timeout alone would cut it off; its size at the default 64 KiB/s floor lets it finish."""
    result = run_process(_paced_weights(tworld), tworld.env)
    assert result.code == 0, result.err
    assert (tworld.tmp / "out" / "model" / "weights.bin").stat().st_size == MIB
    assert tworld.reg.trickled == MIB


def test_min_throughput_raises_the_floor(tworld: TransportWorld) -> None:
    env = {**tworld.env, "MODELVER_MIN_THROUGHPUT": str(MIB)}
    result = run_process(_paced_weights(tworld), env)
    check(result, Case(3, "too slow: http://" + tworld.reg.host, lambda w: call()))
    assert "(2s plus 1.0 MiB at 1 MiB/s)" in result.err


# ---------------------------------------------------------------------------------------------
# 5. TLS (a real TLS server on 127.0.0.1, addressed as 127.1 so that ci-modelver speaks TLS)


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[TransportRegistry, Path]]:
    if not resolves_to_loopback():
        pytest.fail(f"{TLS_HOST} does not resolve to 127.0.0.1 here; the TLS tests need it")
    cert, key = self_signed(tmp_path / "tls")
    reg = TransportRegistry().start(tls=server_context(cert, key))
    reg.add_model("1.0.0", GOOD)
    yield reg, cert
    reg.stop()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    from tests.helpers import base_env

    return base_env(tmp_path / "home", MODELVER_NO_CACHE="1", **extra)


def test_an_untrusted_certificate_is_final(
    tls_registry: tuple[TransportRegistry, Path], tmp_path: Path
) -> None:
    reg, _ = tls_registry
    result = run_process(("show", reg.ref(), "--timeout", "60"), _env(tmp_path))
    check(
        result,
        Case(
            3,
            f"the TLS certificate of {reg.host} could not be verified (self-signed certificate)",
            lambda w: call(),
        ),
    )
    for advice in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "--plain-http"):
        assert advice in result.err
    assert "SSLError" not in result.err
    assert reg.connections == 1, f"{reg.connections} connections: a certificate failure was retried"
    assert reg.requests == []


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_trusted_ca_is_used(
    tls_registry: tuple[TransportRegistry, Path], tmp_path: Path, variable: str
) -> None:
    reg, cert = tls_registry
    out = tmp_path / "out"
    result = run_process(
        ("pull", reg.ref(), "-o", str(out), *T), _env(tmp_path, **{variable: str(cert)})
    )
    assert result.code == 0, result.err
    assert (out / "model" / "weights.bin").read_bytes() == GOOD.blobs[WEIGHTS]
    assert ("GET", f"/v2/acme/model/blobs/{WEIGHTS}") in reg.requests


def test_a_certificate_for_another_name_is_final(tmp_path: Path) -> None:
    if not resolves_to_loopback():
        pytest.fail(f"{TLS_HOST} does not resolve to 127.0.0.1 here; the TLS tests need it")
    cert, key = self_signed(tmp_path / "tls", names=("registry.example",))
    reg = TransportRegistry().start(tls=server_context(cert, key))
    try:
        result = run_process(
            ("show", reg.ref(), "--timeout", "60"), _env(tmp_path, SSL_CERT_FILE=str(cert))
        )
        check(result, Case(3, "could not be verified (Hostname mismatch", lambda w: call()))
        assert reg.connections == 1
    finally:
        reg.stop()


def test_a_missing_ca_file_is_bad_input(
    tls_registry: tuple[TransportRegistry, Path], tmp_path: Path
) -> None:
    reg, _ = tls_registry
    missing = tmp_path / "no-such-ca.pem"
    result = run_process(("show", reg.ref(), *T), _env(tmp_path, SSL_CERT_FILE=str(missing)))
    check(result, Case(2, f"SSL_CERT_FILE={missing}: no such file", lambda w: call()))
    assert reg.connections == 0


def test_a_plain_http_registry_spoken_to_in_tls_is_final(tmp_path: Path) -> None:
    if not resolves_to_loopback():
        pytest.fail(f"{TLS_HOST} does not resolve to 127.0.0.1 here; the TLS tests need it")
    reg = TransportRegistry().start()
    try:
        reg.add_model("1.0.0", GOOD)
        ref = f"{TLS_HOST}:{reg.port}/acme/model:1.0.0"
        result = run_process(("show", ref, "--timeout", "60"), _env(tmp_path))
        check(result, Case(3, f"{TLS_HOST}:{reg.port} does not answer in TLS", lambda w: call()))
        assert "--plain-http" in result.err
        assert reg.connections == 1
    finally:
        reg.stop()

"""Bad-input corpus, signing and verification: keys, certificates and policies (exit 2), and a
hostile registry's signature records (exit 5 for a record that cannot be trusted, 3 when the
registry fails). Same contract as the corpus: the exact exit code, exactly one last ``error:``
line saying what is wrong, never a traceback; and no secret of a signing key in any output.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from ci_modelver.core.audit import referrers_tag
from tests.conftest import run_cli
from tests.integration.test_bad_input_corpus import (
    FAST,
    GOOD,
    Call,
    Case,
    T,
    World,
    after,
    call,
    case,
    check,
    template,  # noqa: F401  (the fixtures World needs)
    world,  # noqa: F401
)
from tests.support.hostile_registry import OCI_INDEX, Answer, canonical, model_artifact, sha256
from tests.support.signing_keys import PASSPHRASE, KeyPair, make_pki, write_key

pytestmark = pytest.mark.integration

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SECRETS: list[str] = []


def _tar(*symlinks: tuple[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, target in symlinks:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def _tar_layer(w: World, blob: bytes) -> str:
    """A version whose one layer is the tar ``blob`` (folder ``weights``), served with it."""
    layer = {
        "mediaType": "application/vnd.cncf.model.weight.v1.tar",
        "digest": sha256(blob),
        "size": len(blob),
        "annotations": {"org.cncf.model.filepath": "weights"},
    }
    return w.serve(model_artifact(layers=[layer]), blobs={sha256(blob): blob})


def key(w: World, name: str = "release", kind: str = "p256", **options: Any) -> KeyPair:
    pair = write_key(w.tmp / "keys", name, kind, **options)
    SECRETS.extend(pair.secrets())
    return pair


def signed(w: World, pair: KeyPair | None = None) -> tuple[str, KeyPair, dict[str, Any]]:
    """demo 1.0.0 on the hostile registry, signed by ``pair`` through our own CLI."""
    pair = pair or key(w)
    ref = w.serve()
    done = run_cli("sign", ref, "--sign-key", str(pair.private), "--format", "json", *T, env=w.env)
    assert done.code == 0, done.err
    return ref, pair, json.loads(done.out)


def bundle_of(doc: dict[str, Any], kind: str) -> str:
    return str(next(s for s in doc["signatures"] if s["statement"] == kind)["bundle"])


def index_with(w: World, *entries: dict[str, Any]) -> None:
    """Serve a referrers fallback index for the model listing ``entries``."""
    body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)})
    w.reg.add_manifest(referrers_tag(GOOD.digest), body, OCI_INDEX)


def entry(digest: str, size: int = 100) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": size,
        "artifactType": BUNDLE,
    }


def verify(w: World, ref: str, pair: KeyPair, *extra: str) -> Call:
    return call("verify", ref, "--key", str(pair.public), *extra)


def referrer(w: World, layer: dict[str, Any], *, artifact_type: str = BUNDLE) -> str:
    """A referrer manifest of the model with ``layer`` as its one layer; its digest."""
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256(b"{}"),
            "size": 2,
        },
        "layers": [layer],
        "subject": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": GOOD.digest,
            "size": len(GOOD.manifest),
        },
    }
    body = canonical(doc)
    return w.reg.add_manifest(sha256(body), body)


def _ref(w: World) -> str:
    return w.serve()


CASES = [
    # --- the signing key (exit 2, before the store is touched) -------------------------------
    case(
        "sign-key-file-missing",
        2,
        "missing.pem: does not exist",
        lambda w: call("sign", w.version, "--sign-key", str(w.tmp / "missing.pem")),
    ),
    case(
        "sign-key-is-a-public-key",
        2,
        "is not a PEM private key (it holds: PUBLIC KEY)",
        lambda w: call("sign", w.version, "--sign-key", str(key(w).public)),
    ),
    case(
        "sign-key-rsa",
        2,
        "RSA private keys are not supported; use ECDSA P-256, ECDSA P-384 or Ed25519",
        lambda w: call("sign", w.version, "--sign-key", str(key(w, "rsa", "rsa").private)),
    ),
    case(
        "sign-key-p521",
        2,
        "ECDSA secp521r1 private keys are not supported",
        lambda w: call("sign", w.version, "--sign-key", str(key(w, "big", "p521").private)),
    ),
    case(
        "sign-key-encrypted-without-passphrase",
        2,
        "the private key is encrypted; set MODELVER_SIGNING_KEY_PASSWORD",
        lambda w: call("sign", w.version, "--sign-key", str(key(w, password=PASSPHRASE).private)),
    ),
    case(
        "sign-key-env-wrong-passphrase",
        2,
        "MODELVER_SIGNING_KEY: the passphrase in MODELVER_SIGNING_KEY_PASSWORD does not decrypt",
        lambda w: call(
            "sign",
            w.version,
            MODELVER_SIGNING_KEY=key(w, password=PASSPHRASE).private_pem,
            MODELVER_SIGNING_KEY_PASSWORD="not the passphrase",
        ),
    ),
    case(
        "sign-key-env-not-pem",
        2,
        "MODELVER_SIGNING_KEY: is not a PEM private key; give the signing key",
        lambda w: call("sign", w.version, MODELVER_SIGNING_KEY="just some text"),
    ),
    case(
        "sign-key-file-env-missing",
        2,
        "MODELVER_SIGNING_KEY_FILE nope.pem: does not exist",
        lambda w: call("sign", w.version, MODELVER_SIGNING_KEY_FILE="nope.pem"),
    ),
    case(
        "sign-key-damaged-pem",
        2,
        "cannot read the PEM private key (damaged or not PEM)",
        lambda w: call(
            "sign",
            w.version,
            "--sign-key",
            str(
                w.write("bad.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            ),
        ),
    ),
    case(
        "sign-key-too-large",
        2,
        "is over 1024 KiB; give a PEM file",
        lambda w: call("sign", w.version, "--sign-key", str(w.write("big.pem", b"x" * (2 << 20)))),
    ),
    case(
        "sign-key-is-a-folder",
        2,
        "is a folder, not a PEM file",
        lambda w: call("sign", w.version, "--sign-key", str(w.tmp)),
    ),
    case(
        "sign-without-a-key",
        2,
        "sign: give the signing key: --sign-key KEY",
        lambda w: call("sign", w.version),
    ),
    case(
        "sign-cert-without-a-key",
        2,
        "--sign-cert: needs the certificate's private key",
        lambda w: call("sign", w.version, "--sign-cert", str(make_pki(w.tmp / "pki").leaf)),
    ),
    case(
        "sign-cert-for-another-key",
        2,
        "the certificate is not for the signing key",
        lambda w: call(
            "sign",
            w.version,
            "--sign-key",
            str(key(w).private),
            "--sign-cert",
            str(make_pki(w.tmp / "pki").leaf),
        ),
    ),
    case(
        "sign-cert-is-not-a-certificate",
        2,
        "holds no PEM certificate",
        lambda w: call(
            "sign", w.version, "--sign-key", str(key(w).private), "--sign-cert", str(key(w).public)
        ),
    ),
    case(
        "sign-chain-without-cert",
        2,
        "--sign-cert-chain: needs the signing certificate",
        lambda w: call(
            "sign",
            w.version,
            "--sign-key",
            str(key(w).private),
            "--sign-cert-chain",
            str(make_pki(w.tmp / "pki").chain),
        ),
    ),
    case(
        "sign-a-tar-layer-that-is-not-an-archive",
        2,
        "the tar layer is not a valid archive",
        lambda w: call("sign", _tar_layer(w, b"tar"), "--sign-key", str(key(w).private), *T),
    ),
    case(
        "sign-a-tar-layer-whose-symlink-leaves-it",
        2,
        "tar entry 'weights/link' cannot be listed in a signed files statement",
        lambda w: call(
            "sign",
            _tar_layer(w, _tar(("weights/link", "../../etc/passwd"))),
            "--sign-key",
            str(key(w).private),
            *T,
        ),
    ),
    # --- the trust policy (exit 2) -----------------------------------------------------------
    case(
        "verify-without-anyone-trusted",
        2,
        "verify: name who is trusted: --key PUB (repeatable), or --ca ROOTS --cert-identity NAME",
        lambda w: call("verify", w.version),
    ),
    case(
        "verify-ca-without-identity",
        2,
        "--ca: needs --cert-identity too",
        lambda w: call("verify", w.version, "--ca", str(make_pki(w.tmp / "pki").root)),
    ),
    case(
        "verify-identity-without-ca",
        2,
        "--cert-identity: needs --ca too",
        lambda w: call("verify", w.version, "--cert-identity", "x@example.com"),
    ),
    case(
        "verify-key-is-the-private-key",
        2,
        "holds a private key; give the public key",
        lambda w: call("verify", w.version, "--key", str(key(w).private)),
    ),
    case(
        "verify-key-is-a-certificate",
        2,
        "is not a PEM public key (it holds: CERTIFICATE)",
        lambda w: call("verify", w.version, "--key", str(make_pki(w.tmp / "pki").root)),
    ),
    case(
        "pull-verify-key-missing",
        2,
        "--verify-key nope.pub: does not exist",
        lambda w: call("pull", w.version, "-o", str(w.tmp / "out"), "--verify-key", "nope.pub"),
    ),
    case(
        "verify-write-signature-into-a-folder",
        2,
        "is a folder",
        lambda w: _write_into_folder(w),
    ),
    # --- a hostile registry's signature records ---------------------------------------------
    case(
        "verify-unsigned-on-a-registry",
        5,
        "untrusted: it has no signatures",
        lambda w: verify(w, w.serve(), key(w), *T),
    ),
    case(
        "verify-index-lists-a-missing-referrer",
        5,
        "its referrer manifest is missing",
        lambda w: after(index_with(w, entry("sha256:" + "e" * 64)), verify(w, _ref(w), key(w), *T)),
    ),
    case(
        "verify-index-entry-is-not-a-bundle-artifact",
        5,
        "its referrer manifest is not a Sigstore bundle artifact",
        lambda w: after(
            index_with(
                w,
                entry(
                    referrer(
                        w,
                        {"mediaType": BUNDLE, "digest": sha256(b"x"), "size": 1},
                        artifact_type="x",
                    )
                ),
            ),
            verify(w, _ref(w), key(w), *T),
        ),
    ),
    case(
        "verify-bundle-layer-declares-a-huge-size",
        5,
        "over the 16,777,216 limit",
        lambda w: after(
            index_with(
                w,
                entry(referrer(w, {"mediaType": BUNDLE, "digest": sha256(b"x"), "size": 1 << 40})),
            ),
            verify(w, _ref(w), key(w), *T),
        ),
    ),
    case(
        "verify-bundle-layer-is-not-a-bundle",
        5,
        "bundle layer is not a bundle descriptor",
        lambda w: after(
            index_with(
                w,
                entry(referrer(w, {"mediaType": "text/plain", "digest": sha256(b"x"), "size": 1})),
            ),
            verify(w, _ref(w), key(w), *T),
        ),
    ),
    case(
        "verify-bundle-blob-not-json",
        5,
        "its bundle is an HTML page, not JSON",
        lambda w: after(
            (
                w.reg.add_blob(b"<html>"),
                index_with(
                    w,
                    entry(
                        referrer(w, {"mediaType": BUNDLE, "digest": sha256(b"<html>"), "size": 6})
                    ),
                ),
            ),
            verify(w, _ref(w), key(w), *T),
        ),
    ),
    case(
        "verify-bundle-blob-missing",
        5,
        "is missing",
        lambda w: _missing_blob(w),
    ),
    case(
        "verify-bundle-blob-other-bytes",
        5,
        "its bundle blob does not match its digest",
        lambda w: _other_bytes(w),
    ),
    case(
        "verify-bundle-blob-server-error",
        3,
        "500",
        lambda w: _server_error(w),
    ),
    case(
        "verify-referrers-index-is-html",
        3,
        "HTML page",
        lambda w: after(
            w.reg.add_manifest(
                referrers_tag(GOOD.digest), b"<html><body>login</body></html>", "text/html"
            ),
            verify(w, _ref(w), key(w), *T),
        ),
    ),
    case(
        "verify-signed-by-someone-else-on-a-registry",
        5,
        "signed by an unknown key",
        lambda w: (lambda s: verify(w, s[0], key(w, "other", "ed25519"), *T))(signed(w)),
    ),
    case(
        "pull-verify-key-signed-by-someone-else",
        5,
        "signed by an unknown key",
        lambda w: (
            lambda s: call(
                "pull", s[0], "-o", str(w.tmp / "out"), "--verify-key", str(key(w, "o").public), *T
            )
        )(signed(w)),
    ),
    case(
        "verify-many-junk-referrers-are-bounded",
        5,
        "64 signature(s), none trusted",
        lambda w: after(
            index_with(w, *(entry("sha256:" + f"{i:064x}") for i in range(300))),
            verify(w, _ref(w), key(w), *T),
        ),
    ),
]


def _write_into_folder(w: World) -> Call:
    pair = key(w)
    assert run_cli("sign", w.version, "--sign-key", str(pair.private), env=w.env).code == 0
    return verify(w, w.version, pair, "--write-signature", str(w.tmp))


def _missing_blob(w: World) -> Call:
    ref, pair, doc = signed(w)
    del w.reg.blobs[bundle_of(doc, "files")]
    return verify(w, ref, pair, *T)


def _other_bytes(w: World) -> Call:
    ref, pair, doc = signed(w)
    digest = bundle_of(doc, "version")
    w.reg.add_blob(w.reg.blobs[digest][:-1] + b" ", digest=digest)
    return verify(w, ref, pair, *T)


def _server_error(w: World) -> Call:
    ref, pair, doc = signed(w)
    w.reg.rule("GET", f"/blobs/{bundle_of(doc, 'files')}", Answer(500, b"oops"))
    return verify(w, ref, pair, *FAST)


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    yield
    SECRETS.clear()


@pytest.mark.parametrize("case", CASES)
def test_signing_case(world: World, case: Case) -> None:  # noqa: F811
    invocation = case.make(world)
    result = run_cli(*invocation.args, env={**world.env, **invocation.env})
    check(result, case)
    for secret in SECRETS:
        assert secret not in result.out + result.err
    out = world.tmp / "out"
    if "pull" in invocation.args:
        assert not out.exists(), "pull wrote into the output folder"


def test_a_model_signature_stays_valid_with_model_artifact_names(world: World) -> None:  # noqa: F811
    """A version named differently from its folder still verifies (names are informative)."""
    pair = key(world)
    ref = world.serve(model_artifact(name="other-name"))
    assert run_cli("sign", ref, "--sign-key", str(pair.private), *T, env=world.env).code == 0
    assert run_cli("verify", ref, "--key", str(pair.public), *T, env=world.env).code == 0

"""sign and verify against the real registry (Debian's docker-registry) and an OCI layout.

Round trips, the OpenSSF model_signing CLI verifying a folder we pulled with our signature, us
verifying a bundle model_signing produced, and tampering: each a separate test, each exit 5 (or 3
for a registry failure). Every output of these tests is scanned for the signing key's PEM, its
base64 lines, its raw bytes and its passphrase.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.adapters.referrers import list_referrers
from ci_modelver.adapters.store import BlobSource, NoProgress, Store
from ci_modelver.core.audit import referrers_tag
from ci_modelver.core.modelpack import OCI_INDEX, OCI_MANIFEST, canonical_json, sha256_digest
from ci_modelver.core.refs import parse_ref
from ci_modelver.core.signing import (
    BUNDLE_MEDIA_TYPE,
    FILES_PREDICATE,
    VERSION_PREDICATE,
    key_material,
    sign_statement,
    version_statement,
)
from ci_modelver.settings import Settings
from ci_modelver.signatures import attach_bundle
from ci_modelver.toolkit import open_store
from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry
from tests.support.signing_keys import (
    PASSPHRASE,
    KeyPair,
    assert_secrets_hidden,
    make_pki,
    run_model_signing,
    write_key,
)

pytestmark = pytest.mark.integration

SECRETS: list[str] = []  # every secret of the keys the tests made; outputs are scanned for them


def cli(*args: str, env: dict[str, str]) -> Run:
    result = run_cli(*args, env=env)
    assert_secrets_hidden(result.out, result.err, SECRETS)
    assert "Traceback" not in result.out + result.err or "--debug" in args
    return result


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[tuple[KeyPair, KeyPair]]:
    a = write_key(tmp_path / "keys", "release")
    b = write_key(tmp_path / "keys", "stranger", "ed25519")
    SECRETS.extend(a.secrets() + b.secrets())
    yield a, b
    SECRETS.clear()


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "layout":
        return f"oci:{tmp_path / 'store'}"
    registry: Registry = request.getfixturevalue("registry")
    return registry.repo(f"signing/{tmp_path.name.lower()}")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(tmp_path / "home", **extra)


def _publish(tmp_path: Path, repo: str, env: dict[str, str], *extra: str) -> dict[str, Any]:
    manifest = make_model(tmp_path / "model", extra_files={"src/train.py": b"print('train')\n"})
    done = cli("publish", str(manifest), "--repository", repo, "--format", "json", *extra, env=env)
    assert done.code == 0, done.err
    doc: dict[str, Any] = json.loads(done.out)
    return doc


def _store(repo: str, tmp_path: Path) -> Store:
    return open_store(parse_ref(repo), Settings.build({}, cwd=tmp_path), create=False)


def _sign(ref: str, key: KeyPair, env: dict[str, str]) -> dict[str, Any]:
    done = cli("sign", ref, "--sign-key", str(key.private), "--format", "json", env=env)
    assert done.code == 0, done.err
    doc: dict[str, Any] = json.loads(done.out)
    return doc


def _verify(ref: str, key: KeyPair, env: dict[str, str], *extra: str) -> Run:
    return cli("verify", ref, "--key", str(key.public), *extra, env=env)


def _untrusted(result: Run, fragment: str) -> None:
    assert result.code == 5, result.out + result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == result.err.splitlines()[-1], result.err
    assert "untrusted" in errors[0]
    assert fragment in result.out + errors[0], result.out + result.err


# --- round trips ---------------------------------------------------------------------------


def test_sign_then_verify(tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]) -> None:
    release, _ = keys
    env = _env(tmp_path)
    published = _publish(tmp_path, repo, env)
    signed = _sign(f"{repo}:1.0.0", release, env)
    assert signed["digest"] == published["digest"]
    assert [s["statement"] for s in signed["signatures"]] == ["files", "version"]
    done = _verify(f"{repo}:1.0.0", release, env, "--format", "json")
    assert done.code == 0, done.err
    doc = json.loads(done.out)
    assert doc["trusted"] and doc["digest"] == published["digest"] and doc["files"] == 3
    assert {s["kind"] for s in doc["signatures"]} == {"files", "version"}
    text = _verify(f"{repo}:1.0.0", release, env)
    assert text.code == 0
    assert text.out.startswith(f"verified {repo}@{published['digest']} (1.0.0)")
    assert "signed by key release.pub (sha256:" in text.out
    # The version did not change: same digest by tag, and show still reads it.
    shown = cli("show", f"{repo}:1.0.0", "--format", "json", env=env)
    assert json.loads(shown.out)["digest"] == published["digest"]
    # The bundles are referrers laid out as cosign's bundle spec says.
    store = _store(repo, tmp_path)
    entries = list_referrers(store, published["digest"], BUNDLE_MEDIA_TYPE)
    assert len(entries) == 2
    manifest = json.loads(store.get_manifest(entries[0].digest)[0])
    assert manifest["artifactType"] == BUNDLE_MEDIA_TYPE
    assert manifest["subject"]["digest"] == published["digest"]
    assert [layer["mediaType"] for layer in manifest["layers"]] == [BUNDLE_MEDIA_TYPE]


def test_several_signatures_and_any_trusted_one_is_enough(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    _sign(f"{repo}:1.0.0", stranger, env)
    _sign(f"{repo}:1.0.0", release, env)
    both = cli(
        "verify", f"{repo}:1.0.0", "--key", str(release.public), "--key", str(stranger.public),
        "--format", "json", env=env,
    )  # fmt: skip
    assert both.code == 0
    assert len(json.loads(both.out)["signers"]) == 2
    assert _verify(f"{repo}:1.0.0", stranger, env).code == 0


def test_unsigned_is_untrusted(tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]) -> None:
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    _untrusted(_verify(f"{repo}:1.0.0", keys[0], env), "it has no signatures")


def test_an_unknown_signer_is_untrusted(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    _sign(f"{repo}:1.0.0", stranger, env)
    _untrusted(_verify(f"{repo}:1.0.0", release, env), "signed by an unknown key")


def test_certificate_mode(tmp_path: Path, repo: str) -> None:
    pki = make_pki(tmp_path / "pki")
    SECRETS.extend(pki.key.secrets())
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    done = cli(
        "sign", f"{repo}:1.0.0", "--sign-key", str(pki.key.private), "--sign-cert", str(pki.leaf),
        "--sign-cert-chain", str(pki.chain), env=env,
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "with certificate release@example.com" in done.out
    ok = cli(
        "verify", f"{repo}:1.0.0", "--ca", str(pki.root), "--cert-identity", pki.identity, env=env
    )
    assert ok.code == 0, ok.out + ok.err
    assert "signed by certificate release@example.com" in ok.out
    other = cli(
        "verify",
        f"{repo}:1.0.0",
        "--ca",
        str(pki.root),
        "--cert-identity",
        "x@example.com",
        env=env,
    )
    _untrusted(other, "not the --cert-identity x@example.com")
    SECRETS.clear()


# --- the OpenSSF model_signing tool -----------------------------------------------------------


def test_model_signing_verifies_a_folder_we_pulled(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    _sign(f"{repo}:1.0.0", release, env)
    out = tmp_path / "pulled"
    assert cli("pull", f"{repo}:1.0.0", "-o", str(out), env=env).code == 0
    signature = tmp_path / "model.sig"
    done = _verify(f"{repo}:1.0.0", release, env, "--write-signature", str(signature))
    assert done.code == 0, done.err
    assert f"wrote the files signature to {signature}" in done.out
    checked = run_model_signing(
        "verify",
        "key",
        str(out),
        "--signature",
        str(signature),
        "--public_key",
        str(release.public),
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification succeeded" in checked.stdout


def test_we_verify_a_bundle_model_signing_made(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    """Our version statement plus model_signing's own files bundle (same key): trusted."""
    release, _ = keys
    env = _env(tmp_path)
    published = _publish(tmp_path, repo, env)
    out = tmp_path / "pulled"
    assert cli("pull", f"{repo}:1.0.0", "-o", str(out), env=env).code == 0
    signature = tmp_path / "theirs.sig"
    made = run_model_signing(
        "sign",
        "key",
        str(out),
        "--signature",
        str(signature),
        "--private_key",
        str(release.private),
    )
    assert made.returncode == 0, made.stdout + made.stderr
    store = _store(repo, tmp_path)
    data, digest = store.get_manifest(published["digest"])
    doc = json.loads(data)
    files = {
        layer["annotations"]["org.cncf.model.filepath"]: layer["digest"] for layer in doc["layers"]
    }
    version = version_statement("demo", digest, version="1.0.0", signed_at="t", files=files)
    ours = sign_statement(version, release.key, key_material(release.key.public_key()))
    subject_size = len(data)
    attach_bundle(store, digest, subject_size, ours, VERSION_PREDICATE, "2026-01-01T00:00:00Z")
    # Without a files statement the version is not trusted yet.
    _untrusted(_verify(f"{repo}:1.0.0", release, env), "no trusted files statement")
    attach_bundle(
        store, digest, subject_size, signature.read_bytes(), FILES_PREDICATE, "2026-01-01T00:00:01Z"
    )
    done = _verify(f"{repo}:1.0.0", release, env, "--format", "json")
    assert done.code == 0, done.out + done.err
    assert {s["kind"] for s in json.loads(done.out)["signatures"]} == {"files", "version"}


# --- tampering, each on its own ----------------------------------------------------------------


def _signed(
    tmp_path: Path, repo: str, key: KeyPair
) -> tuple[dict[str, str], dict[str, Any], Store]:
    env = _env(tmp_path)
    published = _publish(tmp_path, repo, env)
    signed = _sign(f"{repo}:1.0.0", key, env)
    return env, {**published, "signatures": signed["signatures"]}, _store(repo, tmp_path)


def _replace_bundle(store: Store, signed: dict[str, Any], kind: str, data: bytes) -> None:
    """Point the ``kind`` referrer's manifest at ``data`` (a new bundle blob)."""
    record = next(s for s in signed["signatures"] if s["statement"] == kind)["record"]
    manifest = json.loads(store.get_manifest(record)[0])
    blob = {"mediaType": BUNDLE_MEDIA_TYPE, "digest": sha256_digest(data), "size": len(data)}
    store.push_blob(BlobSource(_descriptor(blob), "b", data=data), NoProgress())
    manifest["layers"] = [blob]
    _swap_referrer(store, signed["digest"], record, canonical_json(manifest))


def _descriptor(raw: dict[str, Any]) -> Any:
    from ci_modelver.core.modelpack import Descriptor

    return Descriptor(raw["mediaType"], raw["digest"], raw["size"])


def _swap_referrer(store: Store, subject: str, old: str, manifest: bytes) -> None:
    new = store.put_manifest(None, manifest, OCI_MANIFEST)
    tag = referrers_tag(subject)
    index = json.loads(store.get_manifest(tag)[0])
    for entry in index["manifests"]:
        if entry["digest"] == old:
            entry["digest"], entry["size"] = new, len(manifest)
    store.put_manifest(tag, canonical_json(index), OCI_INDEX)


def test_a_signature_replaced_by_one_from_another_key(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env, signed, store = _signed(tmp_path, repo, release)
    record = next(s for s in signed["signatures"] if s["statement"] == "version")["record"]
    layer = json.loads(store.get_manifest(record)[0])["layers"][0]
    bundle = json.loads(store.read_blob(_descriptor(layer), layer["size"]))
    statement = json.loads(__import__("base64").b64decode(bundle["dsseEnvelope"]["payload"]))
    forged = json.loads(
        sign_statement(statement, stranger.key, key_material(release.key.public_key()))
    )
    bundle["dsseEnvelope"]["signatures"] = forged["dsseEnvelope"]["signatures"]
    _replace_bundle(store, signed, "version", canonical_json(bundle))
    _untrusted(_verify(f"{repo}:1.0.0", release, env), "does not verify with key release.pub")


def test_a_statement_for_another_digest(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env, signed, store = _signed(tmp_path, repo, release)
    other = "sha256:" + "0" * 64
    statement = version_statement("demo", other, version="1.0.0", signed_at="t", files={})
    bundle = sign_statement(statement, release.key, key_material(release.key.public_key()))
    _replace_bundle(store, signed, "version", bundle)
    _untrusted(_verify(f"{repo}:1.0.0", release, env), f"its statement is for {other}")


@pytest.mark.parametrize(
    ("mangle", "fragment"),
    [
        (lambda b: b[: len(b) // 2], "its bundle is not valid JSON"),
        (lambda b: b"this is not json", "its bundle is not valid JSON"),
        (lambda b: b"{}", "its bundle is not a Sigstore bundle v0.3"),
    ],
    ids=["truncated", "not-json", "empty-object"],
)
def test_a_bundle_that_cannot_be_read(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair], mangle: Any, fragment: str
) -> None:
    release, _ = keys
    env, signed, store = _signed(tmp_path, repo, release)
    record = next(s for s in signed["signatures"] if s["statement"] == "files")["record"]
    layer = json.loads(store.get_manifest(record)[0])["layers"][0]
    _replace_bundle(
        store, signed, "files", mangle(store.read_blob(_descriptor(layer), layer["size"]))
    )
    _untrusted(_verify(f"{repo}:1.0.0", release, env), fragment)


def _delete_blob(repo: str, digest: str) -> None:
    """Remove a blob from the store behind the client's back (the registry allows DELETE)."""
    if repo.startswith("oci:"):
        (Path(repo[4:]) / "blobs" / "sha256" / digest.split(":")[1]).unlink()
        return
    host, _, path = repo.partition("/")
    request = urllib.request.Request(f"http://{host}/v2/{path}/blobs/{digest}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202


def test_a_bundle_referrer_whose_layer_is_missing(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env, signed, _ = _signed(tmp_path, repo, release)
    bundle = next(s for s in signed["signatures"] if s["statement"] == "files")["bundle"]
    _delete_blob(repo, bundle)
    _untrusted(_verify(f"{repo}:1.0.0", release, env), f"its bundle blob {bundle} is missing")


def test_a_layer_swapped_in_the_manifest(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    """The tag now names a manifest with another layer; the old signatures are listed for it too."""
    release, _ = keys
    env, signed, store = _signed(tmp_path, repo, release)
    data = store.get_manifest(signed["digest"])[0]
    doc = json.loads(data)
    other = b"other weights"
    store.push_blob(
        BlobSource(
            _descriptor({"mediaType": "x", "digest": sha256_digest(other), "size": len(other)}),
            "w",
            data=other,
        ),
        NoProgress(),
    )
    doc["layers"][0]["digest"], doc["layers"][0]["size"] = sha256_digest(other), len(other)
    swapped = canonical_json(doc)
    new = store.put_manifest("1.0.0", swapped, OCI_MANIFEST)
    # A hostile store lists the old version's signatures for the swapped manifest.
    index = store.get_manifest(referrers_tag(signed["digest"]))[0]
    store.put_manifest(referrers_tag(new), index, OCI_INDEX)
    _untrusted(_verify(f"{repo}:1.0.0", release, env), "refers to another manifest")


def test_secrets_never_reach_output_or_files(tmp_path: Path) -> None:
    """Encrypted key in the environment, its passphrase, --debug, success and failures."""
    pair = write_key(tmp_path / "keys", "enc", password=PASSPHRASE)
    SECRETS.extend(pair.secrets())
    store = tmp_path / "store"
    repo = f"oci:{store}"
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    key_env = {
        "MODELVER_SIGNING_KEY": pair.private_pem,
        "MODELVER_SIGNING_KEY_PASSWORD": PASSPHRASE,
    }
    done = cli("sign", f"{repo}:1.0.0", "--debug", env={**env, **key_env})
    assert done.code == 0, done.err
    wrong = cli(
        "sign", f"{repo}:1.0.0", "--debug",
        env={**env, **key_env, "MODELVER_SIGNING_KEY_PASSWORD": "wrong"},
    )  # fmt: skip
    assert wrong.code == 2
    assert "MODELVER_SIGNING_KEY: the passphrase in MODELVER_SIGNING_KEY_PASSWORD" in wrong.err
    missing = cli("sign", f"{repo}:1.0.0", env={**env, "MODELVER_SIGNING_KEY": pair.private_pem})
    assert missing.code == 2 and "is encrypted" in missing.err
    from_file = cli(
        "sign", f"{repo}:1.0.0", "--sign-key", str(pair.private), "--debug", "--format", "json",
        env={**env, "MODELVER_SIGNING_KEY_PASSWORD": PASSPHRASE},
    )  # fmt: skip
    assert from_file.code == 0, from_file.err
    for path in store.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("latin-1")
            assert not [s for s in SECRETS if s in content], path
    SECRETS.clear()


# --- publish --sign-key ---------------------------------------------------------------------------


def test_publish_signs_before_the_tag_and_only_once(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    doc = _publish(tmp_path, repo, env, "--sign-key", str(release.private))
    assert doc["status"] == "published"
    assert [s["statement"] for s in doc["signatures"]] == ["files", "version"]
    assert doc["signer"].startswith("key sha256:")
    assert _verify(f"{repo}:1.0.0", release, env).code == 0
    # Publishing the same bytes with the same key adds nothing; another key adds its signature.
    again = _publish(tmp_path, repo, env, "--sign-key", str(release.private))
    assert again["status"] == "unchanged" and again["signatures"] == []
    store = _store(repo, tmp_path)
    assert len(list_referrers(store, doc["digest"], BUNDLE_MEDIA_TYPE)) == 2
    other = _publish(tmp_path, repo, {**env, "MODELVER_SIGNING_KEY_FILE": str(stranger.private)})
    assert len(other["signatures"]) == 2
    assert len(list_referrers(store, doc["digest"], BUNDLE_MEDIA_TYPE)) == 4
    text = cli("publish", str(tmp_path / "model" / "modelver.yaml"), "--repository", repo,
               "--sign-key", str(_fresh_key(tmp_path).private), env=env)  # fmt: skip
    assert text.code == 0 and "  signed: files statement and version statement by key" in text.out


def _fresh_key(tmp_path: Path) -> KeyPair:
    pair = write_key(tmp_path / "keys", "third", "p384")
    SECRETS.extend(pair.secrets())
    return pair


def test_publish_with_a_bad_key_sends_nothing(
    tmp_path: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    store = tmp_path / "store"
    env = _env(tmp_path)
    manifest = make_model(tmp_path / "model")
    for bad in (str(keys[0].public), str(tmp_path / "missing.pem")):
        done = cli(
            "publish", str(manifest), "--repository", f"oci:{store}", "--sign-key", bad, env=env
        )
        assert done.code == 2, done.err
        assert not store.exists()
    enc = write_key(tmp_path / "keys", "enc", password=PASSPHRASE)
    SECRETS.extend(enc.secrets())
    done = cli(
        "publish",
        str(manifest),
        "--repository",
        f"oci:{store}",
        "--sign-key",
        str(enc.private),
        env=env,
    )
    assert done.code == 2 and "is encrypted; set MODELVER_SIGNING_KEY_PASSWORD" in done.err
    assert not store.exists()


# --- pull --verify-key -----------------------------------------------------------------------------


def test_pull_verifies_before_writing(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    _publish(tmp_path, repo, env, "--sign-key", str(release.private))
    out = tmp_path / "pulled"
    done = cli("pull", f"{repo}:1.0.0", "-o", str(out), "--verify-key", str(release.public),
               "--format", "json", env=env)  # fmt: skip
    assert done.code == 0, done.err
    doc = json.loads(done.out)
    assert len(doc["signers"]) == 1 and len(doc["files"]) == 3
    assert (out / "model" / "weights.bin").read_bytes() == b"weights-v1" * 100
    text = cli(
        "pull", f"{repo}:1.0.0", "-o", str(out), "--verify-key", str(release.public), env=env
    )
    assert "signed by key release.pub (sha256:" in text.out
    only = cli("pull", f"{repo}:1.0.0", "-o", str(tmp_path / "docs"), "--only", "doc",
               "--verify-key", str(release.public), env=env)  # fmt: skip
    assert only.code == 0 and (tmp_path / "docs" / "README.md").is_file()


def _tamper_other_key(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    record = next(s for s in signed["signatures"] if s["statement"] == "files")["record"]
    layer = json.loads(store.get_manifest(record)[0])["layers"][0]
    bundle = json.loads(store.read_blob(_descriptor(layer), layer["size"]))
    statement = json.loads(__import__("base64").b64decode(bundle["dsseEnvelope"]["payload"]))
    forged = json.loads(
        sign_statement(statement, stranger.key, key_material(release.key.public_key()))
    )
    bundle["dsseEnvelope"]["signatures"] = forged["dsseEnvelope"]["signatures"]
    _replace_bundle(store, signed, "files", canonical_json(bundle))


def _tamper_other_digest(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    release = keys[0]
    statement = version_statement(
        "demo", "sha256:" + "0" * 64, version="1.0.0", signed_at="t", files={}
    )
    _replace_bundle(
        store,
        signed,
        "version",
        sign_statement(statement, release.key, key_material(release.key.public_key())),
    )


def _tamper_truncated(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    record = next(s for s in signed["signatures"] if s["statement"] == "version")["record"]
    layer = json.loads(store.get_manifest(record)[0])["layers"][0]
    _replace_bundle(
        store, signed, "version", store.read_blob(_descriptor(layer), layer["size"])[:100]
    )


def _tamper_not_json(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    _replace_bundle(store, signed, "files", b"\x00\x01 not json")


def _tamper_missing_layer(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    _delete_blob(
        repo, next(s for s in signed["signatures"] if s["statement"] == "version")["bundle"]
    )


def _tamper_swapped_layer(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    doc = json.loads(store.get_manifest(signed["digest"])[0])
    doc["layers"][0], doc["layers"][1] = doc["layers"][1], doc["layers"][0]
    new = store.put_manifest("1.0.0", canonical_json(doc), OCI_MANIFEST)
    index = store.get_manifest(referrers_tag(signed["digest"]))[0]
    store.put_manifest(referrers_tag(new), index, OCI_INDEX)


def _tamper_wrong_file(
    repo: str, store: Store, signed: dict[str, Any], keys: tuple[KeyPair, KeyPair]
) -> None:
    """The manifest names other content for a file; its files statement is signed for it too,
    so the trusted key's signatures no longer cover it."""
    doc = json.loads(store.get_manifest(signed["digest"])[0])
    other = b"other weights"
    store.push_blob(
        BlobSource(
            _descriptor({"mediaType": "x", "digest": sha256_digest(other), "size": len(other)}),
            "w",
            data=other,
        ),
        NoProgress(),
    )
    doc["layers"][0]["digest"], doc["layers"][0]["size"] = sha256_digest(other), len(other)
    store.put_manifest("1.0.0", canonical_json(doc), OCI_MANIFEST)


TAMPERING = {
    "signature-from-another-key": (_tamper_other_key, 5),
    "statement-for-another-digest": (_tamper_other_digest, 5),
    "truncated-bundle": (_tamper_truncated, 5),
    "non-json-bundle": (_tamper_not_json, 5),
    "bundle-layer-missing": (_tamper_missing_layer, 5),
    "layers-swapped-in-the-manifest": (_tamper_swapped_layer, 5),
    "a-file-replaced-in-the-manifest": (_tamper_wrong_file, 5),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_pull_of_a_tampered_version_writes_nothing(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair], kind: str
) -> None:
    tamper, code = TAMPERING[kind]
    env, signed, store = _signed(tmp_path, repo, keys[0])
    tamper(repo, store, signed, keys)
    out = tmp_path / "pulled"
    done = cli(
        "pull", f"{repo}:1.0.0", "-o", str(out), "--verify-key", str(keys[0].public), env=env
    )
    assert done.code == code, done.out + done.err
    errors = [line for line in done.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "untrusted" in errors[0], done.err
    assert not out.exists()


def test_pull_of_a_changed_blob_writes_nothing(
    tmp_path: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    """A byte changed in a stored file: the signature still holds, that file's download does not
    (each file lands only once it matches the signed digest; files verified before it stay)."""
    repo = f"oci:{tmp_path / 'store'}"
    env, signed, store = _signed(tmp_path, repo, keys[0])
    doc = json.loads(store.get_manifest(signed["digest"])[0])
    blob = tmp_path / "store" / "blobs" / "sha256" / doc["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.write_bytes(bytes(data))
    out = tmp_path / "pulled"
    done = cli(
        "pull", f"{repo}:1.0.0", "-o", str(out), "--verify-key", str(keys[0].public), env=env
    )
    assert done.code == 3, done.err
    assert "tampered with; nothing was written" in done.err
    assert not (out / "model" / "weights.bin").exists()
    assert not list(out.rglob(".partial-*"))


def test_pull_unsigned_with_verify_key_writes_nothing(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    env = _env(tmp_path)
    _publish(tmp_path, repo, env)
    out = tmp_path / "pulled"
    done = cli(
        "pull", f"{repo}:1.0.0", "-o", str(out), "--verify-key", str(keys[0].public), env=env
    )
    _untrusted(done, "it has no signatures")
    assert not out.exists()

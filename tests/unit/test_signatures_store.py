"""Signing a version in an OCI layout and checking it: the referrers, the policy, the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_modelver.adapters.layout import LayoutStore
from ci_modelver.core.modelpack import parse_model_manifest
from ci_modelver.core.signing import BUNDLE_MEDIA_TYPE, KIND_FILES, KIND_VERSION
from ci_modelver.errors import InputError, Untrusted
from ci_modelver.settings import Settings
from ci_modelver.signatures import (
    load_policy,
    load_signing_key,
    sign_version,
    signature_checks,
    signed_by,
    verify_version,
)
from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.signing_keys import PASSPHRASE, make_pki, write_key


@pytest.fixture
def published(tmp_path: Path) -> tuple[LayoutStore, bytes, str]:
    manifest = make_model(tmp_path / "m")
    store_dir = tmp_path / "store"
    done = run_cli(
        "publish", str(manifest), "--repository", f"oci:{store_dir}", env=base_env(tmp_path / "h")
    )
    assert done.code == 0, done.err
    store = LayoutStore(store_dir, create=False)
    data, digest = store.get_manifest("1.0.0")
    return store, data, digest


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.build(env, cwd=tmp_path)


def test_sign_then_verify_in_a_layout(
    tmp_path: Path, published: tuple[LayoutStore, bytes, str]
) -> None:
    store, data, digest = published
    artifact = parse_model_manifest(data, digest, "src")
    pair = write_key(tmp_path, "release")
    settings = _settings(tmp_path)
    signer = load_signing_key(settings, key=str(pair.private))
    assert signer is not None
    records = sign_version(
        store, artifact, len(data), signer, name="demo", version="1.0.0", source="src"
    )
    assert [r.kind for r in records] == [KIND_FILES, KIND_VERSION]
    # The version itself is untouched.
    assert store.get_manifest("1.0.0") == (data, digest)
    policy = load_policy(settings, key_files=[str(pair.public)])
    verification = verify_version(store, artifact, policy, source="src")
    assert verification.trusted
    assert {c.kind for c in verification.checks} == {KIND_FILES, KIND_VERSION}
    assert verification.files == {
        "model/weights.bin": artifact.layers[0].digest,
        "README.md": artifact.layers[1].digest,
    }
    assert verification.files_bundle is not None
    assert json.loads(verification.files_bundle)["mediaType"] == BUNDLE_MEDIA_TYPE
    assert signed_by(store, artifact, signer, source="src")


def test_no_signature_is_untrusted(
    tmp_path: Path, published: tuple[LayoutStore, bytes, str]
) -> None:
    store, data, digest = published
    artifact = parse_model_manifest(data, digest, "src")
    policy = load_policy(_settings(tmp_path), key_files=[str(write_key(tmp_path, "k").public)])
    with pytest.raises(Untrusted, match="untrusted: it has no signatures"):
        verify_version(store, artifact, policy, source="src")


def test_another_signer_is_untrusted(
    tmp_path: Path, published: tuple[LayoutStore, bytes, str]
) -> None:
    store, data, digest = published
    artifact = parse_model_manifest(data, digest, "src")
    settings = _settings(tmp_path)
    signer = load_signing_key(settings, key=str(write_key(tmp_path, "a").private))
    assert signer is not None
    sign_version(store, artifact, len(data), signer, name="demo", version="1.0.0", source="src")
    policy = load_policy(settings, key_files=[str(write_key(tmp_path, "b").public)])
    verification = signature_checks(store, artifact, policy, source="src")
    assert not verification.trusted
    assert all("unknown key" in (c.problem or "") for c in verification.checks)
    assert len(verification.checks) == 2


def test_several_signatures_per_version(
    tmp_path: Path, published: tuple[LayoutStore, bytes, str]
) -> None:
    store, data, digest = published
    artifact = parse_model_manifest(data, digest, "src")
    settings = _settings(tmp_path)
    a, b = write_key(tmp_path, "a"), write_key(tmp_path, "b", "ed25519")
    for pair in (a, b):
        signer = load_signing_key(settings, key=str(pair.private))
        assert signer is not None
        sign_version(store, artifact, len(data), signer, name="demo", version="1.0.0", source="src")
    policy = load_policy(settings, key_files=[str(b.public)])
    verification = verify_version(store, artifact, policy, source="src")
    assert len(verification.checks) == 4
    assert len(verification.verdict.signers) == 1


def test_the_signing_key_from_the_environment(tmp_path: Path) -> None:
    pair = write_key(tmp_path, "enc", password=PASSPHRASE)
    env = {"MODELVER_SIGNING_KEY": pair.private_pem, "MODELVER_SIGNING_KEY_PASSWORD": PASSPHRASE}
    assert load_signing_key(_settings(tmp_path, **env), key=None) is not None
    env = {
        "MODELVER_SIGNING_KEY_FILE": str(pair.private),
        "MODELVER_SIGNING_KEY_PASSWORD": PASSPHRASE,
    }
    assert load_signing_key(_settings(tmp_path, **env), key=None) is not None
    assert load_signing_key(_settings(tmp_path), key=None) is None
    with pytest.raises(
        InputError, match="MODELVER_SIGNING_KEY: the private key is encrypted"
    ) as caught:
        load_signing_key(_settings(tmp_path, MODELVER_SIGNING_KEY=pair.private_pem), key=None)
    for secret in pair.secrets():
        assert secret not in str(caught.value)


def test_certificate_mode_checks_the_certificate_is_for_the_key(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    settings = _settings(tmp_path)
    signer = load_signing_key(
        settings, key=str(pki.key.private), cert=str(pki.leaf), chain=str(pki.chain)
    )
    assert signer is not None and len(signer.chain) == 2
    assert signer.shown == "certificate release@example.com"
    other = write_key(tmp_path, "other")
    with pytest.raises(InputError, match="the certificate is not for the signing key"):
        load_signing_key(settings, key=str(other.private), cert=str(pki.leaf))
    with pytest.raises(InputError, match="--sign-cert: needs the certificate's private key"):
        load_signing_key(settings, key=None, cert=str(pki.leaf))


def test_policy_flags_go_together(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    settings = _settings(tmp_path)
    with pytest.raises(InputError, match="--ca: needs --cert-identity too"):
        load_policy(settings, ca=str(pki.root))
    with pytest.raises(InputError, match="--cert-identity: needs --ca too"):
        load_policy(settings, identity="x@example.com")
    with pytest.raises(InputError, match=r"--key nope.pub: does not exist"):
        load_policy(settings, key_files=["nope.pub"])
    with pytest.raises(InputError, match="holds no PEM certificate"):
        load_policy(settings, ca=str(pki.key.public), identity="x")

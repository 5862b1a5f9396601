"""Signed alias moves and the promotion policy, without a store: statements, checks, statuses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ci_modelver.core.move_trust import (
    MOVE_PREDICATE,
    TRUSTED,
    UNKNOWN_SIGNER,
    UNSIGNED,
    BundleCheck,
    check_move_bundle,
    move_statement,
    move_trust,
)
from ci_modelver.core.signing import key_material, sign_statement, version_statement
from ci_modelver.core.trust import Policy, TrustedKey
from ci_modelver.errors import InputError
from ci_modelver.settings import ACTION, Settings
from ci_modelver.signatures import (
    SigningKey,
    promotion_policy,
    sign_move,
    trusted_keys_from_pem,
)

RECORD = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def release() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _policy(*private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> Policy:
    return Policy(tuple(TrustedKey(f"k{i}", p.public_key()) for i, p in enumerate(private)))


def test_the_statement_names_the_record_digest() -> None:
    statement = move_statement(RECORD, "production", "2026-01-01T00:00:00Z")
    assert statement["subject"][0]["digest"] == {"sha256": "1" * 64}
    assert statement["predicateType"] == MOVE_PREDICATE
    assert statement["predicate"]["alias"] == "production"


def test_a_record_signed_by_a_trusted_key_is_trusted(release: ec.EllipticCurvePrivateKey) -> None:
    bundle = sign_move(RECORD, "production", SigningKey(release), "2026-01-01T00:00:00Z")
    check = check_move_bundle(bundle, RECORD, _policy(release), NOW)
    assert check.problem is None and check.signer is not None and "k0" in check.signer


def test_the_same_bundle_does_not_vouch_for_another_record(
    release: ec.EllipticCurvePrivateKey,
) -> None:
    bundle = sign_move(RECORD, "production", SigningKey(release), "2026-01-01T00:00:00Z")
    check = check_move_bundle(bundle, OTHER, _policy(release), NOW)
    assert check.signer is None and check.problem is not None and "for record" in check.problem


def test_an_unknown_key_is_not_trusted(release: ec.EllipticCurvePrivateKey) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    bundle = sign_move(RECORD, "production", SigningKey(stranger), "2026-01-01T00:00:00Z")
    check = check_move_bundle(bundle, RECORD, _policy(release), NOW)
    assert check.signer is None and check.problem and "unknown key" in check.problem


def test_a_version_statement_is_not_an_alias_move(release: ec.EllipticCurvePrivateKey) -> None:
    statement = version_statement(
        "demo", RECORD, version="1.0.0", signed_at="2026-01-01T00:00:00Z", files={}
    )
    bundle = sign_statement(statement, release, key_material(release.public_key()))
    check = check_move_bundle(bundle, RECORD, _policy(release), NOW)
    assert check.problem and "not about an alias move" in check.problem


def test_a_bundle_that_is_not_json_is_a_problem_not_an_error(
    release: ec.EllipticCurvePrivateKey,
) -> None:
    check = check_move_bundle(b"{not json", RECORD, _policy(release), NOW)
    assert check.signer is None and check.problem


def test_statuses() -> None:
    assert move_trust([]).status == UNSIGNED
    bad = BundleCheck(None, "its signature does not verify")
    good = BundleCheck("key a", None)
    assert move_trust([bad]).status == UNKNOWN_SIGNER
    assert move_trust([bad]).problem == "its signature does not verify"
    result = move_trust([bad, good])
    assert result.status == TRUSTED and result.signer == "key a" and result.signatures == 2
    assert result.to_json()["status"] == "trusted"


def test_pem_text_with_several_keys(release: ec.EllipticCurvePrivateKey) -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    found = trusted_keys_from_pem(_pem(release) + b"\n" + _pem(other), "input 'trusted-keys'")
    assert [k.name for k in found] == ["#1", "#2"]


def test_pem_text_with_a_private_key_is_refused(release: ec.EllipticCurvePrivateKey) -> None:
    private = release.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InputError) as raised:
        trusted_keys_from_pem(private, "input 'trusted-keys'")
    assert "holds a private key" in str(raised.value)
    assert private.decode() not in str(raised.value)


def test_pem_text_without_a_key_is_refused() -> None:
    with pytest.raises(InputError, match="holds no PEM public key"):
        trusted_keys_from_pem(b"hello", "input 'trusted-keys'")


def test_no_policy_unless_someone_is_named(tmp_path: Path) -> None:
    settings = Settings.build({}, cwd=tmp_path)
    assert promotion_policy(settings) is None
    with pytest.raises(InputError, match="--require-signature: name who is trusted"):
        promotion_policy(settings, require=True)
    action = Settings.build({}, cwd=tmp_path, surface=ACTION)
    with pytest.raises(InputError, match=r"input 'require-signature'.*input 'trusted-keys'"):
        promotion_policy(action, require=True, key_flag="trusted-keys")


def test_trusted_keys_from_the_environment(
    tmp_path: Path, release: ec.EllipticCurvePrivateKey
) -> None:
    (tmp_path / "a.pub").write_bytes(_pem(release))
    (tmp_path / "b.pub").write_bytes(_pem(ed25519.Ed25519PrivateKey.generate()))
    settings = Settings.build({"MODELVER_TRUSTED_KEYS": "a.pub:b.pub"}, cwd=tmp_path)
    policy = promotion_policy(settings)
    assert policy is not None and [k.name for k in policy.keys] == ["a.pub", "b.pub"]
    # Flags win over the environment.
    flagged = promotion_policy(settings, key_files=["a.pub"])
    assert flagged is not None and [k.name for k in flagged.keys] == ["a.pub"]


def _log_entry(
    status: str, signer: str | None = None, problem: str | None = None
) -> dict[str, object]:
    return {
        "time": "2026-01-01T00:00:00Z",
        "alias": "production",
        "action": "promote",
        "from": None,
        "fromVersion": None,
        "to": RECORD,
        "toVersion": "1.0.0",
        "actor": "ci",
        "reason": None,
        "signature": {"status": status, "signer": signer, "signatures": 1, "problem": problem},
    }


def test_history_shows_a_signature_column_only_when_verified() -> None:
    from ci_modelver.edges.terminal import history_text

    log = [
        _log_entry("trusted", "key release.pub (SHA256:ab…)"),
        _log_entry("unknown-signer", problem="it is signed by an unknown key\nforged"),
        _log_entry("unsigned"),
    ]
    doc = {"repository": "oci:x", "versions": [], "aliasLog": log, "verified": True}
    text = history_text(doc, markdown=False)
    assert "signature" in text and "trusted: key release.pub" in text
    assert "unknown-signer: it is signed by an unknown key\\nforged" in text  # escaped, one line
    assert "unsigned" in text
    markdown = history_text(doc, markdown=True)
    assert "| signature |" in markdown
    plain = history_text({**doc, "verified": False}, markdown=False)
    assert "signature" not in plain and "unknown-signer" not in plain

"""Signature formats and trust decisions: DSSE, in-toto statements, Sigstore bundles, keys,
certificate chains, and the OpenSSF model_signing tool agreeing with us in both directions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ci_modelver.core import keys
from ci_modelver.core.modelpack import OCI_MANIFEST, Descriptor
from ci_modelver.core.signing import (
    FILES_PREDICATE,
    KIND_FILES,
    KIND_OTHER,
    KIND_VERSION,
    bundle_descriptor,
    bundle_layer,
    bundle_manifest,
    certificate_material,
    files_statement,
    key_material,
    pae,
    parse_bundle,
    parse_statement,
    sign_statement,
    version_statement,
)
from ci_modelver.core.trust import (
    Policy,
    TrustedKey,
    check_bundle,
    open_bundle,
    trusted_signers,
    verdict,
)
from ci_modelver.errors import BadSignature, ExitCode, InputError, Untrusted, exit_code_of
from tests.support.signing_keys import (
    PASSPHRASE,
    make_pki,
    new_key,
    run_model_signing,
    write_key,
)

NOW = dt.datetime.now(dt.timezone.utc)
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


FILES = {"model.bin": _sha(b"weights"), "docs/README.md": _sha(b"readme"), "a-b": _sha(b"x")}


def _policy(*public: Any) -> Policy:
    return Policy(tuple(TrustedKey(f"k{i}.pub", k) for i, k in enumerate(public)))


def _files_bundle(key: Any, files: dict[str, str] = FILES) -> bytes:
    return sign_statement(files_statement("m", files), key, key_material(key.public_key()))


def _version_bundle(key: Any, digest: str = DIGEST) -> bytes:
    statement = version_statement(
        "m", digest, version="1.0.0", signed_at="2026-01-01T00:00:00Z", files=FILES
    )
    return sign_statement(statement, key, key_material(key.public_key()))


def _check(data: bytes, policy: Policy, files: dict[str, str] | None = FILES) -> Any:
    return check_bundle(
        data, "sha256:" + "00" * 32, digest=DIGEST, files=files, policy=policy, at=NOW
    )


# --- DSSE and statements ---------------------------------------------------------------------


def test_pae_is_the_dsse_v1_encoding() -> None:
    # The DSSE protocol's own example.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # Lengths count bytes, not characters.
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_the_files_statement_is_model_signings_layout() -> None:
    statement = files_statement("churn", FILES)
    assert statement["predicateType"] == FILES_PREDICATE
    names = [r["name"] for r in statement["predicate"]["resources"]]
    # Ordered as POSIX paths, component by component ('a-b' after 'a/…' would differ by string).
    assert names == ["a-b", "docs/README.md", "model.bin"]
    resources = statement["predicate"]["resources"]
    assert all(r["algorithm"] == "sha256" and len(r["digest"]) == 64 for r in resources)
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    assert statement["subject"] == [{"name": "churn", "digest": {"sha256": root}}]
    parsed = parse_statement(json.dumps(statement).encode())
    assert parsed.kind == KIND_FILES
    assert parsed.files() == FILES


def test_a_files_statement_whose_root_does_not_match_is_refused() -> None:
    statement = files_statement("m", FILES)
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    with pytest.raises(BadSignature, match="subject digest does not match"):
        parse_statement(json.dumps(statement).encode()).files()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["predicate"]["serialization"].update(method="shards"), "file serialization"),
        (lambda s: s["predicate"]["serialization"].update(hash_type="blake2"), "sha256"),
        (lambda s: s["predicate"]["resources"][0].update(algorithm="md5"), "sha256 digest"),
        (
            lambda s: s["predicate"]["resources"].append(dict(s["predicate"]["resources"][0])),
            "twice",
        ),
        (lambda s: s["predicate"].update(resources="x"), "resources list"),
        (lambda s: s.update(subject=[]), "0 subjects"),
    ],
)
def test_malformed_files_statements_are_refused(change: Any, problem: str) -> None:
    statement = files_statement("m", FILES)
    change(statement)
    with pytest.raises(BadSignature, match=problem):
        parse_statement(json.dumps(statement).encode()).files()


def test_the_version_statement_names_the_manifest_digest() -> None:
    statement = version_statement("m", DIGEST, version="1.0.0", signed_at="t", files=FILES)
    parsed = parse_statement(json.dumps(statement).encode())
    assert parsed.kind == KIND_VERSION
    assert parsed.subject_digest() == DIGEST
    assert (
        statement["predicate"]["files"]["sha256"]
        == files_statement("m", FILES)["subject"][0]["digest"]["sha256"]
    )


@pytest.mark.parametrize(
    "payload", [b"", b"{", b"[]", b'{"_type": "x"}', b'{"_type":"https://in-toto.io/Statement/v1"}']
)
def test_payloads_that_are_not_statements_are_refused(payload: bytes) -> None:
    with pytest.raises(BadSignature):
        parse_statement(payload)


# --- bundles and keys ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519"])
def test_a_bundle_signed_by_a_trusted_key_opens(kind: str) -> None:
    key = new_key(kind)
    data = _files_bundle(key)
    doc = json.loads(data)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert doc["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    signer, statement = open_bundle(data, _policy(key.public_key()), NOW)
    assert statement.files() == FILES
    assert signer.id == keys.fingerprint(key.public_key())
    assert signer.shown.startswith("key k0.pub (sha256:")


def test_the_key_hint_is_what_model_signing_compares() -> None:
    key = new_key("p256")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hint = json.loads(_files_bundle(key))["verificationMaterial"]["publicKey"]["hint"]
    assert hint == hashlib.sha256(pem).hexdigest()


def test_an_unknown_signer_is_untrusted_not_bad() -> None:
    signer, stranger = new_key(), new_key()
    check = _check(_files_bundle(signer), _policy(stranger.public_key()))
    assert not check.trusted and check.kind == KIND_OTHER
    assert "unknown key" in (check.problem or "")


def test_a_signature_replaced_by_another_keys_is_bad() -> None:
    trusted, other = new_key(), new_key()
    good = json.loads(_files_bundle(trusted))
    forged = json.loads(_files_bundle(other))
    good["dsseEnvelope"]["signatures"] = forged["dsseEnvelope"]["signatures"]
    check = _check(json.dumps(good).encode(), _policy(trusted.public_key()))
    assert not check.trusted
    assert "does not verify with key k0.pub" in (check.problem or "")


def test_a_changed_payload_breaks_the_signature() -> None:
    key = new_key()
    doc = json.loads(_files_bundle(key))
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "11" * 32
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    assert "does not verify" in (
        _check(json.dumps(doc).encode(), _policy(key.public_key())).problem or ""
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1]",
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.1+json", "dsseEnvelope": {}}',
    ],
)
def test_bundles_that_cannot_be_read_are_bad_signatures(data: bytes) -> None:
    with pytest.raises(BadSignature):
        parse_bundle(data)
    check = _check(data, _policy(new_key().public_key()))
    assert not check.trusted and check.problem


def test_a_truncated_bundle_is_a_bad_signature() -> None:
    data = _files_bundle(new_key())
    with pytest.raises(BadSignature, match="not valid JSON"):
        parse_bundle(data[: len(data) // 2])


def test_bad_base64_in_the_envelope_is_a_bad_signature() -> None:
    doc = json.loads(_files_bundle(new_key()))
    doc["dsseEnvelope"]["signatures"][0]["sig"] = "%%%"
    with pytest.raises(BadSignature, match="signature is not base64"):
        parse_bundle(json.dumps(doc).encode())


def test_a_version_statement_for_another_digest_is_not_trusted() -> None:
    key = new_key()
    check = _check(_version_bundle(key, OTHER), _policy(key.public_key()))
    assert check.kind == KIND_VERSION and not check.trusted
    assert f"is for {OTHER}, not {DIGEST}" in (check.problem or "")


def test_files_that_do_not_match_are_not_trusted() -> None:
    key = new_key()
    changed = dict(FILES, **{"model.bin": _sha(b"other weights")})
    check = _check(_files_bundle(key, changed), _policy(key.public_key()))
    assert not check.trusted
    assert "'model.bin' is sha256:" in (check.problem or "")
    extra = dict(FILES, **{"extra.bin": _sha(b"x")})
    assert "'extra.bin' is signed but not in the version" in (
        _check(_files_bundle(key, extra), _policy(key.public_key())).problem or ""
    )


def test_a_version_needs_one_signer_for_both_statements() -> None:
    a, b = new_key(), new_key()
    policy = _policy(a.public_key(), b.public_key())
    version_a = _check(_version_bundle(a), policy)
    files_a = _check(_files_bundle(a), policy)
    files_b = _check(_files_bundle(b), policy)
    assert trusted_signers([version_a, files_a]) == [keys.fingerprint(a.public_key())]
    assert trusted_signers([version_a, files_b]) == []
    assert not verdict(DIGEST, [version_a]).trusted
    assert "no trusted files statement" in verdict(DIGEST, [version_a]).reason()
    assert verdict(DIGEST, []).reason() == "it has no signatures"
    assert verdict(DIGEST, [version_a, files_a]).signers == (version_a.signer,)


def test_the_referrer_manifest_follows_cosigns_layout() -> None:
    data = _files_bundle(new_key())
    blob = bundle_descriptor(data)
    subject = Descriptor(OCI_MANIFEST, DIGEST, 1234)
    manifest = json.loads(bundle_manifest(subject, blob, FILES_PREDICATE, "2026-01-01T00:00:00Z"))
    assert manifest["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert manifest["layers"] == [blob.to_json()]
    assert manifest["layers"][0]["annotations"]["org.opencontainers.image.title"].startswith(
        "sha256-"
    )
    assert manifest["subject"]["digest"] == DIGEST
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    raw = json.dumps(manifest).encode()
    assert bundle_layer(raw, DIGEST).digest == blob.digest
    with pytest.raises(BadSignature, match="another manifest"):
        bundle_layer(raw, OTHER)


# --- loading keys ------------------------------------------------------------------------------


def test_an_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    pair = write_key(tmp_path, "enc", password=PASSPHRASE)
    pem = pair.private.read_bytes()
    assert keys.load_private_key(pem, PASSPHRASE.encode(), "k") is not None
    for password, fragment in (
        (None, "encrypted; set MODELVER_SIGNING_KEY_PASSWORD"),
        (b"wrong", "does not decrypt"),
    ):
        with pytest.raises(InputError, match=fragment) as caught:
            keys.load_private_key(pem, password, "--sign-key enc.pem")
        for secret in pair.secrets():
            assert secret not in str(caught.value)


@pytest.mark.parametrize("kind", ["rsa", "p521"])
def test_keys_of_other_types_are_refused(tmp_path: Path, kind: str) -> None:
    pair = write_key(tmp_path, kind, kind)
    with pytest.raises(
        InputError, match="are not supported; use ECDSA P-256, ECDSA P-384 or Ed25519"
    ):
        keys.load_private_key(pair.private.read_bytes(), None, "--sign-key k")
    with pytest.raises(InputError, match="not supported"):
        keys.load_public_key(pair.public.read_bytes(), "--key k")


def test_a_public_key_given_as_the_signing_key_is_named(tmp_path: Path) -> None:
    pair = write_key(tmp_path, "k")
    with pytest.raises(InputError, match=r"is not a PEM private key \(it holds: PUBLIC KEY\)"):
        keys.load_private_key(pair.public.read_bytes(), None, "--sign-key k.pub")
    with pytest.raises(InputError, match="holds a private key; give the public key"):
        keys.load_public_key(pair.private.read_bytes(), "--key k.pem")


# --- certificates ------------------------------------------------------------------------------


def _cert_bundle(pki: Any, files: dict[str, str] = FILES) -> bytes:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(pki.leaf.read_bytes())
    inter = x509.load_pem_x509_certificate(pki.chain.read_bytes())
    chain = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, inter)]
    return sign_statement(files_statement("m", files), pki.key.key, certificate_material(chain))


def _ca_policy(pki: Any, identity: str | None = None) -> Policy:
    roots = tuple(keys.load_certificates(pki.root.read_bytes(), "--ca"))
    return Policy(roots=roots, identity=identity or pki.identity)


def test_a_certificate_chain_to_the_roots_with_the_identity_is_trusted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    check = _check(_cert_bundle(pki), _ca_policy(pki))
    assert check.trusted, check.problem
    assert check.signer == "certificate release@example.com"


def test_an_ed25519_certificate_is_trusted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, kind="ed25519")
    assert _check(_cert_bundle(pki), _ca_policy(pki)).trusted


def test_another_identity_is_untrusted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    check = _check(_cert_bundle(pki), _ca_policy(pki, "someone@example.com"))
    assert not check.trusted
    assert "names release@example.com, not the --cert-identity someone@example.com" in (
        check.problem or ""
    )


def test_a_chain_to_other_roots_is_untrusted(tmp_path: Path) -> None:
    ours, theirs = make_pki(tmp_path / "a"), make_pki(tmp_path / "b")
    check = _check(_cert_bundle(theirs), _ca_policy(ours))
    assert "does not lead to a --ca root" in (check.problem or "")


def test_an_expired_certificate_is_untrusted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, days=2, not_before=NOW - dt.timedelta(days=10))
    assert "does not lead to a --ca root" in (
        _check(_cert_bundle(pki), _ca_policy(pki)).problem or ""
    )


def test_a_certificate_not_for_code_signing_is_untrusted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert not _check(_cert_bundle(pki), _ca_policy(pki)).trusted


def test_a_certificate_bundle_without_roots_asks_for_them(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    check = _check(_cert_bundle(pki), _policy(new_key().public_key()))
    assert "--ca ROOTS --cert-identity NAME" in (check.problem or "")
    # Its key, trusted as a key, needs no chain.
    assert _check(_cert_bundle(pki), _policy(pki.key.key.public_key())).trusted


def test_untrusted_is_exit_5() -> None:
    assert ExitCode.UNTRUSTED == 5
    assert exit_code_of(Untrusted("x")) == 5
    assert exit_code_of(BadSignature("x")) == 5


# --- the OpenSSF model_signing tool agrees ---------------------------------------------------------


def _folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "model"
    files = {"model.bin": b"\x00weights" * 100, "docs/README.md": b"# model\n", "a-b": b"x"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder, {name: _sha(data) for name, data in files.items()}


@pytest.mark.parametrize("kind", ["p256", "p384"])
def test_model_signing_verifies_our_files_bundle(tmp_path: Path, kind: str) -> None:
    folder, digests = _folder(tmp_path)
    pair = write_key(tmp_path, "k", kind)
    signature = tmp_path / "model.sig"
    signature.write_bytes(_files_bundle(pair.key, digests))
    done = run_model_signing(
        "verify",
        "key",
        str(folder),
        "--signature",
        str(signature),
        "--public_key",
        str(pair.public),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verification succeeded" in done.stdout
    # And refuses it once a file changed: the check is real.
    (folder / "model.bin").write_bytes(b"tampered")
    done = run_model_signing(
        "verify",
        "key",
        str(folder),
        "--signature",
        str(signature),
        "--public_key",
        str(pair.public),
    )
    assert done.returncode != 0


def test_we_verify_what_model_signing_signed(tmp_path: Path) -> None:
    folder, digests = _folder(tmp_path)
    pair = write_key(tmp_path, "k")
    signature = tmp_path / "model.sig"
    done = run_model_signing(
        "sign",
        "key",
        str(folder),
        "--signature",
        str(signature),
        "--private_key",
        str(pair.private),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = signature.read_bytes()
    check = _check(data, _policy(pair.key.public_key()), digests)
    assert check.trusted and check.kind == KIND_FILES, check.problem
    other = dict(digests, **{"model.bin": _sha(b"else")})
    assert not _check(data, _policy(pair.key.public_key()), other).trusted
    assert not _check(data, _policy(new_key().public_key()), digests).trusted

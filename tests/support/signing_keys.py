"""Keys and certificates for signing tests, generated with ``cryptography`` (never committed)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSPHRASE = "correct horse battery staple 7f3a"


@dataclass(frozen=True)
class KeyPair:
    """A private key and its files: ``private`` (PEM), ``public`` (PEM)."""

    key: Any
    private: Path
    public: Path

    @property
    def private_pem(self) -> str:
        return self.private.read_text("ascii")

    def secrets(self) -> list[str]:
        """What must never be printed: the PEM, its base64 body lines, the raw key bytes."""
        pem = self.private_pem
        body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        raw = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return [pem.strip(), *body, raw.hex(), PASSPHRASE]


def new_key(kind: str = "p256") -> Any:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def write_key(
    folder: Path, name: str, kind: str = "p256", *, password: str | None = None
) -> KeyPair:
    key = new_key(kind)
    folder.mkdir(parents=True, exist_ok=True)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    private = folder / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    public = folder / f"{name}.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(key, private, public)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    subject: str,
    issuer: str,
    public: Any,
    signer: Any,
    *,
    ca: bool,
    san: str | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    days: int = 30,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    start = not_before or now - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    builder = builder.add_extension(usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(san)]), critical=False
        )
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass(frozen=True)
class PKI:
    """A root CA, an intermediate and a code-signing leaf for ``identity``, as PEM files."""

    root: Path  # the root certificate (what --ca takes)
    chain: Path  # the intermediate (what --sign-cert-chain takes)
    leaf: Path  # the signing certificate (--sign-cert)
    key: KeyPair  # the leaf's key (--sign-key)
    identity: str


def make_pki(
    folder: Path,
    identity: str = "release@example.com",
    *,
    kind: str = "p256",
    eku: list[x509.ObjectIdentifier] | None = None,
    days: int = 30,
    not_before: dt.datetime | None = None,
    name: str = "pki",
) -> PKI:
    folder.mkdir(parents=True, exist_ok=True)
    root_key = new_key("p256")
    inter_key = new_key("p384")
    root = _certificate(
        "Example Root", "Example Root", root_key.public_key(), root_key, ca=True, days=3650
    )
    inter = _certificate(
        "Example Intermediate", "Example Root", inter_key.public_key(), root_key, ca=True, days=3650
    )
    pair = write_key(folder, f"{name}-leaf", kind)
    leaf = _certificate(
        "Release signer",
        "Example Intermediate",
        pair.key.public_key(),
        inter_key,
        ca=False,
        san=identity,
        eku=[ExtendedKeyUsageOID.CODE_SIGNING] if eku is None else eku,
        days=days,
        not_before=not_before,
    )
    paths = {n: folder / f"{name}-{n}.crt" for n in ("root", "chain", "leaf")}
    paths["root"].write_bytes(_pem(root))
    paths["chain"].write_bytes(_pem(inter))
    paths["leaf"].write_bytes(_pem(leaf))
    return PKI(paths["root"], paths["chain"], paths["leaf"], pair, identity)


# --- the OpenSSF model_signing CLI ---------------------------------------------------------------


def model_signing() -> list[str]:
    """The command that runs the ``model_signing`` CLI; fails under CI=true when it is missing."""
    try:
        import model_signing as _module  # noqa: F401
        import OpenSSL  # noqa: F401  (model-signing 1.1.1 imports it without declaring it)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("model-signing and pyOpenSSL are test dependencies: pip install '.[test]'")
        pytest.skip("model-signing is not installed (pip install model-signing pyOpenSSL)")
    script = Path(sys.executable).parent / "model_signing"
    return [str(script)] if script.exists() else [shutil.which("model_signing") or "model_signing"]


def run_model_signing(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [*model_signing(), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def assert_secrets_hidden(out: str, err: str, secrets: list[str]) -> None:
    """No secret in a command's output. In GitHub Actions a secret is handed to the runner in
    ``::add-mask::`` lines, which it consumes and never shows: those lines are masking, not a leak."""
    shown = "\n".join(
        line for line in (out + err).splitlines() if not line.startswith("::add-mask::")
    )
    for secret in secrets:
        assert secret not in shown, "a secret reached the output"

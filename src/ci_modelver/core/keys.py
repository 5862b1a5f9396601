"""Keys and certificates for signatures, from PEM bytes already read (pure: no I/O).

Signing keys are ECDSA P-256 (signed over SHA-256), ECDSA P-384 (SHA-384) or Ed25519: the curves
and hashes Sigstore bundles and the OpenSSF ``model_signing`` tool use. Messages never quote key
material, a passphrase or PEM text: only where the key came from (a file path or a variable
name) and what is wrong with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from ci_modelver.errors import BadSignature, InputError, Untrusted

SUPPORTED = "ECDSA P-256, ECDSA P-384 or Ed25519"
PASSWORD_VARIABLE = "MODELVER_SIGNING_KEY_PASSWORD"
MAX_CHAIN = 8  # certificates in one bundle (leaf and intermediates)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
}
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")


def _labels(pem: bytes) -> str:
    found = sorted({m.group(1).decode("ascii") for m in _PEM_LABEL.finditer(pem)})
    return ", ".join(found)


def _supported(key: Any, where: str, kind: str) -> Any:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    if (
        isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
        and key.curve.name in _HASHES
    ):
        return key
    what = (
        f"ECDSA {key.curve.name}"
        if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
        else type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "")
    )
    raise InputError(f"{where}: {what} {kind} keys are not supported; use {SUPPORTED}")


def load_private_key(pem: bytes, password: bytes | None, where: str) -> PrivateKey:
    """The signing key in ``pem`` (decrypted with ``password`` when it is encrypted)."""
    if b"PRIVATE KEY-----" not in pem:
        labels = _labels(pem)
        found = f" (it holds: {labels})" if labels else ""
        raise InputError(f"{where}: is not a PEM private key{found}; give the signing key")
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        if password is None:
            raise InputError(
                f"{where}: the private key is encrypted; set {PASSWORD_VARIABLE} to its passphrase"
            ) from None
        try:  # a passphrase for a key that is not encrypted: the key is usable as it is
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InputError(f"{where}: cannot read the PEM private key") from None
    except UnsupportedAlgorithm:
        raise InputError(
            f"{where}: the private key's algorithm is not supported; use {SUPPORTED}"
        ) from None
    except ValueError:
        if password is not None and b"ENCRYPTED" in pem:
            raise InputError(
                f"{where}: the passphrase in {PASSWORD_VARIABLE} does not decrypt the private key"
            ) from None
        raise InputError(f"{where}: cannot read the PEM private key (damaged or not PEM)") from None
    supported: PrivateKey = _supported(key, where, "private")
    return supported


def load_public_key(pem: bytes, where: str) -> PublicKey:
    """A trusted public key (PEM ``PUBLIC KEY``)."""
    if b"PRIVATE KEY-----" in pem:
        raise InputError(
            f"{where}: holds a private key; give the public key (openssl pkey -pubout)"
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        labels = _labels(pem)
        found = f" (it holds: {labels})" if labels else ""
        raise InputError(f"{where}: is not a PEM public key{found}") from None
    supported: PublicKey = _supported(key, where, "public")
    return supported


def load_certificates(pem: bytes, where: str) -> list[x509.Certificate]:
    """Every certificate of a PEM file (one or a bundle); InputError when there is none."""
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        found = []
    if not found:
        raise InputError(f"{where}: holds no PEM certificate")
    return found


def public_key_of(key: PrivateKey) -> PublicKey:
    return key.public_key()


def same_key(a: PublicKey, b: Any) -> bool:
    return bool(_spki(a) == _spki(b)) if isinstance(b, type(a)) else False


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def fingerprint(key: PublicKey) -> str:
    """``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo: how we name a key."""
    return "sha256:" + hashlib.sha256(_spki(key)).hexdigest()


def key_hint(key: PublicKey) -> str:
    """The bundle's ``publicKey.hint``: the hex SHA-256 of the PEM SubjectPublicKeyInfo.

    That is what ``model_signing`` writes and compares (its verifier refuses a bundle whose hint
    is not its key's), so bundles of ours verify there too.
    """
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def sign(key: PrivateKey, message: bytes) -> bytes:
    """A signature over ``message``: DER-encoded ECDSA, or raw Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(_HASHES[key.curve.name]()))


def verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(_HASHES[key.curve.name]()))
    except InvalidSignature:
        return False
    return True


# --- certificates ------------------------------------------------------------------------


def _digital_signature(_policy: Any, _cert: Any, usage: Any) -> None:
    if not usage.digital_signature:
        raise ValueError("the signing certificate's key usage does not allow digital signatures")


def _code_signing(_policy: Any, _cert: Any, usage: Any) -> None:
    if usage is not None and not (
        ExtendedKeyUsageOID.CODE_SIGNING in usage
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usage
    ):
        raise ValueError(
            "the signing certificate's extended key usage does not include code signing"
        )


def _not_a_ca(_policy: Any, _cert: Any, constraints: Any) -> None:
    if constraints is not None and constraints.ca:
        raise ValueError("the signing certificate is a CA certificate")


def _leaf_policy() -> verification.ExtensionPolicy:
    agnostic = verification.Criticality.AGNOSTIC
    return (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.KeyUsage, agnostic, _digital_signature)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _code_signing)
        .may_be_present(x509.BasicConstraints, agnostic, _not_a_ca)
    )


def certificate_key(der: bytes) -> Any:
    """The public key of a DER certificate (any type); BadSignature when it is not one."""
    try:
        return x509.load_der_x509_certificate(der).public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise BadSignature("its certificate cannot be read") from None


def identities(cert: x509.Certificate) -> list[str]:
    """The certificate's subject alternative names: e-mail addresses, URIs and DNS names."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = []
    for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
        out.extend(str(v) for v in names.get_values_for_type(kind))
    return out


def verify_chain(
    chain: Sequence[bytes],
    roots: Sequence[x509.Certificate],
    identity: str,
    at: dt.datetime,
) -> tuple[PublicKey, str]:
    """The signing key of a certificate chain (leaf first, DER) that leads to ``roots`` and
    names ``identity`` in its subject alternative names, valid at ``at``.

    The leaf must allow digital signatures (key usage) and, when it has an extended key usage,
    code signing. BadSignature for a chain that cannot be read; Untrusted otherwise.
    """
    if not chain or len(chain) > MAX_CHAIN:
        raise BadSignature(
            f"its certificate chain has {len(chain)} certificates (1 to {MAX_CHAIN})"
        )
    try:
        leaf, *intermediates = [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError:
        raise BadSignature(
            "its certificate chain holds something that is not a certificate"
        ) from None
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(roots)))
        .time(at)
        .max_chain_depth(MAX_CHAIN)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_leaf_policy()
        )
    )
    try:
        builder.build_client_verifier().verify(leaf, intermediates)
    except verification.VerificationError as exc:
        reason = str(exc).split(" (encountered", 1)[0].removeprefix("validation failed: ")
        raise Untrusted(f"its certificate does not lead to a --ca root ({reason[:200]})") from None
    names = identities(leaf)
    if identity not in names:
        shown = ", ".join(names[:5]) or "none"
        raise Untrusted(f"its certificate names {shown}, not the --cert-identity {identity}")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _HASHES
    ):
        raise Untrusted(f"its certificate's key is not {SUPPORTED}")
    return key, identity

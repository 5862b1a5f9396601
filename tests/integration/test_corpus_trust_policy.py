"""Bad-input corpus, the trust policy on promotion and signed alias moves.

Local mistakes in the policy or the signing key of promote, rollback and history (exit 2, before
the store is touched), versions a hostile registry serves without a trusted signature (exit 5,
the alias never written) or with a failing signature index (exit 3), and alias-move records that
are not trusted under ``history --require-signature`` (exit 5). Same contract as the corpus: the
exact exit code, exactly one last ``error:`` line saying what is wrong, never a traceback; and no
secret of a signing key in any output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ci_modelver.core.audit import referrers_tag
from tests.conftest import run_cli
from tests.integration.test_bad_input_corpus import (
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
from tests.support.hostile_registry import OCI_INDEX, Answer, canonical, sha256
from tests.support.signing_keys import PASSPHRASE, KeyPair, write_key

pytestmark = pytest.mark.integration

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SECRETS: list[str] = []


def key(w: World, name: str = "release", kind: str = "p256", **options: Any) -> KeyPair:
    pair = write_key(w.tmp / "keys", name, kind, **options)
    SECRETS.extend(pair.secrets())
    return pair


def trusted(w: World) -> tuple[str, str]:
    return ("--trusted-key", str(key(w).public))


def promote(w: World, ref: str, *extra: str, **env: str) -> Call:
    return call("promote", ref, "--alias", "production", *extra, **env)


def moved(w: World, *extra: str, **env: str) -> None:
    """demo 1.0.0 of the world's layout promoted to production (setup; must succeed)."""
    done = run_cli(*promote(w, w.version, *extra).args, env={**w.env, **env})
    assert done.code == 0, done.err


def index_with(w: World, *digests: str) -> None:
    """The model's referrers fallback index listing bundle referrers ``digests``."""
    entries = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 100,
         "artifactType": BUNDLE}
        for d in digests
    ]  # fmt: skip
    body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    w.reg.add_manifest(referrers_tag(GOOD.digest), body, OCI_INDEX)


LOCAL = [
    case(
        "promote-require-signature-nobody-trusted",
        2,
        "--require-signature: name who is trusted: --trusted-key PUB",
        lambda w: promote(w, w.version, "--require-signature"),
    ),
    case(
        "promote-trusted-key-missing",
        2,
        "--trusted-key keys/none.pub: does not exist",
        lambda w: promote(w, w.version, "--trusted-key", "keys/none.pub"),
    ),
    case(
        "promote-trusted-key-is-the-private-key",
        2,
        "holds a private key; give the public key",
        lambda w: promote(w, w.version, "--trusted-key", str(key(w).private)),
    ),
    case(
        "promote-trusted-key-is-a-folder",
        2,
        "is a folder, not a PEM file",
        lambda w: promote(w, w.version, "--trusted-key", str(w.tmp)),
    ),
    case(
        "promote-trusted-key-not-pem",
        2,
        "is not a PEM public key",
        lambda w: promote(w, w.version, "--trusted-key", str(w.write("k.pub", "hello\n"))),
    ),
    case(
        "rollback-ca-without-identity",
        2,
        "--ca: needs --cert-identity too",
        lambda w: call(
            "rollback", w.store, "--alias", "production", "--ca", str(w.write("ca.pem", "x"))
        ),
    ),
    case(
        "promote-env-trusted-keys-missing-file",
        2,
        "MODELVER_TRUSTED_KEYS gone.pub: does not exist",
        lambda w: promote(w, w.version, MODELVER_TRUSTED_KEYS="gone.pub"),
    ),
    case(
        "promote-sign-key-wrong-passphrase",
        2,
        "does not decrypt the private key",
        lambda w: promote(
            w,
            w.version,
            "--sign-key",
            str(key(w, password=PASSPHRASE).private),
            MODELVER_SIGNING_KEY_PASSWORD="not the passphrase",
        ),
    ),
    case(
        "rollback-sign-key-is-a-public-key",
        2,
        "is not a PEM private key",
        lambda w: call(
            "rollback", w.store, "--alias", "production", "--sign-key", str(key(w).public)
        ),
    ),
    case(
        "history-verify-nobody-trusted",
        2,
        "history --verify: name who is trusted",
        lambda w: call("history", w.store, "--verify"),
    ),
    case(
        "history-require-signature-nobody-trusted",
        2,
        "history --require-signature: name who is trusted",
        lambda w: call("history", w.store, "--require-signature"),
    ),
    case(
        "history-key-missing",
        2,
        "--key none.pub: does not exist",
        lambda w: call("history", w.store, "--verify", "--key", "none.pub"),
    ),
]

UNTRUSTED = [
    case(
        "promote-unsigned-layout-version",
        5,
        "untrusted: it has no signatures",
        lambda w: promote(w, w.version, *trusted(w)),
    ),
    case(
        "promote-unsigned-registry-version",
        5,
        "untrusted: it has no signatures",
        lambda w: promote(w, w.serve(), *trusted(w), *T),
    ),
    case(
        "promote-bundle-referrer-missing",
        5,
        "its referrer manifest is missing",
        lambda w: after(index_with(w, sha256(b"gone")), promote(w, w.serve(), *trusted(w), *T)),
    ),
    case(
        "promote-bundle-referrer-not-a-bundle",
        5,
        "its referrer manifest is not a Sigstore bundle artifact",
        lambda w: after(
            index_with(w, w.reg.add_manifest("junk", canonical({"schemaVersion": 2}))),
            promote(w, w.serve(), *trusted(w), *T),
        ),
    ),
    case(
        "promote-signature-index-fails",
        3,
        "500",
        lambda w: after(
            w.reg.rule("GET", f"/manifests/{referrers_tag(GOOD.digest)}", Answer(500, b"oops")),
            promote(w, w.serve(), *trusted(w), *T),
        ),
    ),
    case(
        "history-unsigned-record-required",
        5,
        "is unsigned",
        lambda w: after(
            moved(w),
            call("history", w.store, "--key", str(key(w).public), "--require-signature"),
        ),
    ),
    case(
        "history-record-signed-by-stranger-required",
        5,
        "is unknown-signer",
        lambda w: after(
            moved(w, "--sign-key", str(key(w, "stranger", "ed25519").private)),
            call("history", w.store, "--key", str(key(w).public), "--require-signature"),
        ),
    ),
]


@pytest.fixture(autouse=True)
def _secrets() -> Iterator[None]:
    yield
    SECRETS.clear()


def run_case(w: World, c: Case) -> None:
    invocation = c.make(w)
    result = run_cli(*invocation.args, env={**w.env, **invocation.env})
    check(result, c)
    for secret in SECRETS:
        assert secret not in result.out + result.err, "a secret reached the output"


@pytest.mark.parametrize("c", LOCAL)
def test_local_policy_mistake(world: World, c: Case) -> None:  # noqa: F811
    before = sorted(p.name for p in world.tmp.iterdir())
    run_case(world, c)
    if world._store is None:  # the cases that never named the layout: nothing was created
        assert not (world.tmp / "store").exists()
    assert before <= sorted(p.name for p in world.tmp.iterdir())


@pytest.mark.parametrize("c", UNTRUSTED)
def test_untrusted_target_or_record(world: World, c: Case) -> None:  # noqa: F811
    run_case(world, c)
    if world._registry is not None:
        written = [t for m, t in world.reg.requests if m == "PUT" and "/manifests/" in t]
        assert written == [], "an alias or a record was written for an untrusted version"


def test_a_refused_promotion_leaves_the_layout_alias_unmoved(world: World) -> None:  # noqa: F811
    moved(world)
    before = (world.tmp / "store" / "index.json").read_bytes()
    other = world.model("other", version="1.1.0", weights=b"other")
    published = run_cli("publish", str(other), "--repository", world.store, env=world.env)
    assert published.code == 0, published.err
    middle = (world.tmp / "store" / "index.json").read_bytes()
    assert middle != before
    refused = promote(world, f"{world.store}:1.1.0", *trusted(world))
    result = run_cli(*refused.args, env=world.env)
    check(result, Case(5, "untrusted", lambda w: refused))
    assert (world.tmp / "store" / "index.json").read_bytes() == middle


def test_corpus_size() -> None:
    ids = [p.id for p in LOCAL + UNTRUSTED]
    assert len(ids) == len(set(ids)) and len(ids) >= 15

"""Signing versions with a folder layer, against the real registry (Debian's docker-registry).

A model with ``tokenizer/`` (files, one nested, one symlink) and a raw weights file is published
with ``--sign-key``; ``verify`` and ``pull --verify-key`` accept it, the pulled folder is
byte-identical, and the OpenSSF ``model_signing`` CLI (the independent verifier) accepts the
pulled folder with our files signature. Tampering (a folder that holds other files than signed,
a statement with a wrong inner digest) is exit 5 with nothing written. Every output is scanned
for the signing key's secrets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_modelver.adapters.store import Store
from ci_modelver.core.modelpack import Descriptor
from ci_modelver.core.refs import parse_ref
from ci_modelver.core.signing import (
    FILES_PREDICATE,
    VERSION_PREDICATE,
    files_statement,
    key_material,
    sign_statement,
    version_statement,
)
from ci_modelver.settings import Settings
from ci_modelver.signatures import attach_bundle
from ci_modelver.toolkit import open_store
from tests.conftest import Run, run_cli
from tests.helpers import base_env
from tests.support.registry import Registry
from tests.support.signing_keys import KeyPair, assert_secrets_hidden, run_model_signing, write_key

pytestmark = pytest.mark.integration

SECRETS: list[str] = []
TOKENIZER = {
    "vocab.json": b'{"hello": 0, "world": 1}\n',
    "tokenizer_config.json": b'{"model_max_length": 512}\n',
    "sub/merges.txt": b"#version: 0.2\nh e\nw o\n",
}


def cli(*args: str, env: dict[str, str]) -> Run:
    result = run_cli(*args, env=env)
    assert_secrets_hidden(result.out, result.err, SECRETS)
    assert "Traceback" not in result.out + result.err
    return result


@pytest.fixture
def key(tmp_path: Path) -> Iterator[KeyPair]:
    pair = write_key(tmp_path / "keys", "release")
    SECRETS.extend(pair.secrets())
    yield pair
    SECRETS.clear()


@pytest.fixture
def repo(registry: Registry) -> str:
    return registry.repo(f"folder-signing/r{uuid.uuid4().hex[:12]}")


def _model(folder: Path, version: str, tokenizer: dict[str, bytes], *, link: bool = False) -> Path:
    for rel, data in tokenizer.items():
        (folder / "tokenizer" / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / "tokenizer" / rel).write_bytes(data)
    if link:
        (folder / "tokenizer" / "vocab.alias.json").symlink_to("vocab.json")
    (folder / "weights.bin").write_bytes(b"weights " * 512)
    manifest = {
        "name": "demo",
        "version": version,
        "files": [
            {"path": "weights.bin", "type": "weight"},
            {"path": "tokenizer/", "type": "weight-config"},
        ],
        "metrics": {"validation": {"accuracy": 0.9}},
    }
    path = folder / "modelver.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def _publish(
    tmp_path: Path, repo: str, env: dict[str, str], *extra: str, version: str = "1.0.0", **kw: Any
) -> dict[str, Any]:
    tokenizer = kw.pop("tokenizer", TOKENIZER)
    manifest = _model(tmp_path / f"model-{version}", version, tokenizer, **kw)
    done = cli("publish", str(manifest), "--repository", repo, "--format", "json", *extra, env=env)
    assert done.code == 0, done.err
    doc: dict[str, Any] = json.loads(done.out)
    return doc


def _store(repo: str, tmp_path: Path) -> Store:
    return open_store(parse_ref(repo), Settings.build({}, cwd=tmp_path), create=False)


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every file (content) and symlink (its text) below ``root``."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


def _untrusted(result: Run, *fragments: str) -> None:
    assert result.code == 5, result.out + result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    for fragment in fragments:
        assert fragment in result.out + errors[0], result.out + result.err


def _signature(tmp_path: Path, ref: str, key: KeyPair, env: dict[str, str]) -> Path:
    signature = tmp_path / "files.sig"
    done = cli(
        "verify", ref, "--key", str(key.public), "--write-signature", str(signature), env=env
    )
    assert done.code == 0, done.out + done.err
    return signature


def test_a_signed_folder_version_verifies_pulls_and_passes_model_signing(
    tmp_path: Path, repo: str, key: KeyPair
) -> None:
    env = base_env(tmp_path / "home")
    published = _publish(tmp_path, repo, env, "--sign-key", str(key.private))
    assert [s["statement"] for s in published["signatures"]] == ["files", "version"]
    ref = f"{repo}:1.0.0"
    verified = cli("verify", ref, "--key", str(key.public), "--format", "json", env=env)
    assert verified.code == 0, verified.err
    doc = json.loads(verified.out)
    assert doc["trusted"] and doc["digest"] == published["digest"] and doc["files"] == 4
    out = tmp_path / "pulled"
    pulled = cli("pull", ref, "-o", str(out), "--verify-key", str(key.public), env=env)
    assert pulled.code == 0, pulled.err
    assert "every file matches the signature" in pulled.out
    assert _tree(out / "tokenizer") == _tree(tmp_path / "model-1.0.0" / "tokenizer")
    assert (out / "weights.bin").read_bytes() == b"weights " * 512
    signature = _signature(tmp_path, ref, key, env)
    checked = run_model_signing(
        "verify", "key", str(out), "--signature", str(signature), "--public_key", str(key.public)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification succeeded" in checked.stdout
    # The independent verifier sees a changed file inside the folder.
    (out / "tokenizer" / "sub" / "merges.txt").write_bytes(b"changed\n")
    changed = run_model_signing(
        "verify", "key", str(out), "--signature", str(signature), "--public_key", str(key.public)
    )
    assert changed.returncode != 0 and "tokenizer/sub/merges.txt" in changed.stderr
    # Promotion with a required signature accepts it.
    promoted = cli(
        "promote", ref, "--alias", "production", "--require-signature",
        "--trusted-key", str(key.public), "--format", "json", env=env,
    )  # fmt: skip
    assert promoted.code == 0, promoted.err
    assert json.loads(promoted.out)["to"] == published["digest"]


def test_a_symlink_inside_the_folder_is_signed_as_model_signing_allow_symlinks_sees_it(
    tmp_path: Path, repo: str, key: KeyPair
) -> None:
    env = base_env(tmp_path / "home")
    _publish(tmp_path, repo, env, "--sign-key", str(key.private), link=True)
    ref = f"{repo}:1.0.0"
    out = tmp_path / "pulled"
    assert cli("pull", ref, "-o", str(out), "--verify-key", str(key.public), env=env).code == 0
    assert os.readlink(out / "tokenizer" / "vocab.alias.json") == "vocab.json"
    signature = _signature(tmp_path, ref, key, env)
    statement = json.loads(
        base64.b64decode(json.loads(signature.read_bytes())["dsseEnvelope"]["payload"])
    )
    resources = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    assert (
        resources["tokenizer/vocab.alias.json"]
        == hashlib.sha256(TOKENIZER["vocab.json"]).hexdigest()
    )
    assert statement["predicate"]["serialization"]["allow_symlinks"] is True
    args = [
        "verify",
        "key",
        str(out),
        "--signature",
        str(signature),
        "--public_key",
        str(key.public),
    ]
    followed = run_model_signing(*args, "--allow_symlinks")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    # Without --allow_symlinks model_signing refuses any folder holding a symlink.
    refused = run_model_signing(*args)
    assert refused.returncode != 0 and "symlink" in refused.stderr


def _attach(
    store: Store,
    digest: str,
    size: int,
    statement: dict[str, Any],
    key: KeyPair,
    predicate: str,
    when: str,
) -> None:
    bundle = sign_statement(statement, key.key, key_material(key.key.public_key()))
    attach_bundle(store, digest, size, bundle, predicate, when)


def _files_bundle(store: Store, record: str) -> bytes:
    layer = json.loads(store.get_manifest(record)[0])["layers"][0]
    return store.read_blob(
        Descriptor(layer["mediaType"], layer["digest"], layer["size"]), layer["size"]
    )


def test_a_folder_holding_other_files_than_signed_is_untrusted_and_nothing_is_written(
    tmp_path: Path, repo: str, key: KeyPair
) -> None:
    """Version A is signed; version B has another tokenizer. B gets an honest version statement
    by the same key and A's files signature: its folder holds other files than signed."""
    env = base_env(tmp_path / "home")
    signed = _publish(tmp_path, repo, env, "--sign-key", str(key.private))
    other = {**TOKENIZER, "sub/merges.txt": b"#version: 0.2\nx y\n"}
    b = _publish(tmp_path, repo, env, version="1.0.1", tokenizer=other)
    store = _store(repo, tmp_path)
    data, digest = store.get_manifest(b["digest"])
    record = next(s for s in signed["signatures"] if s["statement"] == "files")["record"]
    attach_bundle(
        store,
        digest,
        len(data),
        _files_bundle(store, record),
        FILES_PREDICATE,
        "2026-01-01T00:00:01Z",
    )
    files = {"weights.bin": "sha256:" + hashlib.sha256(b"weights " * 512).hexdigest()}
    files |= {f"tokenizer/{k}": "sha256:" + hashlib.sha256(v).hexdigest() for k, v in other.items()}
    version = version_statement("demo", digest, version="1.0.1", signed_at="t", files=files)
    _attach(store, digest, len(data), version, key, VERSION_PREDICATE, "2026-01-01T00:00:00Z")
    ref = f"{repo}:1.0.1"
    _untrusted(
        cli("verify", ref, "--key", str(key.public), env=env),
        "its files do not match: 'tokenizer/sub/merges.txt' is sha256:",
    )
    out = tmp_path / "work" / "pulled"
    _untrusted(
        cli("pull", ref, "-o", str(out), "--verify-key", str(key.public), env=env), "untrusted"
    )
    assert not out.exists() and not (tmp_path / "work").exists()
    refused = cli(
        "promote", ref, "--alias", "production", "--require-signature",
        "--trusted-key", str(key.public), env=env,
    )  # fmt: skip
    assert refused.code == 5, refused.err


def test_a_statement_with_a_wrong_inner_digest_is_untrusted_and_nothing_is_written(
    tmp_path: Path, repo: str, key: KeyPair
) -> None:
    env = base_env(tmp_path / "home")
    published = _publish(tmp_path, repo, env)
    store = _store(repo, tmp_path)
    data, digest = store.get_manifest(published["digest"])
    files = {"weights.bin": "sha256:" + hashlib.sha256(b"weights " * 512).hexdigest()}
    files |= {
        f"tokenizer/{k}": "sha256:" + hashlib.sha256(v).hexdigest() for k, v in TOKENIZER.items()
    }
    honest = version_statement("demo", digest, version="1.0.0", signed_at="t", files=files)
    _attach(store, digest, len(data), honest, key, VERSION_PREDICATE, "2026-01-01T00:00:00Z")
    wrong = dict(files, **{"tokenizer/vocab.json": "sha256:" + "0" * 64})
    _attach(
        store,
        digest,
        len(data),
        files_statement("demo", wrong),
        key,
        FILES_PREDICATE,
        "2026-01-01T00:00:01Z",
    )
    ref = f"{repo}:1.0.0"
    _untrusted(
        cli("verify", ref, "--key", str(key.public), env=env),
        f"'tokenizer/vocab.json' is {files['tokenizer/vocab.json']}, signed as sha256:{'0' * 64}",
    )
    out = tmp_path / "pulled"
    _untrusted(
        cli("pull", ref, "-o", str(out), "--verify-key", str(key.public), env=env), "untrusted"
    )
    assert not out.exists()
    # The same files statement with the right digest makes it trusted.
    _attach(
        store,
        digest,
        len(data),
        files_statement("demo", files),
        key,
        FILES_PREDICATE,
        "2026-01-01T00:00:02Z",
    )
    assert cli("pull", ref, "-o", str(out), "--verify-key", str(key.public), env=env).code == 0
    assert _tree(out / "tokenizer") == _tree(tmp_path / "model-1.0.0" / "tokenizer")


def test_a_strangers_signature_costs_no_download_of_the_folder(
    tmp_path: Path, registry: Registry, repo: str, key: KeyPair
) -> None:
    # The folder's blob is fetched only to check a files statement by a signer the policy
    # trusts: a stranger's bundle (anyone who can push a referrer) makes nothing download.
    env = base_env(tmp_path / "home")
    stranger = write_key(tmp_path / "keys", "stranger")
    _publish(tmp_path, repo, env, "--sign-key", str(stranger.private))
    found = _store(repo, tmp_path).find_manifest("1.0.0")
    assert found is not None
    [folder] = [
        layer["digest"]
        for layer in json.loads(found[0])["layers"]
        if layer["mediaType"].endswith(".tar")
    ]
    blob = rf"/blobs/{folder}$"
    ref = f"{repo}:1.0.0"
    before = registry.requests_seen("GET", blob)
    _untrusted(cli("verify", ref, "--key", str(key.public), env=env), "untrusted")
    assert registry.requests_seen("GET", blob) == before
    trusted = cli("verify", ref, "--key", str(stranger.public), env=env)
    assert trusted.code == 0, trusted.err
    assert registry.requests_seen("GET", blob) == before + 1

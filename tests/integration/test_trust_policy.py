"""The trust policy on promotion and signed alias moves, on the real registry and a layout.

promote/rollback with ``--trusted-key`` (or ``MODELVER_TRUSTED_KEYS``, or the action's
``trusted-keys``/``require-signature`` inputs) refuse a target version without a trusted signature
with exit 5, and the alias does not move (checked in the store itself). With a signing key the
move's audit record is signed, and ``history --verify`` marks each record trusted, unknown-signer
or unsigned; ``--require-signature`` makes any untrusted record shown exit 5. Every output is
scanned for the signing keys' PEM, base64 lines, raw bytes and passphrase.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.adapters.store import Store
from ci_modelver.core.audit import alias_of_audit_tag
from ci_modelver.core.modelpack import Descriptor
from ci_modelver.core.refs import parse_ref
from ci_modelver.settings import Settings
from ci_modelver.signatures import attach_move_signature
from ci_modelver.toolkit import open_store
from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry
from tests.support.signing_keys import PASSPHRASE, KeyPair, assert_secrets_hidden, write_key
from tests.support.workflow_safety import output_entries

pytestmark = pytest.mark.integration

SECRETS: list[str] = []


def cli(*args: str, env: dict[str, str]) -> Run:
    result = run_cli(*args, env=env)
    assert_secrets_hidden(result.out, result.err, SECRETS)
    assert "Traceback" not in result.out + result.err
    return result


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[tuple[KeyPair, KeyPair]]:
    release = write_key(tmp_path / "keys", "release")
    stranger = write_key(tmp_path / "keys", "stranger", "ed25519")
    SECRETS.extend(release.secrets() + stranger.secrets())
    yield release, stranger
    SECRETS.clear()


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "layout":
        return f"oci:{tmp_path / 'store'}"
    registry: Registry = request.getfixturevalue("registry")
    return registry.repo(f"trust/r{uuid.uuid4().hex[:12]}")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(tmp_path / "home", **extra)


def _publish(tmp_path: Path, repo: str, env: dict[str, str], version: str) -> str:
    manifest = make_model(
        tmp_path / f"model-{version}", name="trusty", version=version, weights=version.encode()
    )
    done = cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
    assert done.code == 0, done.err
    return str(json.loads(done.out)["digest"])


def _sign(repo: str, version: str, key: KeyPair, env: dict[str, str]) -> None:
    done = cli("sign", f"{repo}:{version}", "--sign-key", str(key.private), env=env)
    assert done.code == 0, done.err


def _store(repo: str, tmp_path: Path) -> Store:
    return open_store(parse_ref(repo), Settings.build({}, cwd=tmp_path), create=False)


def _points_at(repo: str, tmp_path: Path, alias: str) -> str | None:
    found = _store(repo, tmp_path).resolve(alias)
    return found.digest if found else None


def _records(repo: str, tmp_path: Path, alias: str) -> list[str]:
    return [t for t in _store(repo, tmp_path).tags() if alias_of_audit_tag(t) == alias]


def _untrusted(result: Run) -> str:
    assert result.code == 5, result.out + result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == result.err.splitlines()[-1], result.err
    assert "untrusted" in errors[0] or "not signed by a trusted signer" in errors[0]
    return errors[0]


def _json(result: Run) -> dict[str, Any]:
    assert result.code == 0, result.out + result.err
    doc: dict[str, Any] = json.loads(result.out)
    return doc


# --- promote ---------------------------------------------------------------------------------


def test_promote_refuses_an_unsigned_version(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    _publish(tmp_path, repo, env, "1.0.0")
    done = cli(
        "promote",
        f"{repo}:1.0.0",
        "--alias",
        "production",
        "--trusted-key",
        str(release.public),
        env=env,
    )
    line = _untrusted(done)
    assert "it has no signatures" in line and "release.pub" in line
    assert _points_at(repo, tmp_path, "production") is None
    assert _records(repo, tmp_path, "production") == []


def test_promote_refuses_a_version_signed_by_another_key(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    first = _publish(tmp_path, repo, env, "1.0.0")
    _publish(tmp_path, repo, env, "1.1.0")
    assert cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env).code == 0
    _sign(repo, "1.1.0", stranger, env)
    done = cli(
        "promote",
        f"{repo}:1.1.0",
        "--alias",
        "production",
        "--require-signature",
        "--trusted-key",
        str(release.public),
        env=env,
    )
    assert "unknown key" in _untrusted(done)
    assert _points_at(repo, tmp_path, "production") == first
    assert len(_records(repo, tmp_path, "production")) == 1


def test_promote_allows_a_version_signed_by_the_trusted_key(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    digest = _publish(tmp_path, repo, env, "1.0.0")
    _sign(repo, "1.0.0", stranger, env)
    _sign(repo, "1.0.0", release, env)
    doc = _json(
        cli(
            "promote",
            f"{repo}:1.0.0",
            "--alias",
            "production",
            "--require-signature",
            "--trusted-key",
            str(stranger.public),
            "--trusted-key",
            str(release.public),
            "--format",
            "json",
            env=env,
        )
    )
    assert doc["changed"] and doc["to"] == digest and len(doc["trustedBy"]) >= 1
    assert _points_at(repo, tmp_path, "production") == digest
    text = cli(
        "promote",
        f"{repo}:1.0.0",
        "--alias",
        "staging",
        "--trusted-key",
        str(release.public),
        env=env,
    )
    assert text.code == 0 and "signed by trusted key release.pub" in text.out, text.out


def test_trusted_keys_from_the_environment_imply_a_required_signature(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path, MODELVER_TRUSTED_KEYS=f"{stranger.public}\n{release.public}")
    _publish(tmp_path, repo, env, "1.0.0")
    _untrusted(cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env))
    assert _points_at(repo, tmp_path, "production") is None
    _sign(repo, "1.0.0", release, env)
    assert cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env).code == 0


def test_require_signature_without_anyone_trusted_is_bad_input(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    env = _env(tmp_path)
    _publish(tmp_path, repo, env, "1.0.0")
    done = cli("promote", f"{repo}:1.0.0", "--alias", "production", "--require-signature", env=env)
    assert done.code == 2, done.err
    assert done.err.count("\n") == 1 and "--trusted-key" in done.err, done.err
    assert _points_at(repo, tmp_path, "production") is None


def test_a_bad_trusted_key_is_refused_before_the_store_is_touched(
    tmp_path: Path, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    store = tmp_path / "never"
    done = cli(
        "promote",
        f"oci:{store}:1.0.0",
        "--alias",
        "production",
        "--trusted-key",
        str(release.private),
        env=env,
    )
    assert done.code == 2 and "holds a private key" in done.err, done.err
    assert done.err.count("\n") == 1
    assert not store.exists()


# --- rollback --------------------------------------------------------------------------------


def test_rollback_obeys_the_policy(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    old = _publish(tmp_path, repo, env, "1.0.0")
    new = _publish(tmp_path, repo, env, "1.1.0")
    assert cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env).code == 0
    _sign(repo, "1.1.0", release, env)
    policy = ("--trusted-key", str(release.public))
    assert cli("promote", f"{repo}:1.1.0", "--alias", "production", *policy, env=env).code == 0
    # Back to 1.0.0 (the previous target), which nobody signed: refused, the alias stays.
    _untrusted(cli("rollback", repo, "--alias", "production", *policy, env=env))
    assert _points_at(repo, tmp_path, "production") == new
    _untrusted(cli("rollback", repo, "--alias", "production", "--to", "1.0.0", *policy, env=env))
    assert _points_at(repo, tmp_path, "production") == new
    _sign(repo, "1.0.0", release, env)
    doc = _json(
        cli("rollback", repo, "--alias", "production", *policy, "--format", "json", env=env)
    )
    assert doc["to"] == old and doc["action"] == "rollback" and doc["trustedBy"]
    assert _points_at(repo, tmp_path, "production") == old


# --- signed alias moves and history --verify -------------------------------------------------


def _history(repo: str, env: dict[str, str], *extra: str) -> Run:
    return cli("history", repo, *extra, env=env)


def test_history_marks_signed_unsigned_and_unknown_records(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        _publish(tmp_path, repo, env, version)
    signed = _json(
        cli(
            "promote",
            f"{repo}:1.0.0",
            "--alias",
            "production",
            "--sign-key",
            str(release.private),
            "--format",
            "json",
            env=env,
        )
    )
    assert signed["recordSignature"] and signed["record"]
    assert cli("promote", f"{repo}:1.1.0", "--alias", "production", env=env).code == 0
    by_env = {**env, "MODELVER_SIGNING_KEY": stranger.private_pem}
    assert cli("promote", f"{repo}:1.2.0", "--alias", "production", env=by_env).code == 0
    trust = ("--verify", "--key", str(release.public))
    doc = _json(_history(repo, env, *trust, "--format", "json"))
    assert doc["verified"] is True
    statuses = [m["signature"]["status"] for m in doc["aliasLog"]]
    assert statuses == ["trusted", "unsigned", "unknown-signer"], doc["aliasLog"]
    assert doc["aliasLog"][0]["record"] == signed["record"]
    assert "release.pub" in doc["aliasLog"][0]["signature"]["signer"]
    text = _history(repo, env, *trust)
    assert text.code == 0 and "signature" in text.out
    assert "trusted: key release.pub" in text.out and "unsigned" in text.out
    assert "unknown-signer" in text.out
    line = _untrusted(_history(repo, env, *trust, "--require-signature"))
    assert "2 of 3 alias move record(s)" in line and "unsigned" in line
    # The stranger's own key trusts only its record.
    other = _json(_history(repo, env, "--key", str(stranger.public), "--format", "json"))
    assert [m["signature"]["status"] for m in other["aliasLog"]] == [
        "unknown-signer",
        "unsigned",
        "trusted",
    ]
    assert (
        _history(
            repo, env, "--key", str(stranger.public), "--limit", "1", "--require-signature"
        ).code
        == 0
    )
    # Without --verify nothing is checked and the log has no signature column.
    plain = _json(_history(repo, env, "--format", "json"))
    assert plain["verified"] is False and "signature" not in plain["aliasLog"][0]


def test_a_signature_moved_to_another_record_is_not_trusted(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    _publish(tmp_path, repo, env, "1.0.0")
    _publish(tmp_path, repo, env, "1.1.0")
    sign = ("--sign-key", str(release.private), "--format", "json")
    first = _json(cli("promote", f"{repo}:1.0.0", "--alias", "production", *sign, env=env))
    second = _json(
        cli("promote", f"{repo}:1.1.0", "--alias", "staging", "--format", "json", env=env)
    )
    store = _store(repo, tmp_path)
    # The first record's bundle, stored as a referrer of the second (unsigned) record.
    bundle_record = store.find_manifest(first["recordSignature"])
    assert bundle_record is not None
    layer = json.loads(bundle_record[0])["layers"][0]
    bundle = store.read_blob(Descriptor(layer["mediaType"], layer["digest"], layer["size"]), 10**6)
    record = store.find_manifest(second["record"])
    assert record is not None
    attach_move_signature(store, second["record"], len(record[0]), bundle, "2026-01-01T00:00:00Z")
    doc = _json(_history(repo, env, "--key", str(release.public), "--format", "json"))
    by_alias = {m["alias"]: m["signature"] for m in doc["aliasLog"]}
    assert by_alias["production"]["status"] == "trusted"
    assert by_alias["staging"]["status"] == "unknown-signer"
    assert "for record" in by_alias["staging"]["problem"]


def test_history_verify_needs_someone_trusted(tmp_path: Path, repo: str) -> None:
    env = _env(tmp_path)
    _publish(tmp_path, repo, env, "1.0.0")
    for flag in ("--verify", "--require-signature"):
        done = _history(repo, env, flag)
        assert done.code == 2 and "--key PUB" in done.err and done.err.count("\n") == 1, done.err


def test_an_encrypted_signing_key_signs_the_record_and_stays_secret(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    locked = write_key(tmp_path / "keys", "locked", password=PASSPHRASE)
    SECRETS.extend(locked.secrets())
    env = _env(
        tmp_path,
        MODELVER_SIGNING_KEY_FILE=str(locked.private),
        MODELVER_SIGNING_KEY_PASSWORD=PASSPHRASE,
    )
    _publish(tmp_path, repo, env, "1.0.0")
    done = cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env)
    assert done.code == 0 and "record signed by key" in done.out, done.out + done.err
    doc = _json(_history(repo, env, "--key", str(locked.public), "--format", "json"))
    assert doc["aliasLog"][0]["signature"]["status"] == "trusted"
    wrong = {**env, "MODELVER_SIGNING_KEY_PASSWORD": "not it"}
    _publish(tmp_path, repo, env, "1.1.0")
    refused = cli("promote", f"{repo}:1.1.0", "--alias", "production", env=wrong)
    assert refused.code == 2, refused.err
    assert _points_at(repo, tmp_path, "production") == doc["aliasLog"][0]["to"]


# --- the action's promote and rollback modes -------------------------------------------------


def _action(
    tmp_path: Path, inputs: dict[str, str], **extra: str
) -> tuple[Run, dict[str, str], str]:
    runner = tmp_path / f"runner-{uuid.uuid4().hex[:8]}"
    runner.mkdir(parents=True)
    output, summary = runner / "output", runner / "summary"
    output.touch()
    summary.touch()
    env = _env(
        tmp_path,
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_ACTOR="octo",
        GITHUB_REPOSITORY="acme/models",
        GITHUB_EVENT_NAME="workflow_dispatch",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        RUNNER_TEMP=str(runner),
        MODELVER_TIMEOUT="20",
        **{f"INPUT_{k.upper().replace('-', '_')}": v for k, v in inputs.items()},
        **extra,
    )
    done = cli("action", env=env)
    written = output.read_text("utf-8") + summary.read_text("utf-8")
    for secret in SECRETS:
        assert secret not in written, "a secret reached $GITHUB_OUTPUT or the job summary"
    outputs = dict(output_entries(output))
    return done, outputs, summary.read_text("utf-8")


def test_action_promote_obeys_trusted_keys(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, stranger = keys
    env = _env(tmp_path)
    digest = _publish(tmp_path, repo, env, "1.0.0")
    pem = stranger.public.read_text("ascii") + release.public.read_text("ascii")
    inputs = {"mode": "promote", "repository": repo, "to": "1.0.0", "trusted-keys": pem}
    done, output, summary = _action(tmp_path, inputs)
    assert done.code == 5, done.out + done.err
    assert "::error" in done.out + done.err and "untrusted" in done.out + done.err
    assert "digest" not in output and "failed" in summary
    assert _points_at(repo, tmp_path, "production") is None
    # Paths, one per line, with require-signature: still refused for another signer.
    _sign(repo, "1.0.0", stranger, env)
    paths = {**inputs, "trusted-keys": f"{release.public}\n", "require-signature": "true"}
    done, _, _ = _action(tmp_path, paths)
    assert done.code == 5, done.out + done.err
    assert _points_at(repo, tmp_path, "production") is None
    _sign(repo, "1.0.0", release, env)
    done, output, summary = _action(tmp_path, paths, MODELVER_SIGNING_KEY=release.private_pem)
    assert done.code == 0, done.out + done.err
    assert output["digest"] == digest
    assert "signed by trusted key release.pub" in summary and "record signed by key" in summary
    assert _points_at(repo, tmp_path, "production") == digest
    doc = _json(_history(repo, env, "--key", str(release.public), "--format", "json"))
    assert [m["signature"]["status"] for m in doc["aliasLog"]] == ["trusted"]


def test_action_rollback_obeys_trusted_keys(
    tmp_path: Path, repo: str, keys: tuple[KeyPair, KeyPair]
) -> None:
    release, _ = keys
    env = _env(tmp_path)
    old = _publish(tmp_path, repo, env, "1.0.0")
    new = _publish(tmp_path, repo, env, "1.1.0")
    assert cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env).code == 0
    assert cli("promote", f"{repo}:1.1.0", "--alias", "production", env=env).code == 0
    inputs = {"mode": "rollback", "repository": repo, "trusted-keys": str(release.public)}
    done, _, _ = _action(tmp_path, inputs)
    assert done.code == 5, done.out + done.err
    assert _points_at(repo, tmp_path, "production") == new
    _sign(repo, "1.0.0", release, env)
    done, output, _ = _action(tmp_path, inputs)
    assert done.code == 0, done.out + done.err
    assert _points_at(repo, tmp_path, "production") == old and output["digest"] == old


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ({"require-signature": "true"}, "input 'trusted-keys'"),
        ({"require-signature": "maybe"}, "input 'require-signature'"),
        (
            {"trusted-keys": "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"},
            "input 'trusted-keys'",
        ),
        ({"trusted-keys": "keys/none.pub"}, "input 'trusted-keys' keys/none.pub: does not exist"),
    ],
)
def test_action_bad_trust_inputs_are_exit_2(
    tmp_path: Path, inputs: dict[str, str], fragment: str
) -> None:
    store = tmp_path / "store"
    given = {"mode": "promote", "repository": f"oci:{store}", "to": "1.0.0", **inputs}
    done, _, _ = _action(tmp_path, given)
    assert done.code == 2, done.out + done.err
    assert fragment in done.err, done.err
    assert not store.exists()

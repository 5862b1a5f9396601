"""``copy`` between two real registries (two docker-registry processes) and OCI layouts.

The source version has a signature (``publish --sign-key``), an attached evaluation and an
alias move whose record is signed (a referrer of a referrer). At the destination ``show``,
``history`` (with ``--verify``) and ``verify`` must work and every digest must be the source's.
Bytes are counted by a TCP proxy in front of the registry, not taken from what copy reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.byte_proxy import ByteProxy
from tests.support.registry import Registry
from tests.support.signing_keys import KeyPair, write_key

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _json(result: Run) -> Any:
    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.out + result.err
    return json.loads(result.out)


def _name() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def key(tmp_path: Path) -> KeyPair:
    return write_key(tmp_path / "keys", "release")


def _publish(
    repo: str, tmp_path: Path, env: dict[str, str], version: str, *extra: str, weights: bytes
) -> str:
    manifest = make_model(
        tmp_path / f"m{version}",
        name="copied",
        version=version,
        weights=weights,
        extra_files={"src/train.py": f"print('{version}')\n".encode()},
    )
    doc = _json(
        run_cli("publish", str(manifest), "--repository", repo, "--format", "json", *extra, env=env)
    )
    return str(doc["digest"])


def _source(repo: str, tmp_path: Path, env: dict[str, str], key: KeyPair) -> str:
    """1.0.0 signed, with an evaluation and a signed move of ``production``; its digest."""
    digest = _publish(
        repo, tmp_path, env, "1.0.0", "--sign-key", str(key.private), weights=b"w1" * 200_000
    )
    later = tmp_path / "later.json"
    later.write_text(json.dumps({"accuracy": 0.91}))
    _json(
        run_cli(
            "attach",
            f"{repo}:1.0.0",
            "--metrics",
            str(later),
            "--set",
            "drift",
            "--format",
            "json",
            env=env,
        )
    )
    _json(
        run_cli(
            "promote",
            f"{repo}:1.0.0",
            "--alias",
            "production",
            "--reason",
            "first",
            "--sign-key",
            str(key.private),
            "--format",
            "json",
            env=env,
        )
    )
    return digest


def _check_destination(dst: str, digest: str, key: KeyPair, env: dict[str, str]) -> None:
    """What a team reads at the destination: show, history (verified) and verify."""
    shown = _json(run_cli("show", f"{dst}:1.0.0", "--format", "json", env=env))
    assert shown["digest"] == digest
    assert shown["record"]["metrics"]["drift"] == {"accuracy": 0.91}
    assert len(shown["evaluations"]) == 1
    history = _json(run_cli("history", dst, "--format", "json", "--key", str(key.public), env=env))
    assert [v["digest"] for v in history["versions"]] == [digest]
    assert history["versions"][0]["evaluations"] == 1
    moves = [m for m in history["aliasLog"] if m["reason"] == "first"]
    assert len(moves) == 1 and moves[0]["to"] == digest and moves[0]["alias"] == "production"
    assert moves[0]["signature"]["status"] == "trusted", moves[0]
    verified = run_cli("verify", f"{dst}:1.0.0", "--key", str(key.public), env=env)
    assert verified.code == 0, verified.out + verified.err


def _copy(src: str, dst: str, env: dict[str, str], *extra: str) -> Any:
    return _json(run_cli("copy", src, dst, "--format", "json", *extra, env=env))


def test_registry_to_registry_keeps_every_referrer(
    registry: Registry, second_registry: Registry, tmp_path: Path, key: KeyPair
) -> None:
    env = base_env(tmp_path / "home", GITHUB_ACTOR="release-bot")
    src = registry.repo(f"copy/{_name()}")
    dst = second_registry.repo(f"prod/{_name()}")
    digest = _source(src, tmp_path, env, key)
    done = _copy(f"{src}:1.0.0", dst, env)
    # Two signatures, the evaluation, the alias-move record and the record's signature.
    assert done["versions"] == [
        {"version": "1.0.0", "digest": digest, "status": "copied", "referrers": 5}
    ]
    assert done["referrers"] == {"copied": 5, "present": 0}
    assert done["blobs"]["streamed"] >= 4 and done["blobs"]["mounted"] == 0
    _check_destination(dst, digest, key, env)
    # The alias itself does not move without --aliases.
    assert run_cli("show", f"{dst}:production", env=env).code == 2
    # Again: nothing is written, no blob is sent.
    again = _copy(f"{src}:1.0.0", dst, env)
    assert again["versions"][0]["status"] == "present"
    assert again["blobs"]["streamed"] == 0 and again["blobs"]["bytesSent"] == 0
    assert again["referrers"]["copied"] == 0


def test_air_gapped_registry_to_disk_to_registry(
    registry: Registry, second_registry: Registry, tmp_path: Path, key: KeyPair, skopeo: str
) -> None:
    env = base_env(tmp_path / "home")
    src = registry.repo(f"copy/{_name()}")
    disk = f"oci:{tmp_path / 'usb' / 'copied'}"
    dst = second_registry.repo(f"airgap/{_name()}")
    digest = _source(src, tmp_path, env, key)
    out = _copy(f"{src}:production", disk, env)  # an alias names the version it points at
    assert out["versions"][0]["digest"] == digest and out["versions"][0]["version"] == "1.0.0"
    _check_destination(disk, digest, key, env)
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"{disk}:1.0.0"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest  # another client agrees
    back = _copy(f"{disk}:1.0.0", dst, env)
    assert back["versions"][0]["status"] == "copied"
    _check_destination(dst, digest, key, env)


def test_layout_to_layout(tmp_path: Path, key: KeyPair) -> None:
    env = base_env(tmp_path / "home")
    src = f"oci:{tmp_path / 'a'}"
    dst = f"oci:{tmp_path / 'b'}"
    digest = _source(src, tmp_path, env, key)
    done = _copy(f"{src}@{digest}", dst, env)
    assert done["versions"][0]["version"] == "1.0.0"  # the tag the source gives that digest
    _check_destination(dst, digest, key, env)
    # Blobs are byte-identical files under the same names (the destination's own referrers
    # index is its own: it is the only file there the source may lack).
    a, b = (tmp_path / x / "blobs" / "sha256" for x in ("a", "b"))
    files = _json(run_cli("show", f"{dst}:1.0.0", "--format", "json", env=env))["files"]
    assert {f["digest"].split(":")[1] for f in files} <= {p.name for p in b.iterdir()}
    for blob in b.iterdir():
        if (a / blob.name).exists():
            assert blob.read_bytes() == (a / blob.name).read_bytes()


@pytest.fixture
def proxy(registry: Registry) -> Any:
    started = ByteProxy(registry.host).start()
    yield started
    started.stop()


def test_same_registry_mounts_instead_of_sending_bytes(
    registry: Registry, proxy: ByteProxy, tmp_path: Path, key: KeyPair
) -> None:
    env = base_env(tmp_path / "home")
    name_a, name_b = _name(), _name()
    digest = _source(registry.repo(f"mount/{name_a}"), tmp_path, env, key)
    mounts_before = registry.requests_seen("POST", rf"/v2/mount/{name_b}/blobs/uploads/.*mount=")
    proxy.reset()
    done = _copy(f"{proxy.host}/mount/{name_a}:1.0.0", f"{proxy.host}/mount/{name_b}", env)
    assert done["blobs"]["streamed"] == 0 and done["blobs"]["bytesSent"] == 0
    assert done["blobs"]["mounted"] >= 4  # config, weights, README, train.py (+ bundles, empty)
    # The weights alone are 400 kB; what went to the registry is requests and small manifests.
    assert proxy.sent < 120 * 1024, proxy.sent
    mounts = registry.requests_seen("POST", rf"/v2/mount/{name_b}/blobs/uploads/.*mount=")
    assert mounts - mounts_before == done["blobs"]["mounted"]
    _check_destination(registry.repo(f"mount/{name_b}"), digest, key, env)


def _subprocess_env(home: Path) -> dict[str, str]:
    env = base_env(home)
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def test_an_interrupted_copy_sends_only_what_is_missing_on_rerun(
    registry: Registry, second_registry: Registry, tmp_path: Path
) -> None:
    env = _subprocess_env(tmp_path / "home")
    src = registry.repo(f"resume/{_name()}")
    folder = tmp_path / "big"
    manifest = make_model(
        folder,
        name="big",
        weights=os.urandom(6 * MIB),
        extra_files={"model/second.bin": os.urandom(6 * MIB)},
    )
    _json(run_cli("publish", str(manifest), "--repository", src, "--format", "json", env=env))
    front = ByteProxy(second_registry.host).start()
    try:
        dst = f"{front.host}/resume/{_name()}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ci_modelver",
                "copy",
                f"{src}:1.0.0",
                dst,
                "--concurrency",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

        def terminate() -> bool:
            process.send_signal(signal.SIGTERM)
            return True  # and cut that upload: what is in socket buffers must not land anyway

        front.reset(trigger_at=9 * MIB)  # one 6 MiB file sent, the other half way
        front.on_trigger = terminate
        try:
            _out, err = process.communicate(timeout=300)
        finally:
            front.on_trigger = lambda: False
        assert process.returncode == 143, err
        assert "Traceback" not in err
        assert run_cli("show", f"{dst}:1.0.0", env=env).code == 2  # no tag without its blobs
        front.reset()
        done = _copy(f"{src}:1.0.0", dst, env)
        assert done["blobs"]["present"] >= 1
        assert done["blobs"]["streamed"] >= 1
        sent = done["blobs"]["bytesSent"]
        assert sent <= 6 * MIB + 64 * 1024  # at most the file that was cut, and small blobs
        assert front.sent < sent + 256 * 1024
        original = _json(run_cli("show", f"{src}:1.0.0", "--format", "json", env=env))
        copied = _json(run_cli("show", f"{dst}:1.0.0", "--format", "json", env=env))
        assert copied["digest"] == original["digest"]
        pulled = run_cli("pull", f"{dst}:1.0.0", "--output", str(tmp_path / "out"), env=env)
        assert pulled.code == 0, pulled.err
        assert (tmp_path / "out" / "model" / "second.bin").read_bytes() == (
            folder / "model" / "second.bin"
        ).read_bytes()
    finally:
        front.stop()


def test_a_conflicting_version_tag_is_exit_4_and_nothing_is_written(
    registry: Registry, second_registry: Registry, tmp_path: Path, key: KeyPair
) -> None:
    env = base_env(tmp_path / "home")
    src = registry.repo(f"conflict/{_name()}")
    dst = second_registry.repo(f"conflict/{_name()}")
    digest = _source(src, tmp_path, env, key)
    other = _publish(dst, tmp_path / "other", env, "1.0.0", weights=b"different" * 1000)
    before = _json(run_cli("history", dst, "--format", "json", env=env))
    failed = run_cli("copy", f"{src}:1.0.0", dst, env=env)
    assert failed.code == 4, failed.out + failed.err
    errors = failed.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in failed.err
    assert digest in errors[0] and other in errors[0] and "immutable" in errors[0]
    assert _json(run_cli("history", dst, "--format", "json", env=env)) == before
    assert run_cli("show", f"{dst}@{digest}", env=env).code == 2


def test_aliases_move_and_are_recorded_and_an_alias_brings_its_history(
    registry: Registry, second_registry: Registry, tmp_path: Path
) -> None:
    env = base_env(tmp_path / "home", GITHUB_ACTOR="copier")
    src = registry.repo(f"alias/{_name()}")
    dst = second_registry.repo(f"alias/{_name()}")
    d1 = _publish(src, tmp_path, env, "1.0.0", weights=b"one" * 1000)
    d2 = _publish(src, tmp_path, env, "1.1.0", weights=b"two" * 1000)
    d3 = _publish(src, tmp_path, env, "1.2.0", "--tag", "latest", weights=b"three" * 1000)
    for version in ("1.0.0", "1.1.0"):
        _json(
            run_cli(
                "promote", f"{src}:{version}", "--alias", "production", "--format", "json", env=env
            )
        )
    done = _copy(f"{src}:production", dst, env, "--aliases")
    assert [v["digest"] for v in done["versions"]] == [d1, d2]  # its history, not 1.2.0
    moved = {a["alias"]: a for a in done["aliases"]}
    assert moved["production"]["to"] == d2 and moved["production"]["changed"] is True
    history = _json(run_cli("history", dst, "--format", "json", env=env))
    assert [v["version"] for v in history["versions"]] == ["1.0.0", "1.1.0"]
    assert "production" in history["versions"][1]["aliases"]
    recorded = [m for m in history["aliasLog"] if m["reason"] == f"copied from {src}"]
    assert len(recorded) == 1
    assert recorded[0]["action"] == "promote" and recorded[0]["actor"] == "copier"
    assert recorded[0]["to"] == d2 and recorded[0]["toVersion"] == "1.1.0"
    assert len(history["aliasLog"]) == 3  # the two source moves came along, and the copy's
    # Again: the alias already points there; nothing is recorded.
    again = _copy(f"{src}:production", dst, env, "--aliases")
    assert again["aliases"][0]["changed"] is False
    # --keep-last with --aliases: latest (moved by publish) follows 1.2.0.
    last = _copy(src, dst, env, "--keep-last", "1", "--aliases")
    assert [v["digest"] for v in last["versions"]] == [d3]
    assert {a["alias"] for a in last["aliases"]} == {"latest"}
    shown = _json(run_cli("show", f"{dst}:latest", "--format", "json", env=env))
    assert shown["digest"] == d3
    # --all: every version is there already; nothing is written, nothing is sent.
    everything = _copy(src, dst, env, "--all")
    assert [v["version"] for v in everything["versions"]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert {v["status"] for v in everything["versions"]} == {"present"}
    assert everything["blobs"]["bytesSent"] == 0 and everything["aliases"] == []


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home")
    src = f"oci:{tmp_path / 'a'}"
    for args in (
        (src, f"oci:{tmp_path / 'b'}"),
        (f"{src}:1.0.0", f"oci:{tmp_path / 'b'}", "--all"),
        (src, src, "--all"),
        (src, f"oci:{tmp_path / 'b'}", "--keep-last", "0"),
        (f"{src}:1.0.0", f"oci:{tmp_path / 'b'}:2.0.0"),
    ):
        done = run_cli("copy", *args, env=env)
        assert done.code == 2, (args, done.err)
        assert done.err.startswith("error: ") and "Traceback" not in done.err

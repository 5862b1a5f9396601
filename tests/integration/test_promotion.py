"""Promotion, rollback, audit trail, history, reproduce and attach — on a registry and a layout."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import Run, run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

GATES = {"accuracy": {"direction": "higher", "tolerance": 0.01}}


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "registry":
        registry: Registry = request.getfixturevalue("registry")
        return registry.repo(f"promo/r{uuid.uuid4().hex[:12]}")
    return f"oci:{tmp_path / 'store'}"


def _publish(repo: str, tmp_path: Path, env: dict[str, str], version: str, acc: float) -> str:
    folder = tmp_path / f"v{version}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "train.csv").write_text(f"x,y\n1,{version}\n")
    manifest = make_model(
        folder,
        name="promo",
        version=version,
        weights=f"w{version}".encode(),
        metrics={"validation": {"accuracy": acc}},
        gates=GATES,
        data=[{"name": "train", "uri": "s3://bucket/train.csv", "path": "data/train.csv"}],
        framework={"name": "sklearn", "version": "1.5"},
    )
    result = run_cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
    assert result.code == 0, result.err
    return str(json.loads(result.out)["digest"])


def _digest(repo: str, ref: str, env: dict[str, str]) -> str:
    result = run_cli("show", f"{repo}{ref}", "--format", "json", env=env)
    assert result.code == 0, result.err
    return str(json.loads(result.out)["digest"])


def _json(result: Run) -> dict[str, object]:
    assert result.code == 0, result.err
    doc: dict[str, object] = json.loads(result.out)
    return doc


def test_rollback_chain_and_audit_log(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path, GITHUB_ACTOR="release-bot")
    d1 = _publish(repo, tmp_path, env, "1.0.0", 0.80)
    d2 = _publish(repo, tmp_path, env, "1.1.0", 0.82)
    first = _json(
        run_cli(
            "promote",
            f"{repo}:1.0.0",
            "--alias",
            "production",
            "--reason",
            "first",
            "--format",
            "json",
            env=env,
        )
    )
    assert first["to"] == d1 and first["from"] is None and first["changed"] is True
    _json(
        run_cli(
            "promote",
            f"{repo}:1.1.0",
            "--alias",
            "production",
            "--reason",
            "better",
            "--format",
            "json",
            env=env,
        )
    )
    assert _digest(repo, ":production", env) == d2
    back = _json(
        run_cli(
            "rollback",
            repo,
            "--alias",
            "production",
            "--reason",
            "incident",
            "--format",
            "json",
            env=env,
        )
    )
    assert back["to"] == d1 and back["from"] == d2 and back["action"] == "rollback"
    assert _digest(repo, ":production", env) == d1
    forward = _json(
        run_cli(
            "rollback", repo, "--alias", "production", "--to", "1.1.0", "--format", "json", env=env
        )
    )
    assert forward["to"] == d2
    assert _digest(repo, ":production", env) == d2
    # version tags never moved
    assert _digest(repo, ":1.0.0", env) == d1 and _digest(repo, ":1.1.0", env) == d2
    history = _json(run_cli("history", repo, "--format", "json", env=env))
    log = history["aliasLog"]
    assert isinstance(log, list)
    assert [(m["action"], m["fromVersion"], m["toVersion"], m["reason"]) for m in log] == [
        ("promote", None, "1.0.0", "first"),
        ("promote", "1.0.0", "1.1.0", "better"),
        ("rollback", "1.1.0", "1.0.0", "incident"),
        ("rollback", "1.0.0", "1.1.0", None),
    ]
    assert {m["actor"] for m in log} == {"release-bot"}
    versions = history["versions"]
    assert isinstance(versions, list)
    assert [(v["version"], v["aliases"]) for v in versions] == [
        ("1.0.0", []),
        ("1.1.0", ["production"]),
    ]
    assert versions[1]["gatedMetrics"] == {"validation/accuracy": 0.82}
    table = run_cli("history", repo, env=env)
    assert table.code == 0 and "incident" in table.out and "release-bot" in table.out
    markdown = run_cli("history", repo, "--format", "markdown", "--limit", "1", env=env)
    starts = [line.split(" | ")[0] for line in markdown.out.splitlines()]
    assert "| 1.1.0" in starts and "| 1.0.0" not in starts


def test_alias_bytes_equal_version_bytes_and_nothing_is_uploaded(
    registry: Registry, tmp_path: Path
) -> None:
    env = base_env(tmp_path)
    repo = registry.repo("promo/bytes")
    digest = _publish(repo, tmp_path, env, "1.0.0", 0.8)
    uploads = registry.requests_seen("PUT", r"/v2/promo/bytes/blobs/uploads/")
    assert run_cli("promote", f"{repo}@{digest}", "--alias", "champion", env=env).code == 0
    assert run_cli("promote", f"{repo}:champion", "--alias", "challenger", env=env).code == 0
    import urllib.request

    def raw(ref: str) -> bytes:
        request = urllib.request.Request(
            f"http://{registry.host}/v2/promo/bytes/manifests/{ref}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        with urllib.request.urlopen(request) as answer:
            return bytes(answer.read())

    assert raw("champion") == raw("1.0.0") == raw("challenger") == raw(digest)
    # only the empty config blob of the audit records may have been uploaded
    assert registry.requests_seen("PUT", r"/v2/promo/bytes/blobs/uploads/") <= uploads + 1
    listed = _json(run_cli("versions", repo, "--format", "json", env=env))
    assert listed["versions"] == [
        {"version": "1.0.0", "digest": digest, "aliases": ["challenger", "champion"]}
    ]


def test_versions_are_never_moved_and_aliases_checked(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    d1 = _publish(repo, tmp_path, env, "1.0.0", 0.8)
    _publish(repo, tmp_path, env, "1.1.0", 0.8)
    for alias, fragment in (
        ("1.0.0", "looks like a version"),
        ("v2", "looks like a version"),
        ("sha256-abc", "reserved prefix"),
        ("bad alias", "control characters or spaces"),
    ):
        result = run_cli("promote", f"{repo}:1.1.0", "--alias", alias, env=env)
        assert result.code == 2, (alias, result.err)
        assert fragment in result.err or "invalid alias" in result.err
    assert _digest(repo, ":1.0.0", env) == d1
    none = run_cli("rollback", repo, "--alias", "production", env=env)
    assert none.code == 2
    assert "--to VERSION" in none.err
    same = run_cli("promote", f"{repo}:1.0.0", "--alias", "staging", env=env)
    again = run_cli("promote", f"{repo}:1.0.0", "--alias", "staging", env=env)
    assert same.code == again.code == 0
    assert "already points at" in again.out
    assert len(_json(run_cli("history", repo, "--format", "json", env=env))["aliasLog"]) == 1  # type: ignore[arg-type]


def test_racing_promotions_keep_every_record(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    digest = _publish(repo, tmp_path, env, "1.0.0", 0.8)
    aliases = [f"canary-{i}" for i in range(4)]
    results: list[Run] = []

    def go(alias: str) -> None:
        results.append(
            run_cli("promote", f"{repo}:1.0.0", "--alias", alias, "--reason", alias, env=env)
        )

    threads = [threading.Thread(target=go, args=(a,)) for a in aliases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.code for r in results] == [0] * 4, [r.err for r in results]
    log = _json(run_cli("history", repo, "--format", "json", env=env))["aliasLog"]
    assert isinstance(log, list)
    assert sorted(m["alias"] for m in log) == aliases
    # every record is also listed as a referrer of the version (API or sha256-<hex> fallback)
    from ci_modelver.adapters.referrers import list_referrers
    from ci_modelver.core.audit import ALIAS_MOVE_TYPE
    from ci_modelver.core.refs import parse_ref
    from ci_modelver.settings import Settings
    from ci_modelver.toolkit import open_store

    store = open_store(parse_ref(repo), Settings.build(env), create=False)
    records = list_referrers(store, digest, ALIAS_MOVE_TYPE)
    assert len(records) == 4
    assert {m["to"] for m in log} == {digest}


def test_reproduce_and_check_data(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    _publish(repo, tmp_path, env, "1.0.0", 0.8)
    doc = _json(run_cli("reproduce", f"{repo}:1.0.0", "--format", "json", env=env))
    assert doc["hyperparameters"] == {"lr": 0.1}
    assert doc["framework"] == {"name": "sklearn", "version": "1.5"}
    data = doc["data"]
    assert isinstance(data, list) and data[0]["uri"] == "s3://bucket/train.csv"
    good = run_cli(
        "reproduce",
        f"{repo}:1.0.0",
        "--check-data",
        str(tmp_path / "v1.0.0"),
        "--format",
        "json",
        env=env,
    )
    assert good.code == 0, good.err
    assert json.loads(good.out)["dataCheck"][0]["status"] == "match"
    (tmp_path / "v1.0.0" / "data" / "train.csv").write_text("tampered\n")
    bad = run_cli("reproduce", f"{repo}:1.0.0", "--check-data", str(tmp_path / "v1.0.0"), env=env)
    assert bad.code == 1
    assert "train: mismatch" in bad.out
    missing = run_cli(
        "reproduce", f"{repo}:1.0.0", "--check-data", str(tmp_path / "empty-dir-none"), env=env
    )
    assert missing.code == 2


def test_attach_then_show_history_and_compare_use_it(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    digest = _publish(repo, tmp_path, env, "1.0.0", 0.80)
    run_cli("promote", f"{repo}:1.0.0", "--alias", "production", env=env)
    later = tmp_path / "later.json"
    later.write_text(json.dumps({"accuracy": 0.70}))
    attached = run_cli(
        "attach", f"{repo}:1.0.0", "--metrics", str(later), "--set", "validation", env=env
    )
    assert attached.code == 0, attached.err
    assert _digest(repo, ":1.0.0", env) == digest  # the version did not change
    drift = tmp_path / "drift.yaml"
    drift.write_text("drift-2026:\n  accuracy: 0.65\n")
    assert run_cli("attach", f"{repo}@{digest}", "--metrics", str(drift), env=env).code == 0
    shown = _json(run_cli("show", f"{repo}:1.0.0", "--format", "json", env=env))
    record = shown["record"]
    assert isinstance(record, dict)
    assert record["metrics"] == {"validation": {"accuracy": 0.70}, "drift-2026": {"accuracy": 0.65}}
    evaluations = shown["evaluations"]
    assert isinstance(evaluations, list) and len(evaluations) == 2
    # compare: the baseline's validation accuracy is now 0.70, so 0.75 is an improvement
    candidate = make_model(
        tmp_path / "cand",
        name="promo",
        version="1.1.0",
        metrics={"validation": {"accuracy": 0.75}, "drift-2026": {"accuracy": 0.66}},
        gates=GATES,
    )
    compared = _json(
        run_cli("compare", str(candidate), "--repository", repo, "--format", "json", env=env)
    )
    row = next(m for m in compared["metrics"] if m["set"] == "validation")  # type: ignore[union-attr]
    assert row["baseline"] == 0.70 and row["verdict"] == "improved"
    history = _json(run_cli("history", repo, "--format", "json", env=env))
    assert history["versions"][0]["evaluations"] == 2  # type: ignore[index]
    bad = tmp_path / "bad.json"
    bad.write_text('{"validation": {"accuracy": "high"}}')
    rejected = run_cli("attach", f"{repo}:1.0.0", "--metrics", str(bad), env=env)
    assert rejected.code == 2
    assert "must be a number" in rejected.out

"""Storage numbers against a hand computation: three versions that share files, referrers apart."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ci_modelver.core.audit import ALIAS_MOVE_TYPE, EVALUATION_TYPE, referrers_tag
from ci_modelver.core.inventory import Inventory, ManifestInfo, parse_manifest_info
from ci_modelver.core.modelpack import (
    ANN_CREATED,
    LAYER_TYPES,
    MODEL_ARTIFACT,
    MODEL_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical_json,
)
from ci_modelver.core.signing import BUNDLE_MEDIA_TYPE
from ci_modelver.core.storage import storage_report


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def blob(name: str, size: int, kind: str = "weight") -> dict[str, Any]:
    media = MODEL_CONFIG if kind == "config" else LAYER_TYPES[kind]  # type: ignore[index]
    return {"mediaType": media, "digest": digest(name), "size": size}


EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest("empty"), "size": 2}


def model(config: dict[str, Any], layers: list[dict[str, Any]], created: str) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": MODEL_ARTIFACT,
            "config": config,
            "layers": layers,
            "annotations": {ANN_CREATED: created},
        }
    )


def referrer(artifact_type: str, subject: str, layers: list[dict[str, Any]] | None = None) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": EMPTY,
            "layers": layers or [EMPTY],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
        }
    )


def index(entries: list[tuple[str, bytes, str]]) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d, "size": len(b), "artifactType": t}
                for d, b, t in entries
            ],
        }
    )


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Repo:
    """A hand-made inventory: tags → manifest bytes, referrers from fallback indexes."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.manifests: dict[str, ManifestInfo] = {}
        self.bytes: dict[str, bytes] = {}

    def put(self, data: bytes, tag: str | None = None) -> str:
        d = sha(data)
        self.manifests[d] = parse_manifest_info(data, d)
        self.bytes[d] = data
        if tag:
            self.tags[tag] = d
        return d

    def inventory(self, missing: frozenset[str] = frozenset()) -> Inventory:
        referrers = {}
        for tag, d in self.tags.items():
            if tag.startswith("sha256-"):
                referrers["sha256:" + tag[7:]] = self.manifests[d].children
        return Inventory(dict(self.tags), dict(self.manifests), referrers, missing)


W1, W2 = blob("w1", 1000), blob("w2", 2000)
TOK = blob("tok", 300, "weight-config")
README = blob("readme", 50, "doc")
C1, C2, C3 = blob("c1", 100, "config"), blob("c2", 110, "config"), blob("c3", 120, "config")


def three_versions() -> tuple[Repo, dict[str, str]]:
    repo = Repo()
    # Tags in an order that is neither SemVer nor lexical SemVer: 1.10.0 comes after 1.2.0.
    v3 = repo.put(model(C3, [W2, TOK, README], "2026-03-01T00:00:00Z"), "2.0.0")
    v2 = repo.put(model(C2, [W2, TOK, README], "2026-02-01T00:00:00Z"), "1.10.0")
    v1 = repo.put(model(C1, [W1, TOK, README], "2026-01-01T00:00:00Z"), "1.2.0")
    repo.tags["production"] = v3
    repo.tags["latest"] = v3
    return repo, {"1.2.0": v1, "1.10.0": v2, "2.0.0": v3}


def test_sizes_new_bytes_and_types_by_hand() -> None:
    repo, digests = three_versions()
    report = storage_report(repo.inventory())
    rows = {v.version: v for v in report.versions}
    assert [v.version for v in report.versions] == ["1.2.0", "1.10.0", "2.0.0"]
    # size = config + layers
    assert rows["1.2.0"].size == 100 + 1000 + 300 + 50 == 1450
    assert rows["1.10.0"].size == 110 + 2000 + 300 + 50 == 2460
    assert rows["2.0.0"].size == 120 + 2000 + 300 + 50 == 2470
    # new = blobs in no earlier version (SemVer order): 1.10.0 brings w2, 2.0.0 only its config
    assert rows["1.2.0"].new == 1450
    assert rows["1.10.0"].new == 110 + 2000
    assert rows["2.0.0"].new == 120
    assert dict(rows["1.10.0"].by_type) == {
        "config": 110,
        "weight": 2000,
        "weight-config": 300,
        "doc": 50,
    }
    assert rows["2.0.0"].aliases == ("latest", "production")
    assert report.logical == 1450 + 2460 + 2470 == 6380
    unique = 100 + 110 + 120 + 1000 + 2000 + 300 + 50
    assert report.unique == unique == 3680 == sum(v.new for v in report.versions)
    assert report.saving == 6380 - 3680
    assert dict(report.by_type) == {
        "config": (330, 330),
        "weight": (5000, 3000),
        "weight-config": (900, 300),
        "doc": (150, 50),
    }
    assert [v.version for v in report.largest] == ["2.0.0", "1.10.0", "1.2.0"]
    doc = report.to_json()
    assert doc["totals"] == {
        "versions": 3,
        "logical": 6380,
        "unique": 3680,
        "saving": 2700,
        "savingRatio": round(2700 / 6380, 4),
    }
    assert doc["versions"][0]["digest"] == digests["1.2.0"]
    assert doc["otherTags"] == []


def test_a_file_listed_twice_in_one_version_is_new_once() -> None:
    repo = Repo()
    repo.put(model(C1, [W1, W1], "2026-01-01T00:00:00Z"), "1.0.0")
    (row,) = storage_report(repo.inventory()).versions
    assert row.size == 100 + 2000 and row.new == 100 + 1000


def test_referrers_are_counted_apart_from_the_versions() -> None:
    repo, digests = three_versions()
    v3 = digests["2.0.0"]
    move = referrer(ALIAS_MOVE_TYPE, v3)
    move_digest = repo.put(move, "modelver-audit-production-20260301T000000000000-abcd")
    evaluation = referrer(EVALUATION_TYPE, v3)
    evaluation_digest = repo.put(evaluation)
    bundle = blob("bundle", 4000, "doc") | {"mediaType": BUNDLE_MEDIA_TYPE}
    signature = referrer(BUNDLE_MEDIA_TYPE, move_digest, [bundle])
    signature_digest = repo.put(signature)
    index_v3 = index(
        [(move_digest, move, ALIAS_MOVE_TYPE), (evaluation_digest, evaluation, EVALUATION_TYPE)]
    )
    index_move = index([(signature_digest, signature, BUNDLE_MEDIA_TYPE)])
    repo.put(index_v3, referrers_tag(v3))
    repo.put(index_move, referrers_tag(move_digest))
    repo.tags["junk"] = repo.put(b'{"schemaVersion":2}')
    report = storage_report(repo.inventory())
    # the versions' numbers do not change
    assert report.logical == 6380 and report.unique == 3680
    assert {v.version: v.referrers for v in report.versions} == {
        "1.2.0": 0,
        "1.10.0": 0,
        "2.0.0": 2,
    }
    doc = report.to_json()["referrers"]
    assert doc["auditRecords"] == {"count": 1, "bytes": len(move) + 2}
    assert doc["evaluations"] == {"count": 1, "bytes": len(evaluation) + 2}
    # the signature's manifest, its empty config and its bundle layer
    assert doc["signatures"] == {"count": 1, "bytes": len(signature) + 2 + 4000}
    assert doc["other"] == {"count": 0, "bytes": 0}
    assert doc["indexes"] == {"count": 2, "bytes": len(index_v3) + len(index_move)}
    assert dict(report.other_tags) == {"junk": sha(b'{"schemaVersion":2}')}


def test_an_empty_repository() -> None:
    report = storage_report(Inventory({}, {}))
    assert report.versions == () and report.logical == report.unique == 0
    assert report.to_json()["totals"]["savingRatio"] == 0.0


def test_manifest_info_is_lenient() -> None:
    info = parse_manifest_info(b"not json", sha(b"not json"))
    assert info.blobs == () and info.size == 8
    data = json.dumps({"layers": [{"digest": "sha256:../../x", "size": 1}, 3]}).encode()
    assert parse_manifest_info(data, sha(data)).layers == ()


def test_storage_of_a_layout_where_the_weights_did_not_change(tmp_path: Any) -> None:
    from tests.conftest import run_cli
    from tests.helpers import base_env, make_model

    env = base_env(tmp_path / "home")
    repo = f"oci:{tmp_path / 'store'}"
    for version in ("1.0.0", "1.1.0"):
        manifest = make_model(tmp_path / version, name="same", version=version, weights=b"w" * 5000)
        assert run_cli("publish", str(manifest), "--repository", repo, env=env).code == 0
    done = run_cli("storage", repo, "--format", "json", env=env)
    assert done.code == 0, done.err
    doc = json.loads(done.out)
    first, second = doc["versions"]
    assert first["byType"]["weight"] == second["byType"]["weight"] == 5000
    # Only the config is new in 1.1.0 (it names the version); weights and README are shared.
    assert second["newBytes"] == second["byType"]["config"]
    assert doc["totals"]["saving"] == 5000 + first["byType"]["doc"]
    text = run_cli("storage", repo, env=env)
    assert text.code == 0 and "saved by shared layers 4.9 KiB" in text.out
    assert run_cli("storage", f"oci:{tmp_path / 'nothing'}", env=env).code == 2


def test_text_from_the_registry_is_escaped_in_both_reports() -> None:
    from ci_modelver.commands.prune import PruneResult
    from ci_modelver.commands.storage import StorageResult
    from ci_modelver.core.refs import parse_ref
    from ci_modelver.core.retention import Rules, plan_prune
    from ci_modelver.edges.terminal import render

    repo, _ = three_versions()
    repo.tags["evil\x1b]0;pwned\x07\n::error::x"] = repo.tags["2.0.0"]
    inventory = repo.inventory()
    ref = parse_ref("registry.example.com/m")
    storage = render(StorageResult(ref, storage_report(inventory)), "text", in_actions=True)
    plan = plan_prune(inventory, [], Rules(keep_last=1), datetime_now())
    pruned = render(PruneResult(ref, plan, True, True), "text", in_actions=True)
    for lines in (storage, pruned):
        text = lines.text("out")
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b]0;pwned\\x07\\n::error::x" in text
        assert all(not line.startswith("::") for line in text.splitlines())


def datetime_now() -> Any:
    from datetime import datetime, timezone

    return datetime(2026, 6, 1, tzinfo=timezone.utc)

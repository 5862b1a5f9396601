"""Prune planning: keep rules, protections, what goes with a version and the bytes that frees."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from ci_modelver.core.audit import ALIAS_MOVE_TYPE, EVALUATION_TYPE, AliasMove, referrers_tag
from ci_modelver.core.retention import Rules, parse_time, plan_prune
from ci_modelver.core.signing import BUNDLE_MEDIA_TYPE
from ci_modelver.errors import InputError
from tests.unit.test_storage import Repo, blob, digest, index, model, referrer

NOW = datetime(2026, 6, 15, tzinfo=timezone.utc)
README = blob("readme", 50, "doc")
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"]


def six_versions() -> tuple[Repo, dict[str, str], dict[str, int]]:
    """1.i.0 created on the first of month i+1; own config (100) and weights (1000); one shared
    README (50); 1.4.0 reuses the weights of 1.3.0."""
    repo = Repo()
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for i, version in enumerate(VERSIONS):
        weights = blob(f"w{3 if i == 4 else i}", 1000)
        data = model(
            blob(f"c{i}", 100, "config"), [weights, README], f"2026-{i + 1:02d}-01T00:00:00Z"
        )
        digests[version] = repo.put(data, version)
        sizes[version] = len(data)
    return repo, digests, sizes


def plan(repo: Repo, moves: list[AliasMove] | None = None, **rules: object):  # type: ignore[no-untyped-def]
    return plan_prune(repo.inventory(), moves or [], Rules(**rules).check(), NOW)  # type: ignore[arg-type]


def kept(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.version for d in result.decisions if d.keep]


def test_keep_last_in_semver_order_and_the_bytes_freed_by_hand() -> None:
    repo, digests, sizes = six_versions()
    result = plan(repo, keep_last=2)
    assert kept(result) == ["1.4.0", "1.5.0"]
    frees = {d.version: d.frees for d in result.decisions if not d.keep}
    # Each deleted version frees its manifest, config and weights; 1.3.0's weights stay
    # (1.4.0 shares them) and the README stays (every kept version has it).
    assert frees == {
        "1.0.0": sizes["1.0.0"] + 100 + 1000,
        "1.1.0": sizes["1.1.0"] + 100 + 1000,
        "1.2.0": sizes["1.2.0"] + 100 + 1000,
        "1.3.0": sizes["1.3.0"] + 100,
    }
    assert result.freed == sum(frees.values())
    assert [d.subject for d in result.deletions] == [digests[v] for v in VERSIONS[:4]]
    assert all(d.manifest and d.referrers == () and d.index is None for d in result.deletions)
    assert result.counts() == {"versions": 4, "manifests": 4, "referrers": 0, "indexes": 0}


def test_semver_not_lexical_order() -> None:
    repo = Repo()
    for version in ("1.10.0", "1.9.0", "1.2.0", "2.0.0-rc.1"):
        repo.put(model(blob(version, 1, "config"), [], "2026-01-01T00:00:00Z"), version)
    assert kept(plan(repo, keep_last=2)) == ["1.10.0", "2.0.0-rc.1"]


def test_keep_newer_than_by_creation_time() -> None:
    repo, _, _ = six_versions()
    # 2026-06-15: 1.5.0 is 14 days old, 1.4.0 45 days
    assert kept(plan(repo, newer_than_days=30)) == ["1.5.0"]
    assert kept(plan(repo, newer_than_days=46)) == ["1.4.0", "1.5.0"]
    reasons = {d.version: d.reasons for d in plan(repo, newer_than_days=30).decisions}
    assert reasons["1.5.0"] == ("newer than 30 days",)


def test_a_version_without_a_creation_time_is_kept_by_keep_newer_than() -> None:
    repo = Repo()
    repo.put(model(blob("c", 1, "config"), [], "not a time"), "1.0.0")
    (decision,) = plan(repo, newer_than_days=1).decisions
    assert decision.keep and "no readable creation time" in decision.reasons[0]
    assert plan(repo, keep_last=0).decisions[0].keep is False


def test_patterns_and_the_union_of_rules() -> None:
    repo, _, _ = six_versions()
    assert kept(plan(repo, patterns=("1.0.*",))) == ["1.0.0"]
    assert kept(plan(repo, patterns=("1.0.*", "1.2.?"), keep_last=1)) == ["1.0.0", "1.2.0", "1.5.0"]
    reasons = {d.version: d.reasons for d in plan(repo, patterns=("1.*",), keep_last=1).decisions}
    assert reasons["1.5.0"] == ("one of the last 1", "matches 1.*")


def moves_of(digests: dict[str, str]) -> list[AliasMove]:
    """production: -> 1.0.0 -> 1.1.0 -> 1.2.0 -> 1.3.0 (four moves, oldest first)."""
    chain = [None, "1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    return [
        AliasMove(
            "production",
            digests[to],
            f"2026-0{i + 1}-02T00:00:00Z",
            "bot",
            from_digest=digests[before] if before else None,
            record_digest=digest(f"move{i}"),
        )
        for i, (before, to) in enumerate(itertools.pairwise(chain))
        if to is not None
    ]


@pytest.mark.parametrize(
    ("protect", "expected"),
    [
        (3, ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.5.0"]),  # now, and before each of 3 moves
        (1, ["1.2.0", "1.3.0", "1.5.0"]),
        (0, ["1.3.0", "1.5.0"]),  # the alias target now, whatever K
    ],
)
def test_alias_targets_and_rollback_targets_are_protected(
    protect: int, expected: list[str]
) -> None:
    repo, digests, _ = six_versions()
    repo.tags["production"] = digests["1.3.0"]
    result = plan(repo, moves_of(digests), keep_last=1, protect_rollback=protect)
    assert kept(result) == expected
    reasons = {d.version: d.reasons for d in result.decisions}
    assert "alias production points to it" in reasons["1.3.0"]
    if protect:
        assert reasons["1.2.0"] == (f"rollback target of production (last {protect} moves)",)


def test_other_aliases_protect_what_they_name() -> None:
    repo, digests, _ = six_versions()
    repo.tags["staging"] = digests["1.1.0"]
    repo.tags["latest"] = digests["1.5.0"]
    assert kept(plan(repo, keep_last=0)) == ["1.1.0", "1.5.0"]


def test_a_version_sharing_its_digest_with_a_kept_version_stays() -> None:
    repo, digests, _ = six_versions()
    repo.tags["1.6.0"] = digests["1.5.0"]
    result = plan(repo, keep_last=1)
    reasons = {d.version: d.reasons for d in result.decisions}
    assert reasons["1.5.0"] == ("same digest as kept version 1.6.0",)
    assert digests["1.5.0"] not in {d.subject for d in result.deletions}


def test_two_deleted_tags_of_one_digest_are_one_deletion() -> None:
    repo, digests, _ = six_versions()
    repo.tags["1.0.1"] = digests["1.0.0"]
    result = plan(repo, keep_last=5)
    (deletion,) = result.deletions
    assert deletion.versions == ("1.0.0", "1.0.1")
    frees = {d.version: d.frees for d in result.decisions if not d.keep}
    assert frees["1.0.1"] == 0 and frees["1.0.0"] == result.freed


def test_referrers_go_with_their_version_audit_records_never() -> None:
    repo, digests, sizes = six_versions()
    v0 = digests["1.0.0"]
    move = referrer(ALIAS_MOVE_TYPE, v0)
    move_digest = repo.put(move, "modelver-audit-production-20260101T000000000000-ab")
    evaluation = referrer(EVALUATION_TYPE, v0)
    evaluation_digest = repo.put(evaluation)
    bundle = blob("bundle", 4000, "doc") | {"mediaType": BUNDLE_MEDIA_TYPE}
    signature = referrer(BUNDLE_MEDIA_TYPE, v0, [bundle])
    signature_digest = repo.put(signature)
    fallback = index(
        [
            (move_digest, move, ALIAS_MOVE_TYPE),
            (evaluation_digest, evaluation, EVALUATION_TYPE),
            (signature_digest, signature, BUNDLE_MEDIA_TYPE),
        ]
    )
    fallback_digest = repo.put(fallback, referrers_tag(v0))
    result = plan(repo, keep_last=5)
    (deletion,) = result.deletions
    assert set(deletion.referrers) == {
        (evaluation_digest, "evaluation"),
        (signature_digest, "signature"),
    }
    assert deletion.index == (referrers_tag(v0), fallback_digest)
    # The empty blob stays: the audit record (kept) uses it.
    assert result.freed == (
        sizes["1.0.0"] + 100 + 1000 + len(evaluation) + len(signature) + 4000 + len(fallback)
    )
    assert result.counts() == {"versions": 1, "manifests": 1, "referrers": 2, "indexes": 1}


def test_a_fallback_index_whose_version_is_gone_is_deleted_with_its_referrers() -> None:
    repo, _, _ = six_versions()
    gone = digest("deleted by an interrupted prune")
    evaluation = referrer(EVALUATION_TYPE, gone)
    evaluation_digest = repo.put(evaluation)
    fallback = index([(evaluation_digest, evaluation, EVALUATION_TYPE)])
    fallback_digest = repo.put(fallback, referrers_tag(gone))
    result = plan_prune(
        repo.inventory(missing=frozenset({gone})), [], Rules(keep_last=6).check(), NOW
    )
    (deletion,) = result.deletions
    assert deletion.manifest is False and deletion.versions == ()
    assert deletion.referrers == ((evaluation_digest, "evaluation"),)
    assert deletion.index == (referrers_tag(gone), fallback_digest)
    assert result.freed == len(evaluation) + len(fallback) + 2  # nothing else uses the empty blob


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (Rules(), "give at least one rule"),
        (Rules(keep_last=-1), "--keep-last must be 0 or more"),
        (Rules(newer_than_days=-2.0), "--keep-newer-than must be 0 or more"),
        (Rules(newer_than_days=float("nan")), "--keep-newer-than must be 0 or more"),
        (Rules(newer_than_days=float("inf")), "at most 100000"),
        (Rules(keep_last=1, protect_rollback=-1), "--protect-rollback must be 0 or more"),
        (Rules(patterns=("",)), "--keep needs a pattern"),
    ],
)
def test_rules_that_are_refused(rules: Rules, message: str) -> None:
    with pytest.raises(InputError, match=message):
        rules.check()


def test_parse_time() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_time("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_time("yesterday") is None and parse_time(None) is None

"""The registry site generated from a real registry (docker-registry) and from an OCI layout:
versions, alias targets, metric values and the alias timeline in the files; a second run with
the cache fetches no manifest by digest again and writes nothing."""

from __future__ import annotations

import json
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ci_modelver.commands.site import site
from ci_modelver.settings import Settings
from tests.conftest import run_cli
from tests.helpers import base_env, make_model
from tests.support.registry import Registry
from tests.support.signing_keys import write_key

pytestmark = pytest.mark.integration

GATES = {"accuracy": {"direction": "higher", "tolerance": 0.01}}
REASON = '"><svg onload=alert(1)>'


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "registry":
        registry: Registry = request.getfixturevalue("registry")
        return registry.repo(f"site/r{uuid.uuid4().hex[:12]}")
    return f"oci:{tmp_path / 'store'}"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text("utf-8"))
    return " ".join(" ".join(parser.parts).split())


def _publish(repo: str, tmp_path: Path, env: dict[str, str], version: str, acc: float) -> None:
    manifest = make_model(
        tmp_path / f"v{version}",
        name="sitemodel",
        version=version,
        weights=f"w{version}".encode(),
        metrics={"validation": {"accuracy": acc}},
        gates=GATES,
        description=f"churn model {version} <b>bold</b>",
        data=[{"name": "train", "uri": "s3://bucket/train.csv", "digest": "sha256:" + "c" * 64}],
        code={"repository": "https://github.com/acme/models", "commit": "d" * 40},
    )
    result = run_cli("publish", str(manifest), "--repository", repo, "--format", "json", env=env)
    assert result.code == 0, result.err


def _promote(repo: str, version: str, reason: str, env: dict[str, str]) -> None:
    result = run_cli(
        "promote", f"{repo}:{version}", "--alias", "production", "--reason", reason, env=env
    )
    assert result.code == 0, result.err


def test_site_from_a_store(repo: str, tmp_path: Path) -> None:
    env = base_env(tmp_path, GITHUB_ACTOR="release-bot")
    _publish(repo, tmp_path, env, "1.0.0", 0.80)
    _publish(repo, tmp_path, env, "1.1.0", 0.83)
    _promote(repo, "1.0.0", "first release", env)
    _promote(repo, "1.1.0", REASON, env)
    metrics = tmp_path / "holdout.json"
    metrics.write_text(json.dumps({"accuracy": 0.815}))
    attached = run_cli(
        "attach", f"{repo}:1.1.0", "--metrics", str(metrics), "--set", "holdout", env=env
    )
    assert attached.code == 0, attached.err

    settings = Settings.build(env, cwd=tmp_path)
    out, cache = tmp_path / "site", tmp_path / "cache"
    first = site([repo], out, settings, cache=cache, title="Acme models")
    assert [(m.name, m.versions, m.pages) for m in first.models] == [("sitemodel", 2, 3)]
    assert first.unchanged == () and "index.html" in first.written and first.cached == 0

    index = text_of(out / "index.html")
    assert "Acme models" in index and "sitemodel" in index and "production → 1.1.0" in index
    assert "validation/accuracy: 0.83" in index
    model = text_of(out / "sitemodel" / "index.html")
    for expected in (
        "1.0.0",
        "1.1.0",
        "release-bot",
        "first release",
        REASON,
        "validation / accuracy",
    ):
        assert expected in model, expected
    assert model.index("1.1.0") < model.index("1.0.0")  # newest first
    page = (out / "sitemodel" / "index.html").read_text("utf-8")
    assert "<svg onload" not in page and "&lt;svg onload=alert(1)&gt;" in page
    assert page.count('<circle cx="') == 2 + 1  # two validation points, one holdout point
    version = text_of(out / "sitemodel" / "1.1.0" / "index.html")
    for expected in (
        "churn model 1.1.0 <b>bold</b>",
        "model/weights.bin",
        "s3://bucket/train.csv",
        "holdout",
        "0.815",
        "0.83",
        "production",
        "d" * 40,
    ):
        assert expected in version, expected
    html = (out / "sitemodel" / "1.1.0" / "index.html").read_text("utf-8")
    assert "<b>bold</b>" not in html
    assert 'href="https://github.com/acme/models/commit/' + "d" * 40 + '"' in html

    document = json.loads((out / "models.json").read_text("utf-8"))
    entry = document["models"][0]
    assert entry["aliases"]["production"]["version"] == "1.1.0"
    assert [v["version"] for v in entry["versions"]] == ["1.1.0", "1.0.0"]
    assert entry["versions"][0]["gatedMetrics"] == {
        "holdout/accuracy": 0.815,
        "validation/accuracy": 0.83,
    }
    assert [
        (m["fromVersion"], m["toVersion"], m["reason"], m["actor"]) for m in entry["aliasLog"]
    ] == [
        ("1.0.0", "1.1.0", REASON, "release-bot"),
        (None, "1.0.0", "first release", "release-bot"),
    ]

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    second = site([repo], out, settings, cache=cache, title="Acme models")
    assert second.written == () and sorted(second.unchanged) == sorted(first.written)
    # Every immutable manifest (versions, evaluation, alias-move records) came from the cache.
    assert second.cached == first.fetched and second.fetched == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    _promote(repo, "1.0.0", "rollback drill", env)
    third = site([repo], out, settings, cache=cache, title="Acme models")
    assert "sitemodel/index.html" in third.written and "models.json" in third.written
    assert "assets/site.css" in third.unchanged
    assert "rollback drill" in text_of(out / "sitemodel" / "index.html")


def test_a_pruned_version_leaves_the_site_on_the_next_run(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    repo = f"oci:{tmp_path / 'store'}"
    for version, acc in (("1.0.0", 0.80), ("1.1.0", 0.82)):
        _publish(repo, tmp_path, env, version, acc)
    out = tmp_path / "site"
    args = ("site", repo, "--output", str(out), "--format", "json")
    assert run_cli(*args, env=env).code == 0
    assert (out / "sitemodel" / "1.0.0" / "index.html").is_file()
    pruned = run_cli("prune", repo, "--keep-last", "1", "--yes", env=env)
    assert pruned.code == 0, pruned.err
    result = run_cli(*args, env=env)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["removed"] == ["sitemodel/1.0.0/index.html"]
    assert not (out / "sitemodel" / "1.0.0").exists()
    assert (out / "sitemodel" / "1.1.0" / "index.html").is_file()
    assert "1.0.0" not in json.dumps(
        json.loads((out / "models.json").read_text())["models"][0]["versions"]
    )


def test_signatures_are_checked_against_the_policy_given_to_site(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    repo = f"oci:{tmp_path / 'store'}"
    release, stranger = write_key(tmp_path / "k", "release"), write_key(tmp_path / "k", "stranger")
    for version, acc in (("1.0.0", 0.80), ("1.1.0", 0.82), ("1.2.0", 0.83)):
        _publish(repo, tmp_path, env, version, acc)
    for version, signer in (("1.0.0", release), ("1.1.0", stranger)):
        signed = run_cli("sign", f"{repo}:{version}", "--sign-key", str(signer.private), env=env)
        assert signed.code == 0, signed.err
    out = tmp_path / "site"
    args = ("site", repo, "--output", str(out), "--format", "json")
    result = run_cli(*args, "--key", str(release.public), env=env)
    assert result.code == 0, result.err
    assert json.loads(result.out)["models"][0]["trusted"] == 1
    versions = {
        v["version"]: v["trust"]
        for v in json.loads((out / "models.json").read_text())["models"][0]["versions"]
    }
    assert versions["1.0.0"]["trusted"] is True and versions["1.0.0"]["signers"]
    assert versions["1.1.0"]["trusted"] is False and "none trusted" in versions["1.1.0"]["reason"]
    assert versions["1.2.0"] == {"trusted": False, "signers": [], "reason": "it has no signatures"}
    page = text_of(out / "sitemodel" / "1.0.0" / "index.html")
    assert "Trusted: signed by " + versions["1.0.0"]["signers"][0] in page
    assert "Not trusted: 2 signature(s)" in text_of(out / "sitemodel" / "1.1.0" / "index.html")
    assert "Not trusted: it has no signatures" in text_of(
        out / "sitemodel" / "1.2.0" / "index.html"
    )
    listing = text_of(out / "sitemodel" / "index.html")
    assert "Signed" in listing and listing.count("not trusted") == 2
    # Without a policy nothing is checked, and the pages say so.
    plain = run_cli(*args, env=env)
    assert plain.code == 0 and json.loads(plain.out)["models"][0]["trusted"] is None
    assert "2 attached, not checked" in text_of(out / "sitemodel" / "1.1.0" / "index.html")
    assert "Signed" not in text_of(out / "sitemodel" / "index.html")
    half = run_cli(*args, "--ca", str(release.public), env=env)
    assert half.code == 2 and "--cert-identity" in half.err


def test_site_command_line(tmp_path: Path) -> None:
    env = base_env(tmp_path, GITHUB_ACTOR="release-bot")
    repo = f"oci:{tmp_path / 'store'}"
    _publish(repo, tmp_path, env, "1.0.0", 0.80)
    _promote(repo, "1.0.0", "first release", env)
    out = tmp_path / "site"
    args = ("site", repo, "--output", str(out), "--base-url", "/models", "--title", "Acme")
    result = run_cli(*args, "--format", "json", env=env)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["models"] == [
        {
            "repository": repo,
            "name": "sitemodel",
            "path": "sitemodel/",
            "versions": 1,
            "pages": 2,
            "trusted": None,
        }
    ]
    assert "sitemodel/1.0.0/index.html" in doc["written"] and doc["unchanged"] == []
    page = (out / "sitemodel" / "1.0.0" / "index.html").read_text("utf-8")
    assert 'href="/models/assets/site.css"' in page and 'href="/models/sitemodel/"' in page
    again = run_cli(*args, env=env)
    assert again.code == 0, again.err
    assert "0 file(s) written, 5 unchanged, 0 removed" in again.out and "sitemodel" in again.out
    bad = run_cli(
        "site", repo, "--output", str(out), "--base-url", "https://evil.example/", env=env
    )
    assert bad.code == 2 and "--base-url" in bad.err
    for epoch in ("253402300800", "-1", "soon"):  # after 9999, before 1970, not a number
        late = run_cli(*args, env={**env, "SOURCE_DATE_EPOCH": epoch})
        assert late.code == 2 and "SOURCE_DATE_EPOCH" in late.err, late.err
        assert "Traceback" not in late.err and len(late.err.strip().splitlines()) == 1

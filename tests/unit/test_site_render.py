"""The registry site's files: escaping of hostile registry text, CSP, no remote URLs, structure,
links under --base-url, determinism and incremental writes."""

from __future__ import annotations

import itertools
import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ci_modelver.adapters.site_output import RECORD, write_files
from ci_modelver.core.audit import AliasMove, Evaluation
from ci_modelver.core.site_model import RepoSnapshot, VersionSnapshot, site_view
from ci_modelver.errors import InputError
from ci_modelver.site_render import CSP, CSS_PATH, check_base_url, render_site
from tests.unit.test_site_model import artifact, snapshot

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(1)</script>"
SVG = '"><svg onload=alert(1)>'
REPOSITORY_LINKS = {
    "https://github.com/acme/models",
    "https://github.com/acme/models/commit/" + "a" * 40,
}


class Page(HTMLParser):
    """Tags, attributes and text of one page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def parse(data: bytes) -> Page:
    page = Page()
    page.feed(data.decode("utf-8"))
    page.close()
    return page


def hostile_snapshot() -> RepoSnapshot:
    v1 = artifact(
        "1.0.0",
        0.8,
        description=IMG,
        metrics={"validation": {"accuracy": 0.8, SCRIPT: 1.0}},
        gates={"accuracy": {"direction": "higher"}, SCRIPT: {"direction": "lower"}},
        hyperparameters={SCRIPT: IMG},
        data=[{"name": IMG, "uri": "https://example.org/data.csv"}],
        code={
            "repository": "https://github.com/acme/models",
            "commit": "a" * 40,
            "runUrl": "javascript:alert(1)",
        },
    )
    v2 = artifact("1.1.0", 0.82, description=SVG)
    moves = (
        AliasMove(
            "production",
            v1.digest,
            "2026-01-05T00:00:00Z",
            IMG,
            to_version="1.0.0",
            reason=SVG,
            record_digest="sha256:" + "1" * 64,
        ),
        AliasMove(
            "production",
            v2.digest,
            "2026-01-06T00:00:00Z",
            SCRIPT,
            from_digest=v1.digest,
            from_version=SCRIPT,
            to_version="1.1.0",
            reason=SCRIPT,
            record_digest="sha256:" + "2" * 64,
        ),
    )
    evaluation = Evaluation({SCRIPT: {SCRIPT: 0.5}}, SVG, IMG, SCRIPT, "sha256:" + "e" * 64)
    return RepoSnapshot(
        "127.0.0.1:5000/acme/churn",
        (VersionSnapshot("1.0.0", v1, (evaluation,)), VersionSnapshot("1.1.0", v2)),
        {"production": v2.digest},
        moves,
    )


def site(**kwargs: Any) -> dict[str, bytes]:
    return render_site(site_view(IMG, None, [hostile_snapshot(), snapshot()]), **kwargs)


def html_pages(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: data for path, data in files.items() if path.endswith(".html")}


def test_the_files_of_the_site() -> None:
    files = site()
    assert set(files) == {
        "index.html",
        "models.json",
        CSS_PATH,
        "churn/index.html",
        "churn/1.0.0/index.html",
        "churn/1.1.0/index.html",
        "churn-2/index.html",
        "churn-2/1.0.0/index.html",
        "churn-2/1.1.0/index.html",
        "churn-2/1.2.0/index.html",
    }


def test_hostile_strings_show_as_text_in_every_file() -> None:
    files = site()
    for path, data in files.items():
        text = data.decode("utf-8")
        assert "<script" not in text.lower(), path
        assert "<img" not in text.lower(), path
        assert "<svg onload" not in text.lower(), path
        assert "onerror=alert" not in text or "&lt;img" in text or path == "models.json", path
    pages = html_pages(files)
    shown = "".join("".join(parse(data).text) for data in pages.values())
    for hostile in (IMG, SCRIPT, SVG):
        assert hostile in shown  # as text: the tokenizer gave it back as data
    for path, data in pages.items():
        for tag, attrs in parse(data).tags:
            assert not any(name.startswith("on") for name in attrs), (path, tag, attrs)
            assert "style" not in attrs, (path, tag)
            assert tag not in ("script", "img", "iframe", "object", "embed"), (path, tag)
    document = json.loads(files["models.json"])
    assert document["models"][0]["versions"][1]["description"] == IMG
    assert document["title"] == IMG


def test_every_page_has_the_csp_and_only_our_stylesheet() -> None:
    for path, data in html_pages(site()).items():
        page = parse(data)
        csp = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
        assert [m.get("content") for m in csp] == [CSP], path
        assert "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP
        sheets = [link.get("href") for link in page.all("link") if link.get("rel") == "stylesheet"]
        depth = path.count("/")
        assert sheets == ["../" * depth + CSS_PATH], path
        # An empty data: icon, so browsers do not ask the server for /favicon.ico (a 404).
        icons = [link.get("href") for link in page.all("link") if link.get("rel") == "icon"]
        assert icons == ["data:,"], path


def test_no_remote_url_but_the_repository_links() -> None:
    for path, data in site().items():
        if path.endswith(".html"):
            for tag, attrs in parse(data).tags:
                for name, value in attrs.items():
                    if value and "://" in value:
                        assert (tag, name) == ("a", "href") and value in REPOSITORY_LINKS, (
                            path,
                            tag,
                            name,
                            value,
                        )
                    if tag == "a" and name == "href" and value:
                        assert value in REPOSITORY_LINKS or "://" not in value
                        assert not value.startswith(("javascript:", "//", "data:")), value
        text = data.decode("utf-8")
        for scheme in ("http://", "https://"):
            # Text may mention a dataset URI; nothing else in the pages names a host.
            for found in text.split(scheme)[1:]:
                url = scheme + found.split('"')[0].split("<")[0].split("\\")[0]
                assert url in REPOSITORY_LINKS or url.startswith("https://example.org/data.csv"), (
                    path,
                    url,
                )


def test_structure_lang_one_h1_heading_order_table_headers_unique_ids() -> None:
    for path, data in html_pages(site()).items():
        page = parse(data)
        html = page.all("html")
        assert html and html[0].get("lang") == "en", path
        levels = [int(t[1]) for t, _ in page.tags if t in ("h1", "h2", "h3", "h4", "h5", "h6")]
        assert levels.count(1) == 1 and levels[0] == 1, path
        assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), (path, levels)
        names = [t for t, _ in page.tags]
        assert names.count("table") == names.count("thead") <= names.count("th"), path
        assert {"header", "main", "footer"} <= set(names), path
        ids = [a["id"] for _, a in page.tags if a.get("id")]
        assert len(ids) == len(set(ids)), path
        for svg in page.all("svg"):
            assert svg.get("role") == "img", path
            assert all(i in ids for i in (svg.get("aria-labelledby") or "").split()), path
        titles = page.all("title")
        assert titles, path
        for scroll in [a for _, a in page.tags if a.get("class") == "scroll"]:
            assert scroll.get("tabindex") == "0" and scroll.get("aria-label"), path


def test_content_of_the_pages() -> None:
    files = site()
    index = "".join(parse(files["index.html"]).text)
    assert "churn" in index and "1.2.0" in index and "production" in index
    model = "".join(parse(files["churn-2/index.html"]).text)
    for expected in (
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "alice",
        "bob",
        "better AUC",
        "first",
        "validation / accuracy",
    ):
        assert expected in model, expected
    version = "".join(parse(files["churn-2/1.1.0/index.html"]).text)
    for expected in (
        "model/weights.bin",
        "2.0 KiB",
        "s3://bucket/train.csv",
        "tree.depth",
        "holdout",
        "0.79",
        "qa",
        "a" * 40,
    ):
        assert expected in version, expected


def test_relative_links_by_default_and_absolute_under_a_base_url() -> None:
    plain = parse(site()["churn-2/1.1.0/index.html"])
    hrefs = [a.get("href") for a in plain.all("a")]
    # Every link goes through the site's root, so it resolves wherever the folder is served.
    assert {
        "../../index.html",
        "../../churn-2/index.html",
        "../../churn-2/1.0.0/index.html",
    } <= set(hrefs)
    based = parse(site(base_url="/models/")["churn-2/1.1.0/index.html"])
    hrefs = [a.get("href") for a in based.all("a")]
    assert "/models/" in hrefs and "/models/churn-2/" in hrefs and "/models/churn-2/1.0.0/" in hrefs
    sheets = [link.get("href") for link in based.all("link") if link.get("rel") == "stylesheet"]
    assert sheets == ["/models/" + CSS_PATH]


@pytest.mark.parametrize(
    "bad", ["https://evil.example/", "//evil.example/", "/a/../b/", "a/b", "/a b/", "/a?x/"]
)
def test_base_url_must_be_a_plain_path(bad: str) -> None:
    with pytest.raises(InputError):
        check_base_url(bad)
    assert check_base_url("/repo") == "/repo/" and check_base_url("/") == "/"


def test_the_same_state_gives_the_same_bytes_and_a_second_run_writes_nothing(
    tmp_path: Path,
) -> None:
    first, second = site(), site()
    assert first == second
    done = write_files(tmp_path / "out", first)
    assert sorted(done.written) == sorted(first) and done.unchanged == ()
    stamps = {p: (tmp_path / "out" / p).stat().st_mtime_ns for p in first}
    again = write_files(tmp_path / "out", second)
    assert again.written == () and sorted(again.unchanged) == sorted(first)
    assert {p: (tmp_path / "out" / p).stat().st_mtime_ns for p in first} == stamps
    changed = dict(second, **{"index.html": b"<!DOCTYPE html>changed"})
    assert write_files(tmp_path / "out", changed).written == ("index.html",)


def test_a_page_no_longer_in_the_site_is_removed_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = {
        "index.html": b"i",
        "m/index.html": b"m",
        "m/1.0.0/index.html": b"v1",
        "m/1.1.0/index.html": b"v2",
        "old/index.html": b"o",
    }
    write_files(out, first)
    (out / "CNAME").write_text("models.example.org\n")  # the user's own files
    (out / "old" / "notes.html").write_text("mine")
    pruned = {k: v for k, v in first.items() if k not in ("m/1.0.0/index.html", "old/index.html")}
    done = write_files(out, pruned)
    assert done.removed == ("m/1.0.0/index.html", "old/index.html")
    assert done.written == () and sorted(done.unchanged) == sorted(pruned)
    assert not (out / "m" / "1.0.0").exists()  # its folder went with it, being empty
    assert (out / "CNAME").read_text() == "models.example.org\n"
    assert (out / "old" / "notes.html").read_text() == "mine"  # and kept its folder
    assert write_files(out, pruned).removed == ()
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted([*pruned, "CNAME", "old/notes.html", RECORD])


def test_a_stale_name_for_a_page_still_kept_removes_nothing(tmp_path: Path) -> None:
    # What a case-insensitive file system does when a slug changes only in case (Foo/ → foo/):
    # the old name and the new one are the same file. A hard link of an unchanged page makes
    # the same here.
    out = tmp_path / "out"
    write_files(out, {"Foo/index.html": b"page"})
    (out / "foo").mkdir()
    os.link(out / "Foo" / "index.html", out / "foo" / "index.html")
    done = write_files(out, {"foo/index.html": b"page"})
    assert done.unchanged == ("foo/index.html",) and done.removed == ()
    assert (out / "Foo" / "index.html").read_bytes() == b"page"  # the same file, still there


def test_a_forged_record_cannot_remove_anything_outside_the_output(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.html").write_text("keep")
    write_files(out, {"index.html": b"i"})
    os.symlink(outside, out / "link")
    record = {"files": ["../elsewhere/precious.html", "link/precious.html", "/etc/hostname"]}
    (out / RECORD).write_text(json.dumps(record))
    assert write_files(out, {"index.html": b"i"}).removed == ()
    assert (outside / "precious.html").read_text() == "keep"
    (out / RECORD).write_text("not json")  # a broken record lists nothing: nothing goes
    assert write_files(out, {"index.html": b"i"}).removed == ()


def test_nothing_is_written_outside_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for bad in ("../escape.html", "/etc/x.html", "a/../../x.html", ".hidden/x", "a//b"):
        with pytest.raises(InputError):
            write_files(out, {bad: b"x"})
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, out / "churn")
    with pytest.raises(InputError, match="outside"):
        write_files(out, {"churn/index.html": b"x"})
    with pytest.raises(InputError, match="outside"):
        write_files(out, {"churn/1.0.0/index.html": b"x"})  # not even the folder is made
    assert not list(outside.iterdir()) and not (tmp_path / "escape.html").exists()


def test_generation_time_only_when_given() -> None:
    plain = render_site(site_view("R", None, [snapshot()]))["index.html"].decode()
    stamped = render_site(site_view("R", "2026-01-01T00:00:00Z", [snapshot()]))["index.html"]
    assert "Generated by ci-modelver from the registry." in plain
    assert "on 2026-01-01T00:00:00Z" in stamped.decode()


def test_the_version_page_shows_the_changes_since_the_previous_version() -> None:
    files = site()
    first = "".join(parse(files["churn-2/1.0.0/index.html"]).text)
    assert "This is the first version." in first
    page = " ".join(" ".join(parse(files["churn/1.1.0/index.html"]).text).split())
    assert "Changes since the previous version" in page and "Compared with 1.0.0" in page
    assert SCRIPT in page  # the removed hostile hyperparameter and metric, as text
    assert "+0.02" in page  # validation/accuracy 0.8 → 0.82


def test_the_text_report_escapes_names_from_the_store(tmp_path: Path) -> None:
    from ci_modelver.commands.site import ModelPages, SiteResult
    from ci_modelver.edges.terminal import render

    result = SiteResult(
        tmp_path,
        (ModelPages("oci:store", "evil\x1b]0;title\x07\nname", "evil/", 2, 3),),
        ("index.html",),
        ("models.json",),
        ("gone/1.0.0/index.html",),
        4,
        1,
    )
    text = render(result, "text", in_actions=False).text("out")
    assert "\x1b" not in text and "\\x1b" in text and "evil/, 2 version(s), 3 page(s)" in text
    assert (
        "1 file(s) written, 1 unchanged, 1 removed; manifests: 4 fetched, 1 from the cache" in text
    )
    assert "  removed gone/1.0.0/index.html" in text
    doc = json.loads(render(result, "json", in_actions=False).text("out"))
    assert doc["manifests"] == {"fetched": 4, "fromCache": 1} and doc["written"] == ["index.html"]
    assert doc["removed"] == ["gone/1.0.0/index.html"]

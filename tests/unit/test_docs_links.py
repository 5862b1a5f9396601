"""Every relative link in README.md, SECURITY.md and docs/*.md resolves: the file (or folder)
exists inside the repository, and a #anchor names a heading of the target, slugged as GitHub does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FILES = [ROOT / "README.md", ROOT / "SECURITY.md", *DOCS]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The text outside fenced code blocks (fences are closed by a fence of the same kind)."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
            else:
                kept.append(line)
        elif match and set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
            fence = None
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """All heading anchors of a document, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in _prose(text).splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(text: str) -> Iterator[str]:
    """Link targets in the prose: inline links, images and reference definitions; code is skipped."""
    prose = _CODE_SPAN.sub("", _prose(text))
    for match in _LINK.finditer(prose):
        yield match.group(1)
    for match in _REFERENCE.finditer(prose):
        yield match.group(1)


def broken_links(source: Path, text: str) -> list[str]:
    """The relative links of `text` (read from `source`) that do not resolve, with the reason."""
    problems: list[str] = []
    for target in links(text):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # an absolute URL: not checked here
        path_part, _, anchor = target.partition("#")
        if not path_part:  # a heading of this document
            if unquote(anchor).lower() not in anchors(text):
                problems.append(f"{target}: no such heading in {source.name}")
            continue
        path = (source.parent / unquote(path_part)).resolve()
        if not path.is_relative_to(ROOT):
            problems.append(f"{target}: leaves the repository")
        elif not path.exists():
            problems.append(f"{target}: {path.relative_to(ROOT)} does not exist")
        elif anchor:
            if path.is_dir() or path.suffix != ".md":
                problems.append(f"{target}: #{anchor} on a file that is not Markdown")
            elif unquote(anchor).lower() not in anchors(path.read_text("utf-8")):
                problems.append(f"{target}: no heading '#{anchor}' in {path.relative_to(ROOT)}")
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    text = path.read_text("utf-8")
    assert list(links(text)), f"{path} has no links at all"
    assert broken_links(path, text) == []


def test_readme_links_every_doc() -> None:
    assert DOCS, "docs/ has no Markdown files"
    readme = ROOT / "README.md"
    linked = {
        (readme.parent / unquote(t.partition("#")[0])).resolve()
        for t in links(readme.read_text("utf-8"))
        if not _SCHEME.match(t)
    }
    assert [p.name for p in DOCS if p not in linked] == []


def test_slugs_follow_github() -> None:
    assert slug("The version manifest: `modelver.yaml`") == "the-version-manifest-modelveryaml"
    assert slug("Why the examples avoid `pull_request_target`") == (
        "why-the-examples-avoid-pull_request_target"
    )
    assert slug("Later evaluations (`attach`)") == "later-evaluations-attach"
    assert slug("❌ churn 1.1.0 vs production (1.0.0): 1 gate(s) failed") == (
        "-churn-110-vs-production-100-1-gates-failed"
    )
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1", "a-2"}


def test_the_checker_finds_broken_links() -> None:
    doc = ROOT / "docs" / "example.md"  # never written: only its folder matters
    text = (
        "[ok](cli.md#exit-codes) [file](nope.md) [anchor](cli.md#nope) [self](#here) [x](#gone)\n"
        "`[in code](nope.md)`\n\n```\n[in a block](nope.md)\n```\n"
        "[out](../../outside.md) [web](https://example.com/x.md)\n\n## Here\n"
    )
    problems = broken_links(doc, text)
    assert [p.split(":")[0] for p in problems] == [
        "nope.md",
        "cli.md#nope",
        "#gone",
        "../../outside.md",
    ]

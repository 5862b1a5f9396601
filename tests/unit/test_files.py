"""YAML parsing with positions: duplicate keys, non-JSON values, aliases, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_modelver.adapters.files import check_file, parse_document, read_text
from ci_modelver.core.source import Position
from ci_modelver.errors import InputError


def test_positions_of_keys_and_values() -> None:
    doc = parse_document("name: a\nfiles:\n  - path: w.bin\n    type: weight\n", "m.yaml")
    assert doc.problems == ()
    assert doc.keys[("files",)] == Position(2, 1)
    assert doc.values[("files", 0, "path")] == Position(3, 11)
    assert doc.position(("files", 0, "missing")) == Position(3, 5)


def test_duplicate_keys_are_reported_with_first_line() -> None:
    doc = parse_document("a: 1\nb: 2\na: 3\n", "m.yaml")
    assert doc.data == {"a": 1, "b": 2}
    [problem] = doc.problems
    assert (problem.line, problem.column) == (3, 1)
    assert "duplicate key 'a' (first at line 1)" in problem.message


def test_nested_duplicate_keys() -> None:
    doc = parse_document("x:\n  y: 1\n  y: 2\n", "m.yaml")
    assert [p.line for p in doc.problems] == [3]
    assert doc.problems[0].path == "$.x.y"


def test_non_json_values_and_keys_are_findings() -> None:
    doc = parse_document("when: 2024-01-01\n1: x\non: true\n", "m.yaml")
    messages = [p.message for p in doc.problems]
    assert any("timestamp" in m and "quote it" in m for m in messages)
    assert any("key '1' is read as an int" in m for m in messages)
    assert any("key 'on' is read as a bool" in m for m in messages)
    assert doc.data["when"] == "2024-01-01"


def test_merge_keys_resolve() -> None:
    doc = parse_document("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "m.yaml")
    assert doc.problems == ()
    assert doc.data["other"] == {"x": 1, "y": 2}


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    doc = parse_document("\n".join(lines) + "\n", "bomb.yaml")
    assert doc.data is None
    assert "too large once aliases expand" in doc.problems[0].message


def test_deep_nesting_is_bounded() -> None:
    doc = parse_document("a: " + "[" * 200 + "]" * 200 + "\n", "deep.yaml")
    assert doc.data is None
    assert "nested too deeply" in doc.problems[0].message


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("", "file is empty", 1),
        ("# only a comment\n", "file is empty", 1),
        ("a: [1\n", "not valid YAML", 2),
        ("a: 1\n---\nb: 2\n", "several YAML documents", 2),
        ("a:\n\tb: 1\n", "not valid YAML", 2),
    ],
)
def test_unparseable_documents(text: str, fragment: str, line: int) -> None:
    doc = parse_document(text, "m.yaml")
    assert doc.data is None
    [problem] = doc.problems
    assert fragment in problem.message
    assert problem.line == line


def test_read_text_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_text(tmp_path / "nope.yaml", "nope.yaml")
    with pytest.raises(InputError, match="is a directory"):
        read_text(tmp_path, "dir")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    with pytest.raises(InputError, match=r"not UTF-8 text .*0xff at offset 6"):
        read_text(bad, "bad.yaml")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_text(bom, "bom.yaml") == "a: 1\n"


def test_check_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    (tmp_path / "outside.bin").write_bytes(b"x")
    (tmp_path / "m" / "link.bin").symlink_to(tmp_path / "outside.bin")
    (tmp_path / "m" / "inner.bin").symlink_to("w.bin")
    base = tmp_path / "m"
    assert check_file(base, "w.bin", must_stay_inside=True).problem is None
    assert check_file(base, "inner.bin", must_stay_inside=True).problem is None
    assert check_file(base, "link.bin", must_stay_inside=True).problem is not None
    assert check_file(base, "link.bin", must_stay_inside=False).problem is None
    assert check_file(base, "nope", must_stay_inside=True).problem is not None
    assert check_file(tmp_path, "m", must_stay_inside=True).problem is not None

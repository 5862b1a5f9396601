"""The bundled JSON Schemas: valid draft 2020-12, documented, shipped inside the package."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ci_modelver.adapters.files import bundled_schema, load_document
from ci_modelver.core.source import SourceDoc
from ci_modelver.core.text import one_line
from ci_modelver.core.validate import (
    CONTROL_CHARACTER,
    control_character_problem,
    license_problem,
    relative_path_problem,
    schema_findings,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["modelver", "metrics"]


def _properties(node: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, child in node.get("properties", {}).items():
            yield f"{where}.{key}", child
        for key, child in node.items():
            yield from _properties(child, f"{where}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _properties(child, f"{where}[{i}]")


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12_with_id(name: str) -> None:
    schema = bundled_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]


@pytest.mark.parametrize("name", NAMES)
def test_packaged_schema_equals_the_source_file(name: str) -> None:
    source = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text("utf-8"))
    assert bundled_schema(name) == source


def test_every_property_has_title_and_description() -> None:
    props = list(_properties(bundled_schema("modelver")))
    assert len(props) > 25
    missing = [where for where, p in props if not p.get("title") or not p.get("description")]
    assert missing == []


def test_example_manifest_and_metrics_match_the_schemas() -> None:
    example = ROOT / "examples" / "churn"
    doc = load_document(example / "modelver.yaml", "modelver.yaml")
    jsonschema.Draft202012Validator(bundled_schema("modelver")).validate(doc.data)
    metrics = json.loads((example / "metrics.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(bundled_schema("metrics")).validate(metrics)
    assert set(metrics) == {"validation", "test-shifted"}


# ---------------------------------------------------------------------------------------------
# Names, paths and other identifiers must be printable ($defs/printable)

PRINTABLE_REF = "#/$defs/printable"
# Free text: written as given and escaped wherever it is shown, never refused.
FREE_TEXT = {"$.description", "$/properties/files/items.description"}


def _printable_pattern(name: str) -> re.Pattern[str]:
    return re.compile(bundled_schema(name)["$defs"]["printable"]["pattern"])


def test_both_schemas_share_one_printable_rule() -> None:
    assert bundled_schema("modelver")["$defs"] == bundled_schema("metrics")["$defs"]


def test_printable_rule_refuses_exactly_the_control_characters() -> None:
    pattern = _printable_pattern("modelver")
    refused = [chr(c) for c in range(0x3000) if not pattern.search(f"a{chr(c)}b")]
    expected = [chr(c) for c in range(0x3000) if CONTROL_CHARACTER.fullmatch(chr(c))]
    assert refused == expected
    assert len(expected) == 32 + 1 + 32 + 2
    # ... wherever the character is, including the trailing newline a '$' anchor lets through.
    for text in ["\nabc", "abc\n", "a\nb", "\u2028", "x" * 200 + "\x85"]:
        assert not pattern.search(text)
    for text in ["", "validation/auc", "précision", "🚀", "a b", "\ufeff", "\u00a0", "\U0001d518"]:
        assert pattern.search(text)


def test_printable_rule_matches_what_output_escapes() -> None:
    """Validation refuses the characters that one_line escapes for one-line output."""
    for code in range(0x3000):
        char = chr(code)
        assert bool(CONTROL_CHARACTER.fullmatch(char)) == (one_line(char) != char), hex(code)


def _strings(node: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    for prop_where, prop in _properties(node, where):
        branches = prop.get("anyOf", [prop])
        for branch in branches:
            if branch.get("type") == "string":
                yield prop_where, branch


def test_every_identifier_string_is_printable() -> None:
    schema = bundled_schema("modelver")
    strings = list(_strings(schema))
    assert len(strings) > 15
    # Enums are a closed set of words already.
    free = [w for w, node in strings if node.get("$ref") != PRINTABLE_REF and "enum" not in node]
    assert sorted(free) == sorted(FREE_TEXT)
    # Gate keys, evaluation set and metric names, in the manifest and in metrics files.
    names = [
        schema["properties"]["gates"]["propertyNames"],
        schema["properties"]["metrics"]["anyOf"][1]["propertyNames"],
        schema["properties"]["metrics"]["anyOf"][1]["additionalProperties"]["propertyNames"],
        bundled_schema("metrics")["propertyNames"],
        bundled_schema("metrics")["additionalProperties"]["propertyNames"],
    ]
    assert all(node["$ref"] == PRINTABLE_REF for node in names)


def _patterns(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "pattern" in node:
            yield node
        for child in node.values():
            yield from _patterns(child)
    elif isinstance(node, list):
        for child in node:
            yield from _patterns(child)


@pytest.mark.parametrize("name", NAMES)
def test_every_pattern_sits_next_to_the_printable_rule(name: str) -> None:
    """Python's '$' also matches before a trailing newline, so no pattern may stand alone."""
    schema = bundled_schema(name)
    nodes = [n for n in _patterns(schema) if n is not schema["$defs"]["printable"]]
    assert nodes
    assert all(node.get("$ref") == PRINTABLE_REF for node in nodes)


FREE_TEXT_MANIFEST = {
    "name": "churn",
    "version": "1.0.0",
    "description": "line one\nline two\r\n\u2028::warning::not a command\x1b[1m",
    "files": [{"path": "weights.bin", "type": "weight", "description": "first\nsecond"}],
    "framework": {"name": "pytorch", "extra": {"notes": "a\nb", "keys\nmay\nwrap": ["c\rd"]}},
    "hyperparameters": {"prompt": "Q:\n{question}\nA:", "nested": {"template": "\t\u2029"}},
}


def test_free_text_with_newlines_is_accepted() -> None:
    doc = SourceDoc("modelver.yaml", FREE_TEXT_MANIFEST)
    assert schema_findings(doc, bundled_schema("modelver")) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "churn\n"), ("version", "1.0.0\n"), ("baseline", "production\n")],
)
def test_a_trailing_newline_is_one_finding(field: str, value: str) -> None:
    """The value's own pattern lets it through; the printable rule does not; one finding."""
    doc = SourceDoc("modelver.yaml", {**FREE_TEXT_MANIFEST, field: value})
    [finding] = schema_findings(doc, bundled_schema("modelver"))
    assert finding.path == f"$.{field}"
    assert "contains a control character (U+000A, line feed)" in finding.message
    assert "\n" not in finding.message


def test_a_name_breaking_two_patterns_is_one_finding() -> None:
    doc = SourceDoc("modelver.yaml", {**FREE_TEXT_MANIFEST, "name": "Churn\x1b", "metrics": {}})
    findings = schema_findings(doc, bundled_schema("modelver"))
    assert [f.message for f in findings if f.path == "$.name"] == [
        "model name 'Churn\\x1b' contains a control character (U+001B, escape); "
        "names must be printable"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x00", "(U+0000, NUL)"),
        ("\t", "(U+0009, tab)"),
        ("\x01", "(U+0001)"),
        ("\x7f", "(U+007F, DEL)"),
        ("\x85", "(U+0085, next line)"),
        ("\x9f", "(U+009F)"),
        ("\u2028", "(U+2028, line separator)"),
        ("\u2029", "(U+2029, paragraph separator)"),
    ],
)
def test_control_character_problem_names_the_character(text: str, expected: str) -> None:
    found = CONTROL_CHARACTER.search(f"ab{text}c")
    assert found
    assert control_character_problem(found, "paths") == (
        f"contains a control character {expected}; paths must be printable"
    )


@pytest.mark.parametrize("path", ["a\nb", "w\x7f.bin", "w\x85.bin", "w\u2028.bin", "/abs\x00"])
def test_path_rules_refuse_the_same_characters(path: str) -> None:
    problem = relative_path_problem(path)
    assert problem and problem.startswith("contains a control character (U+")


def test_spdx_check_leaves_control_characters_to_the_schema() -> None:
    assert license_problem("MIT\x1bOR Apache-2.0") is None
    assert license_problem("MIT\x01") is None
    assert license_problem("MIT Apache-2.0") is not None

"""The bundled JSON Schemas: valid draft 2020-12, documented, shipped inside the package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ci_modelver.adapters.files import bundled_schema, load_document

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

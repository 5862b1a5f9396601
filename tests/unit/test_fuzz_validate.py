"""Property tests: whatever the manifest holds, `ci-modelver validate` exits 0 or 2, cleanly."""

from __future__ import annotations

import copy
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_modelver.cli import main

VALID = Path(__file__).resolve().parent.parent / "fixtures" / "valid"

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

Path_ = tuple["str | int", ...]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the valid fixtures, so fuzzed manifests can reference real companion files."""
    root = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(VALID, root)
    return root


# ---------------------------------------------------------------------------------------------
# Running the CLI and checking its contract


def check_validate(manifest: Path) -> None:
    """Exit 0 or 2; no traceback; output consistent with the exit code in every format."""
    for fmt in ("text", "json"):
        out, err = io.StringIO(), io.StringIO()
        code = main(["validate", str(manifest), "--format", fmt], env={}, out=out, err=err)
        stdout, stderr = out.getvalue(), err.getvalue()
        assert code in (0, 2), f"exit {code}: {stderr}"
        assert "Traceback" not in stdout
        assert "Traceback" not in stderr
        assert "internal error" not in stderr
        if code == 0:
            if fmt == "json":
                assert json.loads(stdout)["valid"] is True
            else:
                assert f"{manifest}: valid — " in stdout
            continue
        if not stdout:  # the file itself cannot be used
            lines = stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        elif fmt == "json":
            doc = json.loads(stdout)
            assert doc["valid"] is False
            assert doc["findings"]
            assert all(f["line"] >= 1 and f["column"] >= 1 for f in doc["findings"])
        else:
            assert stdout.startswith(f"{manifest}:")
            assert stderr.endswith("problem(s); fix them and rerun\n")


def scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from scalars(v)
    elif isinstance(value, list):
        for v in value:
            yield from scalars(v)
    else:
        yield value


# ---------------------------------------------------------------------------------------------
# (a) YAML documents

MANIFEST_KEYS = [
    "name",
    "version",
    "description",
    "license",
    "files",
    "framework",
    "code",
    "data",
    "hyperparameters",
    "metrics",
    "gates",
    "baseline",
    "path",
    "type",
    "direction",
    "tolerance",
    "min",
    "max",
    "digest",
    "uri",
    "extra",
    "commit",
    "repository",
    "validation",
    "auc",
    "validation/auc",
]

ODD_STRINGS = [
    "",
    " ",
    "~",
    "null",
    "yes",
    "off",
    "1.0",
    "1e3",
    ".nan",
    "-.inf",
    "0x1F",
    "0o17",
    "1_000",
    "12:30:00",
    "2024-05-01",
    "<<",
    "=",
    "*a",
    "&a",
    "!tag",
    "%YAML",
    "@",
    "`",
    "'",
    '"',
    "- ",
    ": ",
    "#",
    "---",
    "...",
    "{",
    "]",
    "a/b",
    "/",
    "//",
    "./",
    "../x",
    "/etc/hostname",
    "C:\\x",
    "a\\b",
    "\t",
    "\n",
    "\x00",
    "\x7f",
    "\u2028",
    "\ufeff",
    "é",
    "\U0001d518",  # outside the BMP
    "2%",
    "-2%",
    "1.5%",
    "higher",
    "lower",
    "weight",
    "doc",
    "weights.bin",
    "README.md",
    "data/train.csv",
    "metrics",
    "metrics/eval.yaml",
    "metrics/eval.json",
    "production",
    "1.0.0",
    "1.0.0+build",
    "v1.0.0",
    "sha256:" + "0" * 64,
    "sha256:" + "A" * 64,
    "MIT OR Apache-2.0",
    "(MIT",
    "x" * 130,
]

text_values = st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=30))
scalar_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    text_values,
)
keys = st.one_of(st.sampled_from(MANIFEST_KEYS), text_values)
values: st.SearchStrategy[Any] = st.recursive(
    scalar_values,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)
manifest_like = st.dictionaries(st.sampled_from(MANIFEST_KEYS), values, min_size=1, max_size=8)


@st.composite
def dumped(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> tuple[Any, str]:
    doc = draw(documents)
    style = draw(st.sampled_from(["block", "flow", "mixed", "json"]))
    if style == "json":
        return doc, json.dumps(doc, ensure_ascii=draw(st.booleans()))
    text = yaml.safe_dump(
        doc,
        default_flow_style={"block": False, "flow": True, "mixed": None}[style],
        allow_unicode=draw(st.booleans()),
        sort_keys=draw(st.booleans()),
        width=draw(st.sampled_from([20, 80, 4096])),
    )
    return doc, text


def write(folder: Path, text: str | bytes) -> Path:
    manifest = folder / "fuzz-modelver.yaml"
    if isinstance(text, bytes):
        manifest.write_bytes(text)
    else:
        manifest.write_text(text, encoding="utf-8")
    return manifest


@FUZZ
@given(case=dumped(st.one_of(values, manifest_like)))
def test_random_yaml_documents(workspace: Path, case: tuple[Any, str]) -> None:
    _doc, text = case
    check_validate(write(workspace, text))


# Mutations of the valid fixtures: delete, replace, rename, duplicate or wrap one node at a time.

BASES = [yaml.safe_load(p.read_text(encoding="utf-8-sig")) for p in sorted(VALID.glob("*.yaml"))]


def node_paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict):
        items: Iterator[tuple[str | int, Any]] = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from node_paths(child, (*prefix, key))


def get(value: Any, path: Path_) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated_manifests(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(node_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "replace", "replace", "rename", "duplicate", "wrap"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(values)
        elif op == "rename" and isinstance(parent, dict):
            new_key = draw(keys)
            parent[new_key] = parent.pop(key)
        elif op == "duplicate" and isinstance(parent, list) and isinstance(key, int):
            parent.append(parent[key])  # the same object twice: dumped as an anchor and alias
        elif op == "duplicate" and isinstance(parent, dict):
            parent[draw(keys)] = parent[key]
        elif op == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    return doc


@FUZZ
@given(case=dumped(mutated_manifests()))
def test_mutated_valid_manifests(workspace: Path, case: tuple[Any, str]) -> None:
    _doc, text = case
    check_validate(write(workspace, text))


# ---------------------------------------------------------------------------------------------
# (b) Bytes

YAML_TOKENS = [
    b"\n",
    b"\n  ",
    b"\n    ",
    b" ",
    b"\t",
    b"- ",
    b": ",
    b"? ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"<<: ",
    b"!!str ",
    b"!!binary ",
    b"!!python/object:os.system ",
    b"!x ",
    b"%YAML 1.1\n",
    b"---\n",
    b"...\n",
    b"# c\n",
    b"'",
    b'"',
    b"\\",
    b"|\n",
    b">-\n",
    b"name",
    b"version",
    b"files",
    b"path",
    b"type",
    b"weight",
    b"metrics",
    b"gates",
    b"validation",
    b"auc",
    b"direction",
    b"higher",
    b"tolerance",
    b"1.0.0",
    b"0.5",
    b".nan",
    b"-.inf",
    b"null",
    b"~",
    b"2024-05-01",
    b"weights.bin",
    b"metrics/eval.json",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\x01",
    b"\xe2\x80\xa8",
]

VALID_BYTES = [p.read_bytes() for p in sorted(VALID.glob("*.yaml"))]


@st.composite
def edited_valid_bytes(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(VALID_BYTES)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        op = draw(st.sampled_from(["insert", "delete", "flip", "truncate"]))
        if op == "insert":
            raw[at:at] = draw(st.sampled_from(YAML_TOKENS) | st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del raw[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif op == "flip" and at < len(raw):
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "truncate":
            del raw[at:]
    return bytes(raw)


random_bytes = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map(b"".join),
    edited_valid_bytes(),
)


@FUZZ
@given(raw=random_bytes)
def test_random_bytes(workspace: Path, raw: bytes) -> None:
    check_validate(write(workspace, raw))

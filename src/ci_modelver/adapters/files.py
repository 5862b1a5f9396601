"""Reading manifests and metrics files: YAML with positions, duplicate keys, bundled schemas."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ci_modelver.core.source import Finding, JsonPath, Position, SourceDoc, format_path
from ci_modelver.errors import DocumentTooLarge, InputError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# Aliases let a tiny document expand into a huge one ("billion laughs"); cap what we walk.
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 64

_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_JSON_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


def read_text(path: Path, display: str) -> str:
    """Read a UTF-8 text file, or raise one clear InputError saying why it cannot be used."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{display}: file not found; check the path") from None
    except OSError as exc:
        raise InputError(f"{display}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{display}: is a directory; give the path of the YAML file") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{display}: not a regular file")
    if st.st_size > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"{display}: {st.st_size} bytes is too large (limit {MAX_DOCUMENT_BYTES}); "
            "is this the right file?"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{display}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{display}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None


def load_document(path: Path, display: str) -> SourceDoc:
    """Read and parse one YAML (or JSON) document, keeping line numbers for every value."""
    return parse_document(read_text(path, display), display)


def parse_document(text: str, display: str) -> SourceDoc:
    """Parse YAML text into a SourceDoc; syntax problems become findings, never exceptions."""
    if not text.strip():
        return SourceDoc(display, None, problems=(_at(display, 1, 1, "$", "file is empty"),))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        line, col = _too_deep_at(text)
        return SourceDoc(
            display,
            None,
            problems=(_at(display, line, col, "$", "document is nested too deeply; simplify it"),),
        )
    except yaml.reader.ReaderError as exc:
        line, col = _offset_position(text, exc.position)
        char = exc.character
        code = ord(char) if isinstance(char, str) else int(char)
        message = f"not valid YAML: character 0x{code:02x} is not allowed in YAML; remove it"
        return SourceDoc(display, None, problems=(_at(display, line, col, "$", message),))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "syntax error"
        message = f"not valid YAML: {what}"
        if "expected a single document" in str(exc.context):
            message = "holds several YAML documents ('---'); keep only one"
        return SourceDoc(display, None, problems=(_at(display, line, col, "$", message),))
    except yaml.YAMLError as exc:
        return SourceDoc(
            display, None, problems=(_at(display, 1, 1, "$", f"not valid YAML: {exc}"),)
        )
    if node is None:
        return SourceDoc(display, None, problems=(_at(display, 1, 1, "$", "file is empty"),))
    builder = _Builder(display)
    try:
        data = builder.build(node, (), 0)
    except DocumentTooLarge as exc:
        return SourceDoc(
            display, None, problems=(_at(display, exc.line, exc.column, "$", str(exc)),)
        )
    return SourceDoc(display, data, builder.keys, builder.values, tuple(builder.problems))


def _too_deep_at(text: str) -> tuple[int, int]:
    """Where nesting first exceeds MAX_DEPTH; the event parser, unlike the composer, is flat."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            mark = event.start_mark
            if depth > MAX_DEPTH and mark is not None:
                return mark.line + 1, mark.column + 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return 1, 1


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _at(file: str, line: int, col: int, path: str, message: str) -> Finding:
    return Finding(file, line, col, path, message)


class _Builder:
    """Turns a composed YAML node graph into JSON-compatible data, recording positions."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.keys: dict[JsonPath, Position] = {}
        self.values: dict[JsonPath, Position] = {}
        self.problems: list[Finding] = []
        self.count = 0
        self._constructor = yaml.SafeLoader("")

    def _problem(self, node: yaml.Node, path: JsonPath, message: str) -> None:
        pos = _pos(node)
        self.problems.append(
            Finding(self.display, pos.line, pos.column, format_path(path), message)
        )

    def build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_EXPANDED_NODES or depth > MAX_DEPTH:
            pos = _pos(node)
            limit = "nested too deeply" if depth > MAX_DEPTH else "too large once aliases expand"
            raise DocumentTooLarge(f"document is {limit}; simplify it", pos.line, pos.column)
        self.values.setdefault(path, _pos(node))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            kind = node.tag.rsplit(":", 1)[-1]
            self._problem(node, path, f"YAML type '{kind}' is not a JSON value; remove the tag")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        if node.tag not in _JSON_TAGS:
            kind = node.tag.rsplit(":", 1)[-1]
            self._problem(
                node, path, f"YAML type '{kind}' is not a JSON value; quote it to make it a string"
            )
            return node.value
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self._problem(node, path, f"cannot read value: {getattr(exc, 'problem', exc)}")
            return node.value
        except ValueError:  # e.g. an integer longer than Python's 4300-digit conversion limit
            self._problem(node, path, "number is too long to read; shorten it or quote it")
            return node.value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self._constructor.flatten_mapping(node)  # resolve '<<' merge keys like SafeLoader does
        except yaml.YAMLError as exc:
            self._problem(node, path, f"bad merge key: {getattr(exc, 'problem', exc)}")
        out: dict[str, Any] = {}
        first_seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            kpos = _pos(key_node)
            if id(key_node) in explicit:
                if key in first_seen:
                    self._problem(
                        key_node,
                        child,
                        f"duplicate key '{key}' (first at line {first_seen[key].line}); "
                        "YAML would keep only the last one — remove one",
                    )
                    continue
                first_seen[key] = kpos
            # Merged ('<<') entries come first; later merged or explicit keys override them.
            self.keys[child] = kpos
            self.values.pop(child, None)
            out[key] = self.build(value_node, child, depth + 1)
        return out

    def _key(self, key_node: yaml.Node, path: JsonPath) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self._problem(key_node, path, "a mapping key must be a plain string")
            return None
        if key_node.tag != "tag:yaml.org,2002:str":
            self._problem(
                key_node,
                (*path, key_node.value),
                f"key '{key_node.value}' is read as {_article(key_node.tag.rsplit(':', 1)[-1])}, "
                "not a string; quote it",
            )
        return str(key_node.value)


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class PathProblem(Enum):
    """What is wrong with a path that should name a regular file."""

    MISSING = "does not exist"
    NOT_REGULAR = "is not a regular file"
    ESCAPES = "resolves outside the manifest's folder (symlink)"


@dataclass(frozen=True)
class FileCheck:
    """The result of checking one file referenced by a manifest."""

    problem: PathProblem | None


def check_file(base: Path, relative: str, *, must_stay_inside: bool) -> FileCheck:
    """Check that ``base/relative`` is an existing regular file (inside ``base`` if asked)."""
    target = base / relative
    try:
        st = target.stat()
    except (OSError, ValueError):  # ValueError: an embedded NUL byte
        return FileCheck(PathProblem.MISSING)
    if must_stay_inside:
        real_base = os.path.realpath(base)
        real = os.path.realpath(target)
        if os.path.commonpath([real_base, real]) != real_base:
            return FileCheck(PathProblem.ESCAPES)
    if not stat.S_ISREG(st.st_mode):
        return FileCheck(PathProblem.NOT_REGULAR)
    return FileCheck(None)


@cache
def bundled_schema(name: str) -> dict[str, Any]:
    """Load one of the JSON Schemas shipped inside the package (``modelver``, ``metrics``)."""
    filename = f"{name}.schema.json"
    packaged = resources.files("ci_modelver").joinpath("schemas").joinpath(filename)
    if packaged.is_file():
        text = packaged.read_text(encoding="utf-8")
    else:
        # Running from a source checkout (PYTHONPATH=src): the wheel maps schemas/ into the package.
        text = (Path(__file__).resolve().parents[3] / "schemas" / filename).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def bundled_template(name: str) -> str:
    """A report template shipped inside the package (``compare.md.j2``, ``compare.txt.j2``)."""
    return (
        resources.files("ci_modelver")
        .joinpath("templates")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )

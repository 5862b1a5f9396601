"""Turn schema violations and semantic problems of a manifest into actionable findings."""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ci_modelver.core.source import Finding, JsonPath, SourceDoc
from ci_modelver.core.text import one_line

if TYPE_CHECKING:  # jsonschema is imported where a schema is applied: 30 ms of start-up
    from jsonschema.exceptions import ValidationError

_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "null",
}

_SEMVER_CORE = re.compile(r"^\d+\.\d+\.\d+")

# The characters the schemas' "printable" rule ($defs/printable) refuses in names, paths and other
# identifiers: C0, DEL, C1 and the Unicode line and paragraph separators.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_CONTROL_NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "line feed",
    0x0D: "carriage return",
    0x1B: "escape",
    0x7F: "DEL",
    0x85: "next line",
    0x2028: "line separator",
    0x2029: "paragraph separator",
}

# Identifier values: JSON path (list indexes and gate names as "*") → (what it is, plural).
_IDENTIFIERS: dict[tuple[str, ...], tuple[str, str]] = {
    ("name",): ("model name", "names"),
    ("version",): ("version", "versions"),
    ("license",): ("license", "license expressions"),
    ("baseline",): ("baseline", "baselines"),
    ("metrics",): ("metrics path", "paths"),
    ("framework", "name"): ("framework name", "names"),
    ("framework", "version"): ("framework version", "versions"),
    ("code", "repository"): ("code repository", "repository URLs"),
    ("code", "commit"): ("commit", "commits"),
    ("code", "path"): ("code path", "paths"),
    ("data", "*", "name"): ("dataset name", "names"),
    ("data", "*", "uri"): ("dataset URI", "URIs"),
    ("data", "*", "digest"): ("digest", "digests"),
    ("data", "*", "path"): ("dataset path", "paths"),
    ("gates", "*", "tolerance"): ("tolerance", "tolerances"),
}


def describe_value(value: Any) -> str:
    """A short phrase naming the JSON type of ``value`` (and the value when it is small)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string '{shown}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggest(word: str, choices: Iterable[str]) -> str:
    """' — did you mean 'x'?' when a close match exists, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{match[0]}'?" if match else ""


def schema_findings(doc: SourceDoc, schema: Mapping[str, Any]) -> list[Finding]:
    """Validate ``doc.data`` against ``schema``; one finding per distinct problem."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    out: list[Finding] = []
    for error in validator.iter_errors(doc.data):
        out.extend(_explain(doc, error))
    # A string can break several patterns at once (its own and the printable rule); say it once.
    return list(dict.fromkeys(out))


def _explain(doc: SourceDoc, error: ValidationError) -> Iterator[Finding]:
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    schema_path = list(error.relative_schema_path)
    if kind == "pattern" and isinstance(error.instance, str):
        # Whichever pattern failed, a control character is the problem to report: the value's own
        # pattern may be silent about it (Python's '$' matches before a trailing newline).
        found = CONTROL_CHARACTER.search(error.instance)
        if found:
            yield _control_character(doc, path, error.instance, found, schema_path)
            return
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        yield _property_name(doc, error, path)
    elif kind == "additionalProperties":
        yield from _unknown_keys(doc, error, path)
    elif kind == "required":
        yield from _missing_keys(doc, error, path)
    elif kind in ("anyOf", "oneOf"):
        yield from _alternatives(doc, error, path)
    else:
        yield doc.finding(path, _message(error, path))


def _unknown_keys(doc: SourceDoc, error: ValidationError, path: JsonPath) -> Iterator[Finding]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    allowed = sorted(schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in allowed:
            continue
        hint = suggest(key, allowed) or (f"; allowed: {', '.join(allowed)}" if allowed else "")
        yield doc.finding((*path, key), f"unknown key '{key}'{hint}", key=True)


def _missing_keys(doc: SourceDoc, error: ValidationError, path: JsonPath) -> Iterator[Finding]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    required = schema.get("required", [])
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in required:
        if key not in instance:
            yield doc.finding(path, f"missing required key '{key}'", key=True)


def _property_name(doc: SourceDoc, error: ValidationError, path: JsonPath) -> Finding:
    name = error.instance
    where = (*path, name) if isinstance(name, str) else path
    label = _name_label(path)
    if error.validator == "pattern":
        return doc.finding(
            where, f"invalid {label} '{name}': no '/' and no leading space", key=True
        )
    if error.validator == "minLength":
        return doc.finding(where, f"{label} must not be empty", key=True)
    shown = str(name)[:40]
    return doc.finding(where, f"{label} '{shown}...' is longer than allowed", key=True)


def _control_character(
    doc: SourceDoc, path: JsonPath, text: str, found: re.Match[str], schema_path: list[Any]
) -> Finding:
    """The finding for an identifier (a value, or a mapping key) holding a control character.

    The value is shown escaped (``\\n``), so the message itself stays one line however it is
    printed. File paths are the exception: they are worded exactly as the file check words them
    (``file path '…' `` + relative_path_problem), so that the two findings are one.
    """
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        problem = control_character_problem(found, "names")
        return doc.finding(
            (*path, text), f"{_name_label(path)} '{one_line(text)}' {problem}", key=True
        )
    shape = tuple("*" if isinstance(p, int) else str(p) for p in path)
    if len(shape) == 3 and shape[0] == "gates":
        shape = ("gates", "*", shape[2])
    if shape == ("files", "*", "path"):
        return doc.finding(path, f"file path '{text}' {relative_path_problem(text)}")
    label, plural = _IDENTIFIERS.get(shape, (f"'{_field_name(path)}'", "identifiers"))
    problem = control_character_problem(found, plural)
    return doc.finding(path, f"{label} '{one_line(text)}' {problem}")


def control_character_problem(found: re.Match[str], plural: str = "names") -> str:
    """'contains a control character (U+000A, line feed); names must be printable'.

    ``found`` is a match of CONTROL_CHARACTER. The character is named by its code point, which
    reads the same however the text around it is escaped for output.
    """
    code = ord(found.group())
    name = _CONTROL_NAMES.get(code)
    character = f"U+{code:04X}, {name}" if name else f"U+{code:04X}"
    return f"contains a control character ({character}); {plural} must be printable"


def _name_label(path: JsonPath) -> str:
    if path and path[-1] == "gates":
        return "gate name"
    if path in ((), ("metrics",)):
        return "evaluation set name"
    return "metric name"


def _alternatives(doc: SourceDoc, error: ValidationError, path: JsonPath) -> Iterator[Finding]:
    field = path[-1] if path else None
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "oneOf" and "uri" in schema.get("properties", {}):
        if not isinstance(instance, dict):
            return  # the 'type' error already says it must be a mapping
        if "digest" in instance and "path" in instance:
            yield doc.finding(path, "give either 'digest' or 'path' for a dataset, not both")
        else:
            yield doc.finding(
                path, "a dataset needs 'digest' (sha256:<hex>) or 'path' (a local file to hash)"
            )
        return
    # Pick the branch written for this value's type and explain its errors; the others are noise.
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.schema_path[0], []).append(sub)  # type: ignore[arg-type]
    for subs in branches.values():
        if not any(s.validator == "type" and not s.relative_path for s in subs):
            for sub in subs:
                yield from _explain(doc, sub)
            return
    if field == "metrics":
        expected = "a metrics file path or a mapping {evaluation set: {metric: number}}"
    elif field == "tolerance":
        expected = 'a number ≥ 0 or a percentage string like "2%"'
    elif field == "command":
        expected = "a command line (a string) or a list of its words"
    else:
        expected = "a different type"
    yield doc.finding(path, f"expected {expected}, got {describe_value(instance)}")


def _message(error: ValidationError, path: JsonPath) -> str:
    kind = error.validator
    value = error.instance
    schema: Mapping[str, Any] = error.schema  # type: ignore[assignment]
    field = _field_name(path)
    if kind == "type":
        wanted = schema["type"]
        names = " or ".join(
            _TYPE_NAMES.get(str(t), str(t))
            for t in (wanted if isinstance(wanted, list) else [wanted])
        )
        hint = ""
        if wanted == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f' — quote it: "{value}"'
        if not path:
            return f"the document must be {names}, got {describe_value(value)}"
        return f"'{field}' must be {names}, got {describe_value(value)}{hint}"
    if kind == "pattern":
        return _pattern_message(path, value)
    if kind == "enum":
        options = ", ".join(str(o) for o in schema["enum"])
        return f"'{value}' is not a valid {field}; use one of: {options}{suggest(str(value), map(str, schema['enum']))}"
    if kind in ("minItems", "minProperties"):
        return f"'{field}' must not be empty"
    if kind == "minLength":
        return f"'{field}' must not be empty"
    if kind == "maxLength":
        return f"'{field}' is longer than {schema['maxLength']} characters"
    if kind == "minimum":
        return f"'{field}' must be ≥ {schema['minimum']}, got {value}"
    return f"{error.message}"


def _field_name(path: JsonPath) -> str:
    if not path:
        return "document"
    if isinstance(path[-1], int):
        parent = str(path[-2]) if len(path) > 1 else ""
        return f"{parent}[{path[-1]}]"
    return str(path[-1])


def _pattern_message(path: JsonPath, value: Any) -> str:
    field = path[-1] if path else ""
    if path == ("name",):
        return (
            f"invalid model name '{value}': use lowercase letters a-z and digits, with single "
            "'.', '_' or '-' between them (it becomes part of an OCI repository path)"
        )
    if path == ("version",):
        return version_problem(str(value))
    if field == "digest":
        return f"invalid digest '{value}': expected sha256: followed by 64 lowercase hex digits"
    if field == "commit":
        return f"invalid commit '{value}': expected the full 40 (or 64) hex digit git hash"
    if field == "tolerance":
        return f"invalid tolerance '{value}': use a number ≥ 0 or a percentage like \"2%\""
    if field == "baseline":
        return (
            f"invalid baseline '{value}': use an alias (production), a version (1.2.0) "
            "or a digest (sha256:<64 hex>)"
        )
    return f"'{value}' has an invalid format for '{field}'"


def version_problem(version: str) -> str:
    """Explain why ``version`` is not an acceptable SemVer 2.0 version tag."""
    if "+" in version:
        return (
            f"version '{version}' has build metadata ('+…'): OCI tags cannot contain '+', "
            "so ci-modelver rejects it; drop it or move it into a prerelease (1.2.0-build.5)"
        )
    if version.startswith(("v", "V")) and _SEMVER_CORE.match(version[1:]):
        return f"version '{version}' must not start with 'v'; write '{version[1:]}'"
    return (
        f"version '{version}' is not SemVer 2.0: use MAJOR.MINOR.PATCH with an optional "
        "-prerelease, e.g. 1.4.0 or 2.0.0-rc.1 (no leading zeros)"
    )


def is_finite_number(value: Any) -> bool:
    """A JSON number that converts to a finite float (huge integers overflow)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def metric_value_findings(doc: SourceDoc, metrics: Any, base: JsonPath) -> list[Finding]:
    """Metric values must be finite numbers (YAML's .nan/.inf pass the JSON Schema)."""
    out: list[Finding] = []
    if not isinstance(metrics, dict):
        return out
    for set_name, values in metrics.items():
        if not isinstance(values, dict):
            continue
        for metric, value in values.items():
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and not is_finite_number(value)
            ):
                out.append(
                    doc.finding(
                        (*base, set_name, metric),
                        f"metric '{metric}' of '{set_name}' is {_short_number(value)}; metric values "
                        "must be finite numbers",
                    )
                )
    return out


def gate_findings(doc: SourceDoc, gates: Any, metrics: Any, metrics_where: str) -> list[Finding]:
    """Every gate must name a metric that exists; bounds must be consistent."""
    out: list[Finding] = []
    if not isinstance(gates, dict):
        return out
    sets: dict[str, dict[str, Any]] = (
        {k: v for k, v in metrics.items() if isinstance(v, dict)}
        if isinstance(metrics, dict)
        else {}
    )
    all_metrics = sorted({m for values in sets.values() for m in values})
    for key, gate in gates.items():
        path: JsonPath = ("gates", key)
        set_name, metric = split_gate_key(key, sets)
        if CONTROL_CHARACTER.search(key):
            pass  # the schema's printable rule reports it; naming no metric would say it twice
        elif set_name is not None:
            if set_name not in sets:
                hint = suggest(set_name, sets)
                out.append(
                    doc.finding(
                        path,
                        f"gate '{key}' names evaluation set '{set_name}', which is not in {metrics_where}{hint}",
                        key=True,
                    )
                )
            elif metric not in sets[set_name]:
                hint = suggest(metric, sets[set_name])
                out.append(
                    doc.finding(
                        path,
                        f"gate '{key}' names metric '{metric}', which set '{set_name}' in {metrics_where} does not have{hint}",
                        key=True,
                    )
                )
        elif metric not in all_metrics:
            hint = suggest(metric, all_metrics)
            out.append(
                doc.finding(
                    path,
                    f"gate '{key}' names metric '{metric}', which is not in {metrics_where}{hint}",
                    key=True,
                )
            )
        if isinstance(gate, dict):
            for field in ("tolerance", "min", "max"):
                value = gate.get(field)
                if (
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and not is_finite_number(value)
                ):
                    out.append(
                        doc.finding(
                            (*path, field),
                            f"gate '{key}': {field} must be a finite number, got {_short_number(value)}",
                        )
                    )
            low, high = gate.get("min"), gate.get("max")
            finite = is_finite_number(low) and is_finite_number(high)
            if (
                finite
                and isinstance(low, (int, float))
                and isinstance(high, (int, float))
                and low > high
            ):
                out.append(
                    doc.finding((*path, "min"), f"gate '{key}': min {low} is above max {high}")
                )
    return out


def _short_number(value: float) -> str:
    text = (
        str(value) if isinstance(value, float) else f"an integer of {len(str(abs(value)))} digits"
    )
    return text


def split_gate_key(key: str, sets: Mapping[str, Any]) -> tuple[str | None, str]:
    """``set/metric`` → (set, metric); a bare metric name → (None, metric).

    Set names cannot contain '/', so the first '/' separates them, unless the whole key is
    itself the name of a metric (``precision/macro``) and its prefix is not a set.
    """
    if "/" in key:
        prefix, rest = key.split("/", 1)
        if prefix in sets:
            return prefix, rest
        if any(isinstance(v, Mapping) and key in v for v in sets.values()):
            return None, key
        return prefix, rest
    return None, key


def relative_path_problem(path: str) -> str | None:
    """Why ``path`` is not a clean relative path inside the manifest's folder, or None."""
    control = CONTROL_CHARACTER.search(path)
    if control:
        return control_character_problem(control, "paths")
    if "\\" in path:
        return "use '/' as separator, not '\\'"
    if path.startswith("/"):
        return "must be relative to the manifest's folder, not absolute"
    if re.match(r"^[A-Za-z]:", path):
        return "must be relative to the manifest's folder, not a drive path"
    parts = path.split("/")
    if ".." in parts:
        return "must stay inside the manifest's folder ('..' is not allowed)"
    if not any(p not in ("", ".") for p in parts):
        return "does not name a file"
    return None


# A files[].path holding one of these is a pattern (the standard library's glob rules).
GLOB_CHARACTERS = frozenset("*?[")
# A whole path component "**" matches zero or more folders.
RECURSIVE = "**"


def is_pattern(path: str) -> bool:
    """Whether a ``files[].path`` is a glob pattern: it holds ``*``, ``?`` or ``[``."""
    return any(c in GLOB_CHARACTERS for c in path)


def name_matches(pattern: str, name: str) -> bool:
    """Whether one path component matches one pattern component.

    :func:`fnmatch.fnmatchcase` rules (``*``, ``?``, ``[seq]``, ``[!seq]``; case-sensitive on
    every system), and as in :mod:`glob` and shells a name starting with '.' matches only a
    pattern that starts with '.'.
    """
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def normalise_relative(path: str) -> str:
    """``./a//b`` → ``a/b``: the canonical form used to detect duplicates and as layer path."""
    return "/".join(p for p in path.split("/") if p not in ("", "."))


def path_key(path: str) -> str:
    """The name a case-insensitive, Unicode-normalising file system gives ``path``.

    Two paths with the same key are one file on macOS (APFS, HFS+) and Windows, so a version
    listing both cannot be unpacked there. The key is Unicode's canonical caseless match
    (NFD, case fold, NFD again) of the canonical relative path: ``Model.bin`` and ``model.bin``,
    and the NFC and NFD spellings of ``modèle.bin``, share one key.
    """
    canonical = normalise_relative(path)
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", canonical).casefold())


ClashKind = Literal["duplicate", "same-name", "below-a-file", "over-a-folder"]


@dataclass(frozen=True)
class PathClash:
    """``paths[index]`` cannot coexist with the earlier ``paths[other]``.

    ``duplicate``: the same canonical path; ``same-name``: a different spelling of one name
    (case, Unicode normalisation); ``below-a-file``: ``index`` needs a folder where ``other`` is
    a file; ``over-a-folder``: ``index`` is a file where ``other`` needs a folder.
    """

    index: int
    other: int
    kind: ClashKind


def path_clashes(paths: Sequence[str]) -> list[PathClash]:
    """Every path that cannot coexist with an earlier one in one folder, on any file system.

    The one rule for files in a version: ``validate``/``publish`` refuse what ``pull`` would
    refuse, so no version is published that cannot be pulled. Each later path of a clash is
    reported once, against the first earlier path it clashes with; ``paths`` should already be
    clean relative paths (see :func:`relative_path_problem`).
    """
    files: dict[str, int] = {}  # key → index of the file
    folders: dict[str, int] = {}  # key → index of the first file below that folder
    canonical = [normalise_relative(p) for p in paths]
    clashes: list[PathClash] = []
    for i, path in enumerate(paths):
        key = path_key(path)
        parts = key.split("/")
        parents = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        clash: PathClash | None = None
        if key in files:
            j = files[key]
            clash = PathClash(i, j, "duplicate" if canonical[j] == canonical[i] else "same-name")
        elif key in folders:
            clash = PathClash(i, folders[key], "over-a-folder")
        else:
            for parent in parents:
                if parent in files:
                    clash = PathClash(i, files[parent], "below-a-file")
                    break
        if clash is not None:
            clashes.append(clash)
            continue
        files[key] = i
        for parent in parents:
            folders.setdefault(parent, i)
    return clashes


SPDX_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9][A-Za-z0-9.\-]*\+?|LicenseRef-[A-Za-z0-9.\-]+)\s*")


def license_problem(expression: str) -> str | None:
    """A light SPDX expression check: ids, AND/OR/WITH, balanced parentheses.

    An expression with a control character is left to the schema's printable rule, which names it.
    """
    if CONTROL_CHARACTER.search(expression):
        return None
    return _spdx_problem(expression)


def _spdx_problem(expression: str) -> str | None:
    tokens: list[str] = []
    pos = 0
    while pos < len(expression):
        match = SPDX_TOKEN.match(expression, pos)
        if not match or match.end() == pos:
            return f"'{expression}' is not an SPDX expression (unexpected '{expression[pos]}')"
        tokens.append(match.group(1))
        pos = match.end()
    depth = 0
    expect_operand = True
    for token in tokens:
        if token == "(":
            if not expect_operand:
                return f"'{expression}' is not an SPDX expression (missing AND/OR before '(')"
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0 or expect_operand:
                return f"'{expression}' is not an SPDX expression (unbalanced ')')"
        elif token in ("AND", "OR", "WITH"):
            if expect_operand:
                return f"'{expression}' is not an SPDX expression ('{token}' needs a license before it)"
            expect_operand = True
            continue
        else:
            if not expect_operand:
                return f"'{expression}' is not an SPDX expression (join licenses with AND or OR)"
        expect_operand = token == "("
    if depth != 0 or expect_operand:
        return f"'{expression}' is not an SPDX expression (incomplete)"
    return None

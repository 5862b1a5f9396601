"""Check requests and responses against GitHub's own OpenAPI description.

The description (``@octokit/openapi``, OpenAPI 3.0.3) is turned into JSON Schema 2020-12 once per
process: ``nullable`` becomes a ``"null"`` type or an ``anyOf`` with null, the siblings of ``$ref``
are dropped as OpenAPI 3.0 says, boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numbers,
and every ``#/components/...`` reference points into one registry resource. Validators are compiled
per operation and status on first use and cached.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_RELATIVE_PATH = Path("@octokit/openapi/generated/api.github.com.json")
SPEC_URI = "urn:github-openapi:api.github.com"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Statuses that GitHub returns on every operation (bad credentials, no permission, not found)
# although the description lists them only on some. Where an operation does not document one,
# its body is checked against ``basic-error``.
DEFAULT_IMPLICIT_ERROR_STATUSES = frozenset({401, 403, 404})

_COMPOSITIONS = ("allOf", "oneOf", "anyOf")
_DROPPED = frozenset(
    {"nullable", "example", "discriminator", "xml", "externalDocs", "deprecated", "readOnly"}
)
_DROPPED_WITH_REF = frozenset({"$ref", "description", "title", "summary"})


# ---------------------------------------------------------------------------------------------
# OpenAPI 3.0 schema -> JSON Schema 2020-12


def _absolute_ref(ref: str) -> str:
    return f"{SPEC_URI}{ref}" if ref.startswith("#") else ref


def _is_nullable(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("nullable") is True


def convert_schema(schema: Any) -> Any:
    """One OpenAPI 3.0 Schema Object as JSON Schema 2020-12 (a new object; input untouched)."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        # OpenAPI 3.0: "any properties added SHALL be ignored" next to $ref; nullable is the
        # one sibling that writers mean, so it is honoured.
        converted: dict[str, Any] = {"$ref": _absolute_ref(schema["$ref"])}
        return {"anyOf": [{"type": "null"}, converted]} if _is_nullable(schema) else converted
    out = _convert_keywords(schema)
    if "oneOf" in schema and any(_is_nullable(sub) for sub in schema["oneOf"]):
        # Several nullable branches would all accept null and break "exactly one": lift null out.
        out["oneOf"] = [convert_schema({**s, "nullable": False}) for s in schema["oneOf"]]
        if "type" not in out and not _is_nullable(schema):
            return {"anyOf": [{"type": "null"}, out]}
    return _with_null(out) if _is_nullable(schema) else out


def _convert_keywords(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED or key.startswith("x-"):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: convert_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = convert_schema(value)
        elif key in _COMPOSITIONS:
            out[key] = [convert_schema(sub) for sub in value]
        elif key not in ("exclusiveMinimum", "exclusiveMaximum") or not isinstance(value, bool):
            out[key] = value
    # OpenAPI 3.0's boolean exclusiveMinimum/Maximum qualify minimum/maximum.
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
    return out


def _with_null(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` also accepting null (the converted form of ``nullable: true``)."""
    if any(key in out for key in (*_COMPOSITIONS, "not", "$ref")):
        return {"anyOf": [{"type": "null"}, out]}
    if "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = types if "null" in types else [*types, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    # nullable without a type constrains nothing: null is already allowed.
    return out


# ---------------------------------------------------------------------------------------------
# The loaded description


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    definition: Mapping[str, Any]
    parameters: tuple[Mapping[str, Any], ...]


@dataclass
class _Template:
    template: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    literal_segments: int
    operations: dict[str, Operation] = field(default_factory=dict)


class OpenAPIDocument:
    """GitHub's OpenAPI description, converted once, with a path-template router."""

    def __init__(self, path: Path) -> None:
        started = time.perf_counter()
        self.path = path
        with path.open("rb") as handle:
            self.raw: dict[str, Any] = json.load(handle)
        self.version = str(self.raw.get("info", {}).get("version", "?"))
        components = self.raw.get("components", {})
        converted = {
            "components": {
                "schemas": {
                    name: convert_schema(schema)
                    for name, schema in components.get("schemas", {}).items()
                }
            }
        }
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, DRAFT202012.create_resource(converted)
        )
        self._templates = [self._compile_template(t, item) for t, item in self.raw["paths"].items()]
        # Literal segments win over parameters: /issues/comments/{id} before /issues/{number}/...
        self._templates.sort(key=lambda t: (-t.literal_segments, t.template))
        self.load_seconds = time.perf_counter() - started

    # -- references inside the OpenAPI document (parameters, responses, request bodies) --

    def resolve(self, node: Any) -> Any:
        """Follow local ``$ref`` of non-schema objects (parameters, responses, request bodies)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported reference {ref}")
            node = self.raw
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 20:
                raise ValueError(f"reference loop at {ref}")
        return node

    def _compile_template(self, template: str, item: Mapping[str, Any]) -> _Template:
        shared = [self.resolve(p) for p in item.get("parameters", [])]
        operations: dict[str, Operation] = {}
        multi_segment: set[str] = set()
        for method in HTTP_METHODS:
            if method not in item:
                continue
            definition = item[method]
            own = [self.resolve(p) for p in definition.get("parameters", [])]
            keys = {(p["name"], p["in"]) for p in own}
            params = tuple([p for p in shared if (p["name"], p["in"]) not in keys] + own)
            multi_segment.update(
                p["name"] for p in params if p.get("in") == "path" and p.get("x-multi-segment")
            )
            operations[method.upper()] = Operation(
                method.upper(), template, str(definition.get("operationId", "")), definition, params
            )
        names: list[str] = []
        pattern = ""
        literal = 0
        for piece in re.split(r"(\{[^}]+\})", template):
            if piece.startswith("{") and piece.endswith("}"):
                name = piece[1:-1]
                names.append(name)
                pattern += (
                    f"(?P<p{len(names)}>.+?)"
                    if name in multi_segment
                    else f"(?P<p{len(names)}>[^/]+)"
                )
            else:
                pattern += re.escape(piece)
                literal += sum(1 for segment in piece.split("/") if segment)
        return _Template(template, re.compile(f"^{pattern}$"), tuple(names), literal, operations)

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for this method and concrete path, with its path parameters."""
        method = method.upper()
        for candidate in self._templates:
            if method not in candidate.operations:
                continue
            match = candidate.regex.match(path)
            if match:
                values = {name: match.group(f"p{i + 1}") for i, name in enumerate(candidate.names)}
                return candidate.operations[method], values
        return None


_DOCUMENTS: dict[Path, OpenAPIDocument] = {}
_DOCUMENTS_LOCK = threading.Lock()


def load_document(path: Path) -> OpenAPIDocument:
    """The description at ``path``, loaded and converted once per process."""
    key = path.resolve()
    with _DOCUMENTS_LOCK:
        if key not in _DOCUMENTS:
            _DOCUMENTS[key] = OpenAPIDocument(key)
        return _DOCUMENTS[key]


def default_spec_path(node_modules: Path) -> Path:
    return node_modules / SPEC_RELATIVE_PATH


# ---------------------------------------------------------------------------------------------
# Checking


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A path or query string as the JSON value its schema describes (or the string as is)."""
    types = schema.get("type")
    type_list = types if isinstance(types, list) else [types]
    if "integer" in type_list and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in type_list and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", value):
        return float(value)
    if "boolean" in type_list and value in ("true", "false"):
        return value == "true"
    return value


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: ValidationError) -> str:
    """Where and why, with the first failure of each branch when anyOf/oneOf failed as a whole."""
    text = f"{error.json_path}: {_shorten(error.message)}"
    if error.context:
        firsts: dict[Any, ValidationError] = {}
        for sub in error.context:
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else "?"
            firsts.setdefault(branch, sub)
        details = "; ".join(
            f"branch {branch}: {sub.json_path}: {_shorten(sub.message, 160)}"
            for branch, sub in firsts.items()
        )
        text += f" ({details})"
    return text


class OpenAPIChecker:
    """Finds the operation for a request and validates it and its response against the description."""

    def __init__(
        self,
        document: OpenAPIDocument | Path,
        implicit_error_statuses: Iterable[int] = DEFAULT_IMPLICIT_ERROR_STATUSES,
    ) -> None:
        self.document = (
            document if isinstance(document, OpenAPIDocument) else load_document(document)
        )
        self.implicit_error_statuses = frozenset(implicit_error_statuses)
        self._validators: dict[tuple[Any, ...], Draft202012Validator | None] = {}
        self._lock = threading.Lock()

    # -- validators --

    def _validator(self, key: tuple[Any, ...], schema: Any) -> Draft202012Validator | None:
        with self._lock:
            if key not in self._validators:
                if schema is None:
                    self._validators[key] = None
                else:
                    converted = convert_schema(schema)
                    Draft202012Validator.check_schema(converted)
                    self._validators[key] = Draft202012Validator(
                        converted, registry=self.document.registry
                    )
            return self._validators[key]

    def _errors(self, key: tuple[Any, ...], schema: Any, instance: Any, prefix: str) -> list[str]:
        validator = self._validator(key, schema)
        if validator is None:
            return []
        errors = list(validator.iter_errors(instance))
        if not errors:
            return []
        # One precise message per failure: best_match descends into anyOf/oneOf branches.
        # best_match descends into anyOf/oneOf to the branch that came closest.
        return [f"{prefix} {_describe(best_match([error]) or error)}" for error in errors]

    # -- requests --

    def check_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any | None = None,
    ) -> list[str]:
        """Violations of this request (path without the API prefix); [] when it conforms."""
        found = self.document.find(method, path)
        if found is None:
            return [f"no operation in the OpenAPI description matches {method.upper()} {path}"]
        operation, path_values = found
        problems: list[str] = []
        query = dict(query or {})
        for param in operation.parameters:
            where, name = param.get("in"), param["name"]
            schema = param.get("schema")
            if where == "path":
                raw = path_values.get(name)
                if raw is None:
                    continue
                key = ("param", operation.method, operation.template, where, name)
                problems += self._errors(
                    key, schema, _coerce(raw, schema or {}), f"path parameter {name!r}"
                )
            elif where == "query":
                if name not in query:
                    if param.get("required"):
                        problems.append(f"required query parameter {name!r} is missing")
                    continue
                values = query[name] if isinstance(query[name], list) else [query[name]]
                key = ("param", operation.method, operation.template, where, name)
                if schema and schema.get("type") == "array":
                    items = schema.get("items", {})
                    value: Any = [_coerce(str(v), items) for v in values]
                    problems += self._errors(key, schema, value, f"query parameter {name!r}")
                else:
                    for raw in values:
                        problems += self._errors(
                            key,
                            schema,
                            _coerce(str(raw), schema or {}),
                            f"query parameter {name!r}",
                        )
        problems += self._check_request_body(operation, body)
        return problems

    def _check_request_body(self, operation: Operation, body: Any | None) -> list[str]:
        request_body = self.document.resolve(operation.definition.get("requestBody"))
        if not request_body:
            if body is not None:
                return [f"{operation.operation_id} takes no request body but one was sent"]
            return []
        if body is None:
            return ["request body is required but missing"] if request_body.get("required") else []
        content = request_body.get("content", {})
        media = content.get("application/json")
        if media is None:
            return [f"request body is JSON but {operation.operation_id} takes {sorted(content)}"]
        key = ("request", operation.method, operation.template)
        return self._errors(key, media.get("schema"), body, "request body")

    # -- responses --

    def check_response(self, method: str, path: str, status: int, body: Any | None) -> list[str]:
        """Violations of this response to ``method path``; [] when it conforms."""
        found = self.document.find(method, path)
        if found is None:
            return [f"no operation in the OpenAPI description matches {method.upper()} {path}"]
        operation, _ = found
        responses = operation.definition.get("responses", {})
        definition = responses.get(str(status))
        documented_as = str(status)
        if definition is None and f"{str(status)[0]}XX" in responses:
            documented_as = f"{str(status)[0]}XX"
            definition = responses[documented_as]
        if definition is None and "default" in responses:
            documented_as = "default"
            definition = responses["default"]
        if definition is None:
            if status in self.implicit_error_statuses:
                key: tuple[Any, ...] = ("response", "implicit-error")
                schema = {"$ref": "#/components/schemas/basic-error"}
                problems = self._errors(key, schema, body, f"{status} response body")
                if not isinstance(body, dict) or "message" not in body:
                    problems.append(f"{status} response body has no 'message'")
                return problems
            return [
                f"status {status} is not documented for {operation.operation_id} "
                f"(documented: {', '.join(sorted(responses))})"
            ]
        definition = self.document.resolve(definition)
        media = definition.get("content", {}).get("application/json")
        if media is None or "schema" not in media:
            if body is not None and not definition.get("content"):
                return [
                    f"{status} response of {operation.operation_id} is documented without a body"
                ]
            return []
        if body is None:
            return [f"{status} response of {operation.operation_id} must have a JSON body"]
        key = ("response", operation.method, operation.template, documented_as)
        return self._errors(key, media["schema"], body, f"{status} response body")

    def operation_id(self, method: str, path: str) -> str | None:
        found = self.document.find(method, path)
        return found[0].operation_id if found else None

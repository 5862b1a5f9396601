"""Rendering results as text, JSON and GitHub workflow commands (pure: strings out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ci_modelver.core.source import Finding
from ci_modelver.core.text import one_line


def finding_line(finding: Finding) -> str:
    """``FILE:LINE:COL: message (JSON path)``."""
    text = f"{finding.file}:{finding.line}:{finding.column}: {finding.message} ({finding.path})"
    return one_line(text)


def escape_command_data(text: str) -> str:
    """Escape the message part of a GitHub workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_command_property(text: str) -> str:
    """Escape a property value (file, title) of a GitHub workflow command."""
    return escape_command_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(finding: Finding, *, level: str = "error", title: str = "ci-modelver") -> str:
    """``::error file=…,line=…,col=…,title=…::message`` for one finding."""
    props = ",".join(
        [
            f"file={escape_command_property(finding.file)}",
            f"line={finding.line}",
            f"col={finding.column}",
            f"title={escape_command_property(title)}",
        ]
    )
    return f"::{level} {props}::{escape_command_data(f'{finding.message} ({finding.path})')}"


def findings_json(
    file: str, findings: Sequence[Finding], extra: dict[str, Any] | None = None
) -> str:
    """A stable JSON document: ``{"file", "valid", "findings": [{file, line, column, path, message}]}``."""
    doc: dict[str, Any] = {
        "file": file,
        "valid": not findings,
        "findings": [
            {
                "file": f.file,
                "line": f.line,
                "column": f.column,
                "path": f.path,
                "message": f.message,
            }
            for f in findings
        ],
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)


def human_size(size: float) -> str:
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _show_header(doc: dict[str, Any], record: dict[str, Any]) -> list[str]:
    created = record.get("created") or doc.get("annotations", {}).get(
        "org.opencontainers.image.created", "-"
    )
    lines = [
        f"{doc.get('name')} {doc.get('version')}",
        f"  ref:       {doc['ref']}",
        f"  created:   {created}",
    ]
    for key, label in (("description", "about"), ("license", "license")):
        if record.get(key):
            lines.append(f"  {label + ':':<10} {record[key]}")
    code = record.get("code") or {}
    if code:
        dirty = " (dirty tree)" if code.get("dirty") else ""
        lines.append(
            f"  code:      {code.get('repository', '-')} @ {code.get('commit', '-')}{dirty}"
        )
        if code.get("runUrl"):
            lines.append(f"  CI run:    {code['runUrl']}")
    framework = record.get("framework")
    if framework:
        lines.append(
            f"  framework: {framework.get('name')} {framework.get('version', '')}".rstrip()
        )
    return lines


def _show_sections(record: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if record.get("data"):
        lines.append("data:")
        lines.extend(
            f"  {d.get('name')}: {d.get('uri')} {d.get('digest', '')}".rstrip()
            for d in record["data"]
        )
    params = record.get("hyperparameters") or {}
    if params:
        lines.append("hyperparameters:")
        lines.extend(f"  {key}: {_scalar(params[key])}" for key in sorted(params))
    metrics = record.get("metrics") or {}
    if metrics:
        lines.append("metrics:")
        for set_name in sorted(metrics):
            shown = ", ".join(f"{m}={_scalar(v)}" for m, v in sorted(metrics[set_name].items()))
            lines.append(f"  {set_name}: {shown}")
    return lines


def show_text(doc: dict[str, Any]) -> str:
    """The version record of ``show`` for terminals (input: ``Shown.to_json()``)."""
    record = doc.get("record") or {}
    lines = _show_header(doc, record)
    lines.append("files:")
    for f in doc.get("files", []):
        lines.append(
            f"  {f['type']:<13} {human_size(f['size']):>10}  {f['digest'][:19]}…  {f['path']}"
        )
    lines.extend(_show_sections(record))
    if not record:
        lines.append("(no ci-modelver version record: published by another ModelPack tool)")
    return "\n".join(lines)


def versions_text(repository: str, rows: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """``versions`` for terminals: one line per version, oldest first."""
    if not rows:
        return f"{repository}: no versions published yet"
    width = max(len(r[0]) for r in rows)
    lines = [f"{repository}"]
    for version, digest, aliases in rows:
        suffix = f"  ← {', '.join(aliases)}" if aliases else ""
        lines.append(f"  {version:<{width}}  {digest}{suffix}")
    return "\n".join(lines)

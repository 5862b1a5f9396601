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


def _short(digest: str | None) -> str:
    return digest[:19] + "…" if digest else "—"


def history_text(doc: dict[str, Any], markdown: bool) -> str:
    """``history`` as a terminal table or Markdown (input: ``History.to_json()``)."""

    def cell(value: Any) -> str:
        text = one_line("—" if value in (None, "") else str(value), 120)
        return text.replace("|", "\\|") if markdown else text

    version_rows = [
        [
            cell(v["version"]),
            _short(v["digest"]),
            cell(v["created"]),
            cell((v["commit"] or "")[:12]),
            cell(", ".join(f"{k}={val:.4g}" for k, val in sorted(v["gatedMetrics"].items()))),
            cell(", ".join(v["aliases"])),
        ]
        for v in doc["versions"]
    ]
    move_rows = [
        [
            cell(m["time"]),
            cell(m["alias"]),
            cell(m["action"]),
            cell(m["fromVersion"] or _short(m["from"])),
            cell(m["toVersion"] or _short(m["to"])),
            cell(m["actor"]),
            cell(m["reason"]),
        ]
        for m in doc["aliasLog"]
    ]
    sections = [
        (
            f"Versions of {doc['repository']}",
            ["version", "digest", "created", "commit", "gated metrics", "aliases"],
            version_rows,
        ),
        ("Alias log", ["time", "alias", "action", "from", "to", "actor", "reason"], move_rows),
    ]
    out: list[str] = []
    for title, head, rows in sections:
        if markdown:
            out += [
                f"### {cell(title)}",
                "",
                "| " + " | ".join(head) + " |",
                "|" + "---|" * len(head),
            ]
            out += ["| " + " | ".join(r) + " |" for r in rows] or [
                "| " + " | ".join(["—"] * len(head)) + " |"
            ]
            out.append("")
        else:
            widths = [
                max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                for i, h in enumerate(head)
            ]
            out.append(title)
            out.append(
                "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()
            )
            out += [
                "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                for r in rows
            ] or ["  (none)"]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def reproduce_text(doc: dict[str, Any]) -> str:
    """``reproduce`` for terminals (input: ``Reproduction.to_json()``)."""
    code = doc.get("code") or {}
    lines = [f"{doc.get('name')} {doc.get('version')}  ({doc['ref']})", "code:"]
    lines.append(f"  repository: {code.get('repository', '—')}")
    lines.append(
        f"  commit:     {code.get('commit', '—')}"
        + ("  (published from a dirty tree!)" if code.get("dirty") else "")
    )
    if code.get("path"):
        lines.append(f"  path:       {code['path']}")
    if code.get("runUrl"):
        lines.append(f"  CI run:     {code['runUrl']}")
    framework = doc.get("framework") or {}
    if framework:
        lines.append(f"framework: {framework.get('name')} {framework.get('version', '')}".rstrip())
        for key, value in sorted((framework.get("extra") or {}).items()):
            lines.append(f"  {key}: {_scalar(value)}")
    lines.append("data:")
    for item in doc.get("data") or []:
        lines.append(f"  {item.get('name')}: {item.get('uri')}  {item.get('digest', '')}".rstrip())
    lines.append("hyperparameters:")
    for key, value in sorted((doc.get("hyperparameters") or {}).items()):
        lines.append(f"  {key}: {_scalar(value)}")
    lines.append(
        "commands: " + ("; ".join(doc["commands"]) if doc.get("commands") else "none recorded")
    )
    if doc.get("dataCheck"):
        lines.append("data check:")
        for check in doc["dataCheck"]:
            lines.append(
                f"  {check['name']}: {check['status']}"
                + (f" (found {check['found']})" if check["status"] == "mismatch" else "")
            )
    if code.get("repository") and code.get("commit"):
        lines.append(
            f"to rebuild: git clone {code['repository']} && git -C <clone> checkout {code['commit']}"
        )
    return "\n".join(one_line(line) for line in lines)

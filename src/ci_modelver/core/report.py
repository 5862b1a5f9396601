"""Rendering results as text, JSON and GitHub workflow commands (pure: strings out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ci_modelver.core.source import Finding


def finding_line(finding: Finding) -> str:
    """``FILE:LINE:COL: message (JSON path)``."""
    return f"{finding.file}:{finding.line}:{finding.column}: {finding.message} ({finding.path})"


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

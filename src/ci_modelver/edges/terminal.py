"""The terminal edge: the Console (the only writer of stdout/stderr) and a renderer per result.

Renderers are picked by result type and ``--format`` name; ``json`` is the same for every
result (its ``to_json()``, stable keys). Inside GitHub Actions every line we print that may
carry outside text is neutralised so the runner can never read it as a workflow command.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from ci_modelver.commands.compare import CompareResult, Delivery
from ci_modelver.commands.history import AttachResult, History, Reproduction
from ci_modelver.commands.init import InitResult
from ci_modelver.commands.inspect import Shown, VersionList
from ci_modelver.commands.promote import MoveResult
from ci_modelver.commands.publish import PublishResult
from ci_modelver.commands.pull import PullResult
from ci_modelver.commands.schema import SchemaDocument
from ci_modelver.commands.sign import SignResult
from ci_modelver.commands.validate import Validated
from ci_modelver.commands.verify import VerifyResult
from ci_modelver.core.jsontext import json_text
from ci_modelver.core.modelpack import ANN_CREATED
from ci_modelver.core.provenance import ci_summary, command_text
from ci_modelver.core.source import Finding
from ci_modelver.core.text import human_size, natural_key, one_line, short_digest, text_table
from ci_modelver.core.trust import SignatureCheck
from ci_modelver.edges import (
    terminal_copy,
    terminal_diff,
    terminal_prune,
    terminal_site,
    terminal_storage,
)
from ci_modelver.edges.actions import finding_annotation, neutralise


def finding_line(finding: Finding) -> str:
    """``FILE:LINE:COL: message (JSON path)``."""
    text = f"{finding.file}:{finding.line}:{finding.column}: {finding.message} ({finding.path})"
    return one_line(text)


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _show_header(doc: dict[str, Any], record: dict[str, Any]) -> list[str]:
    created = record.get("created") or doc.get("annotations", {}).get(ANN_CREATED, "-")
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
        for set_name in sorted(metrics, key=natural_key):
            shown = ", ".join(
                f"{m}={_scalar(metrics[set_name][m])}"
                for m in sorted(metrics[set_name], key=natural_key)
            )
            lines.append(f"  {set_name}: {shown}")
    return lines


def build_lines(build: Mapping[str, Any]) -> list[str]:
    """The version record's ``build`` block: command, Python and platform, CI run, lock files."""
    if not build:
        return []
    lines = ["build:"]
    command = command_text(build.get("command"))
    lines.append(f"  command:   {command if command is not None else 'none recorded'}")
    if build.get("python") or build.get("platform"):
        on = f" on {build['platform']}" if build.get("platform") else ""
        lines.append(f"  python:    {build.get('python', '?')}{on}  (the publishing machine)")
    ci = build.get("ci")
    if isinstance(ci, dict) and ci:
        lines.append(f"  CI:        {ci_summary(ci)}")
        if ci.get("runUrl"):
            lines.append(f"  CI run:    {ci['runUrl']}")
    for item in build.get("lockfiles") or []:
        lines.append(f"  lock file: {item.get('path')}  {item.get('digest')}")
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
    lines.extend(build_lines(record.get("build") or {}))
    if not record:
        lines.append("(no ci-modelver version record: published by another ModelPack tool)")
    # Every value comes from the store: one line each, control characters shown escaped.
    return "\n".join(one_line(line) for line in lines)


def versions_text(repository: str, rows: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """``versions`` for terminals: one line per version, oldest first."""
    if not rows:
        return f"{repository}: no versions published yet"
    width = max(len(r[0]) for r in rows)
    lines = [f"{repository}"]
    for version, digest, aliases in rows:
        suffix = f"  ← {', '.join(aliases)}" if aliases else ""
        lines.append(f"  {version:<{width}}  {digest}{suffix}")
    return "\n".join(one_line(line) for line in lines)


def _record_trust(signature: dict[str, Any]) -> str:
    """An alias-move record's signature status (``history --verify``): who, or why not."""
    status = str(signature.get("status") or "unsigned")
    if status == "trusted" and signature.get("signer"):
        return f"trusted: {signature['signer']}"
    if signature.get("problem"):
        return f"{status}: {signature['problem']}"
    return status


def history_text(doc: dict[str, Any], markdown: bool) -> str:
    """``history`` as a terminal table or Markdown (input: ``History.to_json()``)."""

    def cell(value: Any) -> str:
        text = one_line("—" if value in (None, "") else str(value), 120)
        return text.replace("|", "\\|") if markdown else text

    version_rows = [
        [
            cell(v["version"]),
            short_digest(v["digest"]),
            cell(v["created"]),
            cell((v["commit"] or "")[:12]),
            cell(
                ", ".join(
                    f"{k}={v['gatedMetrics'][k]:.4g}"
                    for k in sorted(v["gatedMetrics"], key=natural_key)
                )
            ),
            cell(", ".join(v["aliases"])),
        ]
        for v in doc["versions"]
    ]
    move_rows = [
        [
            cell(m["time"]),
            cell(m["alias"]),
            cell(m["action"]),
            cell(m["fromVersion"] or short_digest(m["from"])),
            cell(m["toVersion"] or short_digest(m["to"])),
            cell(m["actor"]),
            cell(m["reason"]),
            *([cell(_record_trust(m.get("signature") or {}))] if doc.get("verified") else []),
        ]
        for m in doc["aliasLog"]
    ]
    move_head = ["time", "alias", "action", "from", "to", "actor", "reason"]
    if doc.get("verified"):
        move_head.append("signature")
    sections = [
        (
            f"Versions of {doc['repository']}",
            ["version", "digest", "created", "commit", "gated metrics", "aliases"],
            version_rows,
        ),
        ("Alias log", move_head, move_rows),
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
            table = text_table(head, rows)
            out.append(title)
            out.append(table[0])
            out += table[1:] or ["  (none)"]
            out.append("")
    return "\n".join(one_line(line) for line in out).rstrip() + "\n"


def _check_lines(title: str, key: str, checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """``reproduce``'s check results: one line per dataset or lock file."""
    if not checks:
        return []
    return [title] + [
        f"  {check[key]}: {check['status']}"
        + (f" (found {check['found']})" if check["status"] == "mismatch" else "")
        for check in checks
    ]


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
    build = doc.get("build") or {}
    if build:
        lines.extend(build_lines(build))
    else:
        lines.append("build: none recorded")
    lines.extend(_check_lines("data check:", "name", doc.get("dataCheck") or []))
    lines.extend(_check_lines("environment check:", "path", doc.get("envCheck") or []))
    if code.get("repository") and code.get("commit"):
        lines.append(
            f"to rebuild: git clone {code['repository']} && git -C <clone> checkout {code['commit']}"
        )
    return "\n".join(one_line(line) for line in lines)


# --- the renderers, one per result type ------------------------------------------------------


OUT, ERR, COMMAND = "out", "err", "command"


class Lines:
    """What a renderer produced, in order: text for stdout or stderr, and our workflow commands."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def out(self, *texts: str) -> None:
        self.items += [(OUT, text) for text in texts]

    def err(self, *texts: str) -> None:
        self.items += [(ERR, text) for text in texts]

    def command(self, *lines: str) -> None:
        self.items += [(COMMAND, line) for line in lines]

    def text(self, stream: str) -> str:
        """Everything written to one stream, for tests and callers that need a string."""
        return "\n".join(text for kind, text in self.items if kind == stream)


def _validate(validated: Validated, fmt: str, in_actions: bool, lines: Lines) -> None:
    result = validated.result
    annotate = fmt == "github" or in_actions
    for finding in result.findings:
        if fmt != "github":
            lines.out(finding_line(finding))
        if annotate:
            lines.command(finding_annotation(finding, title="invalid manifest"))
    if result.manifest:
        m = result.manifest
        lines.out(
            f"{result.file}: valid — {m.name} {m.version}, {len(m.files)} file(s), "
            f"{sum(len(v) for v in m.metrics.values())} metric(s), {len(m.gates)} gate(s)"
        )


def _publish(result: PublishResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    verb = "already published (no bytes sent)" if result.status == "unchanged" else "published"
    lines.out(
        f"{result.name} {result.version} {verb}",
        f"  digest: {result.digest}",
        f"  ref:    {result.ref}",
        f"  tags:   {', '.join(result.tags)}",
    )
    if result.status == "published":
        lines.out(
            f"  blobs:  {result.uploaded} uploaded ({human_size(result.bytes_uploaded)}), "
            f"{result.present} already present"
        )
    for note in result.resumed:
        lines.out(
            f"  resumed: {note.name}: {human_size(note.offset)} of {human_size(note.size)} "
            "were in the registry from an interrupted run; sent the rest"
        )
    for note in result.restarted:
        lines.out(f"  restarted: {note.name}: could not resume ({note.reason}); sent it whole")
    if result.signer:
        kinds = " and ".join(f"{r.kind} statement" for r in result.signatures)
        lines.out(f"  signed: {kinds} by {result.signer}")


def _pull(result: PullResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    fetched = sum(1 for f in result.files if f[2])
    lines.out(
        f"pulled {result.digest} into {result.output}: {len(result.files)} file(s), "
        f"{fetched} downloaded, {len(result.files) - fetched} already up to date; all digests verified"
    )
    if result.signers:
        lines.out(
            one_line(f"signed by {', '.join(result.signers)}: every file matches the signature")
        )
    if result.replaced:
        # Layer paths come from the store: each one escaped, the list cut to a readable size.
        shown = ", ".join(one_line(path, 200) for path in result.replaced[:10])
        more = f" and {len(result.replaced) - 10} more" if len(result.replaced) > 10 else ""
        lines.out(
            f"replaced {len(result.replaced)} existing file(s) that had other content: "
            f"{shown}{more}"
        )


def _show(result: Shown, fmt: str, in_actions: bool, lines: Lines) -> None:
    lines.out(show_text(result.to_json()))


def _versions(result: VersionList, fmt: str, in_actions: bool, lines: Lines) -> None:
    rows = [(r.version, r.digest, r.aliases) for r in result.rows]
    lines.out(versions_text(str(result.repository), rows))


def _compare(result: CompareResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    if result.output is None:
        lines.out(result.report.rstrip("\n"))
    _delivery(result.delivery, lines, lines.err)


def _delivery(delivery: Delivery, lines: Lines, where: Callable[..., None]) -> None:
    lines.err(*(f"warning: {w}" for w in delivery.warnings))
    if delivery.comment_url:
        where(f"comment {delivery.comment_action}: {delivery.comment_url}")


def _comment(result: Delivery, fmt: str, in_actions: bool, lines: Lines) -> None:
    _delivery(result, lines, lines.out)


def _move(result: MoveResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    move = result.move
    target = f"{move.to_version or '?'} ({move.to_digest})"
    trusted = [f"  signed by trusted {', '.join(result.trusted_by)}"] if result.trusted_by else []
    if not result.changed:
        lines.out(
            f"{result.repository}:{move.alias} already points at {target}; nothing changed",
            *trusted,
        )
        return
    before = f"{move.from_version or '?'} ({move.from_digest})" if move.from_digest else "nothing"
    signed = (
        [f"  record signed by {result.record_signer} ({result.record_signature})"]
        if result.record_signature
        else []
    )
    lines.out(
        f"{move.action}: {result.repository}:{move.alias} {before} -> {target}",
        *trusted,
        f"  recorded as {result.repository}:{result.record_tag} by {move.actor} at {move.time}",
        *signed,
    )


def _history(result: History, fmt: str, in_actions: bool, lines: Lines) -> None:
    lines.out(history_text(result.to_json(), markdown=fmt == "markdown").rstrip("\n"))


def _reproduce(result: Reproduction, fmt: str, in_actions: bool, lines: Lines) -> None:
    lines.out(reproduce_text(result.to_json()))


def _attach(result: AttachResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    sets = ", ".join(sorted(result.evaluation.metrics, key=natural_key))
    lines.out(
        f"attached {sets} to {result.ref}@{result.digest} (record "
        f"{result.evaluation.record_digest}); the version's digest is unchanged"
    )


def _init(result: InitResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    kinds = ", ".join(
        f"{sum(1 for _, k in result.files if k == kind)} {kind}"
        for kind in dict.fromkeys(k for _, k in result.files)
    )
    listed = f"{len(result.files)} file(s) ({kinds})" if result.files else "no files"
    metrics = f", metrics: {result.metrics}" if result.metrics else ""
    out = lines.out
    out(f"wrote {result.manifest}: {result.name} {result.version}, {listed}{metrics}")
    out(*(f"wrote {workflow}" for workflow in result.workflows))
    if result.left_out:
        out(
            f"note: {result.left_out} more model file(s) were found but not listed; add the ones you need"
        )
    if not result.files:
        out(
            f"next: no model file was found — edit 'files:' in {result.manifest} (at least one); "
            "until then it does not validate"
        )
    elif result.findings:
        out(*(finding_line(finding) for finding in result.findings))
        out(f"next: fix the problem(s) above in {result.manifest}")
    else:
        out(
            f"next: check {result.manifest} (add data, hyperparameters, metrics and gates), "
            f"then 'ci-modelver validate {result.manifest}'"
        )
    if not (result.directory / ".git").exists():
        out(
            "note: GitHub reads workflows from the repository root's .github/workflows; if "
            f"{result.directory} is not the root, move them there and set 'manifest:' in each"
        )


def _schema(result: SchemaDocument, fmt: str, in_actions: bool, lines: Lines) -> None:
    lines.out(json_text(result.schema, sort_keys=False))


def _sign(result: SignResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    lines.out(
        f"signed {result.ref} ({result.version or 'no version'}) with {result.signer}",
        *(f"  {r.kind} statement: record {r.record}" for r in result.records),
        "  the version's digest is unchanged",
    )


def _signature_line(check: SignatureCheck) -> str:
    mark = "trusted" if check.trusted else "not trusted"
    who = f" by {check.signer}" if check.signer else ""
    when = f" at {check.signed_at}" if check.signed_at else ""
    why = f": {check.problem}" if check.problem else ""
    what = "signature" if check.kind == "other" else f"{check.kind} statement"
    return one_line(f"  {what}{who}{when}, {mark}{why} (record {check.record})")


def _verify(result: VerifyResult, fmt: str, in_actions: bool, lines: Lines) -> None:
    verdict = result.verification.verdict
    files = len(result.verification.files or {})
    if verdict.trusted:
        lines.out(
            one_line(
                f"verified {result.ref} ({result.version or 'no version'}): its manifest digest "
                f"and {files} file(s) are signed by {', '.join(verdict.signers)}"
            )
        )
    else:
        lines.out(f"not verified {result.ref}: {len(verdict.checks)} signature(s) checked")
    lines.out(*(_signature_line(c) for c in verdict.checks))
    if result.written is not None:
        lines.out(f"wrote the files signature to {result.written}")


Renderer = Callable[[Any, str, bool, Lines], None]
RENDERERS: Mapping[type, Renderer] = {
    Validated: _validate,
    PublishResult: _publish,
    PullResult: _pull,
    Shown: _show,
    VersionList: _versions,
    CompareResult: _compare,
    Delivery: _comment,
    MoveResult: _move,
    History: _history,
    Reproduction: _reproduce,
    AttachResult: _attach,
    InitResult: _init,
    SchemaDocument: _schema,
    SignResult: _sign,
    VerifyResult: _verify,
    **terminal_storage.RENDERERS,
    **terminal_prune.RENDERERS,
    **terminal_copy.RENDERERS,
    **terminal_diff.RENDERERS,
    **terminal_site.RENDERERS,
}
# Results whose JSON is their own document (a report, or a schema), not ``to_json()``.
_OWN_JSON: Mapping[type, Callable[[Any], str]] = {
    CompareResult: lambda r: r.report,
    SchemaDocument: lambda r: json_text(r.schema, sort_keys=False),
}


def render(result: object, fmt: str, *, in_actions: bool) -> Lines:
    """Lines for ``result`` in the format named ``fmt`` (text, table, markdown, json, github)."""
    lines = Lines()
    kind = type(result)
    if fmt == "json" and kind in _OWN_JSON:
        lines.out(_OWN_JSON[kind](result).rstrip("\n"))
        if isinstance(result, CompareResult):
            _delivery(result.delivery, lines, lines.err)
    elif fmt == "json":
        to_json: Callable[[], Any] = result.to_json  # type: ignore[attr-defined]
        lines.out(json_text(to_json()))
    else:
        RENDERERS[kind](result, fmt, in_actions, lines)
    return lines


# --- the console ------------------------------------------------------------------------------


class Console:
    """The only place that writes to the terminal (stdout and stderr)."""

    def __init__(self, out: TextIO, err: TextIO, *, in_actions: bool = False) -> None:
        self.out = out
        self.err = err
        self.in_actions = in_actions

    def print(self, text: str = "") -> None:
        """A line (or lines) that may carry outside text."""
        _write(self.out, self._safe(text))

    def error(self, text: str) -> None:
        _write(self.err, self._safe(text))

    def _safe(self, text: str) -> str:
        shown = visible(text)
        return neutralise(shown) if self.in_actions else shown

    def command(self, line: str) -> None:
        """A workflow command built (and escaped) by the Actions edge: printed as is."""
        _write(self.out, line)

    def show(self, lines: Lines) -> None:
        for kind, text in lines.items:
            if kind == COMMAND:
                self.command(text)
            elif kind == ERR:
                self.error(text)
            else:
                self.print(text)


# Every control character but TAB and LF: a registry's ESC sequence must not clear the screen or
# retitle the terminal, a CR must not rewrite a line, a C1 CSI must not reach 8-bit terminals.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def visible(text: str) -> str:
    """Text for a terminal: control characters shown escaped (``\\x1b``), lines kept."""
    return _INVISIBLE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text + "\n")
        # Flushed at once: in CI logs stdout and stderr must interleave in the order written.
        stream.flush()
    except UnicodeEncodeError:
        # Lone surrogates or characters the terminal cannot show: escape, never crash.
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")

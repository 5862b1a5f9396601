"""`ci-modelver validate` over the fixture manifests: located findings, formats and exit codes.

The invalid manifests live in tests/fixtures/invalid and are indexed by cases.yaml; the valid
ones (with their companion files) live in tests/fixtures/valid.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_modelver.cli import main
from ci_modelver.core.text import one_line

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
INVALID = FIXTURES / "invalid"
VALID = FIXTURES / "valid"
CASES_FILE = INVALID / "cases.yaml"

# FILE:LINE:COL: message (JSON path)
TEXT_FINDING = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<message>.*) \((?P<path>\$.*)\)$"
)
SUMMARY = re.compile(r"^error: (?P<file>.+): (?P<count>\d+) problem\(s\); fix them and rerun$")


@dataclass(frozen=True)
class Run:
    """What one CLI invocation returned and printed."""

    code: int
    out: str
    err: str

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.out
        assert "Traceback" not in self.err


def run(*args: str, env: Mapping[str, str] | None = None) -> Run:
    """Run the CLI in-process with captured streams."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), env={} if env is None else env, out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def validate(path: Path | str, fmt: str = "text", env: Mapping[str, str] | None = None) -> Run:
    return run("validate", str(path), "--format", fmt, env=env)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    message: str
    path: str


def parse_text(out: str) -> list[Finding]:
    """Parse text output; every line must be exactly one finding."""
    findings = []
    for text in out.splitlines():
        match = TEXT_FINDING.match(text)
        assert match, f"not a 'FILE:LINE:COL: message (path)' line: {text!r}"
        findings.append(
            Finding(
                match["file"],
                int(match["line"]),
                int(match["column"]),
                match["message"],
                match["path"],
            )
        )
    return findings


def parse_json(out: str) -> tuple[dict[str, Any], list[Finding]]:
    doc = json.loads(out)
    assert isinstance(doc, dict)
    assert set(doc) >= {"file", "valid", "findings"}
    findings = [
        Finding(f["file"], f["line"], f["column"], f["message"], f["path"]) for f in doc["findings"]
    ]
    return doc, findings


_SHOWN_ESCAPED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def escape_data(text: str) -> str:
    """The runner's escaping, with every other control character shown as ``\\xNN``."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    text = text.replace("##[", "## [")
    return _SHOWN_ESCAPED.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


# ---------------------------------------------------------------------------------------------
# The index


@dataclass(frozen=True)
class Case:
    manifest: str
    exit: int
    line: int | None
    message: str
    file: str | None = None
    xfail: str | None = None

    @property
    def path(self) -> Path:
        return INVALID / self.manifest

    @property
    def finding_file(self) -> str:
        """The file the expected finding is reported in, as the CLI displays it."""
        return str(INVALID / self.file) if self.file else str(self.path)


def load_cases() -> list[Case]:
    raw = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    cases = []
    for manifest, spec in raw.items():
        assert isinstance(spec, dict), manifest
        assert set(spec) <= {"exit", "line", "message", "file", "xfail"}, manifest
        cases.append(
            Case(
                manifest=manifest,
                exit=spec["exit"],
                line=spec["line"],
                message=spec["message"],
                file=spec.get("file"),
                xfail=spec.get("xfail"),
            )
        )
    return cases


CASES = load_cases()


def case_params(cases: list[Case]) -> list[Any]:
    params = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(case, id=case.manifest, marks=marks))
    return params


ALL_CASES = case_params(CASES)
# Format-consistency checks run on the cases the validator already handles as expected.
LOCATED_CASES = case_params([c for c in CASES if c.line is not None and not c.xfail])
FILE_LEVEL_CASES = case_params([c for c in CASES if c.line is None and not c.xfail])


def test_index_lists_every_manifest_in_the_folder() -> None:
    manifests = {p.name for p in INVALID.glob("*.yaml")} - {CASES_FILE.name}
    indexed = {c.manifest for c in CASES}
    assert manifests == indexed
    assert len([c for c in CASES if not c.xfail]) >= 45


@pytest.mark.parametrize("case", CASES, ids=[c.manifest for c in CASES])
def test_index_entries_are_well_formed(case: Case) -> None:
    assert case.exit == 2
    assert case.line is None or case.line >= 1
    assert case.message
    if case.file:
        assert (INVALID / case.file).is_file()


# ---------------------------------------------------------------------------------------------
# Each invalid manifest, in each format


def assert_file_level_error(result: Run, case: Case) -> None:
    """A file that cannot be used at all: one 'error: ...' line on stderr and nothing else."""
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert str(case.path) in lines[0]
    assert case.message in lines[0]


@pytest.mark.parametrize("case", ALL_CASES)
def test_invalid_manifest_text(case: Case) -> None:
    result = validate(case.path)
    result.assert_no_traceback()
    assert result.code == case.exit, result.err
    if case.line is None:
        assert_file_level_error(result, case)
        return
    findings = parse_text(result.out)
    assert findings
    assert {f.file for f in findings} <= {str(case.path), case.finding_file}
    matching = [f for f in findings if f.file == case.finding_file and f.line == case.line]
    assert matching, f"no finding at {case.finding_file}:{case.line}:\n{result.out}"
    assert any(case.message in f.message for f in matching), result.out
    assert f"{case.finding_file}:{case.line}:" in result.out
    assert all(f.column >= 1 and f.path.startswith("$") for f in findings)
    summary = SUMMARY.match(result.err.strip())
    assert summary, result.err
    assert summary["file"] == str(case.path)
    assert int(summary["count"]) == len(findings)


@pytest.mark.parametrize("case", ALL_CASES)
def test_invalid_manifest_json(case: Case) -> None:
    result = validate(case.path, "json")
    result.assert_no_traceback()
    assert result.code == case.exit, result.err
    if case.line is None:
        assert_file_level_error(result, case)
        return
    assert result.err == ""
    doc, findings = parse_json(result.out)
    assert doc["valid"] is False
    assert doc["file"] == str(case.path)
    assert "name" not in doc and "version" not in doc
    matching = [f for f in findings if f.file == case.finding_file and f.line == case.line]
    assert matching, result.out
    assert any(case.message in f.message for f in matching), result.out
    # The manifest's own findings come first, each file's findings in source order.
    order = [(f.file != str(case.path), f.file, f.line, f.column) for f in findings]
    assert order == sorted(order)


@pytest.mark.parametrize("case", ALL_CASES)
def test_invalid_manifest_github(case: Case) -> None:
    result = validate(case.path, "github")
    result.assert_no_traceback()
    assert result.code == case.exit, result.err
    if case.line is None:
        assert_file_level_error(result, case)
        return
    lines = result.out.splitlines()
    assert lines
    assert all(line.startswith("::error file=") for line in lines), result.out
    prefix = f"::error file={escape_property(case.finding_file)},line={case.line},col="
    matching = [line for line in lines if line.startswith(prefix)]
    assert matching, result.out
    assert any(escape_data(case.message) in line for line in matching), result.out
    assert all(",title=invalid manifest::" in line for line in lines)


@pytest.mark.parametrize("case", FILE_LEVEL_CASES)
def test_file_level_error_is_the_same_in_every_format(case: Case) -> None:
    results = [validate(case.path, fmt) for fmt in ("text", "json", "github")]
    assert {r.code for r in results} == {case.exit}
    assert {r.err for r in results} == {results[0].err}
    assert all(r.out == "" for r in results)


@pytest.mark.parametrize("case", LOCATED_CASES)
def test_formats_agree_on_findings(case: Case) -> None:
    text = parse_text(validate(case.path).out)
    _, as_json = parse_json(validate(case.path, "json").out)
    github = validate(case.path, "github").out.splitlines()
    # Text output escapes control characters to stay one line per finding; JSON keeps them.
    assert text == [replace(f, message=one_line(f.message), path=one_line(f.path)) for f in as_json]
    assert len(github) == len(text)
    for finding, annotation in zip(as_json, github, strict=True):
        assert annotation.startswith(
            f"::error file={escape_property(finding.file)},line={finding.line},"
            f"col={finding.column},"
        )
        assert annotation.endswith(escape_data(f"{finding.message} ({finding.path})"))


def test_github_actions_environment_adds_annotations_to_text() -> None:
    case = next(c for c in CASES if c.manifest == "file-missing.yaml")
    result = validate(case.path, env={"GITHUB_ACTIONS": "true"})
    assert result.code == 2
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert TEXT_FINDING.match(lines[0])
    assert lines[1].startswith(f"::error file={escape_property(str(case.path))},line=7,")


# ---------------------------------------------------------------------------------------------
# All problems at once, in order

SEVERAL = INVALID / "several-problems.yaml"
SEVERAL_EXPECTED = [
    (3, "gate 'acuracy' names metric 'acuracy'"),
    (7, "metric 'auc' of 'validation' is nan"),
    (9, "file 'missing.bin' does not exist"),
    (12, "'wieght' is not a valid type"),
    (13, "version '1.0.0+build.1' has build metadata"),
    (14, "invalid model name 'Churn'"),
]


def test_every_problem_is_reported_at_once_sorted_by_line() -> None:
    result = validate(SEVERAL)
    assert result.code == 2
    findings = parse_text(result.out)
    assert len(findings) == len(SEVERAL_EXPECTED)
    assert [f.line for f in findings] == [line for line, _ in SEVERAL_EXPECTED]
    for finding, (_, fragment) in zip(findings, SEVERAL_EXPECTED, strict=True):
        assert finding.file == str(SEVERAL)
        assert fragment in finding.message
    assert result.err.strip() == f"error: {SEVERAL}: 6 problem(s); fix them and rerun"


def test_every_problem_is_reported_at_once_in_json() -> None:
    result = validate(SEVERAL, "json")
    assert result.code == 2
    doc, findings = parse_json(result.out)
    assert doc["valid"] is False
    assert [f.line for f in findings] == [line for line, _ in SEVERAL_EXPECTED]
    assert [f.path for f in findings] == [
        "$.gates.acuracy",
        "$.metrics.validation.auc",
        "$.files[0].path",
        "$.files[1].type",
        "$.version",
        "$.name",
    ]


def test_findings_on_one_line_are_sorted_by_column(tmp_path: Path) -> None:
    manifest = tmp_path / "modelver.yaml"
    manifest.write_text(
        "name: m\nversion: 1.0.0\nfiles: [{path: a.bin, type: weight}]\n"
        "hyperparameters: {2024: x, true: y, 0.5: z}\n",
        encoding="utf-8",
    )
    (tmp_path / "a.bin").write_bytes(b"a")
    findings = parse_text(validate(manifest).out)
    assert [(f.line, f.column) for f in findings] == [(4, 19), (4, 28), (4, 37)]


def test_manifest_findings_come_before_metrics_file_findings(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "metrics.json").write_text('{"validation": {"auc": "high"}}\n', encoding="utf-8")
    manifest = tmp_path / "modelver.yaml"
    manifest.write_text(
        "name: m\nversion: 1.0.0\nfiles:\n  - path: a.bin\n    type: weight\n"
        "metrics: metrics.json\nbaseline: not a baseline\n",
        encoding="utf-8",
    )
    findings = parse_text(validate(manifest).out)
    assert [(Path(f.file).name, f.line) for f in findings] == [
        ("modelver.yaml", 7),
        ("metrics.json", 1),
    ]


# ---------------------------------------------------------------------------------------------
# Paths that cannot be committed as fixtures


def write_model(folder: Path, files_block: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "modelver.yaml"
    manifest.write_text(
        f"name: churn\nversion: 1.0.0\nfiles:\n{files_block}{extra}", encoding="utf-8"
    )
    return manifest


def test_symlink_pointing_outside_the_folder(tmp_path: Path) -> None:
    secret = tmp_path / "outside.bin"
    secret.write_bytes(b"not part of the model")
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: weights.bin\n    type: weight\n")
    (model / "weights.bin").symlink_to(secret)
    result = validate(manifest)
    assert result.code == 2
    [finding] = parse_text(result.out)
    assert finding.line == 4
    assert finding.path == "$.files[0].path"
    assert finding.message == "file 'weights.bin' resolves outside the manifest's folder (symlink)"


def test_symlinked_folder_pointing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "weights.bin").write_bytes(b"w")
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: shared/weights.bin\n    type: weight\n")
    (model / "shared").symlink_to(outside, target_is_directory=True)
    result = validate(manifest)
    assert result.code == 2
    [finding] = parse_text(result.out)
    assert finding.line == 4
    assert "resolves outside the manifest's folder" in finding.message


def test_symlink_inside_the_folder_is_fine(tmp_path: Path) -> None:
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: latest.bin\n    type: weight\n")
    (model / "weights-v1.bin").write_bytes(b"w")
    (model / "latest.bin").symlink_to("weights-v1.bin")
    result = validate(manifest)
    assert result.code == 0, result.out
    assert result.out.startswith(f"{manifest}: valid — churn 1.0.0, 1 file(s)")


def test_dangling_symlink(tmp_path: Path) -> None:
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: weights.bin\n    type: weight\n")
    (model / "weights.bin").symlink_to(model / "gone.bin")
    [finding] = parse_text(validate(manifest).out)
    assert finding.line == 4
    assert finding.message == "file 'weights.bin' does not exist"


def test_symlink_to_a_folder_inside(tmp_path: Path) -> None:
    # A listed path is followed like a listed file: the folder it names is packed as one layer.
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: current\n    type: weight\n")
    (model / "v1").mkdir()
    (model / "v1" / "w.bin").write_bytes(b"w")
    (model / "current").symlink_to("v1", target_is_directory=True)
    result = validate(manifest)
    assert result.code == 0, result.out
    assert result.out.endswith("valid — churn 1.0.0, 1 file(s), 0 metric(s), 0 gate(s)\n")


def test_symlink_to_a_folder_outside(tmp_path: Path) -> None:
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: current\n    type: weight\n")
    (tmp_path / "elsewhere").mkdir()
    (model / "current").symlink_to("../elsewhere", target_is_directory=True)
    [finding] = parse_text(validate(manifest).out)
    assert finding.line == 4
    assert finding.message == ("folder 'current' resolves outside the manifest's folder (symlink)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_model_file_that_is_a_fifo(tmp_path: Path) -> None:
    model = tmp_path / "model"
    manifest = write_model(model, "  - path: weights.bin\n    type: weight\n")
    os.mkfifo(model / "weights.bin")
    [finding] = parse_text(validate(manifest).out)
    assert finding.message == "file 'weights.bin' is not a regular file"


# ---------------------------------------------------------------------------------------------
# The manifest itself cannot be read


def assert_one_error_line(result: Run, *fragments: str) -> None:
    result.assert_no_traceback()
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_manifest_not_found(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nope.yaml"
    assert_one_error_line(validate(missing, fmt), str(missing), "file not found")


def test_manifest_is_a_directory(tmp_path: Path) -> None:
    assert_one_error_line(validate(tmp_path), str(tmp_path), "is a directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_manifest_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "modelver.yaml"
    os.mkfifo(fifo)
    assert_one_error_line(validate(fifo), "not a regular file")


def test_manifest_too_large(tmp_path: Path) -> None:
    big = tmp_path / "modelver.yaml"
    with big.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024 + 1)
    assert_one_error_line(validate(big), "too large")


def test_default_manifest_is_modelver_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(run("validate"), "modelver.yaml: file not found")
    shutil.copy(VALID / "minimal.yaml", tmp_path / "modelver.yaml")
    shutil.copy(VALID / "weights.bin", tmp_path / "weights.bin")
    result = run("validate")
    assert result.code == 0
    assert result.out.startswith("modelver.yaml: valid — churn 0.1.0")


def test_unknown_format_is_a_usage_error() -> None:
    result = run("validate", str(VALID / "minimal.yaml"), "--format", "xml")
    assert_one_error_line(result, "invalid choice: 'xml'")


# ---------------------------------------------------------------------------------------------
# Valid manifests

VALID_MANIFESTS = sorted(VALID.glob("*.yaml"))


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    assert isinstance(data, dict)
    return data


def test_there_are_valid_fixtures() -> None:
    assert len(VALID_MANIFESTS) >= 3


@pytest.mark.parametrize("manifest", VALID_MANIFESTS, ids=lambda p: p.name)
def test_valid_manifest_text(manifest: Path) -> None:
    result = validate(manifest)
    result.assert_no_traceback()
    assert result.code == 0, result.out
    assert result.err == ""
    data = load_yaml(manifest)
    [line] = result.out.splitlines()
    assert line.startswith(f"{manifest}: valid — {data['name']} {data['version']}, ")
    assert f"{len(data['files'])} file(s)" in line
    assert f"{len(data.get('gates', {}))} gate(s)" in line


@pytest.mark.parametrize("manifest", VALID_MANIFESTS, ids=lambda p: p.name)
def test_valid_manifest_json(manifest: Path) -> None:
    result = validate(manifest, "json")
    assert result.code == 0
    assert result.err == ""
    doc, findings = parse_json(result.out)
    data = load_yaml(manifest)
    assert doc["valid"] is True
    assert findings == []
    assert doc["file"] == str(manifest)
    assert doc["name"] == data["name"]
    assert doc["version"] == data["version"]


@pytest.mark.parametrize("manifest", VALID_MANIFESTS, ids=lambda p: p.name)
def test_valid_manifest_github(manifest: Path) -> None:
    result = validate(manifest, "github")
    assert result.code == 0
    assert "::error" not in result.out
    assert result.out.startswith(f"{manifest}: valid — ")


def test_valid_fixtures_cover_the_optional_features() -> None:
    texts = {p.name: p.read_bytes() for p in VALID_MANIFESTS}
    combined = b"\n".join(texts.values())
    assert any(t.startswith(b"\xef\xbb\xbf") for t in texts.values())
    assert b"<<: *" in combined and b"&" in combined
    datas = [load_yaml(p) for p in VALID_MANIFESTS]
    metrics = [d["metrics"] for d in datas if "metrics" in d]
    assert any(isinstance(m, dict) for m in metrics)
    assert any(isinstance(m, str) and m.endswith(".yaml") for m in metrics)
    assert any(isinstance(m, str) and m.endswith(".json") for m in metrics)
    gate_keys = [k for d in datas for k in d.get("gates", {})]
    assert any("/" in k for k in gate_keys) and any("/" not in k for k in gate_keys)
    tolerances = [g.get("tolerance") for d in datas for g in d.get("gates", {}).values()]
    assert any(isinstance(t, str) and t.endswith("%") for t in tolerances)
    datasets = [e for d in datas for e in d.get("data", [])]
    assert any("digest" in e for e in datasets) and any("path" in e for e in datasets)
    assert any("extra" in d.get("framework", {}) for d in datas)
    assert any("code" in d for d in datas)


def test_valid_manifest_moved_without_its_files_is_invalid(tmp_path: Path) -> None:
    moved = tmp_path / "inline-metrics.yaml"
    shutil.copy(VALID / "inline-metrics.yaml", moved)
    result = validate(moved, "json")
    assert result.code == 2
    _, findings = parse_json(result.out)
    missing = sorted({f.message.split("'")[1] for f in findings if "does not exist" in f.message})
    assert missing == ["./config.json", "README.md", "data/train.csv", "train.py", "weights.bin"]


# ---------------------------------------------------------------------------------------------
# Validator behaviours found by the corpus: merge keys, single findings, one-line output

MERGE_OVERRIDE = """\
name: churn
version: 1.0.0
files:
  - path: weights.bin
    type: weight
metrics:
  validation:
    auc: 0.86
    accuracy: 0.81
gates:
  auc: &strict
    direction: higher
    tolerance: 0.01
  accuracy:
    <<: *strict
    tolerance: "2%"
"""

MERGE_SHARED_KEY = """\
name: churn
version: 1.0.0
files:
  - path: weights.bin
    type: weight
hyperparameters:
  base: &base {lr: 0.1, epochs: 10}
  long: &long {epochs: 100}
  run:
    <<: [*long, *base]
"""


@pytest.mark.parametrize("text", [MERGE_OVERRIDE, MERGE_SHARED_KEY], ids=["override", "shared"])
def test_merge_keys_may_be_overridden(tmp_path: Path, text: str) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w")
    manifest = tmp_path / "modelver.yaml"
    manifest.write_text(text, encoding="utf-8")
    result = validate(manifest)
    assert result.code == 0, result.out


def test_dataset_not_a_mapping_is_reported_once() -> None:
    result = validate(INVALID / "dataset-not-mapping.yaml")
    assert result.code == 2
    findings = parse_text(result.out)
    assert len(findings) == 1, result.out
    assert "different type" not in result.out


def test_gates_are_not_blamed_for_a_missing_metrics_file(tmp_path: Path) -> None:
    manifest = write_model(
        tmp_path,
        "  - path: weights.bin\n    type: weight\n",
        "metrics: results/metrics.json\ngates:\n  auc:\n    direction: higher\n",
    )
    (tmp_path / "weights.bin").write_bytes(b"w")
    result = validate(manifest)
    assert result.code == 2
    findings = parse_text(result.out)
    assert [f.message for f in findings] == ["metrics file 'results/metrics.json' does not exist"]


def test_key_with_newline_stays_on_one_line(tmp_path: Path) -> None:
    manifest = write_model(
        tmp_path, "  - path: weights.bin\n    type: weight\n", '"own\\ner": data-science\n'
    )
    (tmp_path / "weights.bin").write_bytes(b"w")
    result = validate(manifest)
    assert result.code == 2
    [finding] = parse_text(result.out)
    assert finding.line == 6


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_lone_surrogate_on_a_utf8_stream(tmp_path: Path, fmt: str) -> None:
    manifest = write_model(tmp_path, "  - path: weights.bin\n    type: weight\n")
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("name: churn", 'name: "churn\\ud800"'),
        encoding="utf-8",
    )
    (tmp_path / "weights.bin").write_bytes(b"w")
    raw_out, raw_err = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(raw_out, encoding="utf-8")
    err = io.TextIOWrapper(raw_err, encoding="utf-8")
    code = main(["validate", str(manifest), "--format", fmt], env={}, out=out, err=err)
    out.flush()
    err.flush()
    assert code == 2, raw_err.getvalue().decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Control characters in names, paths and other identifiers: one exact finding each

# manifest → the finding exactly as the text format prints it (control characters escaped),
# with the path of the file it is in relative to tests/fixtures/invalid.
CONTROL_CHARACTER_FINDINGS = {
    # values in the manifest
    "name-trailing-newline.yaml": r"name-trailing-newline.yaml:2:7: model name 'churn\n' contains a control character (U+000A, line feed); names must be printable ($.name)",
    "version-carriage-return.yaml": r"version-carriage-return.yaml:3:10: version '1.0.0\r' contains a control character (U+000D, carriage return); versions must be printable ($.version)",
    "file-path-del.yaml": r"file-path-del.yaml:5:11: file path 'weights\x7fbin' contains a control character (U+007F, DEL); paths must be printable ($.files[0].path)",
    "dataset-name-del.yaml": r"dataset-name-del.yaml:8:11: dataset name 'train\x7f' contains a control character (U+007F, DEL); names must be printable ($.data[0].name)",
    "dataset-path-c1.yaml": r"dataset-path-c1.yaml:10:11: dataset path 'train\x9f.csv' contains a control character (U+009F); paths must be printable ($.data[0].path)",
    "dataset-uri-newline.yaml": r"dataset-uri-newline.yaml:9:10: dataset URI 's3://acme/churn/train.csv\n::stop-commands::x' contains a control character (U+000A, line feed); URIs must be printable ($.data[0].uri)",
    "digest-trailing-newline.yaml": r"digest-trailing-newline.yaml:10:13: digest 'sha256:3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b\n' contains a control character (U+000A, line feed); digests must be printable ($.data[0].digest)",
    "metrics-path-c1.yaml": r"metrics-path-c1.yaml:7:10: metrics path 'metrics\x9b2J.json' contains a control character (U+009B); paths must be printable ($.metrics)",
    "code-path-escape.yaml": r"code-path-escape.yaml:9:9: code path 'src\x1b[8m' contains a control character (U+001B, escape); paths must be printable ($.code.path)",
    "code-repository-nul.yaml": r"code-repository-nul.yaml:8:15: code repository 'https://github.com/acme/churn\x00' contains a control character (U+0000, NUL); repository URLs must be printable ($.code.repository)",
    "commit-trailing-newline.yaml": r"commit-trailing-newline.yaml:9:11: commit '3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b3f2a9c1b\n' contains a control character (U+000A, line feed); commits must be printable ($.code.commit)",
    "framework-name-next-line.yaml": r"framework-name-next-line.yaml:8:9: framework name 'pytorch\x85' contains a control character (U+0085, next line); names must be printable ($.framework.name)",
    "framework-version-paragraph-separator.yaml": r"framework-version-paragraph-separator.yaml:9:12: framework version '2.3\u2029' contains a control character (U+2029, paragraph separator); versions must be printable ($.framework.version)",
    "license-newline.yaml": r"license-newline.yaml:7:10: license 'MIT\nOR Apache-2.0' contains a control character (U+000A, line feed); license expressions must be printable ($.license)",
    "baseline-newline.yaml": r"baseline-newline.yaml:7:11: baseline 'production\n::add-mask::x' contains a control character (U+000A, line feed); baselines must be printable ($.baseline)",
    "tolerance-trailing-newline.yaml": r"tolerance-trailing-newline.yaml:14:16: tolerance '2%\n' contains a control character (U+000A, line feed); tolerances must be printable ($.gates.auc.tolerance)",
    # mapping keys in the manifest
    "metric-name-newline.yaml": r"metric-name-newline.yaml:9:5: metric name 'acc\n::add-mask::x\n::stop-commands::abc' contains a control character (U+000A, line feed); names must be printable ($.metrics.validation['acc\n::add-mask::x\n::stop-commands::abc'])",
    "metric-name-nul.yaml": r"metric-name-nul.yaml:9:5: metric name 'auc\x00' contains a control character (U+0000, NUL); names must be printable ($.metrics.validation['auc\x00'])",
    "set-name-line-separator.yaml": r"set-name-line-separator.yaml:8:3: evaluation set name 'validation\u2028' contains a control character (U+2028, line separator); names must be printable ($.metrics['validation\u2028'])",
    "set-name-carriage-return.yaml": r"set-name-carriage-return.yaml:8:3: evaluation set name 'validation\r' contains a control character (U+000D, carriage return); names must be printable ($.metrics['validation\r'])",
    "gate-name-escape.yaml": r"gate-name-escape.yaml:12:3: gate name 'auc\x1b[2K' contains a control character (U+001B, escape); names must be printable ($.gates['auc\x1b[2K'])",
    "gate-name-del.yaml": r"gate-name-del.yaml:12:3: gate name 'accuracy\x7f' contains a control character (U+007F, DEL); names must be printable ($.gates['accuracy\x7f'])",
    "gate-set-metric-next-line.yaml": r"gate-set-metric-next-line.yaml:12:3: gate name 'validation/auc\x85' contains a control character (U+0085, next line); names must be printable ($.gates['validation/auc\x85'])",
    # mapping keys in metrics files (JSON and YAML)
    "metrics-file-metric-name-newline.yaml": r"metric-name-newline.metrics.json:4:5: metric name 'acc\n::add-mask::x\n::stop-commands::abc' contains a control character (U+000A, line feed); names must be printable ($.validation['acc\n::add-mask::x\n::stop-commands::abc'])",
    "metrics-file-set-name-nul.yaml": r"set-name-nul.metrics.json:3:3: evaluation set name 'test\x00' contains a control character (U+0000, NUL); names must be printable ($['test\x00'])",
    "metrics-file-metric-name-line-separator.yaml": r"metric-name-line-separator.metrics.yml:3:3: metric name 'auc\u2028' contains a control character (U+2028, line separator); names must be printable ($.validation['auc\u2028'])",
    "metrics-file-set-name-escape.yaml": r"set-name-escape.metrics.yml:3:1: evaluation set name 'test\x1b]0;title\x07' contains a control character (U+001B, escape); names must be printable ($['test\x1b]0;title\x07'])",
}

# Dataset and metrics paths are also looked up on disk, which adds "... does not exist".
# A path with a control character gets the schema's finding only, not also "does not exist".
ALSO_MISSING: set[str] = set()
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def test_control_character_cases_are_indexed() -> None:
    indexed = {c.manifest: c for c in CASES}
    for manifest, expected in CONTROL_CHARACTER_FINDINGS.items():
        case = indexed[manifest]
        [finding] = parse_text(f"{INVALID}/{expected}")
        assert (finding.file, finding.line) == (case.finding_file, case.line)
        assert finding.message.endswith(case.message)


@pytest.mark.parametrize("manifest", sorted(CONTROL_CHARACTER_FINDINGS))
def test_control_character_in_an_identifier_is_one_located_finding(manifest: str) -> None:
    expected = f"{INVALID}/{CONTROL_CHARACTER_FINDINGS[manifest]}"
    result = validate(INVALID / manifest)
    assert result.code == 2
    lines = result.out.splitlines()
    assert expected in lines
    assert len(lines) == (2 if manifest in ALSO_MISSING else 1), result.out
    assert not CONTROL.search(result.out.replace("\n", ""))
    # JSON: the same finding (file paths are worded by the file check, which shows them raw).
    _, findings = parse_json(validate(INVALID / manifest, "json").out)
    [shown] = parse_text(expected)
    [found] = [f for f in findings if "control character" in f.message]
    assert replace(found, message=one_line(found.message), path=one_line(found.path)) == shown


@pytest.mark.parametrize(
    "manifest", ["metric-name-newline.yaml", "metrics-file-metric-name-newline.yaml"]
)
@pytest.mark.parametrize("env", [{}, {"GITHUB_ACTIONS": "true"}], ids=["github", "actions-text"])
def test_metric_name_cannot_inject_workflow_commands(manifest: str, env: dict[str, str]) -> None:
    result = validate(INVALID / manifest, "text" if env else "github", env=env)
    assert result.code == 2
    commands = [line for line in result.out.splitlines() if line.startswith("::")]
    assert commands and all(line.startswith("::error file=") for line in commands), result.out
    assert r"metric name 'acc\n::add-mask::x\n::stop-commands::abc' contains a" in commands[0]


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ('files: [{path: "weights.bin\\u2029", type: weight}]\n', "$.files[0].path"),
        (
            "files: [{path: weights.bin, type: weight}]\n"
            'data: [{name: train, uri: s3://a/train.csv, path: "train\\x85.csv"}]\n',
            "$.data[0].path",
        ),
        (
            'files: [{path: weights.bin, type: weight}]\nmetrics: "metrics\\u2028.json"\n',
            "$.metrics",
        ),
    ],
    ids=["file-path", "dataset-path", "metrics-path"],
)
def test_path_with_a_unicode_line_break_is_one_escaped_finding(
    tmp_path: Path, entry: str, where: str
) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w")
    manifest = tmp_path / "modelver.yaml"
    manifest.write_text(f"name: churn\nversion: 1.0.0\n{entry}", encoding="utf-8")
    _, findings = parse_json(validate(manifest, "json").out)
    assert [f.path for f in findings] == [where]
    lines = validate(manifest, "github").out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("::error file="), lines


FREE_TEXT = "line one\nline two\r\n\u2028::warning::not a command\ttabbed"


def test_free_text_with_newlines_is_accepted(tmp_path: Path) -> None:
    """Descriptions and hyperparameter values are free text: escaped when shown, never refused."""
    (tmp_path / "weights.bin").write_bytes(b"w")
    manifest = tmp_path / "modelver.yaml"
    data = {
        "name": "churn",
        "version": "1.0.0",
        "description": FREE_TEXT,
        "files": [{"path": "weights.bin", "type": "weight", "description": FREE_TEXT}],
        "framework": {"name": "pytorch", "extra": {"notes": FREE_TEXT, "list": [FREE_TEXT]}},
        "hyperparameters": {"prompt": FREE_TEXT, "nested": {"template": FREE_TEXT}},
    }
    manifest.write_text(json.dumps(data), encoding="utf-8")
    for fmt in ("text", "json", "github"):
        result = validate(manifest, fmt)
        assert result.code == 0, result.out
        assert "::error" not in result.out

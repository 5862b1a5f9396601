"""``ci-modelver init``: a starter ``modelver.yaml`` for a folder, plus the example workflows."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ci_modelver.adapters import files, folders
from ci_modelver.core.source import Finding
from ci_modelver.core.validate import relative_path_problem
from ci_modelver.errors import InputError
from ci_modelver.toolkit import Invocation, Parents
from ci_modelver.validation import validate_manifest

MANIFEST = "modelver.yaml"
METRICS = "metrics.json"
WORKFLOW_DIR = (".github", "workflows")
# Examples init does not copy: the registry site's deploy job fails in every repository that
# has not turned GitHub Pages on, and it runs on a schedule. It is copied by hand when wanted.
OPT_IN_WORKFLOWS = frozenset({"registry-site.yml"})
# The schema of the action repository's v1 tag (what the example workflows use); editors read it.
SCHEMA_URL = (
    "https://raw.githubusercontent.com/ci-modelver/ci-modelver/v1/schemas/modelver.schema.json"
)
DEFAULT_VERSION = "0.1.0"
MAX_FILES = 100
MAX_NAME = 128
MAX_PATH = 4096
FALLBACK_NAME = "model"

# Hidden folders (.git, .venv, .modelver, .github, …) are skipped too.
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})

TYPE_ORDER = ("weight", "weight-config", "doc", "code", "dataset")
WEIGHT_SUFFIXES = frozenset(
    {
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".onnx",
        ".gguf",
        ".h5",
        ".keras",
        ".pkl",
        ".joblib",
        ".ckpt",
        ".tflite",
        ".ubj",
        ".model",
    }
)
CONFIG_NAMES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "preprocessor_config.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
    }
)
DOC_SUFFIXES = frozenset({".md"})
DOC_PREFIXES = ("readme", "model_card", "modelcard", "license", "licence", "notice")
CODE_SUFFIXES = frozenset({".py", ".ipynb"})
DATASET_SUFFIXES = frozenset({".csv", ".parquet", ".jsonl", ".arrow"})


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote, what it listed, and whether the new manifest validates."""

    directory: Path
    manifest: Path
    name: str
    version: str
    files: tuple[tuple[str, str], ...]  # (path relative to the manifest, type)
    left_out: int  # model files found beyond MAX_FILES, not listed
    metrics: str | None
    workflows: tuple[Path, ...]
    findings: tuple[Finding, ...]

    @property
    def written(self) -> tuple[Path, ...]:
        return (self.manifest, *self.workflows)

    @property
    def valid(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "manifest": str(self.manifest),
            "name": self.name,
            "version": self.version,
            "files": [{"path": path, "type": kind} for path, kind in self.files],
            "leftOut": self.left_out,
            "metrics": self.metrics,
            "workflows": [str(p) for p in self.workflows],
            "written": [str(p) for p in self.written],
            "valid": self.valid,
            "findings": [f.to_json() for f in self.findings],
        }


def model_name(folder: str) -> str:
    """A folder name made to follow the name rule ``^[a-z0-9]+([._-][a-z0-9]+)*$``."""
    text = unicodedata.normalize("NFKD", folder).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text).lower()  # ChurnModel → churn-model
    text = re.sub(r"[^a-z0-9._-]+", "-", text)
    text = re.sub(r"[._-]{2,}", lambda m: m.group(0)[0], text)
    text = text[:MAX_NAME].strip("._-")
    return text or FALLBACK_NAME


def guess_type(relative: str) -> str | None:
    """The manifest ``type`` of a file from its name, or None when it is not a model file."""
    name = relative.rsplit("/", 1)[-1].lower()
    suffix = os.path.splitext(name)[1]
    if (
        name in CONFIG_NAMES
        or name.endswith(".config.json")
        or (name.startswith("tokenizer") and suffix in (".json", ".model", ".txt"))
    ):
        return "weight-config"
    if suffix in WEIGHT_SUFFIXES:
        return "weight"
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in DATASET_SUFFIXES:
        return "dataset"
    if suffix in DOC_SUFFIXES or name.startswith(DOC_PREFIXES):
        return "doc"
    return None


def _listable(root: Path, relative: str) -> bool:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not valid UTF-8
        return False
    if len(relative) > MAX_PATH or relative_path_problem(relative) is not None:
        return False
    return files.check_file(root, relative, must_stay_inside=True).problem is None


def find_model_files(root: Path) -> tuple[tuple[tuple[str, str], ...], int]:
    """Model files under ``root`` (weights first), at most MAX_FILES, and how many were left out."""
    found: list[tuple[str, str]] = []
    for current, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        folder = Path(current).relative_to(root)
        for name in sorted(names):
            if name.startswith("."):
                continue
            relative = (folder / name).as_posix()
            kind = guess_type(relative)
            if kind is not None and _listable(root, relative):
                found.append((relative, kind))
    found.sort(key=lambda entry: (TYPE_ORDER.index(entry[1]), entry[0]))
    return tuple(found[:MAX_FILES]), max(0, len(found) - MAX_FILES)


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as the README's examples do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def manifest_text(name: str, found: tuple[tuple[str, str], ...], metrics: str | None) -> str:
    """The starter manifest: schema header, name, version, files and the metrics file if any."""
    doc: dict[str, Any] = {
        "name": name,
        "version": DEFAULT_VERSION,
        "files": [{"path": path, "type": kind} for path, kind in found],
    }
    if metrics:
        doc["metrics"] = metrics
    body = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 16, indent=2
    )
    lines = [
        f"# yaml-language-server: $schema={SCHEMA_URL}",
        "# Starter manifest: check the files below, then add description, license, data,",
        "# hyperparameters, metrics and gates; 'ci-modelver validate' checks it.",
    ]
    if not found:
        lines += [
            "# No model files were found: list them under 'files:' (at least one), e.g.",
            "#   files:",
            "#     - {path: model/model.safetensors, type: weight}",
        ]
    lines.append(body.rstrip("\n"))
    if metrics:
        lines += [
            "# gates:",
            "#   accuracy: {direction: higher, tolerance: 0.01}",
            "# baseline: production",
        ]
    return "\n".join(lines) + "\n"


def bundled_workflows() -> dict[str, bytes]:
    """The example workflows shipped in the package (``examples/workflows`` in a checkout)."""
    packaged = resources.files("ci_modelver").joinpath("workflows")
    if packaged.is_dir():
        entries = {e.name: e.read_bytes() for e in packaged.iterdir() if e.is_file()}
    else:
        # Running from a source checkout (PYTHONPATH=src): the wheel maps examples/workflows here.
        folder = Path(__file__).resolve().parents[3] / "examples" / "workflows"
        if not folder.is_dir():
            raise RuntimeError("the example workflows are missing from this installation")
        entries = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return {name: entries[name] for name in sorted(entries) if name.endswith((".yml", ".yaml"))}


def _check_targets(directory: Path, targets: list[Path]) -> None:
    """Refuse before writing anything: every target must be new, its folders usable."""
    # Pull's rule: nothing is written outside DIR, not through a symlinked .github/workflows
    # (checked first: nothing outside DIR is even looked at).
    for target in targets:
        problem = folders.parent_problem(directory, target)
        if problem is None:
            continue
        where, why = problem
        if why.startswith(folders.LEADS_OUTSIDE):
            raise InputError(
                f"init: {where} {why}; nothing was written — init writes only inside "
                f"{directory}: replace the symlink with a folder, or init another folder"
            )
        raise InputError(f"init: {where} {why}; nothing was written")
    existing = [str(t) for t in targets if os.path.lexists(t)]
    if existing:
        raise InputError(
            f"init: {', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "nothing was written — move or delete "
            f"{'it' if len(existing) == 1 else 'them'} first"
        )


def _write_all(directory: Path, contents: dict[Path, bytes]) -> None:
    """Create every file (never replacing one); on failure remove what this call created."""
    created: list[Path] = []
    made_dirs: list[Path] = []
    try:
        for target, data in contents.items():
            missing = [p for p in reversed(target.parents) if not os.path.lexists(p)]
            problem = folders.make_parents(directory, target)
            made_dirs += [p for p in missing if p not in made_dirs and p.is_dir()]
            if problem is not None:  # changed since the check: treat it like a failed write
                raise NotADirectoryError(errno.ENOTDIR, problem[1], str(problem[0]))
            with target.open("xb") as handle:
                created.append(target)
                handle.write(data)
    except OSError as exc:
        for path in reversed(created):
            path.unlink(missing_ok=True)
        for folder in reversed(made_dirs):
            with contextlib.suppress(OSError):  # not empty: something else wrote there
                folder.rmdir()
        raise InputError(
            f"init: cannot write {exc.filename or 'a file'}: {exc.strerror}; nothing was kept"
        ) from None


def init_folder(directory: Path) -> InitResult:
    """Write ``DIR/modelver.yaml`` and ``DIR/.github/workflows/*.yml``; refuse to overwrite."""
    if not directory.is_dir():
        raise InputError(f"init: {directory} is not a folder; create it or give another")
    name = model_name(directory.resolve().name)
    found, left_out = find_model_files(directory)
    metrics = METRICS if (directory / METRICS).is_file() else None
    manifest = directory / MANIFEST
    workflows = {k: v for k, v in bundled_workflows().items() if k not in OPT_IN_WORKFLOWS}
    workflow_dir = directory.joinpath(*WORKFLOW_DIR)
    contents: dict[Path, bytes] = {
        manifest: manifest_text(name, found, metrics).encode("utf-8"),
        **{workflow_dir / file: data for file, data in workflows.items()},
    }
    _check_targets(directory, list(contents))
    _write_all(directory, contents)
    findings = validate_manifest(manifest, str(manifest)).findings
    return InitResult(
        directory=directory,
        manifest=manifest,
        name=name,
        version=DEFAULT_VERSION,
        files=found,
        left_out=left_out,
        metrics=metrics,
        workflows=tuple(workflow_dir / file for file in workflows),
        findings=findings,
    )


def register(sub: Any, parents: Parents) -> None:
    p = sub.add_parser(
        "init",
        parents=[parents.common],
        help="write a starter modelver.yaml and the example workflows",
        description="Write DIR/modelver.yaml (name from the folder, version 0.1.0, the model "
        "files found under DIR with a guessed type) and the example GitHub workflows in "
        "DIR/.github/workflows; refuses to overwrite any existing file. When no model file "
        "is found, 'files:' is left empty and the manifest does not validate until you list them.",
    )
    p.add_argument(
        "directory",
        nargs="?",
        default=".",
        metavar="DIR",
        help="folder of the model (default: the current folder)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, inv: Invocation) -> InitResult:
    return init_folder(Path(args.directory))

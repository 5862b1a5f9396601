"""The layers hold: cli/action entry → commands → core, commands → adapters; two edges write."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ci_modelver"
SHARED = {"ci_modelver.toolkit"}
ENTRIES = {"ci_modelver.cli", "ci_modelver.action_entry", "ci_modelver.__main__"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("ci_modelver")}


MODULES = {_module(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}
COMMANDS = {m for m in MODULES if m.startswith("ci_modelver.commands.") and m not in SHARED}


def _layer_of(name: str) -> str:
    for prefix in ("commands", "core", "adapters", "edges", "errors"):
        if name == f"ci_modelver.{prefix}" or name.startswith(f"ci_modelver.{prefix}."):
            return prefix
    return name


def test_the_module_map_is_what_this_test_knows() -> None:
    assert {"ci_modelver.commands.validate", "ci_modelver.commands.compare"} <= COMMANDS
    assert "ci_modelver.edges.actions" in MODULES


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_no_command_module_imports_another(module: str) -> None:
    others = {
        name
        for name in MODULES[module]
        if any(name == c or name.startswith(c + ".") for c in COMMANDS - {module})
    }
    assert not others, (
        f"{module} imports {sorted(others)}; shared steps live in ci_modelver.toolkit"
    )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer_of(m) == "core"))
def test_core_is_pure(module: str) -> None:
    outside = {n for n in MODULES[module] if _layer_of(n) not in ("core", "errors")}
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer_of(m) == "adapters"))
def test_adapters_never_reach_up(module: str) -> None:
    upward = {n for n in MODULES[module] if _layer_of(n) in ("commands", "edges") or n in ENTRIES}
    assert not upward, f"{module} imports {sorted(upward)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_entries_and_edges_use_the_edges(module: str) -> None:
    if module in ENTRIES or _layer_of(module) == "edges":
        return
    edges = {n for n in MODULES[module] if _layer_of(n) == "edges"}
    assert not edges, f"{module} imports {sorted(edges)}: only cli.py and the action entry may"


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: p.name)
def test_nothing_but_the_edges_prints(path: Path) -> None:
    if _layer_of(_module(path)) == "edges":
        return
    text = path.read_text("utf-8")
    tree = ast.parse(text)
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert not calls, f"{path.name} calls print()"
    assert ("sys.stdout" not in text and "sys.stderr" not in text) or path.name == "cli.py"
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        if path.name not in ("cli.py", "action_entry.py"):
            assert name not in text, f"{path.name} touches ${name}; the Actions edge writes it"


def test_in_github_actions_is_decided_in_settings_only() -> None:
    deciding = [p.name for p in SRC.rglob("*.py") if '"GITHUB_ACTIONS"' in p.read_text("utf-8")]
    assert deciding == ["settings.py"]


def test_every_exception_class_lives_in_errors() -> None:
    defined = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name)
                and (
                    b.id.endswith(("Error", "Exception"))
                    or b.id in ("ModelverError", "InputError", "RemoteError")
                )
                for b in node.bases
            ):
                defined.append(f"{path.name}:{node.name}")
    assert all(d.startswith("errors.py:") for d in defined), defined


def test_exit_codes_are_decided_in_errors_only() -> None:
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py":
            continue
        text = path.read_text("utf-8")
        assert "ExitCode." not in text or path.name == "validate.py", path.name
        assert "sys.exit(" not in text or path.name == "__main__.py", path.name

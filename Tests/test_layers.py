"""The house plan, read from the harness's own imports.

The layers are folders: core uses nothing above it; fake and patchset use
core; a study may use patchset, fake and core, and never another study.
The front door (cli.py) may use anything.  No module imports the harness
inside a function (the way to dodge a cycle), and there is no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pep522_harness import cli
from pep522_harness.core import paths

PACKAGE = "pep522_harness"
ROOT = paths.REPO / PACKAGE
MAY_USE = {
    "core": {"core"},
    "fake": {"core", "fake"},
    "patchset": {"core", "patchset"},
    "studies": {"core", "fake", "patchset", "studies"},
}
MODULES = {".".join(p.relative_to(paths.REPO).with_suffix("").parts).removesuffix(".__init__"): p
           for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The harness modules an import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    if base.split(".")[0] != PACKAGE:
        return []
    names = [f"{base}.{a.name}" for a in node.names]
    return [n for n in names if n in MODULES] or [base]


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(harness module, line, at the module's top level) of every import."""
    tree = ast.parse(MODULES[module].read_text())
    top = {id(n) for n in tree.body}
    return [(target, node.lineno, id(node) in top)
            for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in _resolve(module, node)]


GRAPH = {m: sorted({t for t, _line, _top in _imports(m)} - {m}) for m in MODULES}


def _place(module: str) -> tuple[str, str]:
    """(layer, study) of a module; ("", "") for the front door."""
    parts = module.split(".")
    if len(parts) < 3:
        return "", ""
    return parts[1], parts[2] if parts[1] == "studies" else ""


def test_the_layers_are_the_packages_folders():
    assert {_place(m)[0] for m in MODULES} == {"", *MAY_USE}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_layer_uses_only_the_layers_below_it(module):
    layer, study = _place(module)
    if not layer:
        return
    for target in GRAPH[module]:
        their_layer, their_study = _place(target)
        assert their_layer in MAY_USE[layer], f"{module} ({layer}) imports {target}"
        if layer == their_layer == "studies":
            assert their_study == study, f"the study {module} imports another: {target}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_harness_is_imported_at_the_top_of_a_module(module):
    inside = [(t, line) for t, line, top in _imports(module) if not top]
    assert inside == [], f"{module} imports the harness inside a function"


def test_no_import_cycle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join([*path[path.index(module):], module])
        if module not in done:
            for target in GRAPH[module]:
                visit(target, [*path, module])
            done.add(module)

    for module in MODULES:
        visit(module, [])


def test_each_package_states_the_plan():
    for module, path in MODULES.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and len(doc) > 80, f"{module} has no docstring to state its part"


def test_only_the_fake_launches_the_fake():
    """One place builds the launch: fake/modes.py.  (The command table
    imports the launcher to run ``python -m pep522_harness fakerng``.)"""
    launcher = f"{PACKAGE}.fake.launcher"
    users = {m for m, targets in GRAPH.items() if launcher in targets}
    assert users == {f"{PACKAGE}.cli"}, users
    naming = {m for m, p in MODULES.items() if "launcher import main" in p.read_text()}
    assert naming == {f"{PACKAGE}.fake.modes"}, naming


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_is_a_modules_main(name):
    main = cli.COMMANDS[name].main
    assert main.__name__ == "main" and main.__module__ in MODULES
    assert main.__module__ in GRAPH[f"{PACKAGE}.cli"]


def test_the_modules_are_all_read():
    assert len(MODULES) > 30 and all(isinstance(p, Path) for p in MODULES.values())

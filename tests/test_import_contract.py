"""The import contract: the product apart from its harnesses, widgets apart from the engine, no cycles.

The fault suite, the benchmarks and the evaluations (`HARNESS`) may import the
product; the product never imports them (the `check | bench | eval` verbs reach
them through entry points, core/verbs.py). Widgets and dialogs render what they
are given and never import `core`. Among product modules there is no import
cycle, counting imports inside functions too. A package's own re-exports from
its submodules are not counted as a cycle: importing `core.attribution.text`
always runs `core/attribution/__init__.py` first, whatever the code says.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ("core.faults", "core.bench", "core.eval", "gui.bench", "tests")
WIDGETS = ("gui.widgets", "gui.dialogs")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for top in ("core", "gui") for p in (ROOT / top).rglob("*.py")}
PRODUCT = {name: path for name, path in MODULES.items() if not _under(name, HARNESS)}


def _imports(path: Path) -> set[str]:
    """Every module a file names in an import statement, at any depth of the code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg.
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


def test_product_code_never_imports_harness_code():
    offenders = sorted(f"{name} imports {imported}" for name, path in PRODUCT.items()
                       for imported in _imports(path) if _under(imported, HARNESS))
    assert offenders == []


def test_widgets_and_dialogs_never_import_the_engine():
    offenders = sorted(f"{name} imports {imported}" for name, path in PRODUCT.items() if _under(name, WIDGETS)
                       for imported in _imports(path) if _under(imported, ("core",)))
    assert offenders == []


def test_no_import_cycles_among_product_modules():
    graph = {name: {m for m in _imports(path) if m in PRODUCT and m != name and not name.startswith(m + ".")}
             for name, path in PRODUCT.items()}
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert cycles == []


def test_starting_the_product_loads_no_harness_module():
    """What `python -X importtime` of the window and the CLI would list: no fault, bench or eval module."""
    code = ("import sys, gui.launcher, gui.app, gui.controller, gui.main_window, core.cli, core.engine; "
            "print(sorted(m for m in sys.modules if m.startswith(('core.faults', 'core.bench', 'core.eval', "
            "'gui.bench', 'tests'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.stdout.strip() == "[]"


def test_the_harness_verbs_are_found_through_their_entry_points():
    from core.verbs import harness_verb

    assert {name: callable(harness_verb(name)) for name in ("check", "bench", "eval")} == \
        {"check": True, "bench": True, "eval": True}

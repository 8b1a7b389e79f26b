"""House rules that keep the engine headless: core/ never imports Qt."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
QT = ("PySide6", "shiboken6", "qasync")


def test_no_module_in_core_imports_qt():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in QT]
    assert offenders == []


def test_engine_and_cli_load_without_qt():
    code = ("import sys, core.engine, core.cli, core.answer.pipeline, core.attribution; "
            "print([m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_has_a_docstring():
    missing = [str(p.relative_to(CORE.parent)) for root in ("core", "gui")
               for p in (CORE.parent / root).rglob("*.py") if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []

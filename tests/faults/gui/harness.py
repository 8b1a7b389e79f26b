"""Helpers shared by the window fault tests and their fixtures (conftest modules cannot be imported).

`run_async` is the window tests' own (tests/gui/helpers.py), re-exported so
the fault tests import their helpers from one place; they pass `TIMEOUT_MS`
where they wait longer than the window tests do.
"""
from __future__ import annotations

from tests.gui.helpers import run_async

__all__ = ["TIMEOUT_MS", "run_async"]

TIMEOUT_MS = 60_000

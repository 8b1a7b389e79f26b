"""Helpers shared by the window fault tests and their fixtures (conftest modules cannot be imported)."""
from __future__ import annotations

TIMEOUT_MS = 60_000


def run_async(qtbot, loop, coro, timeout: int = TIMEOUT_MS):
    """Run a coroutine on the qasync loop while pytest-qt spins Qt; return its result."""
    task = loop.create_task(coro)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()

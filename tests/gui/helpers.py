"""Helpers shared by the GUI tests (kept out of conftest.py so tests can import them)."""
from __future__ import annotations


def settle(rounds: int = 4) -> None:
    """Deliver pending layout requests (a grab paints whatever geometry is current)."""
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    for _ in range(rounds):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        QApplication.processEvents()


def run_async(qtbot, loop, coro, timeout: int = 30_000):
    """Run a coroutine on the qasync loop while pytest-qt spins Qt; return its result."""
    task = loop.create_task(coro)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()

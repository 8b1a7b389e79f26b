"""Guard against the PySide6 6.12 crash on Python 3.11 (shared/docs/environment.md).

PySide6 6.12.0 drops a reference to None on every method returning void; after
~5,400 calls the interpreter aborts with `none_dealloc`, and qasync makes such
calls for every callback. Making 100,000 void calls here would abort this
very process on a bad build, and the reference count of None shows the leak
long before that.
"""
from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

CALLS = 100_000


def test_void_qt_calls_do_not_leak_references_to_none(qapp):
    widget = QWidget()
    timer = QTimer()
    timer.setInterval(1000)
    before = sys.getrefcount(None)
    for i in range(CALLS // 4):
        widget.setVisible(False)  # void
        widget.update()  # void
        timer.start()  # void
        timer.stop()  # void
    after = sys.getrefcount(None)
    # Other threads may hold a few more or fewer Nones; a leak would be 100,000 fewer.
    assert after >= before - 100, f"None lost {before - after} references over {CALLS:,} void calls"
    widget.deleteLater()

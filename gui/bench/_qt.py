"""Qt plumbing the window benchmarks share: the platform, the application, the qasync loop, Qt warnings.

The benches run the app's own composition (`gui.app.make_executor`, a
`qasync.QEventLoop` over one `QApplication`) in their own process. Qt
warnings are collected rather than lost: a bench reports them, and the tests
fail on any (except the offscreen platform's size-hint notice, which
tests/gui/conftest.py also ignores).
"""
from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Awaitable, Callable

# The offscreen platform implements no size hints and says so whenever a
# top-level window's minimum size is set: platform noise, not the app.
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints()"


def choose_platform() -> str:
    """Offscreen unless the caller chose a platform or there is a display (the machines here are headless)."""
    if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return os.environ.get("QT_QPA_PLATFORM", "default")


class QtWarnings:
    """Collects Qt warnings (and worse) while installed; echoes them on stderr."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._previous = None

    def install(self) -> "QtWarnings":
        from PySide6.QtCore import qInstallMessageHandler

        self._previous = qInstallMessageHandler(self._handle)
        return self

    def uninstall(self) -> None:
        from PySide6.QtCore import qInstallMessageHandler

        qInstallMessageHandler(self._previous)

    def _handle(self, kind, _context, message: str) -> None:
        from PySide6.QtCore import QtMsgType

        if kind in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg):
            return
        if message.strip() == OFFSCREEN_NOISE:
            return
        self.messages.append(message)
        print(f"Qt: {message}", file=sys.stderr, flush=True)


def run_in_app(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run coroutine function `main` on a qasync loop over the (one) QApplication, as gui.app.main does."""
    import qasync
    from PySide6.QtWidgets import QApplication

    from gui.app import APP_NAME, make_executor

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    executor = make_executor()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            return loop.run_until_complete(main())
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        asyncio.set_event_loop(None)

"""The composition root: the Qt application, the qasync event loop, the window, the controller.

Start-up order is chosen for a window that appears at once: only PySide6 and
the window's own modules are imported before the window is painted (by a
plain Qt event loop that runs until the first paint). asyncio, qasync and
the controller are imported after that paint, which measurably shortens
launch-to-window (`sourcelight bench startup`); keys typed meanwhile wait in
the window system's queue. The controller then builds the engine on a worker
thread (importing `core`, chromadb and torch there) and loads the models in
the background while the status bar says what is loading; a question asked
meanwhile waits for them instead of being lost.

The conversation history (a SQLite file in the data directory, which
SOURCELIGHT_HOME moves) is decided here too: `open_history` is handed to the
controller, which opens it on a worker thread beside the engine, because
importing `core` and opening (maybe upgrading) the database must not delay
the first paint either.

`main(["--self-test"])` starts the window the same way, waits until the
engine is ready (or failed), asks one question about the sample guide with
the configured model (the bundled one by default), checks that the answer
completed and that attributions arrived, closes the window through the
normal shutdown path and returns 0 on success - a smoke test for packaging
(the frozen build runs it) and CI.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow

if TYPE_CHECKING:  # imported after the first paint; see the module docstring
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from gui.controller import Controller

APP_NAME = "Sourcelight"
SELF_TEST_TIMEOUT_S = 300.0
# Answered by the sample guide ("Adding documents"), so even the 135M bundled
# model copies sentences the attributor can trace back to a source.
SELF_TEST_QUESTION = "How do I add documents to Sourcelight?"
# Blocking engine work (loading, ingest, retrieval, listing) runs here. Several
# actions may wait on the model load at once, so a few more than one.
WORKER_THREADS = 6
# Longest wait for the first paint before going on regardless (some platforms
# never paint a hidden or minimised window).
FIRST_PAINT_TIMEOUT_MS = 5000


def make_executor() -> ThreadPoolExecutor:
    """The executor for blocking work: plain Python threads, shut down with the loop."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="sourcelight-worker")


def open_history():
    """The conversation history in the data directory (blocking: the controller calls it on a worker)."""
    from core.history import HistoryStore

    return HistoryStore()


def make_window() -> MainWindow:
    """The main window, not yet shown (its own function so the startup bench can watch it paint)."""
    return MainWindow()


def build(*, settings=None, engine_factory: Callable[[Any], Any] | None = None, key_store=None,
          settings_path=None, history=None, history_factory: Callable[[], Any] | None = None,
          window: MainWindow | None = None) -> tuple[MainWindow, Controller]:
    """The window and its controller, wired; tests call this with their own engine and history factories.

    `window` is one already made (and maybe shown) by `make_window`; by
    default a new one. `history` is an open HistoryStore to use as is;
    otherwise `history_factory` (default `open_history`) opens one in the
    background. The controller owns it either way and closes it at shutdown.
    """
    from gui.controller import Controller

    window = window if window is not None else make_window()
    controller = Controller(window, settings=settings, engine_factory=engine_factory, key_store=key_store,
                            settings_path=settings_path, history=history,
                            history_factory=history_factory or open_history)
    return window, controller


class _FirstPaint(QObject):
    """Calls `on_paint` once, soon after the first time the window paints."""

    def __init__(self, window, on_paint: Callable[[], None]):
        super().__init__(window)
        self._on_paint = on_paint
        window.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # Qt override
        if event.type() == QEvent.Type.Paint:
            self.parent().removeEventFilter(self)
            # After the paint event has been handled and flushed, not inside it.
            QTimer.singleShot(0, self._on_paint)
        return False


def show_until_painted(window: MainWindow) -> None:
    """Show the window with the question box focused and run plain Qt events until it has painted.

    Runs before asyncio and qasync are imported, so the window appears as
    early as PySide6 allows.
    """
    waiter = QEventLoop()
    _FirstPaint(window, waiter.quit)
    window.close_requested.connect(waiter.quit)  # closed before it painted: `main` ends the app
    QTimer.singleShot(FIRST_PAINT_TIMEOUT_MS, waiter.quit)
    window.show()
    window.composer.setFocus()
    waiter.exec()


async def run_window(window: MainWindow, controller: Controller, *, self_test: bool = False) -> int:
    """Show the window, start the engine after the first paint, and run until the window closes."""
    import asyncio

    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    window.close_requested.connect(closed.set)
    if not window.isVisible():  # `main` has shown and painted it already
        painted = loop.create_future()
        _FirstPaint(window, lambda: painted.done() or painted.set_result(None))
        window.show()
        window.composer.setFocus()
        try:
            await asyncio.wait_for(painted, timeout=FIRST_PAINT_TIMEOUT_MS / 1000)
        except asyncio.TimeoutError:  # some platforms never paint a hidden/minimised window
            pass
    controller.start()
    result = 0
    if self_test:
        result = await _self_test(window, controller)
        window.close()
    await closed.wait()
    await controller.shutdown()
    return result


async def _self_test(window: MainWindow, controller: Controller) -> int:
    import asyncio

    loop = asyncio.get_running_loop()
    outcome: asyncio.Future = loop.create_future()
    controller.engine_loaded.connect(lambda: outcome.done() or outcome.set_result(None))
    controller.engine_failed.connect(lambda m: outcome.done() or outcome.set_result(m))
    if controller.ready:
        outcome.set_result(None)
    try:
        error = await asyncio.wait_for(outcome, SELF_TEST_TIMEOUT_S)
    except asyncio.TimeoutError:
        error = f"the engine was not ready after {SELF_TEST_TIMEOUT_S:.0f} s"
    if error:
        print(f"self-test failed: {error}", file=sys.stderr)
        return 1
    documents = window.documents_panel.list.count()
    error, summary = await _self_test_answer(controller)
    if error:
        print(f"self-test failed: {error}", file=sys.stderr)
        return 1
    print(f"self-test ok: window painted, engine ready, {documents} documents indexed, {summary}")
    return 0


async def _self_test_answer(controller: Controller) -> tuple[str | None, str]:
    """Ask SELF_TEST_QUESTION through the window's own path; (error or None, summary of the answer)."""
    import asyncio

    loop = asyncio.get_running_loop()
    started = loop.time()
    finished: asyncio.Future = loop.create_future()
    card = controller.answers.ask(SELF_TEST_QUESTION)
    controller.answers.answer_finished.connect(
        lambda c: c is card and not finished.done() and finished.set_result(None))
    try:
        await asyncio.wait_for(finished, SELF_TEST_TIMEOUT_S)
    except asyncio.TimeoutError:
        controller.answers.stop()
        return f"no answer after {SELF_TEST_TIMEOUT_S:.0f} s", ""
    answer = card.answer  # the answer's state, as its controller folded it
    if answer is None or answer.status != "completed" or not answer.text.strip():
        return f"the answer did not complete ({card.state}: {card.status_text})", ""
    attributions = answer.sentence_attributions()
    if not attributions:
        return "the answer completed but no attributions arrived", ""
    supported = sum(1 for a in attributions if a.supported)
    return None, (f"answered in {loop.time() - started:.1f} s with {len(attributions)} attributions "
                  f"({supported} supported)")


def main(argv: list[str] | None = None) -> int:
    """Run the desktop app; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    self_test = "--self-test" in argv
    qt_args = [a for a in argv if a != "--self-test"]
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("sourcelight")
    # The window's close runs the async shutdown (stop the model, close the
    # index) before the loop ends; Qt must not quit the loop under it.
    app.setQuitOnLastWindowClosed(False)
    window = make_window()
    show_until_painted(window)
    if window.closing:  # closed before the engine or the event loop existed: nothing to shut down
        window.deleteLater()
        return 0

    import asyncio

    import qasync

    loop = qasync.QEventLoop(app)
    executor = make_executor()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    window, controller = build(window=window)

    # Ctrl+C in a terminal closes the window the normal way. Python only runs
    # signal handlers when it gets control, so a timer hands it control.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.setInterval(250)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start()
    try:
        with loop:
            code = loop.run_until_complete(run_window(window, controller, self_test=self_test))
    finally:
        heartbeat.stop()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # Work nobody waits for any more (a half-done model load) must not keep
        # the process alive; running calls finish, queued ones are dropped.
        executor.shutdown(wait=False, cancel_futures=True)
    window.deleteLater()
    return code


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())

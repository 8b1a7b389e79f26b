"""One timed launch for `sourcelight bench startup`, run as a script in a fresh process.

    python gui/bench/startup_probe.py app    # the real app entry, gui.app.main([])
    python gui/bench/startup_probe.py bare   # a bare PySide6 window with a text box

It is run by path (not `-m gui.bench...`) so nothing but what the launch
itself needs is imported. The app itself is not changed: `gui.app.make_window`
and `gui.app.build` are wrapped (the composition root looks them up at call
time) to watch the window the real `main` makes, from before it is shown,
and to connect to its controller. Marks are `time.monotonic()` (CLOCK_MONOTONIC,
shared with the parent process, which subtracts its own launch time):

- `painted`: the first paint of the window has finished (a zero timer posted
  from the Paint event fires after the paint and the flush it belongs to);
- `focused`: the question box (bare: the text box) has keyboard focus;
- `ready` (app only): the controller's `engine_loaded` (embedding model
  loaded, Chroma open, lexical index current; on a fresh SOURCELIGHT_HOME
  this includes indexing the built-in sample guide). The window is then
  closed through its normal path and the process exits.

The last line on stdout is `STARTUP_PROBE <json>`: the marks, the
interpreter start (`python_start`, from /proc when available) and any Qt
warnings.
"""
from __future__ import annotations

import json
import os
import sys
import time

MARKS: dict[str, float] = {"probe_start": time.monotonic()}
WARNINGS: list[str] = []
BEATS: list[float] = []  # heartbeat times from the window painted to ready (app only)
HEARTBEAT_MS = 4
TIMEOUT_S = float(os.environ.get("SOURCELIGHT_STARTUP_PROBE_TIMEOUT", "300"))
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints()"


def _mark(name: str) -> None:
    MARKS.setdefault(name, time.monotonic())


def _install_message_handler() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    def handle(kind, _context, message):
        if kind not in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg) and message.strip() != OFFSCREEN_NOISE:
            WARNINGS.append(message)
            print(f"Qt: {message}", file=sys.stderr, flush=True)

    qInstallMessageHandler(handle)


def _hook(window, focus_widget, on_shown) -> object:
    """Marks `painted` after the window's first paint and `focused` when `focus_widget` has focus."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class Hook(QObject):
        def eventFilter(self, watched, event) -> bool:  # Qt override
            kind = event.type()
            if kind == QEvent.Type.Paint and watched is window and "painted" not in MARKS:
                QTimer.singleShot(0, self._after_paint)
            elif kind == QEvent.Type.FocusIn and watched is focus_widget:
                _mark("focused")
                self._check()
            return False

        def _after_paint(self) -> None:
            _mark("painted")
            if focus_widget.hasFocus():
                _mark("focused")
            self._check()

        def _check(self) -> None:
            if "painted" in MARKS and "focused" in MARKS and "window" not in MARKS:
                MARKS["window"] = max(MARKS["painted"], MARKS["focused"])
                on_shown()

    hook = Hook(window)
    window.installEventFilter(hook)
    focus_widget.installEventFilter(hook)
    return hook


def _timeout(close) -> None:
    from PySide6.QtCore import QTimer

    def expire():
        MARKS["timed_out"] = time.monotonic()
        close()

    QTimer.singleShot(int(TIMEOUT_S * 1000), expire)


def _heartbeat(window):
    """A 4 ms precise timer on the window's thread from its first paint to ready: a gap between beats
    longer than 4 ms is the time the event loop could not answer input (docs/performance.md)."""
    from PySide6.QtCore import Qt, QTimer

    timer = QTimer(window)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(HEARTBEAT_MS)
    timer.timeout.connect(lambda: BEATS.append(time.monotonic()) if "ready" not in MARKS else timer.stop())
    return timer


def _stalls() -> dict:
    """Stall = gap between beats minus the interval, in ms: p50, p99, max over the loading time."""
    gaps = sorted(max(0.0, (b - a) * 1000 - HEARTBEAT_MS) for a, b in zip(BEATS, BEATS[1:]))
    if not gaps:
        return {}
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": gaps[-1], "beats": len(BEATS)}


def run_app() -> int:
    """The real app; it closes when retrieval is ready."""
    import gui.app as app_module

    _mark("imported")
    _install_message_handler()
    original_make_window, original_build = app_module.make_window, app_module.build

    def make_window():
        window = original_make_window()
        _mark("built")
        beat = _heartbeat(window)
        _hook(window, window.composer, beat.start)
        return window

    def build(*args, **kwargs):
        window, controller = original_build(*args, **kwargs)

        def ready():
            _mark("ready")
            window.close()  # the normal close: async shutdown, then main returns

        def failed(message):
            MARKS["failed"] = time.monotonic()
            WARNINGS.append(f"engine failed: {message}")
            window.close()

        controller.engine_loaded.connect(ready)
        controller.engine_failed.connect(failed)
        _timeout(window.close)
        return window, controller

    app_module.make_window, app_module.build = make_window, build
    code = app_module.main([])
    _mark("exited")
    return code


def run_bare() -> int:
    from PySide6.QtWidgets import QApplication, QMainWindow, QPlainTextEdit

    _mark("imported")
    _install_message_handler()
    app = QApplication([sys.argv[0]])
    window = QMainWindow()
    window.setWindowTitle("bare")
    window.resize(1280, 800)
    edit = QPlainTextEdit()
    window.setCentralWidget(edit)
    _mark("built")
    _hook(window, edit, app.quit)
    _timeout(app.quit)
    window.show()
    edit.setFocus()
    code = app.exec()
    _mark("exited")
    return code


def _python_start() -> float | None:
    """When this process started, on the monotonic clock (Linux: /proc/self/stat starttime)."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        # /proc/uptime and CLOCK_BOOTTIME agree; monotonic differs from boottime only by suspended time.
        boot_to_mono = time.monotonic() - time.clock_gettime(time.CLOCK_BOOTTIME)
        del uptime
        return start_ticks / os.sysconf("SC_CLK_TCK") + boot_to_mono
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "app"
    code = run_app() if mode.startswith("app") else run_bare()
    out = {"mode": mode, "marks": MARKS, "python_start": _python_start(), "qt_warnings": WARNINGS, "code": code,
           "stalls_ms": _stalls()}
    print("STARTUP_PROBE " + json.dumps(out), flush=True)
    return code


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main(sys.argv[1:]))

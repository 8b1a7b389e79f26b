"""Fixtures that run the real window on a qasync loop inside pytest-qt.

The session's qasync loop (`qloop`) and the offscreen-noise filter live in
tests/conftest.py, shared with the window fault tests.

`make_app` builds the real `MainWindow` and `Controller` through the
composition root (`gui.app.build`) with a real `Engine`: a real ChromaDB in
`tmp_path`, the real bundled embedder (`cached_embedder`, so the sample
guide is encoded once per session, not once per test), the built-in
sample corpus, and the backend the test passes (usually `ScriptedBackend`). The conversation history
lives in the same data directory (`history.sqlite3`); building a second app on
the same `data_dir` is how a test closes and reopens the app.
"""
from __future__ import annotations

import pytest

from tests.gui.helpers import run_async


@pytest.fixture
def make_app(qtbot, qloop, tmp_path, cached_embedder, verifier):
    """Build the real window + controller over a real Engine with the given backend."""
    from core.engine import Engine
    from core.history import HISTORY_FILE, HistoryStore
    from core.secrets import ApiKeyStore
    from core.settings import Settings

    from gui.app import build

    apps = []

    def make(backend, *, settings=None, index_sample_corpus: bool = True, wait_ready: bool = True,
             start: bool = True, engine_gate=None, engine_error: Exception | None = None, data_dir=None):
        settings = settings or Settings(top_k=4, max_tokens=200)
        data_dir = data_dir or tmp_path / f"data{len(apps)}"
        data_dir.mkdir(parents=True, exist_ok=True)

        def factory(s):
            if engine_gate is not None:  # lets a test hold the engine back ("still loading")
                engine_gate.wait(30)
            if engine_error is not None:
                raise engine_error
            return Engine(s, backend=backend, embedder=cached_embedder, data_dir=data_dir,
                          index_sample_corpus=index_sample_corpus, verifier=verifier)

        window, controller = build(settings=settings, engine_factory=factory,
                                   key_store=ApiKeyStore(environ={}), settings_path=tmp_path / "settings.json",
                                   history_factory=lambda: HistoryStore(data_dir / HISTORY_FILE))
        # Not qtbot.addWidget: pytest-qt would delete the window before this
        # fixture's teardown runs the app's own async shutdown against it.
        window.show()
        qtbot.waitExposed(window)
        apps.append((window, controller))
        if start and wait_ready:
            # engine_loaded comes after the documents list has been filled in.
            with qtbot.waitSignal(controller.engine_loaded, timeout=60_000):
                controller.start()
        elif start:
            controller.start()
        return window, controller

    yield make
    for window, controller in apps:
        run_async(qtbot, qloop, controller.shutdown())  # a second shutdown (the test closed it) does nothing
        window.close()
        window.deleteLater()
    qtbot.wait(1)  # let deleteLater run inside this test

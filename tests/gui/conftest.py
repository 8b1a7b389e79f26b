"""Fixtures that run the real window on a qasync loop inside pytest-qt.

The session's qasync loop (`qloop`) and the offscreen-noise filter live in
tests/conftest.py, shared with the window fault tests.

`make_app` builds the real `MainWindow` and `Controller` through the
composition root (`gui.app.build`) with a real `Engine`: a real ChromaDB in
`tmp_path`, the real bundled embedder, the built-in sample corpus, and the
backend the test passes (usually `ScriptedBackend`). The conversation history
lives in the same data directory (`history.sqlite3`); building a second app on
the same `data_dir` is how a test closes and reopens the app.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.gui.helpers import run_async


class CachingEmbedder:
    """The real bundled embedder, remembering vectors of texts it has seen.

    Every test indexes the same sample guide into its own fresh ChromaDB;
    the vectors are the real model's, computed once per session instead of
    once per test (encoding dominates a test's set-up on two busy cores).
    """

    def __init__(self, real):
        self._real = real
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._real.loaded

    def load(self) -> None:
        self._real.load()

    def encode(self, texts, batch_size=None) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._real.encode(missing, batch_size=batch_size)
            with self._lock:
                self._cache.update(zip(missing, vectors))
        if not texts:
            return self._real.encode([])
        with self._lock:
            return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


@pytest.fixture(scope="session")
def gui_embedder(embedder):
    return CachingEmbedder(embedder)


@pytest.fixture
def make_app(qtbot, qloop, tmp_path, gui_embedder):
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
            return Engine(s, backend=backend, embedder=gui_embedder, data_dir=data_dir,
                          index_sample_corpus=index_sample_corpus)

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

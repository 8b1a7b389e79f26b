"""Fixtures that run the real window (composition root, controller, real engine) for the fault cases.

The session's qasync loop (`qloop`) comes from tests/conftest.py, shared with
the window tests. `fault_app` builds the real `MainWindow` + `Controller` through
`gui.app.build` over a real `Engine` (ChromaDB in tmp_path, the bundled
embedder with a cache of vectors (`cached_embedder`), no sample corpus: each test indexes what it
needs) and the backend the test passes.
"""
from __future__ import annotations

import pytest

from tests.faults.gui.harness import TIMEOUT_MS, run_async

@pytest.fixture
def fault_app(qtbot, qloop, tmp_path, cached_embedder, verifier):
    """`fault_app(backend, docs=, embedder=, settings=, data_dir=)` -> (window, controller, engine)."""
    from core.engine import Engine
    from core.secrets import ApiKeyStore
    from core.settings import Settings

    from gui.app import build

    apps = []

    def make(backend, *, docs: dict[str, str] | None = None, embedder=None, settings=None, data_dir=None):
        settings = settings or Settings(top_k=3, max_tokens=200)
        data_dir = data_dir or tmp_path / f"data{len(apps)}"
        corpus = tmp_path / f"corpus{len(apps)}"
        corpus.mkdir()
        for name, text in (docs or {}).items():
            (corpus / name).write_text(text, encoding="utf-8")
        engines = []

        def factory(s):
            engine = Engine(s, backend=backend, embedder=embedder or cached_embedder, data_dir=data_dir,
                            index_sample_corpus=False, verifier=verifier)
            if docs:
                engine.ingest([corpus])
            engines.append(engine)
            return engine

        window, controller = build(settings=settings, engine_factory=factory, key_store=ApiKeyStore(environ={}),
                                   settings_path=tmp_path / "settings.json")
        # Not qtbot.addWidget: the app's own async shutdown must run against a live window.
        window.show()
        qtbot.waitExposed(window)
        apps.append((window, controller))
        controller.start()
        qtbot.waitUntil(lambda: controller.ready, timeout=TIMEOUT_MS)
        return window, controller, engines[0]

    yield make
    for window, controller in apps:
        run_async(qtbot, qloop, controller.shutdown(), timeout=TIMEOUT_MS)
        window.close()
        window.deleteLater()
    qtbot.wait(1)

"""Test-wide configuration.

Every test runs with its own data directory (SOURCELIGHT_HOME), Qt offscreen,
and the Hugging Face hub switched off, so nothing touches the real user
profile, a display or the network. The real bundled embedding model is shared
across the session because loading it costs seconds.

Window tests (tests/gui, tests/faults/gui) share one qasync loop. The app
runs on qasync's QEventLoop; in tests pytest-qt drives the Qt event loop
(`qtbot.waitSignal`, `waitUntil`), so the asyncio loop is created with
`already_running=True`: asyncio treats it as running and its callbacks fire
whenever Qt processes events. One loop serves the session (qasync's `stop()`
would call `QApplication.exit()`, which makes every later nested Qt loop
return at once); each test marks it running for itself, because other
suites' asyncio runners reset the running loop when they end.
"""
from __future__ import annotations

import asyncio
import os
import tempfile

# Before anything imports Qt or huggingface_hub.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("SOURCELIGHT_HOME", tempfile.mkdtemp(prefix="sourcelight-test-home-"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2, loaded once."""
    from core.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture(scope="session")
def verifier():
    """The shipped support verifier, loaded once (the window tests share it across their engines)."""
    from core.attribution.verifier import Verifier

    model = Verifier()
    model.load()
    return model


@pytest.fixture(scope="session")
def cached_embedder(embedder):
    """The real embedder behind a text -> vector cache, shared by the window and window-fault tests.

    They index the same few texts into fresh stores again and again; each is
    encoded once per session. Its `calls`/`texts` counters only ever grow, so
    tests compare them before and after.
    """
    from core.faults.base import CachingEmbedder

    return CachingEmbedder(embedder)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty data directory for one test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SOURCELIGHT_HOME", str(path))
    return path


# The offscreen platform plugin implements no size hints and warns whenever a
# top-level window's minimum size is set - every QMainWindow does. That is the
# test platform talking, not the app; nothing else is ignored.
OFFSCREEN_NOISE = r"This plugin does not support propagateSizeHints\(\)"
WINDOW_TEST_DIRS = ("/tests/gui/", "/tests/faults/gui/")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(d in str(item.fspath).replace("\\", "/") for d in WINDOW_TEST_DIRS):
            # pytest-qt reads only the closest qt_log_ignore marker: merge a
            # test's own patterns with this one into a marker placed first.
            own = [p for m in item.iter_markers("qt_log_ignore") for p in m.args]
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE, *own), append=False)


@pytest.fixture(scope="session")
def _session_qloop(qapp):
    import qasync

    from gui.app import make_executor

    loop = qasync.QEventLoop(qapp, already_running=True)
    # The app's own executor (plain threads): qasync's default QThread pool
    # would abort the interpreter at exit, since this loop is never closed.
    executor = make_executor()
    loop.set_default_executor(executor)
    yield loop
    executor.shutdown(wait=True, cancel_futures=True)
    asyncio.events._set_running_loop(None)


@pytest.fixture
def qloop(_session_qloop):
    """The qasync loop, running (as far as asyncio knows) for this test."""
    loop = _session_qloop
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    yield loop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)

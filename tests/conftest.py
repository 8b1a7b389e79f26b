"""Test-wide configuration.

Every test runs with its own data directory (SOURCELIGHT_HOME), Qt offscreen,
and the Hugging Face hub switched off, so nothing touches the real user
profile, a display or the network. The real bundled embedding model is shared
across the session because loading it costs seconds.
"""
from __future__ import annotations

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


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty data directory for one test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SOURCELIGHT_HOME", str(path))
    return path

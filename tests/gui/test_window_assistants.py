"""The real window answering through the Assistants API mode: the run's status in the answer card, Stop.

The window, controller and engine are the real ones (`make_app`); the model
is the real `OpenAIAssistantsBackend` and `openai` client, talking to the
scripted loopback server (`core.faults.fake_openai`) that replays an
Assistants v2 run (tests/core/llm/assistants_wire.py: the founding
document's payloads byte for byte, the SDK's shapes elsewhere). The test
records what the card's state line says each time it changes.
"""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.faults.fake_openai import MODEL, AssistantsRoutes, FakeOpenAIServer
from core.llm.assistants import OpenAIAssistantsBackend
from tests.core.llm import assistants_wire as wire
from tests.core.llm.assistants_wire import assert_cleaned_up

QUESTION = "How do I stop an answer early?"
TIMEOUT = 60_000


@pytest.fixture
def server():
    srv = FakeOpenAIServer().start()
    yield srv
    srv.stop()


def assistants_backend(server: FakeOpenAIServer, name: str, run) -> tuple[OpenAIAssistantsBackend, AssistantsRoutes]:
    routes = AssistantsRoutes(run)
    server.scripts[name] = routes
    return OpenAIAssistantsBackend(MODEL, server.url(name), "sk-test-0123456789abcdef", 10.0, max_retries=0), routes


def submit(qtbot, window, question: str = QUESTION):
    """Type the question and press Enter; returns its card, with every status line it shows recorded."""
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, question)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    shown: list[str] = []
    card.state_changed.connect(lambda c, state: shown.append(c.status_text))
    return card, shown


def in_order(seen: list[str], expected: list[str]) -> bool:
    """Whether `expected` appears in `seen` in this order (other lines may come between)."""
    it = iter(seen)
    return all(any(line == want for line in it) for want in expected)


def test_the_card_shows_the_runs_status_then_the_answer_with_the_models_citation(qtbot, make_app, server):
    backend, routes = assistants_backend(server, "window-happy", wire.happy_run)
    window, controller = make_app(backend)
    card, shown = submit(qtbot, window)
    qtbot.waitUntil(lambda: card.finished, timeout=TIMEOUT)

    assert card.state == "completed", card.status_text
    assert card.server_statuses == wire.STATUS_SEQUENCE
    assert in_order(shown, ["The server accepted the question...", "Queued on the server...",
                            "The assistant is working on the answer...", "Calling a tool (get_weather)...",
                            "Writing...", "Answered"]), shown
    assert card.status_text == "Answered"
    number = next(n for n, c in enumerate(card.chunks, start=1) if wire.QUOTE in " ".join(c.text.split()))
    assert card.answer_text == wire.ANSWER.replace(wire.MARKER, f"[{number}]")
    first = card.attributions()[0]
    assert first.cited == (number,) and first.citation_agrees is True
    assert_cleaned_up(routes, cancelled=False)
    assert not window.busy


def test_stop_cancels_the_run_on_the_server_and_keeps_the_partial_answer(qtbot, make_app, server):
    stalled = wire.StalledRun()
    backend, routes = assistants_backend(server, "window-stop", stalled)
    window, controller = make_app(backend)
    card, shown = submit(qtbot, window)
    qtbot.waitUntil(lambda: card.answer_text == "".join(wire.PARTIAL), timeout=TIMEOUT)
    assert card.state == "streaming" and card.status_text == "Writing...", (card.state, card.status_text)
    assert "Calling a tool (get_weather)..." in shown

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)

    assert card.state == "cancelled" and "partial answer is kept" in card.status_text
    assert card.answer_text == "".join(wire.PARTIAL)
    assert_cleaned_up(routes, cancelled=True)
    assert not window.busy

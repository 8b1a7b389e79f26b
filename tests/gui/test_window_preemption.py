"""Actions that overlap in the real window: questions asked (or stopped) while an earlier answer still ends.

A stopped answer does not end at once: the run ends with its `Cancelled`
event only once the model has stopped, and the next question waits for that
(the local model cannot answer two questions at once). These tests drive the
real `MainWindow` + `Controller` over a real `Engine` and `HistoryStore`
(real ChromaDB and embedder, the sample guide) with a scripted model that,
like the local one, takes a moment to stop: it holds its cancellation until
the test releases it, so "while the first answer is still ending" is a state
the test waits for, not a race. The same goes for Settings saved twice while
the first save still builds its backend (held by a gate). Waits are on
signals or conditions; nothing sleeps.
"""
from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.fakes import Script, ScriptedBackend
from tests.gui.test_window_answers import ask
from tests.gui.test_window_history import saved

TIMEOUT = 60_000
SOON = 10_000  # for what must happen without waiting for the first answer to end
NOT_BEGUN = "Stopped before the answer began."


class SlowToStop(ScriptedBackend):
    """A scripted model that, once cancelled in a stall, stops only when the test calls `release.set()`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = 0  # streams cancelled but not yet stopped
        self.release = asyncio.Event()

    async def _stall(self) -> None:
        try:
            await super()._stall()
        except asyncio.CancelledError:
            self.stopping += 1
            try:
                await self.release.wait()
            finally:
                self.stopping -= 1
            raise


def submit(qtbot, window, question: str):
    """Type `question` and press Enter; return its card at once (its answer has not ended)."""
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, question)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    assert card.question == question
    return card


def saved_conversation(qtbot, controller) -> int:
    """The id of the open conversation once its first question has created it."""
    qtbot.waitUntil(lambda: controller.conversation_id is not None, timeout=TIMEOUT)
    return controller.conversation_id


def stored(controller) -> list[tuple[str, str]]:
    return [(t.question, t.status) for t in controller.history.turns(controller.conversation_id)]


def test_a_third_question_stops_the_second_while_it_waits_for_the_first_to_end(qtbot, make_app):
    backend = SlowToStop.sequence(Script(pieces=["Slow ", "answer"], stall_after=1), Script(pieces=["Third answer."]))
    window, controller = make_app(backend)
    first = submit(qtbot, window, "First?")
    qtbot.waitUntil(lambda: backend.stalled == 1, timeout=TIMEOUT)
    second = submit(qtbot, window, "Second?")  # stops the first, then waits for it to end
    qtbot.waitUntil(lambda: backend.stopping == 1, timeout=TIMEOUT)
    third = submit(qtbot, window, "Third?")  # the user changed their mind again
    # The second question is stopped now, not generated in full once the first has ended.
    qtbot.waitUntil(lambda: second.finished, timeout=SOON)
    assert second.state == "cancelled" and second.status_text == NOT_BEGUN
    assert not first.finished and window.busy  # the first is still ending; the third waits for it

    backend.release.set()
    qtbot.waitUntil(lambda: third.finished, timeout=TIMEOUT)
    assert first.state == "cancelled" and first.answer_text == "Slow "
    assert third.state == "completed" and third.answer_text == "Third answer."
    assert [c.messages[-1].content for c in backend.calls] == ["First?", "Third?"]
    assert not window.busy
    # Every turn is kept, in the order asked.
    saved(qtbot, third)
    assert stored(controller) == [("First?", "cancelled"), ("Second?", "cancelled"), ("Third?", "completed")]


def test_esc_right_after_a_new_question_stops_that_question(qtbot, make_app):
    backend = SlowToStop.sequence(Script(pieces=["Slow ", "answer"], stall_after=1), Script(pieces=["Next answer."]))
    window, controller = make_app(backend)
    first = submit(qtbot, window, "First?")
    qtbot.waitUntil(lambda: backend.stalled == 1, timeout=TIMEOUT)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    second = submit(qtbot, window, "Second?")
    qtbot.keyClick(window.composer, Qt.Key.Key_Escape)  # Enter, then Esc at once

    qtbot.waitUntil(lambda: second.finished and not window.busy, timeout=SOON)
    assert second.state == "cancelled" and second.status_text == NOT_BEGUN
    assert not window.stop_button.isEnabled()
    backend.release.set()
    qtbot.waitUntil(lambda: first.finished, timeout=TIMEOUT)
    assert first.state == "cancelled" and first.answer_text == "Slow "
    saved(qtbot, second)
    assert stored(controller) == [("First?", "cancelled"), ("Second?", "cancelled")]
    # The stopped question never reached the model, and the window answers the next one.
    third = ask(qtbot, window, controller, "Next?")
    assert third.state == "completed" and third.answer_text == "Next answer."
    assert [c.messages[-1].content for c in backend.calls] == ["First?", "Next?"]


def test_esc_while_a_question_waits_behind_one_waiting_for_the_models_finishes_both(qtbot, make_app):
    gate = threading.Event()
    backend = ScriptedBackend(["Unused."])
    window, controller = make_app(backend, wait_ready=False, engine_gate=gate)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    first = submit(qtbot, window, "First?")  # waits for the models
    second = submit(qtbot, window, "Second?")  # stops the first; waits for its task to end
    qtbot.keyClick(window.composer, Qt.Key.Key_Escape)

    # Both cards say they stopped (none keeps waiting for the models), and the window is free.
    qtbot.waitUntil(lambda: first.finished and second.finished and not window.busy, timeout=SOON)
    assert (first.state, first.status_text) == ("cancelled", NOT_BEGUN)
    assert (second.state, second.status_text) == ("cancelled", NOT_BEGUN)
    saved(qtbot, second)
    assert stored(controller) == [("First?", "cancelled"), ("Second?", "cancelled")]
    with qtbot.waitSignal(controller.engine_loaded, timeout=TIMEOUT):
        gate.set()
    assert backend.calls == []


def test_a_question_sent_right_after_opening_another_conversation_is_asked_there(qtbot, make_app):
    backend = SlowToStop.sequence(Script(pieces=["Press Esc to stop."]),
                                  Script(pieces=["Slow ", "answer"], stall_after=1),
                                  Script(pieces=["Asked in the first one."]))
    window, controller = make_app(backend)
    first = saved(qtbot, ask(qtbot, window, controller, "First?"))
    window.new_conversation_action.trigger()
    qtbot.waitUntil(lambda: controller.conversation_id is None and not controller.answers.turns, timeout=TIMEOUT)
    streaming = submit(qtbot, window, "Second?")
    qtbot.waitUntil(lambda: backend.stalled == 1, timeout=TIMEOUT)
    second_id = saved_conversation(qtbot, controller)

    # Click the first conversation in the list, then at once send a question:
    # the answer in the second conversation is still stopping meanwhile.
    panel = window.conversation_list
    qtbot.waitUntil(lambda: first.conversation_id in panel.conversation_ids(), timeout=TIMEOUT)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    panel.list.setFocus()
    panel.list.setCurrentItem(panel.item_for(first.conversation_id))
    qtbot.keyClick(panel.list, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: backend.stopping == 1, timeout=TIMEOUT)
    asked = submit(qtbot, window, "Third?")
    assert controller.conversation_id == first.conversation_id and asked in window.chat_view.answers()

    with qtbot.waitSignal(controller.conversations.conversation_opened, timeout=TIMEOUT):
        backend.release.set()
    qtbot.waitUntil(lambda: asked.finished, timeout=TIMEOUT)
    saved(qtbot, asked)
    # The question stayed in the chat, under the turn of the conversation it was asked in...
    assert [c.question for c in window.chat_view.answers()] == ["First?", "Third?"]
    assert asked.state == "completed" and asked.answer_text == "Asked in the first one."
    assert streaming.state == "cancelled" and streaming.answer_text == "Slow "
    # ...was answered with that conversation's earlier turn as context...
    assert [m.content for m in backend.calls[2].messages if m.role == "user"] == ["First?", "Third?"]
    # ...and is saved there; the stopped answer is saved in the conversation it was asked in.
    assert [t.question for t in controller.history.turns(first.conversation_id)] == ["First?", "Third?"]
    assert [(t.question, t.status) for t in controller.history.turns(second_id)] == [("Second?", "cancelled")]


def test_a_question_sent_right_after_new_conversation_starts_the_new_conversation(qtbot, make_app):
    backend = SlowToStop.sequence(Script(pieces=["Slow ", "answer"], stall_after=1), Script(pieces=["A fresh answer."]))
    window, controller = make_app(backend)
    streaming = submit(qtbot, window, "First?")
    qtbot.waitUntil(lambda: backend.stalled == 1, timeout=TIMEOUT)
    first_id = saved_conversation(qtbot, controller)

    window.new_conversation_action.trigger()
    qtbot.waitUntil(lambda: backend.stopping == 1, timeout=TIMEOUT)
    asked = submit(qtbot, window, "Second?")
    assert asked in window.chat_view.answers() and streaming not in window.chat_view.answers()

    backend.release.set()
    qtbot.waitUntil(lambda: asked.finished and streaming.finished, timeout=TIMEOUT)
    saved(qtbot, asked)
    assert [c.question for c in window.chat_view.answers()] == ["Second?"]
    assert asked.state == "completed" and streaming.state == "cancelled"
    assert [m.content for m in backend.calls[1].messages if m.role == "user"] == ["Second?"]  # no old context
    assert controller.conversation_id not in (None, first_id)
    assert [t.question for t in controller.history.turns(controller.conversation_id)] == ["Second?"]
    assert [(t.question, t.status) for t in controller.history.turns(first_id)] == [("First?", "cancelled")]


def open_settings(qtbot, window, controller):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window.composer, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: controller.settings_dialog is not None and controller.settings_dialog.isVisible())
    return controller.settings_dialog


def click_save(qtbot, dialog) -> None:
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)


@pytest.fixture
def slow_backend_build(monkeypatch):
    """Backends are built only once the test sets `release`; `building` is set when a build has begun."""
    import gui.controllers.support as support

    real = support.make_backend
    gate = SimpleNamespace(building=threading.Event(), release=threading.Event())

    def slow_make_backend(settings, key):  # the first build imports the openai SDK: seconds on a cold disk
        gate.building.set()
        gate.release.wait(30)
        return real(settings, key)

    monkeypatch.setattr(support, "make_backend", slow_make_backend)
    yield gate
    gate.release.set()  # never leave a worker thread waiting


def uses(controller, window, model: str, temperature: float) -> None:
    """The engine answers with these saved settings, and the window says which backend it uses."""
    backend = controller.engine.backend
    assert model in backend.description and "127.0.0.1:9" in backend.description
    assert window.backend_label.text() == backend.description
    assert controller.engine.settings.temperature == temperature
    saved = json.loads(controller.settings_path.read_text(encoding="utf-8"))
    assert (saved["backend"], saved["model"], saved["temperature"]) == ("openai_compatible", model, temperature)


def test_saving_settings_again_while_the_backend_switches_still_switches_it(qtbot, make_app, slow_backend_build):
    scripted = ScriptedBackend(["Unused."])
    window, controller = make_app(scripted)
    dialog = open_settings(qtbot, window, controller)
    dialog.set_value("backend", "openai_compatible")
    dialog.set_value("base_url", "http://127.0.0.1:9/v1")
    dialog.set_value("model", "tiny")
    click_save(qtbot, dialog)
    qtbot.waitUntil(slow_backend_build.building.is_set, timeout=TIMEOUT)  # the new backend is being built
    # The user opens Settings again at once and saves another change.
    qtbot.waitUntil(lambda: controller.settings_dialog is None)
    dialog = open_settings(qtbot, window, controller)
    assert dialog.value("backend") == "openai_compatible"
    dialog.set_value("temperature", 0.5)
    click_save(qtbot, dialog)

    slow_backend_build.release.set()
    qtbot.waitUntil(lambda: controller.settings.temperature == 0.5 and not controller.tasks.running("apply-settings"),
                    timeout=TIMEOUT)
    assert controller.engine.backend is not scripted and scripted.closed
    uses(controller, window, "tiny", 0.5)


def test_a_save_stopped_during_its_backend_switch_leaves_the_switch_to_the_next_save(qtbot, make_app,
                                                                                     slow_backend_build):
    scripted = ScriptedBackend(["Unused."])
    window, controller = make_app(scripted)
    first = replace(controller.settings, backend="openai_compatible", base_url="http://127.0.0.1:9/v1", model="tiny")
    stopped = controller.tasks.start("apply-settings", controller.settings_controller.apply_settings(first))
    qtbot.waitUntil(slow_backend_build.building.is_set, timeout=TIMEOUT)
    stopped.cancel()  # its settings are on disk; the backend is not switched yet
    qtbot.waitUntil(stopped.done)
    slow_backend_build.release.set()

    with qtbot.waitSignal(controller.settings_controller.settings_applied, timeout=TIMEOUT):
        # No backend field differs from `first`, but the backend was never built from it.
        controller.tasks.start("apply-settings",
                               controller.settings_controller.apply_settings(replace(first, temperature=0.5)))
    assert controller.engine.backend is not scripted and scripted.closed
    uses(controller, window, "tiny", 0.5)

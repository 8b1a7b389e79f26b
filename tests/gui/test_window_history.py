"""Conversations that last, in the real window: reopen with identical highlights, follow-ups, list, export.

Every test drives the real `MainWindow` + `Controller` over a real `Engine`
(real ChromaDB and embedder, the sample guide, the scripted model) and the
real `HistoryStore` in the test's data directory. "Closing and reopening the
app" is the app's own shutdown followed by a second `build` on the same data
directory. Waits are on the controller's signals or on conditions; nothing
sleeps.
"""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QGuiApplication, QHelpEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QToolTip

from core.events import AnswerSentence, AttributionReady, RetrievedChunk, SupportSpan
from core.export import answer_to_markdown, to_markdown
from core.history import StoredTurn

from gui import theme
from tests.fakes import Script, ScriptedBackend
from tests.gui.helpers import run_async, settle
from tests.core.test_history import not_a_claim_turn
from tests.gui.test_window_answers import (ANSWER, ANSWER_TEXT, QUESTION, ask, doc_text, extra_ranges, has_background,
                                           is_wavy)

TIMEOUT = 60_000


def saved(qtbot, card):
    """Wait until `card`'s turn is durable in history; return the stored turn."""
    qtbot.waitUntil(lambda: card.record is not None and card.record.id is not None, timeout=TIMEOUT)
    return card.record


def click_sentence(qtbot, window, card, index: int) -> dict:
    """Click sentence `index` of `card`; return what the window then shows, for comparing sessions."""
    # A card added to the visible chat is shown (and laid out) by queued events.
    qtbot.waitUntil(lambda: card.view.isVisible() and card.view.height() > 0)
    settle()
    qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton, pos=card.view.sentence_point(index))
    colors = theme.colors(card.view.palette())
    (start, end), = extra_ranges(card.view, has_background(colors.selected_sentence))
    attribution = window.sources_panel.attribution
    best = attribution.sources[0]
    source = window.sources_panel.card_for(best.chunk_id)
    (a, b), = extra_ranges(source.text_view, has_background(colors.support_span))[:1]
    return {"selected": card.view.selected_sentence, "range": (start, end),
            "sentence": doc_text(card.view, start, end), "chunk": best.chunk_id, "active": source.active,
            "spans": source.text_view.highlighted_spans(), "span_text": doc_text(source.text_view, a, b),
            "support": source.support_label.text(), "caption": window.sources_panel.caption.text(),
            "passages": [c.chunk_id for c in window.sources_panel.cards()]}


def open_from_list(qtbot, window, controller, conversation_id: int) -> None:
    """Open a conversation the way a keyboard user does: list focused, arrow to it, Enter."""
    panel = window.conversation_list
    qtbot.waitUntil(lambda: conversation_id in panel.conversation_ids(), timeout=TIMEOUT)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    panel.list.setFocus()
    panel.list.setCurrentItem(panel.item_for(conversation_id))
    with qtbot.waitSignal(controller.conversations.conversation_opened, timeout=TIMEOUT):
        qtbot.keyClick(panel.list, Qt.Key.Key_Return)


def test_a_conversation_survives_closing_and_reopening_the_app_with_identical_highlights(qtbot, qloop, make_app,
                                                                                          tmp_path):
    data_dir = tmp_path / "home"
    window, controller = make_app(ScriptedBackend(ANSWER), data_dir=data_dir)
    card = ask(qtbot, window, controller)
    turn = saved(qtbot, card)
    before = click_sentence(qtbot, window, card, 1)
    assert before["sentence"] == "The part of the answer already written is kept."
    conversation_id = controller.conversation_id
    assert conversation_id == turn.conversation_id
    run_async(qtbot, qloop, controller.shutdown())  # the app closes the normal way
    window.close()

    window2, controller2 = make_app(ScriptedBackend(["Unused."]), data_dir=data_dir)
    open_from_list(qtbot, window2, controller2, conversation_id)
    reopened = window2.chat_view.last_answer()
    assert [a.question for a in window2.chat_view.answers()] == [QUESTION]
    assert reopened.state == "completed" and reopened.answer_text == ANSWER_TEXT
    assert reopened.view.is_markdown and reopened.view.toPlainText() == card.view.toPlainText()
    assert reopened.attributions() == card.attributions()
    assert window2.current_answer is reopened
    after = click_sentence(qtbot, window2, reopened, 1)
    assert after == before
    # The unsupported sentence is marked as it was.
    assert extra_ranges(reopened.view, lambda f: f.underlineStyle() == f.UnderlineStyle.WaveUnderline) == \
        [reopened.view.sentence_range(2)]
    # The sample guide has no file on disk: no note under any passage.
    assert all(c.note is None for c in window2.sources_panel.cards())


def test_a_follow_up_question_is_asked_with_the_earlier_turn(qtbot, make_app):
    backend = ScriptedBackend.sequence(Script(pieces=ANSWER), Script(pieces=["It is kept until you ask again."]))
    window, controller = make_app(backend)
    first = ask(qtbot, window, controller)
    second = ask(qtbot, window, controller, "Is the partial answer kept?")
    assert second.state == "completed"
    assert [(m.role, m.content) for m in backend.calls[0].messages if m.role != "system"] == [("user", QUESTION)]
    follow_up = [(m.role, m.content) for m in backend.calls[1].messages if m.role != "system"]
    assert follow_up[0] == ("user", QUESTION)
    assert follow_up[1][0] == "assistant" and follow_up[1][1].startswith("Press **Esc** or click Stop")
    assert follow_up[-1] == ("user", "Is the partial answer kept?")
    # Both turns are in one conversation, in order.
    saved(qtbot, second)
    turns = controller.history.turns(controller.conversation_id)
    assert [t.question for t in turns] == [QUESTION, "Is the partial answer kept?"]
    assert turns[0].answer == first.answer_text


def test_delete_moves_a_conversation_to_the_trash_and_undo_brings_it_back(qtbot, make_app):
    window, controller = make_app(ScriptedBackend(ANSWER))
    card = ask(qtbot, window, controller)
    turn = saved(qtbot, card)
    panel = window.conversation_list
    qtbot.waitUntil(lambda: panel.conversation_ids() == [turn.conversation_id])
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    panel.list.setFocus()
    panel.list.setCurrentItem(panel.item_for(turn.conversation_id))
    with qtbot.waitSignal(controller.conversations.conversation_deleted, timeout=TIMEOUT):
        qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: panel.conversation_ids() == [])
    assert window.chat_view.answers() == [] and controller.conversation_id is None  # it was open: a new chat
    assert window.banner.isVisible() and window.banner.action == "Undo"
    assert "Deleted" in window.banner.text
    assert window.banner.action_button.accessibleName() == "Undo deleting the conversation"

    with qtbot.waitSignal(controller.conversations.conversation_opened, timeout=TIMEOUT):  # it was open: it opens again
        qtbot.mouseClick(window.banner.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.conversation_ids() == [turn.conversation_id])
    assert not window.banner.isVisible()
    assert [a.answer_text for a in window.chat_view.answers()] == [ANSWER_TEXT]
    assert controller.conversation_id == turn.conversation_id


def test_f2_renames_a_conversation_in_place(qtbot, make_app):
    window, controller = make_app(ScriptedBackend(ANSWER))
    turn = saved(qtbot, ask(qtbot, window, controller))
    panel = window.conversation_list
    qtbot.waitUntil(lambda: panel.titles() == [QUESTION])
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    panel.list.setFocus()
    panel.list.setCurrentItem(panel.item_for(turn.conversation_id))
    qtbot.keyClick(panel.list, Qt.Key.Key_F2)
    editor = panel.list.findChild(QLineEdit)
    assert editor is not None and editor.text() == QUESTION
    editor.selectAll()
    qtbot.keyClicks(editor, "Stopping answers")
    with qtbot.waitSignal(controller.conversations.conversation_renamed, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert blocker.args == [turn.conversation_id, "Stopping answers"]
    qtbot.waitUntil(lambda: panel.titles() == ["Stopping answers"])
    assert controller.history.conversation(turn.conversation_id).title == "Stopping answers"


def test_the_search_box_filters_conversations_by_their_text(qtbot, make_app):
    backend = ScriptedBackend.sequence(Script(pieces=ANSWER), Script(pieces=["Kettles boil water quickly."]))
    window, controller = make_app(backend)
    first = saved(qtbot, ask(qtbot, window, controller))
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window.composer, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)  # New conversation
    qtbot.waitUntil(lambda: window.chat_view.answers() == [] and controller.conversation_id is None)
    assert window.conversation_list.selected_id() is None
    second = saved(qtbot, ask(qtbot, window, controller, "What about tea?"))
    assert second.conversation_id != first.conversation_id
    panel = window.conversation_list
    qtbot.waitUntil(lambda: sorted(panel.conversation_ids()) == sorted([first.conversation_id,
                                                                          second.conversation_id]))
    # The answer's words count too, not only titles and questions.
    panel.search.setFocus()
    qtbot.keyClicks(panel.search, "kettles")
    qtbot.waitUntil(lambda: panel.conversation_ids() == [second.conversation_id], timeout=TIMEOUT)
    panel.search.clear()
    qtbot.keyClicks(panel.search, "answer EARLY")
    qtbot.waitUntil(lambda: panel.conversation_ids() == [first.conversation_id], timeout=TIMEOUT)
    panel.search.clear()
    qtbot.keyClicks(panel.search, "no such words")
    qtbot.waitUntil(lambda: panel.conversation_ids() == [] and panel.empty_label.isVisibleTo(panel),
                    timeout=TIMEOUT)
    assert "No conversation matches" in panel.empty_label.text()


def test_copy_answer_with_citations_puts_footnoted_markdown_on_the_clipboard(qtbot, make_app):
    window, controller = make_app(ScriptedBackend(ANSWER))
    card = ask(qtbot, window, controller)
    turn = saved(qtbot, card)
    QGuiApplication.clipboard().clear()
    assert card.copy_button.isVisible()
    with qtbot.waitSignal(controller.answers.answer_copied):
        qtbot.mouseClick(card.copy_button, Qt.MouseButton.LeftButton)
    text = QGuiApplication.clipboard().text()
    assert text == answer_to_markdown(turn)
    assert "[^1]" in text and "\n[^1]: \u201c" in text  # a marker and its footnote quoting the span
    assert "\u26a0 *unsupported*" in text  # the moon sentence
    # The context menu of the answer offers the same.
    menu = card.context_menu(card.view.sentence_point(0))
    assert card.copy_action in menu.actions()
    menu.deleteLater()


def test_export_conversation_writes_the_markdown_of_every_turn(qtbot, make_app, tmp_path):
    backend = ScriptedBackend.sequence(Script(pieces=ANSWER), Script(pieces=["It is kept until you ask again."]))
    window, controller = make_app(backend)
    ask(qtbot, window, controller)
    ask(qtbot, window, controller, "Is the partial answer kept?")
    path = tmp_path / "conversation.md"
    with qtbot.waitSignal(controller.conversations.exported, timeout=TIMEOUT):
        window.export_requested.emit(str(path))  # what the File > Export dialog sends
    history = controller.history
    summary = history.conversation(controller.conversation_id)
    assert path.read_text(encoding="utf-8") == to_markdown(summary.title, history.turns(summary.id))
    assert "Is the partial answer kept?" in path.read_text(encoding="utf-8")


def _turn_about(path, text: str, question: str = "When does the museum open?") -> StoredTurn:
    """A stored turn whose one passage comes from the file `path` (its text as it was)."""
    chunk = RetrievedChunk(f"{path.name}#0", str(path), None, text, 0.8, 0.8, 0.5)
    answer = "The museum opens at nine [1]."
    attribution = AttributionReady(AnswerSentence(0, 0, len(answer), answer),
                                   (SupportSpan(chunk.id, 0, 25, text[:25], 0.9),), 0.9, True, (1,), True)
    return StoredTurn(question, answer, "completed", (chunk,), (attribution,), backend="scripted", model="m",
                      started_at=time.time(), finished_at=time.time(), finish_reason="stop")


def test_a_passage_whose_file_was_deleted_or_changed_since_shows_a_note(qtbot, make_app, tmp_path):
    window, controller = make_app(ScriptedBackend(["Unused."]))
    qtbot.waitUntil(lambda: controller.history is not None, timeout=TIMEOUT)
    history = controller.history
    gone, changed, same = (tmp_path / n for n in ("gone.md", "changed.md", "same.md"))
    for path in (gone, changed, same):
        path.write_text(f"The museum opens at nine. {path.stem} text.\n", encoding="utf-8")
    conversation_id = history.create_conversation("Museum")
    for path in (gone, changed, same):
        history.add_turn(conversation_id, _turn_about(path, path.read_text(encoding="utf-8")))
    gone.unlink()
    changed.write_text("The museum opens at ten now, and the text is longer.\n", encoding="utf-8")
    controller.conversations.refresh_conversations()
    open_from_list(qtbot, window, controller, conversation_id)

    notes = []
    for card in window.chat_view.answers():
        window.select_sentence(card, 0)
        source, = window.sources_panel.cards()
        # The stored text is what is shown, and the span still lights it.
        assert source.chunk.text == card.record.chunks[0].text
        assert source.text_view.highlighted_spans() == [(0, 25)]
        notes.append(source.note)
        if source.note:
            qtbot.waitUntil(source.note_label.isVisible)  # the new passage card is shown by a queued event
    assert notes[0] == ("gone.md has been moved or deleted since this answer was written; the passage shown is "
                        "the text as it was then.")
    assert notes[1].startswith("changed.md has changed since this answer was written")
    assert notes[2] is None


def hover_text(view, index: int) -> str:
    """The tooltip hovering sentence `index` shows (a real QHelpEvent through the viewport)."""
    point = view.sentence_point(index)
    viewport = view.viewport()
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.Type.ToolTip, point, viewport.mapToGlobal(point)))
    return QToolTip.text()


# Showing the tooltip raises its window, which the offscreen test platform cannot do.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_a_sentence_that_claims_nothing_is_not_underlined_while_an_unsupported_claim_is(qtbot, make_app):
    window, controller = make_app(ScriptedBackend(["Unused."]), index_sample_corpus=False)
    qtbot.waitUntil(lambda: controller.history is not None, timeout=TIMEOUT)
    turn = not_a_claim_turn()  # lead-in (not a claim), supported, unsupported, "could not find" (not a claim)
    conversation_id = controller.history.create_conversation("Gift cards")
    controller.history.add_turn(conversation_id, turn)
    controller.conversations.refresh_conversations()
    open_from_list(qtbot, window, controller, conversation_id)
    card = window.chat_view.last_answer()
    qtbot.waitUntil(lambda: len(card.attributions()) == 4 and card.view.isVisible() and card.view.height() > 0,
                    timeout=TIMEOUT)
    settle()
    view = card.view

    # Only the unsupported claim carries the red wavy underline.
    assert extra_ranges(view, is_wavy) == [view.sentence_range(2)]
    assert hover_text(view, 2).startswith("Not supported by the retrieved sources")
    for index in (0, 3):
        assert hover_text(view, index) == "Not a claim - nothing here to check against your documents."
    summary = card._summary.text()
    assert "1 supported by your documents" in summary and "1 not supported (underlined)" in summary
    assert "2 not claims" in summary

    # Clicking the lead-in lights no passage as weak support; the panel says there is nothing to check.
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.sentence_point(0))
    assert view.selected_sentence == 0
    caption = window.sources_panel.caption.text()
    assert caption.endswith("\nNot a claim - nothing here to check against your documents.")
    (passage,) = window.sources_panel.cards()
    assert passage.support_label.isHidden() and passage.text_view.highlighted_spans() == []
    assert not passage.active
    # The unsupported claim still shows its weak support there.
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.sentence_point(2))
    assert "Not supported by these passages" in window.sources_panel.caption.text()
    assert passage.support_label.text() == "Support 0.22 (weak)"


@pytest.mark.slow
def test_reopening_a_200_turn_conversation_paints_its_latest_answers_first(qtbot, make_app):
    window, controller = make_app(ScriptedBackend(ANSWER))
    template = saved(qtbot, ask(qtbot, window, controller))
    history = controller.history
    conversation_id = history.create_conversation("Two hundred questions")
    for i in range(200):
        history.add_turn(conversation_id, replace(template, question=f"Question {i}?", id=None,
                                                  conversation_id=None, position=None))
    controller.conversations.refresh_conversations()
    qtbot.waitUntil(lambda: conversation_id in window.conversation_list.conversation_ids(), timeout=TIMEOUT)

    painted: list[float] = []

    class PaintWatch(QObject):
        def eventFilter(self, watched, event):  # Qt override
            if event.type() == QEvent.Type.Paint and window.chat_view.answers():
                painted.append(time.perf_counter())  # the reopened answers are on screen (not the emptied chat)
            return False

    watch = PaintWatch()
    column = window.chat_view.widget()  # the widget holding the messages (it covers the viewport)
    column.installEventFilter(watch)
    started = time.perf_counter()
    with qtbot.waitSignal(controller.conversations.conversation_opened, timeout=TIMEOUT):
        controller.conversations.open_conversation(conversation_id)
    built = time.perf_counter()
    qtbot.waitUntil(lambda: bool(painted), timeout=TIMEOUT)
    column.removeEventFilter(watch)
    print(f"\nreopening a 200-turn conversation: {(painted[0] - started) * 1000:.0f} ms until the first paint "
          f"showing its latest answer, {(built - started) * 1000:.0f} ms until its last "
          f"{len(window.chat_view.answers())} answers were built (the window stays live meanwhile)")

    answers = window.chat_view.answers()
    assert [a.question for a in answers] == [f"Question {i}?" for i in range(180, 200)]
    assert all(a.state == "completed" and len(a.attributions()) == 3 for a in answers)
    assert window.chat_view.earlier_button.isVisible()
    bar = window.chat_view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.maximum() > 0)
    # Scrolling to the top brings the previous page in above, and the reader stays where they were.
    reading = answers[0]
    with qtbot.waitSignal(controller.conversations.earlier_loaded, timeout=TIMEOUT):
        bar.setValue(0)
    assert len(window.chat_view.answers()) == 40
    assert window.chat_view.answers()[0].question == "Question 160?"
    qtbot.waitUntil(lambda: bar.value() > 0)
    top = reading.mapTo(window.chat_view.widget(), reading.rect().topLeft()).y()
    assert abs(bar.value() - top) < window.chat_view.viewport().height()
    # The button loads the next page too.
    with qtbot.waitSignal(controller.conversations.earlier_loaded, timeout=TIMEOUT):
        qtbot.mouseClick(window.chat_view.earlier_button, Qt.MouseButton.LeftButton)
    assert len(window.chat_view.answers()) == 60

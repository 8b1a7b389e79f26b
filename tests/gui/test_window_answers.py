"""The real window answering questions: streaming, click-to-highlight both ways, Stop, errors.

Every test drives the real `MainWindow` and `Controller` (built by the
composition root) over a real `Engine`: real ChromaDB in tmp_path, the real
bundled embedder, the built-in sample corpus; only the language model is the
scripted `ScriptedBackend`. Expected spans come from the engine's own
`AttributionReady` events as the window received them; the checks read what
the widgets really hold (extra selections, document text, labels).
"""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QColor, QHelpEvent, QPalette, QTextCharFormat
from PySide6.QtWidgets import QApplication, QToolTip, QWidget

from core.errors import BackendUnavailable, StoreError
from core.export import answer_to_markdown

from gui import theme
from tests.fakes import Script, ScriptedBackend

QUESTION = "How do I stop an answer early?"
# Two sentences the sample guide supports, one it cannot (the moon).
ANSWER = ["Press **Esc** or click ", "Stop to stop an answer early. ", "The part of the answer already ",
          "written is kept. ", "Sourcelight was first released on the moon in 1969."]
ANSWER_TEXT = "".join(ANSWER)
TIMEOUT = 60_000


def ask(qtbot, window, controller, question: str = QUESTION):
    """Type `question` into the box and press Enter; wait until its answer has ended."""
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, question)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    assert card.question == question
    qtbot.waitUntil(lambda: card.finished, timeout=TIMEOUT)
    return card


def extra_ranges(view, predicate) -> list[tuple[int, int]]:
    return [(s.cursor.selectionStart(), s.cursor.selectionEnd()) for s in view.extraSelections()
            if predicate(s.format)]


def has_background(color):
    return lambda fmt: fmt.background().style() != Qt.BrushStyle.NoBrush and fmt.background().color() == color


def is_wavy(fmt: QTextCharFormat) -> bool:
    return fmt.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline


def doc_text(view, start: int, end: int) -> str:
    """Text of a document range, with Qt's paragraph separators as newlines."""
    cursor = view.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, cursor.MoveMode.KeepAnchor)
    return cursor.selectedText().replace("\u2029", "\n")


@pytest.fixture
def answered(qtbot, make_app):
    backend = ScriptedBackend(ANSWER)
    window, controller = make_app(backend)
    card = ask(qtbot, window, controller)
    # Attributions of all three sentences arrive before the run completes.
    assert len(card.attributions()) == 3
    return window, controller, card, backend


def test_the_answer_streams_into_the_window_and_renders_as_markdown(answered):
    window, controller, card, backend = answered
    assert card.state == "completed" and card.answer_text == ANSWER_TEXT
    assert window.composer.toPlainText() == ""  # the question left the box...
    assert card.question == QUESTION  # ...and is in the conversation
    assert backend.calls[0].messages[-1].content == QUESTION
    # Markdown rendered: the emphasis marks are gone, the word is bold.
    assert card.view.is_markdown
    shown = card.view.toPlainText()
    assert "**" not in shown and shown.startswith("Press Esc or click Stop")
    cursor = card.view.document().find("Esc")
    assert cursor.charFormat().fontWeight() >= 600
    assert not window.busy and not window.stop_button.isEnabled()
    assert window.status_label.text() == "Answered by scripted test backend."  # which model wrote it (issue 14)


def test_clicking_the_second_sentence_lights_the_exact_span_the_engine_reported(qtbot, answered):
    window, controller, card, _ = answered
    colors = theme.colors(card.view.palette())
    second = card.attributions()[1]
    assert second.supported and second.sources

    qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton, pos=card.view.sentence_point(1))

    # The sentence itself is highlighted, exactly: its rendered words and nothing else.
    assert card.view.selected_sentence == 1
    (start, end), = extra_ranges(card.view, has_background(colors.selected_sentence))
    assert doc_text(card.view, start, end) == second.sentence.text == "The part of the answer already written is kept."
    # The panel shows the chunk holding the best span, with that span lit.
    best = second.sources[0]
    source = window.sources_panel.card_for(best.chunk_id)
    assert source is not None and source.active
    assert source.chunk.text[best.start:best.end] == best.text
    spans = [(s.start, s.end) for s in second.sources if s.chunk_id == best.chunk_id]
    assert source.text_view.highlighted_spans() == spans
    (a, b), = extra_ranges(source.text_view, has_background(colors.support_span))[:1]
    assert doc_text(source.text_view, a, b) == best.text
    # Support score beside, and distinct from, the retrieval score.
    assert source.support_label.isVisible()
    assert source.support_label.text().startswith(f"Support {max(s.score for s in second.sources if s.chunk_id == best.chunk_id):.2f}")
    assert source.retrieval_label.text() == f"Retrieval {source.chunk.score:.2f}"
    # Passages that do not support the sentence show no support score and no highlight.
    for other in window.sources_panel.cards():
        if all(s.chunk_id != other.chunk_id for s in second.sources):
            assert other.support_label.isHidden() and other.text_view.highlighted_spans() == []
    assert "Supported" in window.sources_panel.caption.text()
    # The span is scrolled into view in the panel (unfolding the passage if it was below the fold).
    qtbot.waitUntil(lambda: window.sources_panel.span_visible(best.chunk_id, best.start))


def test_clicking_a_passage_lights_the_answer_sentences_it_supports(qtbot, answered):
    window, controller, card, _ = answered
    colors = theme.colors(card.view.palette())
    attributions = card.attributions()
    chunk_id = attributions[0].sources[0].chunk_id
    expected = sorted(a.sentence.index for a in attributions
                      if a.supported and any(s.chunk_id == chunk_id for s in a.sources))
    assert expected  # the first sentence's own passage supports at least it

    source = window.sources_panel.card_for(chunk_id)
    qtbot.mouseClick(source.text_view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(6, 6))

    assert sorted(card.view.marked_sentences) == expected
    lit = sorted(extra_ranges(card.view, has_background(colors.marked_sentence)))
    assert lit == sorted(card.view.sentence_range(i) for i in expected)
    assert source.active
    assert card.view.selected_sentence is None
    assert f"supports {len(expected)} sentence" in window.sources_panel.caption.text()


def test_the_card_the_saved_turn_and_copy_show_the_same_answer(qtbot, answered):
    """One answer state (core.answer.state) behind what the card paints, what history saves and what Copy gives."""
    window, controller, card, _ = answered
    qtbot.waitUntil(lambda: card.record is not None and card.record.id is not None, timeout=TIMEOUT)
    answer, stored = card.answer, card.record
    assert (answer.status, answer.text) == ("completed", ANSWER_TEXT) == (stored.status, stored.answer)
    assert list(answer.sentence_attributions()) == card.attributions() == list(stored.attributions)
    assert answer.chunks == stored.chunks and len(answer.chunks) == len(window.sources_panel.cards())
    with qtbot.waitSignal(controller.answers.answer_copied, timeout=TIMEOUT) as copied:
        card.copy_action.trigger()
    assert copied.args[0] == QApplication.clipboard().text() == answer_to_markdown(stored)


# Showing the tooltip raises its window, which the offscreen test platform cannot do.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_an_unsupported_sentence_is_underlined_with_its_best_support_as_tooltip(qtbot, answered):
    window, controller, card, _ = answered
    moon = card.attributions()[2]
    assert not moon.supported
    assert extra_ranges(card.view, is_wavy) == [card.view.sentence_range(2)]
    wavy = next(s for s in card.view.extraSelections() if is_wavy(s.format))
    assert wavy.format.underlineColor() == theme.colors(card.view.palette()).unsupported
    # Hovering shows the tooltip (a real QHelpEvent through the viewport).
    point = card.view.sentence_point(2)
    viewport = card.view.viewport()
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.Type.ToolTip, point, viewport.mapToGlobal(point)))
    tip = QToolTip.text()
    assert tip.startswith("Not supported by the retrieved sources")
    if moon.sources:
        assert "Best support found" in tip and " ".join(moon.sources[0].text.split())[:40] in tip
    assert "1 not supported" in card._summary.text()


def test_alt_down_and_alt_up_walk_the_sentences_and_show_each_source(qtbot, answered):
    window, controller, card, _ = answered
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    steps = [(Qt.Key.Key_Down, 0), (Qt.Key.Key_Down, 1), (Qt.Key.Key_Down, 2), (Qt.Key.Key_Down, 2),
             (Qt.Key.Key_Up, 1)]
    for key, expected in steps:
        qtbot.keyClick(window.composer, key, Qt.KeyboardModifier.AltModifier)
        assert card.view.selected_sentence == expected
        attribution = card.attributions()[expected]
        assert window.sources_panel.attribution == attribution
        best = attribution.sources[0]
        assert window.sources_panel.card_for(best.chunk_id).text_view.highlighted_spans()[0] == \
            (best.start, best.end)
    assert window.composer.toPlainText() == ""  # the keys did not type into the box


def test_stop_mid_stream_keeps_the_partial_answer_and_frees_the_backend(qtbot, make_app):
    # After the moon sentence has closed (the next piece has begun) the model
    # keeps streaming spaces, so its attribution arrives mid-stream.
    backend = ScriptedBackend.sequence(Script(pieces=ANSWER + [" And then"], stall_after=6, drip=" "),
                                       Script(pieces=["Second answer."]))
    window, controller = make_app(backend)
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, QUESTION)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    def streaming_with_three_attributions():
        assert backend.stalled == 1 and len(card.attributions()) == 3, \
            (backend.stalled, len(card.attributions()), card.state, repr(card.answer_text[-40:]))

    qtbot.waitUntil(streaming_with_three_attributions, timeout=TIMEOUT)
    # Marked as soon as its attribution arrived, during streaming.
    assert card.state == "streaming" and window.busy and window.stop_button.isEnabled()
    assert extra_ranges(card.view, is_wavy) == [card.view.sentence_range(2)]

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)

    assert card.state == "cancelled"
    assert card.answer_text.rstrip(" ") == ANSWER_TEXT + " And then"
    assert card.view.toPlainText().rstrip().endswith("And then")
    assert "partial answer is kept" in card.status_text
    assert backend.calls[0].outcome == "cancelled" and backend.stalled == 0
    assert not window.busy and not window.stop_button.isEnabled()
    # The window is usable at once: the next question is answered.
    second = ask(qtbot, window, controller, "And now?")
    assert second.state == "completed" and second.answer_text == "Second answer."


def test_a_backend_error_is_shown_and_the_question_is_not_lost(qtbot, make_app):
    message = "Cannot reach http://127.0.0.1:11434 - is Ollama running? Settings > Model"
    backend = ScriptedBackend.sequence(
        Script(pieces=["Press Esc ", "or click Stop."], error=BackendUnavailable(message), error_after=1),
        Script(pieces=["Press Esc to stop an answer early."]))
    window, controller = make_app(backend)
    card = ask(qtbot, window, controller)

    assert card.state == "failed" and card.error.code == "backend_unavailable"
    assert window.banner.isVisible() and window.banner.text == message
    assert message in card.status_text
    assert card.answer_text == "Press Esc "  # what streamed before the error stays
    assert window.composer.toPlainText() == QUESTION  # the question is back in the box
    assert not window.busy

    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    retried = window.chat_view.last_answer()
    assert retried is not card and retried.state == "completed"
    assert backend.calls[1].messages[-1].content == QUESTION


def test_a_question_asked_while_the_models_load_waits_and_is_answered(qtbot, make_app):
    gate = threading.Event()
    backend = ScriptedBackend(["Press Esc to stop an answer early."])
    window, controller = make_app(backend, wait_ready=False, engine_gate=gate)
    assert not controller.ready
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, QUESTION)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    assert card.state == "waiting" and "Waiting for the models" in card.status_text
    # The status bar says what is loading.
    qtbot.waitUntil(lambda: window.status_label.text() == "Starting the document engine...")
    assert backend.calls == []
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=60_000):
        gate.set()
    assert card.state == "completed" and backend.calls[0].messages[-1].content == QUESTION


def test_regenerate_asks_again_and_replaces_the_answer(qtbot, make_app):
    backend = ScriptedBackend.sequence(Script(pieces=["First answer."]), Script(pieces=["Second ", "answer."]))
    window, controller = make_app(backend)
    first = ask(qtbot, window, controller)
    assert first.answer_text == "First answer." and window.regenerate_button.isEnabled()
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        qtbot.mouseClick(window.regenerate_button, Qt.MouseButton.LeftButton)
    answers = window.chat_view.answers()
    assert len(answers) == 1 and answers[0].answer_text == "Second answer."
    assert [c.messages[-1].content for c in backend.calls] == [QUESTION, QUESTION]


def test_a_new_question_cancels_the_running_answer(qtbot, make_app):
    backend = ScriptedBackend.sequence(Script(pieces=["Slow ", "answer"], stall_after=1),
                                       Script(pieces=["Fast answer."]))
    window, controller = make_app(backend)
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, QUESTION)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    first = window.chat_view.last_answer()
    qtbot.waitUntil(lambda: backend.stalled == 1, timeout=TIMEOUT)
    second = ask(qtbot, window, controller, "Another question?")
    qtbot.waitUntil(lambda: first.finished)
    assert first.state == "cancelled" and first.answer_text == "Slow "
    assert second.state == "completed" and second.answer_text == "Fast answer."
    assert backend.calls[0].outcome == "cancelled"


def test_highlights_follow_a_dark_palette(qtbot, answered, qapp):
    window, controller, card, _ = answered
    light = theme.colors(card.view.palette())
    previous = qapp.palette()
    dark = QPalette(previous)
    for role, color in ((QPalette.ColorRole.Window, QColor("#202124")), (QPalette.ColorRole.Base, QColor("#2b2b2b")),
                        (QPalette.ColorRole.WindowText, QColor("#e8e8e8")), (QPalette.ColorRole.Text, QColor("#e8e8e8"))):
        dark.setColor(role, color)
    try:
        qapp.setPalette(dark)
        qtbot.waitUntil(lambda: theme.is_dark(card.view.palette()))
        colors = theme.colors(card.view.palette())
        assert colors.dark and colors.selected_sentence != light.selected_sentence
        qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton, pos=card.view.sentence_point(0))
        assert extra_ranges(card.view, has_background(colors.selected_sentence)) == [card.view.sentence_range(0)]
        wavy = next(s for s in card.view.extraSelections() if is_wavy(s.format))
        assert wavy.format.underlineColor() == colors.unsupported
    finally:
        qapp.setPalette(previous)


def test_an_engine_that_cannot_start_is_reported_and_questions_fail_cleanly(qtbot, make_app):
    message = ("Cannot open the document index at /nowhere: locked. Close other Sourcelight windows, or move the "
               "index folder aside and re-add your documents.")
    backend = ScriptedBackend(["Unused."])
    window, controller = make_app(backend, wait_ready=False, engine_error=StoreError(message))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert window.banner.text == message and window.status_label.text() == "Not ready"
    card = ask(qtbot, window, controller)
    assert card.state == "failed" and message in card.status_text
    assert window.composer.toPlainText() == QUESTION and not window.busy
    assert backend.calls == []


def test_every_control_has_an_accessible_name(answered):
    from PySide6.QtWidgets import (QAbstractButton, QAbstractScrollArea, QComboBox, QLineEdit, QProgressBar,
                                   QScrollBar, QSpinBox)

    window, *_ = answered
    unnamed = []
    for widget in window.findChildren(QWidget):
        if isinstance(widget, QScrollBar) or not widget.isVisibleTo(window):
            continue
        if isinstance(widget, (QAbstractButton, QAbstractScrollArea, QComboBox, QLineEdit, QProgressBar, QSpinBox)):
            name = widget.accessibleName() or (widget.text() if isinstance(widget, QAbstractButton) else "")
            if not name and widget.parent() is not None and isinstance(widget.parent(), QAbstractScrollArea):
                continue  # a scroll area's own viewport
            if not name:
                unnamed.append(f"{type(widget).__name__} {widget.objectName()!r}")
    assert unnamed == []


def test_the_chat_follows_the_stream_only_while_it_is_at_the_bottom(qtbot, make_app):
    lines = [f"Line {i} of a long answer.\n\n" for i in range(80)]
    backend = ScriptedBackend(lines, stall_after=len(lines), drip="More text, part {n}.\n\n")
    window, controller = make_app(backend)
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, QUESTION)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    bar = window.chat_view.verticalScrollBar()
    qtbot.waitUntil(lambda: backend.stalled == 1 and bar.maximum() > 0, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())  # following the new text

    bar.setValue(0)  # the user scrolls up to read
    grown = bar.maximum() + 60
    qtbot.waitUntil(lambda: bar.maximum() > grown, timeout=TIMEOUT)
    assert bar.value() == 0  # not yanked back down

    bar.setValue(bar.maximum())  # back at the bottom: following resumes
    grown = bar.maximum() + 60
    qtbot.waitUntil(lambda: bar.maximum() > grown, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)


def test_without_the_verifier_the_window_still_answers_and_says_why_once(qtbot, make_app, tmp_path):
    from core.attribution.verifier import Verifier

    window, controller = make_app(ScriptedBackend(ANSWER))
    # The shipped files gone (an empty folder): attribution falls back to the fused score.
    controller.engine.attributor.verifier = Verifier(tmp_path / "no-verifier")
    card = ask(qtbot, window, controller)
    assert card.answer_text == ANSWER_TEXT
    assert len(card.attributions()) == 3  # every sentence still traced to a source
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert "support verifier" in window.banner.text and "Reinstall" in window.banner.text


def test_the_sources_panel_shows_every_passage_in_rank_order_as_the_answer_starts(qtbot, answered):
    """Passages are built one per loop pass (the answer's first words are not held up), and all arrive."""
    window, controller, card, _ = answered
    panel = window.sources_panel
    chunks = card.chunks
    assert len(chunks) >= 2
    panel.clear()
    panel.show_chunks(chunks)
    # Nothing asked for the cards yet: the first is there at once, the others follow on later passes.
    column = panel.scroll.widget().layout()
    shown = lambda: [column.itemAt(i).widget().chunk_id for i in range(column.count())  # noqa: E731
                     if column.itemAt(i).widget() is not None]
    assert shown() == [chunks[0].id]
    qtbot.waitUntil(lambda: len(shown()) == len(chunks))
    assert shown() == [c.id for c in chunks]
    assert [c.rank for c in panel.cards()] == list(range(1, len(chunks) + 1))
    # Asking for a passage before its turn builds the rest at once, in order.
    panel.clear()
    panel.show_chunks(chunks)
    last = panel.card_for(chunks[-1].id)
    assert last is not None and last.rank == len(chunks)
    assert [c.chunk_id for c in panel.cards()] == [c.id for c in chunks]

"""Sentence highlights land on exactly their sentence's text, whatever line endings the model sends.

The engine's sentence offsets count "\\r\\n" as two characters; Qt turns it
into one block separator when text is inserted, which shifted every later
highlight by one per line. The window test streams such an answer through the
real window and controller (scripted model) and clicks sentences while the
answer streams and after it has been rendered; the widget tests check each way
text reaches an `AnswerView` (streamed batches, Markdown, the plain-text
fallback, `set_text`). A highlight past the end of the document would also
print a Qt warning, which fails the test. The last tests keep Qt's Markdown
reader away from a list item that starts with an HTML entity, which it
mangles (with a warning).
"""
from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.events import AnswerSentence

from gui import theme
from gui.widgets.answer_view import AnswerView
from tests.fakes import ScriptedBackend
from tests.gui.helpers import settle
from tests.gui.test_window_answers import QUESTION, doc_text, extra_ranges, has_background

TIMEOUT = 60_000
CRLF_ANSWER = ["Press Esc or click Stop.\r\n", "The part of the answer already written is kept.\r\n",
               "Stop also frees the model at once. ", "Still writing"]


def selected_text(view) -> str:
    """The text under the selected-sentence highlight (exactly one)."""
    colors = theme.colors(view.palette())
    (start, end), = extra_ranges(view, has_background(colors.selected_sentence))
    return doc_text(view, start, end)


def click(qtbot, view, index: int) -> None:
    qtbot.waitUntil(lambda: view.isVisible() and view.height() > 0)
    settle()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.sentence_point(index))
    assert view.selected_sentence == index


def test_clicking_a_sentence_after_crlf_line_ends_lights_exactly_that_sentence(qtbot, make_app):
    backend = ScriptedBackend(CRLF_ANSWER, stall_after=len(CRLF_ANSWER))
    window, controller = make_app(backend)
    card = controller.answers.ask(QUESTION)
    qtbot.waitUntil(lambda: backend.stalled == 1 and card.view.sentence_count() == 3, timeout=TIMEOUT)
    first, second, third = card.view.sentences()
    assert third.text == "Stop also frees the model at once."
    assert card.answer_text[third.start:third.end] == third.text  # two characters per "\r\n" before it

    # While the answer streams (plain text appended batch by batch).
    click(qtbot, card.view, third.index)
    assert selected_text(card.view) == third.text
    click(qtbot, card.view, second.index)
    assert selected_text(card.view) == second.text

    # After it ended and was rendered as Markdown.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        controller.answers.stop()
    assert card.view.is_markdown
    click(qtbot, card.view, third.index)
    assert selected_text(card.view) == third.text
    click(qtbot, card.view, first.index)
    assert selected_text(card.view) == first.text


def sentences_of(text: str) -> list[AnswerSentence]:
    return [AnswerSentence(i, m.start(), m.end(), m.group())
            for i, m in enumerate(re.finditer(r"[^.\r\n]+\.", text))]


def drawn(view, sentence) -> str:
    return doc_text(view, *view.sentence_range(sentence.index))


TEXTS = {
    "crlf": "First line here.\r\nSecond line here.\r\nThird line here.",
    "lone cr": "First line here.\rSecond line here.\rThird line here.",
    "crlf split between batches": "First line here.\r\nSecond line here.\r\n\r\nThird line here.",
    # An entity Qt renders as a character the source never spells: no Markdown map, plain text.
    "crlf, plain-text fallback": "Fish &copy; chips here.\r\nSecond line here.\r\nThird line here.",
}


@pytest.mark.parametrize("name", list(TEXTS))
def test_every_sentence_is_drawn_exactly_however_the_text_arrived(qtbot, name):
    text = TEXTS[name]
    sentences = sentences_of(text)
    assert len(sentences) == 3
    view = AnswerView()
    qtbot.addWidget(view)
    # Streamed in small batches; in one case every "\r\n" is cut in two.
    batches = re.split(r"(?<=\r)", text) if "split" in name else [text[k:k + 7] for k in range(0, len(text), 7)]
    for batch in batches:
        view.append_text(batch)
    for s in sentences:
        view.add_sentence(s)
    assert [drawn(view, s) for s in sentences] == [s.text for s in sentences]

    view.render_markdown()
    assert view.is_markdown == ("fallback" not in name)
    assert [drawn(view, s) for s in sentences] == [s.text for s in sentences]

    view.set_text(text)
    assert [drawn(view, s) for s in sentences] == [s.text for s in sentences]
    for s in sentences:  # every highlight fits in the document (no "out of range")
        view.set_selected_sentence(s.index)
        assert selected_text(view) == s.text


@pytest.mark.parametrize("text", ["- &amp; chips are sold.\n- Fish too.", "1. **&lt;b&gt;** makes bold.\n2. Done.",
                                  "> - &#65; is a letter.\n> - So is B."])
def test_a_list_item_starting_with_an_entity_stays_plain_text_without_a_qt_warning(qtbot, text):
    # Qt's Markdown reader would drop the list and warn "attempted to insert
    # into a list that no longer exists" (the warning fails this test).
    view = AnswerView()
    qtbot.addWidget(view)
    view.append_text(text)
    last = text.rindex("\n") + 1
    view.add_sentence(AnswerSentence(0, last, len(text), text[last:]))
    assert not view.render_markdown()
    assert view.toPlainText() == text
    assert drawn(view, view.sentences()[0]) == text[last:]


def test_an_entity_later_in_a_list_item_still_renders_as_markdown(qtbot):
    view = AnswerView()
    qtbot.addWidget(view)
    view.append_text("- Fish **&amp;** chips.\n- Peas.")
    assert view.render_markdown()
    assert view.toPlainText() == "Fish & chips.\nPeas."

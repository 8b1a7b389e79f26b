"""Issue 16 in the window: clicking an answer sentence shows its supporting span in the document itself.

Real window, real engine (ChromaDB, embedder, verifier), a scripted answer
that repeats a sentence of a real PDF (page 7 of a 19-page report) or of a
real Word file. The PDF test checks what the user sees: the page number, the
text under the highlighted rectangles, and yellow pixels where the highlight is
(and nowhere else) in a grabbed screenshot of the page; then paging away and
back, and a click on the highlight that goes back to the sentence.
"""
from __future__ import annotations

import os

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.eval.documents_quality import CORPUS
from core.eval.page_spans import _same, _squash, under_rects
from tests.fakes import ScriptedBackend
from tests.gui.helpers import settle

TIMEOUT = 60_000
PDF_SENTENCE = "The Hydro Network package contains the set of classes that form the linear network."
DOCX_SENTENCE = "Donec semper facilisis metus finibus malesuada."


def _ingest(qtbot, window, controller, path):
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT) as blocker:
        window.paths_chosen.emit([str(path)])
    assert blocker.args[0].indexed == [str(path)]


def _answer(qtbot, window, question: str):
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, question)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    qtbot.waitUntil(lambda: card.finished, timeout=TIMEOUT)
    return card


def _yellow(color) -> bool:
    # The highlight multiplies the page by (255, 214, 0): white paper turns this yellow.
    return color.red() > 200 and color.green() > 150 and color.blue() < 90


@pytest.fixture
def pdf_app(qtbot, make_app, tmp_path):
    pdf = tmp_path / "docs" / "GeoBase_NHNC1_Data_Model_UML_EN.pdf"
    pdf.parent.mkdir()
    shutil.copy(CORPUS / "pdf" / pdf.name, pdf)
    window, controller = make_app(ScriptedBackend(["Four packages constitute the NHNC1. ", PDF_SENTENCE]),
                                  index_sample_corpus=False)
    _ingest(qtbot, window, controller, pdf)
    card = _answer(qtbot, window, "What does the Hydro Network package contain?")
    return window, controller, card, pdf


def test_clicking_a_sentence_shows_its_pdf_page_with_the_span_lit(qtbot, pdf_app):
    from core import pdf_pages

    window, controller, card, pdf = pdf_app
    target = next(a for a in card.attributions() if a.sentence.text == PDF_SENTENCE)
    assert target.supported and target.sources
    best = target.sources[0]
    chunk = next(c for c in card.chunks if c.id == best.chunk_id)
    view = window.document_view
    with qtbot.waitSignal(controller.page_view.shown, timeout=TIMEOUT) as shown:
        qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton,
                         pos=card.view.sentence_point(target.sentence.index))
    assert shown.args == [str(pdf), 7] and chunk.page == 7
    assert view.page == 7 and view.title.text().startswith("Page 7 of 19")
    assert not view.note.isVisible()
    # The rectangles hold exactly the span's text on that page.
    rects = view.canvas._rects
    assert rects
    doc = pdf_pages.open_document(pdf)
    under = under_rects(pdf_pages.char_boxes(doc, 7), rects)
    pdf_pages.close_document(doc)
    assert _same(_squash(under), _squash(best.text)), (under, best.text)
    # The highlight is on screen, in yellow where the rectangles are and nowhere else.
    qtbot.waitUntil(lambda: view.page_scroll.viewport().rect().intersects(
        view.canvas.highlight_rects()[0].translated(view.canvas.pos().toPointF()).toRect()))
    settle()
    shot = view.canvas.grab().toImage()
    ratio = shot.devicePixelRatio()
    inside = outside = 0
    boxes = [r.adjusted(-2, -2, 2, 2) for r in view.canvas.highlight_rects()]
    for y in range(0, shot.height(), 2):
        for x in range(0, shot.width(), 2):
            if not _yellow(shot.pixelColor(x, y)):
                continue
            point = (x / ratio, y / ratio)
            if any(b.contains(*point) for b in boxes):
                inside += 1
            else:
                outside += 1
    area = sum(r.width() * r.height() for r in view.canvas.highlight_rects()) / 4  # sampled every 2 px
    assert inside > 0.3 * area and outside == 0, (inside, area, outside)
    artifacts = os.environ.get("SOURCELIGHT_ARTIFACTS")  # a folder for screenshots to look at, when asked
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(Path(artifacts) / "page_view_pdf.png"))


def test_paging_away_and_back_keeps_the_highlight_and_a_click_on_it_goes_back_to_the_sentence(qtbot, pdf_app):
    window, controller, card, pdf = pdf_app
    target = next(a for a in card.attributions() if a.sentence.text == PDF_SENTENCE)
    view = window.document_view
    with qtbot.waitSignal(controller.page_view.shown, timeout=TIMEOUT):
        qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton,
                         pos=card.view.sentence_point(target.sentence.index))
    with qtbot.waitSignal(controller.page_view.shown, timeout=TIMEOUT) as shown:
        qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    assert shown.args == [str(pdf), 8] and view.page == 8 and not view.canvas._rects
    with qtbot.waitSignal(controller.page_view.shown, timeout=TIMEOUT):
        qtbot.mouseClick(view.previous_button, Qt.MouseButton.LeftButton)
    assert view.page == 7 and view.canvas._rects
    width = view.canvas.width()
    with qtbot.waitSignal(controller.page_view.shown, timeout=TIMEOUT):
        qtbot.mouseClick(view.zoom_in_button, Qt.MouseButton.LeftButton)
    assert view.canvas.width() > width and view.canvas._rects
    # Alt+Up and Alt+Down still walk the sentences, each shown in the document.
    window.activateWindow()
    card.view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert card.view.selected_sentence != target.sentence.index
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert card.view.selected_sentence == target.sentence.index
    qtbot.waitUntil(lambda: not controller.tasks.running("page-view"), timeout=TIMEOUT)
    assert view.page == 7 and view.canvas._rects
    # With the selection gone, a click on the highlight goes back to the sentence.
    card.select_sentence(None)
    settle()
    rect = view.canvas.highlight_rects()[0]
    view.page_scroll.ensureVisible(int(rect.center().x()), int(rect.center().y()))
    qtbot.mouseClick(view.canvas, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert card.view.selected_sentence == target.sentence.index


def test_a_word_source_is_shown_whole_with_the_span_lit_in_context(qtbot, make_app, tmp_path):
    from gui import theme

    docx = tmp_path / "docs" / "blk-paras-and-tables.docx"
    docx.parent.mkdir()
    shutil.copy(CORPUS / "docx" / docx.name, docx)
    window, controller = make_app(ScriptedBackend([DOCX_SENTENCE]), index_sample_corpus=False)
    _ingest(qtbot, window, controller, docx)
    card = _answer(qtbot, window, "What does the document say about Donec?")
    target = card.attributions()[0]
    assert target.supported and target.sources
    view = window.document_view
    with qtbot.waitSignal(controller.page_view.shown, timeout=TIMEOUT) as shown:
        qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton, pos=card.view.sentence_point(0))
    assert shown.args == [str(docx), 0]
    assert view.stack.currentWidget() is view.text_view and view.title.text() == docx.name
    text = view.text_view.toPlainText()
    assert text.startswith("Header") and "Lorem ipsum" in text  # the whole document, not the passage
    (sel,) = view.text_view.extraSelections()
    assert sel.cursor.selectedText() == target.sources[0].text
    assert sel.format.background().color() == theme.colors(view.palette()).support_span
    # A click inside the lit span goes back to the sentence.
    card.select_sentence(None)
    cursor = view.text_view.textCursor()
    cursor.setPosition(sel.cursor.selectionStart() + 3)
    point = view.text_view.cursorRect(cursor).center()
    qtbot.mouseClick(view.text_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert card.view.selected_sentence == 0

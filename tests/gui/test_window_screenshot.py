"""A screenshot of the window after an answer with a selected sentence, checked pixel by pixel.

The image is saved to test-artifacts/ (for people to look at); the test reads
real pixels of that grab: the selected sentence and its supporting span are
painted in the highlight colour, and the unsupported sentence carries red
underline pixels below its text.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QTextCursor

from gui import theme
from tests.gui.helpers import settle
from tests.fakes import ScriptedBackend
from tests.gui.test_window_answers import ANSWER, ask

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def dominant(image: QImage, rect: QRect) -> QColor:
    """The most common colour in `rect` (a highlight's background beats its glyphs)."""
    counts = Counter(image.pixelColor(x, y).rgb() for x in range(rect.left(), rect.right() + 1)
                     for y in range(rect.top(), rect.bottom() + 1))
    return QColor.fromRgb(counts.most_common(1)[0][0])


def near(a: QColor, b: QColor, tolerance: int = 40) -> bool:
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue()) <= tolerance


def line_rect(view, position: int, window) -> QRect:
    """The rect (in window pixels, device-independent) of the text line at document `position`."""
    cursor = QTextCursor(view.document())
    cursor.setPosition(position)
    rect = view.cursorRect(cursor)
    top_left = view.viewport().mapTo(window, rect.topLeft())
    return QRect(top_left, rect.size())


def test_screenshot_of_a_selected_sentence_shows_real_highlights(qtbot, make_app):
    window, controller = make_app(ScriptedBackend(ANSWER))
    window.resize(1280, 800)
    card = ask(qtbot, window, controller)
    qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton, pos=card.view.sentence_point(1))
    attribution = card.attributions()[1]
    best = attribution.sources[0]
    source = window.sources_panel.card_for(best.chunk_id)
    # Layout settles (the passage unfolds, the panel scrolls) before the grab.
    qtbot.waitUntil(lambda: window.sources_panel.span_visible(best.chunk_id, best.start))
    settle()

    pixmap = window.grab()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "main_window_selected_sentence.png"
    assert pixmap.save(str(path))
    image = QImage(str(path))
    ratio = pixmap.devicePixelRatio()
    assert image.width() == round(window.width() * ratio)
    colors = theme.colors(window.palette())

    def scaled(rect: QRect) -> QRect:
        return QRect(round(rect.left() * ratio), round(rect.top() * ratio), round(rect.width() * ratio),
                     round(rect.height() * ratio))

    # The selected sentence: a strip of its first line, between caret position and a few glyphs on.
    start, end = card.view.sentence_range(1)
    rect = line_rect(card.view, start + 2, window)
    strip = QRect(rect.left(), rect.top() + 2, 40, max(4, rect.height() - 4))
    assert near(dominant(image, scaled(strip)), colors.selected_sentence)
    # The first sentence (not selected) keeps the plain background and has no red.
    other = line_rect(card.view, card.view.sentence_range(0)[0] + 2, window)
    assert not near(dominant(image, scaled(QRect(other.left(), other.top() + 2, 40, other.height() - 4))),
                    colors.selected_sentence)

    # The supporting span in the Sources panel.
    span_rect = line_rect(source.text_view, source.text_view.position_of(best.start) + 2, window)
    strip = QRect(span_rect.left(), span_rect.top() + 2, 40, max(4, span_rect.height() - 4))
    assert near(dominant(image, scaled(strip)), colors.support_span)

    # The unsupported sentence: red underline pixels just below its first line's text.
    moon_start, _ = card.view.sentence_range(2)
    moon = line_rect(card.view, moon_start + 3, window)
    band = scaled(QRect(moon.left(), moon.top() + moon.height() // 2, 120, moon.height() // 2 + 4))

    def reddish(c: QColor) -> bool:  # the antialiased wave is a lighter red than the pen
        return c.red() - c.green() > 60 and c.red() - c.blue() > 60

    reds = sum(1 for x in range(band.left(), band.right()) for y in range(band.top(), band.bottom())
               if reddish(image.pixelColor(x, y)))
    assert reds >= 10, "no red wavy underline under the unsupported sentence"
    first = line_rect(card.view, card.view.sentence_range(0)[0] + 3, window)
    band = scaled(QRect(first.left(), first.top() + first.height() // 2, 120, first.height() // 2 + 4))
    assert not any(reddish(image.pixelColor(x, y)) for x in range(band.left(), band.right())
                   for y in range(band.top(), band.bottom())), "a supported sentence is underlined"

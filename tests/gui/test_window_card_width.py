"""An answer card never runs past the chat column, however long its status line (issue 15's first defect).

A status such as "Answered (stopped at the answer length limit - raise it in
Settings)" used to make the card as wide as the whole line: at the default
window size the card's right edge, its "Copy with citations" button and the
ends of its lines were cut off with no scroll bar, and reopening the
conversation showed it again.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint

from tests.fakes import ScriptedBackend
from tests.gui.test_window_answers import ANSWER, ask
from tests.gui.helpers import settle


def right_edge_inside(window, card) -> tuple[int, int]:
    """(the card's right edge, the chat viewport's right edge), both in the viewport's coordinates."""
    viewport = window.chat_view.viewport()
    card_right = card.mapTo(viewport, QPoint(card.width(), 0)).x()
    button = card.copy_button
    button_right = button.mapTo(viewport, QPoint(button.width(), 0)).x()
    return max(card_right, button_right), viewport.width()


@pytest.mark.parametrize("width", [None, 800])
def test_a_long_status_line_wraps_inside_the_chat_column(qtbot, make_app, width):
    backend = ScriptedBackend(ANSWER, finish_reason="length")
    window, controller = make_app(backend)
    if width is not None:
        window.resize(width, window.height())
    card = ask(qtbot, window, controller)
    settle()
    assert "length limit" in card.status_text  # the long status this is about
    assert card.copy_button.isVisible()
    right, viewport = right_edge_inside(window, card)
    assert right <= viewport, (right, viewport, window.width())
    assert not window.chat_view.horizontalScrollBar().isVisible()
    artifacts = os.environ.get("SOURCELIGHT_ARTIFACTS")  # a folder for screenshots to look at, when asked
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(Path(artifacts) / f"card_width_{width or 'default'}.png"))

"""The conversation: questions and answers in one scrolling column.

Each message is its own widget with its own document, so a streaming answer
only ever lays out itself (never the history above it). The view follows the
newest text only while the user is at the bottom: scrolling up to read stops
the auto-scroll, and scrolling back to the bottom resumes it (as qtconsole
does).

A reopened conversation shows its latest answers first; older ones are added
above them when the user scrolls to the top or clicks "Show earlier answers"
(`earlier_requested`). Messages added above keep what the user is reading in
place: the view holds its distance from the bottom while they lay out.
"""
from __future__ import annotations

import sys

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from gui.widgets.question_view import QuestionView

if TYPE_CHECKING:  # the card module (and its text view) loads with the first answer, after the first paint
    from gui.widgets.answer_card import AnswerCard

# Within this many pixels of the end counts as "at the bottom".
_BOTTOM_SLACK_PX = 8

EMPTY_TEXT = ("Ask a question about your documents.\n\n"
              "Sourcelight comes with a short guide already indexed - try \u201cHow do I add documents?\u201d "
              "or \u201cWhat does the support score mean?\u201d. Add your own files with Ctrl+O.")


class ChatView(QScrollArea):
    """A column of `QuestionView`s and `AnswerCard`s that sticks to the bottom while it is there."""

    answer_added = Signal(object)  # AnswerCard
    earlier_requested = Signal()  # older messages of the conversation are wanted (top reached or button)
    messages_cleared = Signal()  # every message was removed (another conversation opens, or a new one starts)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._column = QWidget()
        self._column.setObjectName("chatColumn")
        self._layout = QVBoxLayout(self._column)
        self._layout.setContentsMargins(12, 12, 12, 12)
        self._layout.setSpacing(10)
        self._empty = QLabel(EMPTY_TEXT)
        self._empty.setObjectName("chatEmpty")
        self._empty.setWordWrap(True)
        self._empty.setTextFormat(Qt.TextFormat.PlainText)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._empty.setContentsMargins(40, 40, 40, 40)
        self.earlier_button = QPushButton("Show earlier answers")
        self.earlier_button.setObjectName("earlierButton")
        self.earlier_button.setAccessibleName("Show earlier answers")
        self.earlier_button.setToolTip("Load the older questions and answers of this conversation (or scroll "
                                       "to the top)")
        self.earlier_button.clicked.connect(self._on_earlier_button_clicked)
        self.earlier_button.hide()
        self._layout.addWidget(self.earlier_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(self._column)
        self._stick = True
        self._from_bottom: int | None = None  # kept while messages are added above the reader
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrollbar_value_changed)
        bar.rangeChanged.connect(self._on_scrollbar_range_changed)

    # -- content -----------------------------------------------------------
    def add_question(self, question: str, before: QWidget | None = None) -> QuestionView:
        view = QuestionView(question, self._column)
        self._insert(view, before=before)
        return view

    def add_answer(self, question: str, after: QWidget | None = None, before: QWidget | None = None) -> AnswerCard:
        from gui.widgets.answer_card import AnswerCard

        card = AnswerCard(question, self._column)
        self._insert(card, after, before)
        self.answer_added.emit(card)
        return card

    def first_message(self) -> QWidget | None:
        widgets = self._widgets()
        return widgets[0] if widgets else None

    def clear(self) -> None:
        """Remove every message (another conversation is opened, or a new one started)."""
        for widget in self._widgets():
            self.remove(widget)
        self.set_earlier_available(False)
        self._empty.show()
        self._stick = True
        self._from_bottom = None
        self.messages_cleared.emit()

    def set_earlier_available(self, available: bool) -> None:
        """Show (or hide) "Show earlier answers" above the first message."""
        self.earlier_button.setVisible(available)
        self.earlier_button.setEnabled(True)

    def set_earlier_loading(self) -> None:
        self.earlier_button.setEnabled(False)

    def remove(self, widget: QWidget) -> None:
        self._layout.removeWidget(widget)
        widget.hide()
        widget.deleteLater()

    def answers(self) -> list[AnswerCard]:
        module = sys.modules.get("gui.widgets.answer_card")
        if module is None:  # no answer was ever made
            return []
        return [w for w in self._widgets() if isinstance(w, module.AnswerCard)]

    def last_answer(self) -> AnswerCard | None:
        answers = self.answers()
        return answers[-1] if answers else None

    def _widgets(self) -> list[QWidget]:
        out = []
        for i in range(self._layout.count()):
            w = self._layout.itemAt(i).widget()
            if w is not None and w is not self._empty and w is not self.earlier_button:
                out.append(w)
        return out

    def _insert(self, widget: QWidget, after: QWidget | None = None, before: QWidget | None = None) -> None:
        self._empty.hide()
        if before is not None:
            # Above what the user reads (an older page): keep the reader's place, do not jump.
            bar = self.verticalScrollBar()
            if self._from_bottom is None:
                self._from_bottom = bar.maximum() - bar.value()
            self._layout.insertWidget(self._layout.indexOf(before), widget)
            return
        if after is not None:
            index = self._layout.indexOf(after) + 1
        else:
            index = self._layout.count() - 1  # before the trailing stretch
        self._layout.insertWidget(index, widget)
        self._from_bottom = None
        self._stick = True  # a new message is something the user asked for: show it
        self.scroll_to_bottom()

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def ensure_visible(self, widget: QWidget, y: int = 0, margin: int = 40) -> None:
        """Scroll so that point `y` of `widget` is in view."""
        point = widget.mapTo(self._column, widget.rect().topLeft())
        self.ensureVisible(point.x(), point.y() + y, 0, margin)

    @property
    def at_bottom(self) -> bool:
        return self._stick

    # -- auto-scroll -------------------------------------------------------
    def _on_scrollbar_value_changed(self, value: int) -> None:
        bar = self.verticalScrollBar()
        if self._from_bottom is not None and value != bar.maximum() - self._from_bottom:
            self._from_bottom = None  # the user scrolled: the place to keep is theirs now
        self._stick = value >= bar.maximum() - _BOTTOM_SLACK_PX
        if value == bar.minimum() and bar.maximum() > 0 and self.earlier_button.isVisible() \
                and self.earlier_button.isEnabled():
            self.earlier_requested.emit()

    def _on_scrollbar_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._from_bottom is not None:
            # Older messages were added above and are laying out: keep the
            # text the user was reading where it was.
            self.verticalScrollBar().setValue(max(0, maximum - self._from_bottom))
            return
        # The content grew (a streamed batch made an answer taller). Follow it
        # only if the user was at the bottom before it grew.
        if self._stick:
            self.verticalScrollBar().setValue(maximum)

    def _on_earlier_button_clicked(self) -> None:
        self.earlier_requested.emit()

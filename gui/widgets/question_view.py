"""One question the user asked, as shown in the chat (plain text, selectable)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget


class QuestionView(QFrame):
    """The user's question: a tinted card holding the text exactly as typed."""

    def __init__(self, question: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("questionCard")
        self.setAccessibleName("Your question")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.setAutoFillBackground(True)
        # Not Fixed: a Fixed policy makes the chat column's minimum height use
        # the label's unwrapped sizeHint, taller than the wrapped text at the
        # real width, and the difference piled up as blank space below the
        # newest answer (enough, with a long history, to scroll it out of view).
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        who = QLabel("You")
        font = who.font()
        font.setBold(True)
        who.setFont(font)
        self.label = QLabel(question)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # typed text is shown as text, never markup
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Question text")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(2)
        layout.addWidget(who)
        layout.addWidget(self.label)
        self.question = question

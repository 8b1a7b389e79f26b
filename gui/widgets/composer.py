"""The question box: Enter sends, Shift+Enter starts a new line.

The text stays in the box until the window takes it (`take_text`), and the
window puts a question back if its answer fails, so nothing the user typed
is ever lost.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QSizePolicy, QWidget

PLACEHOLDER = "Ask a question about your documents  (Enter sends, Shift+Enter for a new line)"


class Composer(QPlainTextEdit):
    """A multi-line input that emits `submitted(text)` on Enter."""

    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("composer")
        self.setAccessibleName("Question")
        self.setAccessibleDescription("Type a question and press Enter to send it.")
        self.setPlaceholderText(PLACEHOLDER)
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        lines = 3
        self.setFixedHeight(int(self.fontMetrics().lineSpacing() * lines + 2 * self.document().documentMargin()
                                + 2 * self.frameWidth() + 4))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if mods == Qt.KeyboardModifier.ShiftModifier:
                self.textCursor().insertText("\n")
                self.ensureCursorVisible()
                return
            if mods == Qt.KeyboardModifier.NoModifier:
                text = self.toPlainText()
                if text.strip():
                    self.submitted.emit(text)
                return
        super().keyPressEvent(event)

    def take_text(self) -> str:
        """Return the question and empty the box."""
        text = self.toPlainText()
        self.clear()
        return text

    def restore_text(self, text: str) -> None:
        """Put `text` back unless the user has already typed something new."""
        if not self.toPlainText().strip():
            self.setPlainText(text)
            self.moveCursor(self.textCursor().MoveOperation.End)

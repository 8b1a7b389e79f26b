"""The text of one retrieved passage, shown exactly as stored, with its support spans lit.

Chunk text comes from the user's files and is untrusted: it is set with
`setPlainText`, never as HTML or Markdown, so a document containing markup
shows that markup literally. Support spans arrive as Python offsets into the
chunk text and are drawn as extra selections at the matching UTF-16
positions. Long passages fold to a few lines; the view sizes itself to what
it shows so the panel scrolls, not the passage.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QTextEdit, QWidget

from gui.text_positions import Utf16Index, display_safe

FOLDED_LINES = 6
_CLICK_SLOP_PX = 4


class ChunkTextView(QTextBrowser):
    """Read-only passage text with highlighted spans; folds to `FOLDED_LINES` lines."""

    clicked = Signal()
    fold_changed = Signal(bool)

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Passage text")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        self.document().setUndoRedoEnabled(False)
        self.document().setDocumentMargin(2)
        self.text = text
        self._index = Utf16Index(text)
        self.setPlainText(display_safe(text))
        self._spans: list[tuple[int, int, QTextCharFormat]] = []
        self._folded = True
        self._press: QPoint | None = None
        self._sync_height()

    # -- folding -----------------------------------------------------------
    @property
    def folded(self) -> bool:
        return self._folded

    @property
    def foldable(self) -> bool:
        return self._full_height() > self._folded_height() + 4

    def set_folded(self, folded: bool) -> None:
        if folded != self._folded:
            self._folded = folded
            self._sync_height()
            self.fold_changed.emit(folded)

    def _full_height(self) -> int:
        return int(math.ceil(self.document().size().height()))

    def _folded_height(self) -> int:
        return int(self.fontMetrics().lineSpacing() * FOLDED_LINES + 2 * self.document().documentMargin())

    def _sync_height(self) -> None:
        full = self._full_height()
        height = min(full, self._folded_height()) if self._folded else full
        self.setFixedHeight(max(height, self.fontMetrics().lineSpacing()) + 2 * self.frameWidth())
        if not self._folded:
            self.verticalScrollBar().setValue(0)

    def resizeEvent(self, event) -> None:  # Qt override
        super().resizeEvent(event)  # re-wraps the text when the width changed
        self._sync_height()

    # -- spans -------------------------------------------------------------
    def set_spans(self, spans: list[tuple[int, int, QTextCharFormat]]) -> None:
        """Highlight `[start, end)` ranges given as offsets into the chunk text (code points)."""
        self._spans = list(spans)
        doc = self.document()
        selections = []
        limit = len(self.text)
        for start, end, fmt in self._spans:
            start, end = max(0, min(start, limit)), max(0, min(end, limit))
            sel = QTextEdit.ExtraSelection()
            cursor = QTextCursor(doc)
            cursor.setPosition(self._index.to_utf16(start))
            cursor.setPosition(self._index.to_utf16(end), QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor
            sel.format = fmt
            selections.append(sel)
        self.setExtraSelections(selections)

    def highlighted_spans(self) -> list[tuple[int, int]]:
        """The highlighted ranges as drawn, converted back to chunk-text offsets (code points)."""
        out = []
        for sel in self.extraSelections():
            a, b = sel.cursor.selectionStart(), sel.cursor.selectionEnd()
            out.append((self._index.from_utf16(a), self._index.from_utf16(b)))
        return out

    def position_of(self, offset: int) -> int:
        """The document position (UTF-16) of chunk-text offset `offset` (code points)."""
        return self._index.to_utf16(max(0, min(offset, len(self.text))))

    def span_top(self, start: int) -> int:
        """The y (in this widget) of the line holding chunk offset `start`."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._index.to_utf16(max(0, min(start, len(self.text)))))
        return self.cursorRect(cursor).top()

    def needs_unfold_for(self, end: int) -> bool:
        """True when offset `end` lies below the folded part."""
        if not self._folded:
            return False
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._index.to_utf16(max(0, min(end, len(self.text)))))
        return self.cursorRect(cursor).bottom() > self.height()

    # -- input -------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # Qt override
        self._press = event.position().toPoint() if event.button() == Qt.MouseButton.LeftButton else None
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # Qt override
        super().mouseReleaseEvent(event)
        press, self._press = self._press, None
        if press is not None and event.button() == Qt.MouseButton.LeftButton and \
                (event.position().toPoint() - press).manhattanLength() <= _CLICK_SLOP_PX:
            self.clicked.emit()

    def wheelEvent(self, event) -> None:  # Qt override
        # The panel scrolls, not the passage: pass the wheel to the parent.
        event.ignore()

    def loadResource(self, kind: int, name):  # Qt override
        return None

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._sync_height()

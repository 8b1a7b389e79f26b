"""One retrieved passage in the Sources panel: where it is from, its two scores, its text.

The two numbers answer different questions and are kept visibly apart: the
retrieval score (grey, always shown) says how well the passage matches the
*question*; the support score (coloured, shown only while an answer sentence
is selected) says how well it backs *that sentence*. A passage can be on topic
and still not support the sentence, and the panel must not blur the two.

A passage of a reopened answer is the text as it was when the answer was
written (history keeps it); when its file has changed or gone since, a note
under the passage says so (`set_note`).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette, QTextCharFormat
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from gui import theme
from gui.text_positions import plain_tooltip
from gui.widgets.chunk_text_view import ChunkTextView

RETRIEVAL_TIP = ("Retrieval score: how well this passage matches your question. It is not proof that the "
                 "answer is right.")
SUPPORT_TIP = "Support score: how well this passage supports the selected answer sentence."


class SourceCard(QFrame):
    """A passage with its file, page, retrieval score, support score, text, fold and Open."""

    clicked = Signal(str)  # chunk id
    open_requested = Signal(str)  # source path

    def __init__(self, rank: int, chunk, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sourceCard")
        self.setProperty("active", False)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.chunk = chunk
        self.rank = rank
        where = chunk.file_name + (f" \u00b7 page {chunk.page}" if chunk.page else "")
        self.setAccessibleName(f"Source {rank}: {where}")

        self.title = QLabel(f"[{rank}]  {where}")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setToolTip(plain_tooltip(chunk.source))
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.retrieval_label = QLabel(f"Retrieval {chunk.score:.2f}")
        self.retrieval_label.setObjectName("retrievalScore")
        self.retrieval_label.setAccessibleName("Retrieval score")
        self.retrieval_label.setToolTip(RETRIEVAL_TIP)
        self.retrieval_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.support_label = QLabel()
        self.support_label.setObjectName("supportScore")
        self.support_label.setAccessibleName("Support score")
        self.support_label.setToolTip(SUPPORT_TIP)
        bold = self.support_label.font()
        bold.setBold(True)
        self.support_label.setFont(bold)
        self.support_label.hide()

        self.note_label = QLabel()
        self.note_label.setObjectName("sourceNote")
        self.note_label.setAccessibleName("Note about this passage")
        self.note_label.setTextFormat(Qt.TextFormat.PlainText)  # file names are untrusted text
        self.note_label.setWordWrap(True)
        self.note_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.note_label.hide()

        self.text_view = ChunkTextView(chunk.text, self)
        self.text_view.clicked.connect(self._on_text_view_clicked)
        self.text_view.fold_changed.connect(self._on_text_view_fold_changed)

        self.fold_button = QToolButton(self)
        self.fold_button.setAccessibleName("Show the whole passage")
        self.fold_button.setAutoRaise(True)
        self.fold_button.clicked.connect(self._on_fold_button_clicked)
        self.open_button = QToolButton(self)
        self.open_button.setText("Open")
        self.open_button.setAccessibleName(f"Open {chunk.file_name}")
        self.open_button.setToolTip(plain_tooltip(f"Open {chunk.source} in the system's viewer"))
        self.open_button.setAutoRaise(True)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.setSpacing(8)
        header.addWidget(self.title, 1)
        header.addWidget(self.open_button)
        scores = QHBoxLayout()
        scores.setContentsMargins(0, 0, 0, 0)
        scores.setSpacing(12)
        scores.addWidget(self.retrieval_label)
        scores.addWidget(self.support_label)
        scores.addStretch(1)
        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.addWidget(self.fold_button)
        footer.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(3)
        layout.addLayout(header)
        layout.addLayout(scores)
        layout.addWidget(self.text_view)
        layout.addWidget(self.note_label)
        layout.addLayout(footer)
        self._update_fold_button()

    # -- state -------------------------------------------------------------
    @property
    def chunk_id(self) -> str:
        return self.chunk.id

    @property
    def active(self) -> bool:
        return bool(self.property("active"))

    def set_active(self, active: bool) -> None:
        if active != self.active:
            self.setProperty("active", active)
            # Re-polish so the style sheet's [active="true"] rule applies.
            self.style().unpolish(self)
            self.style().polish(self)
            self.update()

    def set_support(self, spans, supported: bool) -> None:
        """Show the spans of this passage that support the selected sentence (or none)."""
        colors = theme.colors(self.palette())
        if not spans:
            self.support_label.hide()
            self.text_view.set_spans([])
            return
        best = max(s.score for s in spans)
        self.support_label.setText(f"Support {best:.2f}" + ("" if supported else " (weak)"))
        color = colors.support_badge if supported else colors.weak_badge
        # A badge, so the support score never reads as another retrieval score.
        # A style sheet, not the palette: the window's style sheet wins over palettes.
        self.support_label.setStyleSheet(f"color: white; background: {color.name()}; border-radius: 3px; "
                                         "padding: 0px 5px;")
        self.support_label.setToolTip(SUPPORT_TIP + ("" if supported else
                                                     " Too low: this passage does not back the sentence."))
        self.support_label.show()
        fmt = QTextCharFormat()
        fmt.setBackground(colors.support_span if supported else colors.weak_span)
        self.text_view.set_spans([(s.start, s.end, fmt) for s in spans])
        if self.text_view.needs_unfold_for(max(s.end for s in spans)):
            self.text_view.set_folded(False)

    @property
    def note(self) -> str | None:
        return self.note_label.text() if not self.note_label.isHidden() else None

    def set_note(self, note: str | None) -> None:
        """Say under the passage that its file changed or was removed since (None: no note)."""
        self.note_label.setText(note or "")
        self.note_label.setVisible(bool(note))

    def clear_support(self) -> None:
        self.set_support((), False)

    # -- slots -------------------------------------------------------------
    def _update_fold_button(self) -> None:
        foldable = self.text_view.foldable
        self.fold_button.setVisible(foldable)
        self.fold_button.setText("Show more" if self.text_view.folded else "Show less")
        self.fold_button.setAccessibleName("Show the whole passage" if self.text_view.folded
                                           else "Fold the passage")

    def _on_fold_button_clicked(self) -> None:
        self.text_view.set_folded(not self.text_view.folded)

    def _on_text_view_fold_changed(self, _folded: bool) -> None:
        self._update_fold_button()

    def _on_text_view_clicked(self) -> None:
        self.clicked.emit(self.chunk.id)

    def _on_open_button_clicked(self) -> None:
        self.open_requested.emit(self.chunk.source)

    def mouseReleaseEvent(self, event) -> None:  # Qt override
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.chunk.id)

    def resizeEvent(self, event) -> None:  # Qt override
        super().resizeEvent(event)
        self._update_fold_button()

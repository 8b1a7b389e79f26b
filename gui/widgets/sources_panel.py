"""The Sources panel: the passages retrieved for the selected answer.

It shows one `SourceCard` per retrieved chunk, best first. When an answer
sentence is selected the panel lights the exact supporting spans, shows each
passage's support score beside (and distinct from) its retrieval score, and
scrolls the best supporting passage into view. Clicking a passage emits
`chunk_clicked` so the window can light the answer sentences it supports.
A reopened answer's passages may carry notes (file changed or removed since).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:  # loaded with the first sources shown, after the first paint
    from gui.widgets.source_card import SourceCard

HINT_NO_ANSWER = "The passages retrieved for an answer appear here."
HINT_NO_SELECTION = ("Click a sentence of the answer (or press Alt+Down) to see the passage that supports it; "
                     "click a passage to see the sentences it supports.\nRetrieval: how well a passage matches the "
                     "question. Support: how well it backs the selected sentence.")


class SourcesPanel(QWidget):
    """Passages of the current answer, their scores, and the spans that support the selected sentence."""

    chunk_clicked = Signal(str)  # chunk id
    open_requested = Signal(str)  # source path

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sourcesPanel")
        self.setAccessibleName("Sources")
        title = QLabel("Sources")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        title.setFont(font)
        self.caption = QLabel(HINT_NO_ANSWER)
        self.caption.setObjectName("sourcesCaption")
        self.caption.setAccessibleName("Selected sentence")
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("sourcesScroll")
        self.scroll.setAccessibleName("Retrieved passages")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._column = QWidget()
        self._layout = QVBoxLayout(self._column)
        self._layout.setContentsMargins(0, 0, 4, 0)
        self._layout.setSpacing(8)
        self._layout.addStretch(1)
        self.scroll.setWidget(self._column)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(title)
        layout.addWidget(self.caption)
        layout.addWidget(self.scroll, 1)
        self._cards: list[SourceCard] = []
        self._chunks: tuple = ()
        self._notes: dict[str, str] = {}
        self._pending: list = []  # (rank, chunk) not yet made into cards
        self._attribution = None

    # -- content -----------------------------------------------------------
    @property
    def chunks(self) -> tuple:
        return self._chunks

    def cards(self) -> list[SourceCard]:
        self._build_pending()
        return list(self._cards)

    def card_for(self, chunk_id: str) -> SourceCard | None:
        self._build_pending()
        for card in self._cards:
            if card.chunk_id == chunk_id:
                return card
        return None

    def show_chunks(self, chunks, notes: dict[str, str] | None = None) -> None:
        """Show these passages (the selected answer's), clearing any selection.

        `notes` maps a chunk id to a note shown under that passage. The first
        card is built at once and the others one per event-loop pass: the
        passages arrive just before an answer starts streaming, and building
        every card in one go (a text layout each) stalled its first words.
        Anything that asks for the cards builds the rest first.
        """
        chunks = tuple(chunks)
        notes = notes or {}
        if chunks == self._chunks and (self._cards or self._pending):
            self._notes = notes
            for card in self._cards:
                card.set_note(notes.get(card.chunk_id))
            return
        for card in self._cards:
            self._layout.removeWidget(card)
            card.hide()
            card.deleteLater()
        self._cards = []
        self._chunks = chunks
        self._notes = notes
        self._pending = list(enumerate(chunks, start=1))
        self._attribution = None
        self._build_next()
        if not chunks:
            self.caption.setText(HINT_NO_ANSWER)
        else:
            self.caption.setText(HINT_NO_SELECTION)
        self.scroll.verticalScrollBar().setValue(0)

    def _build_next(self) -> None:
        """Make the next pending passage into a card; come back for the one after on the next pass."""
        if not self._pending:
            return
        self._add_card(*self._pending.pop(0))
        if self._pending:
            QTimer.singleShot(0, self, self._build_next)

    def _build_pending(self) -> None:
        while self._pending:
            self._add_card(*self._pending.pop(0))

    def _add_card(self, rank: int, chunk) -> None:
        from gui.widgets.source_card import SourceCard

        card = SourceCard(rank, chunk, self._column)
        card.clicked.connect(self.chunk_clicked)
        card.open_requested.connect(self.open_requested)
        card.set_note(self._notes.get(chunk.id))
        self._layout.insertWidget(self._layout.count() - 1, card)
        self._cards.append(card)

    def clear(self) -> None:
        self.show_chunks(())
        self.caption.setText(HINT_NO_ANSWER)

    # -- selection ---------------------------------------------------------
    @property
    def attribution(self):
        return self._attribution

    def show_sentence(self, sentence, attribution) -> None:
        """Light the support of `sentence` (AnswerSentence); `attribution` None means not yet known."""
        self._build_pending()
        self._attribution = attribution
        # The caption is plain text: drop the emphasis and code marks the answer view renders.
        quote = " ".join(re.sub(r"\*\*|__|\*|`", "", sentence.text).split())
        if len(quote) > 160:
            quote = quote[:157] + "..."
        by_chunk: dict[str, list] = {}
        # A sentence that claims nothing lights no passage: its closest spans
        # would show as weak support, a verdict on something with nothing to check.
        claim = attribution is not None and attribution.is_claim
        if claim:
            for span in attribution.sources:
                by_chunk.setdefault(span.chunk_id, []).append(span)
        first: SourceCard | None = None
        for card in self._cards:
            spans = by_chunk.get(card.chunk_id, [])
            card.set_support(spans, bool(attribution and attribution.supported))
            card.set_active(bool(spans) and bool(attribution and attribution.supported))
            if spans and first is None:
                first = card
        # The best span decides which passage to scroll to.
        if claim and attribution.sources:
            best = self.card_for(attribution.sources[0].chunk_id)
            if best is not None:
                first = best
        if attribution is None:
            status = "Checking which passage supports it..."
        elif not claim:
            status = attribution.kind_note
        elif attribution.supported:
            top = self.card_for(attribution.sources[0].chunk_id) if attribution.sources else None
            where = f" by [{top.rank}] {top.chunk.file_name}" if top else ""
            status = f"Supported{where} (sentence support {attribution.support:.2f})."
            if attribution.citation_agrees is False:
                status += " The model cited " + ", ".join(f"[{n}]" for n in attribution.cited) + \
                          " instead - check it."
        else:
            status = (f"Not supported by these passages (sentence support {attribution.support:.2f}). "
                      "Check it before you rely on it.")
        self.caption.setText(f"\u201c{quote}\u201d\n{status}")
        if first is not None:
            span = by_chunk.get(first.chunk_id, [None])[0]
            self._scroll_to(first, span.start if span is not None else 0)

    def clear_sentence(self) -> None:
        self._build_pending()
        self._attribution = None
        for card in self._cards:
            card.clear_support()
            card.set_active(False)
        self.caption.setText(HINT_NO_SELECTION if self._cards else HINT_NO_ANSWER)

    def set_active_chunk(self, chunk_id: str | None) -> None:
        """Mark the passage the user clicked; clears the span highlights of a sentence selection."""
        self._build_pending()
        self._attribution = None
        for card in self._cards:
            card.clear_support()
            card.set_active(card.chunk_id == chunk_id)

    def span_visible(self, chunk_id: str, offset: int) -> bool:
        """True when the line holding `offset` of passage `chunk_id` is really on screen (not clipped)."""
        card = self.card_for(chunk_id)
        if card is None or not card.isVisible():
            return False
        view = card.text_view
        cursor = QTextCursor(view.document())
        cursor.setPosition(view.position_of(offset))
        rect = view.cursorRect(cursor)
        region = view.viewport().visibleRegion()
        return region.contains(rect.topLeft()) and region.contains(rect.bottomLeft())

    def _scroll_to(self, card: SourceCard, offset: int) -> None:
        def scroll() -> None:
            if card not in self._cards:
                return
            y = card.text_view.mapTo(self._column, card.text_view.rect().topLeft()).y()
            y += card.text_view.span_top(offset)
            top = card.mapTo(self._column, card.rect().topLeft()).y()
            bar = self.scroll.verticalScrollBar()
            view_h = self.scroll.viewport().height()
            if top >= bar.value() and y + 40 <= bar.value() + view_h:
                return  # already in view
            # The card's top when the span fits below it; otherwise the span itself, a third
            # down (a narrow panel wraps a passage taller than the view: its top alone left
            # the span out of sight).
            bar.setValue(max(0, top if y + 40 - top <= view_h else y - view_h // 3))

        scroll()
        # Unfolding changes the layout only after the next layout pass.
        QTimer.singleShot(0, self, scroll)

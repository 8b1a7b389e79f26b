"""Which answer and sentence the reader is at, and what the Sources panel and document view show for it.

The window's chat, Sources panel and document view are separate widgets; this
object keeps them in step. Selecting a sentence (a click, Alt+Down/Alt+Up)
shows its support in the panel and asks for its best span in the document
(`span_view_requested`, rendered by the page-view controller); a click on the
lit span goes back to the sentence; a click on a passage marks the sentences
it supports. What it shows (chunks, a sentence's attribution, the sentences a
passage supports) comes from the card's answer state (`card.answer`, folded
in core), never from lists of the widgets' own. It holds no engine and does no I/O.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:  # loaded with the first answer (see ChatView.add_answer), after the first paint
    from gui.widgets.answer_card import AnswerCard


class AnswerFocus(QObject):
    """Keeps the current answer, its selected sentence, the Sources panel and the document view in step."""

    # (RetrievedChunk, start, end, width in device pixels): show this span in its document
    span_view_requested = Signal(object, int, int, int)

    def __init__(self, chat_view, sources_panel, document_view, parent=None):
        super().__init__(parent)
        self.chat_view = chat_view
        self.sources_panel = sources_panel
        self.document_view = document_view
        self.current: AnswerCard | None = None
        self._span_sentence: tuple[AnswerCard, int] | None = None  # the sentence whose span the view shows
        sources_panel.chunk_clicked.connect(self._on_sources_panel_chunk_clicked)
        document_view.highlight_clicked.connect(self._on_document_view_highlight_clicked)

    def follow(self, card: AnswerCard) -> None:
        """A card joined the chat: its sentence clicks, chunks and attributions now reach the panels."""
        card.sentence_selected.connect(self._on_card_sentence_selected)
        card.chunks_changed.connect(self._on_card_chunks_changed)
        card.attribution_added.connect(self._on_card_attribution_added)

    def set_current_answer(self, card: AnswerCard | None) -> None:
        """Make `card` the answer whose sources the panel shows."""
        if card is self.current:
            return
        if self.current is not None and self.current in self.chat_view.answers():
            self.current.select_sentence(None)
            self.current.view.set_marked_sentences(())
        self.current = card
        if card is None:
            self.sources_panel.clear()
        else:
            self._show_sources(card)

    def _show_sources(self, card: AnswerCard) -> None:
        self.sources_panel.show_chunks(card.chunks, card.source_notes)

    def select_sentence(self, card: AnswerCard, index: int | None) -> None:
        """Select sentence `index` of `card`: highlight it and show its support in the panel."""
        self.set_current_answer(card)
        card.view.set_marked_sentences(())
        card.select_sentence(index)
        if index is None:
            self.sources_panel.clear_sentence()
            return
        self._show_sources(card)
        answer = card.answer
        sentence = next((s for s in answer.sentences if s.index == index), None) if answer is not None else None
        if sentence is None:
            return
        attribution = answer.attribution(index)
        self.sources_panel.show_sentence(sentence, attribution)
        self._show_span(card, attribution)
        self._scroll_to(card, index)

    def step_sentence(self, step: int) -> None:
        """Alt+Down / Alt+Up: the next or previous sentence of the current (else the last) answer."""
        card = self.current or self.chat_view.last_answer()
        if card is None:
            return
        index = card.step_sentence(step)
        if index is not None:
            self.select_sentence(card, index)

    def _scroll_to(self, card: AnswerCard, index: int) -> None:
        point = card.view.sentence_point(index)
        if point is not None:
            self.chat_view.ensure_visible(card.view, point.y())

    def _on_card_sentence_selected(self, card: AnswerCard, index: int) -> None:
        self.select_sentence(card, index)

    def _on_card_chunks_changed(self, card: AnswerCard) -> None:
        if card is self.current:
            self._show_sources(card)

    def _on_card_attribution_added(self, card: AnswerCard, attribution) -> None:
        if card is self.current and card.view.selected_sentence == attribution.sentence.index:
            self.sources_panel.show_sentence(attribution.sentence, attribution)
            self._show_span(card, attribution)

    def _show_span(self, card: AnswerCard, attribution) -> None:
        """Ask for the selected sentence's best supporting span in its document (a controller renders it)."""
        if attribution is None or not attribution.is_claim or not attribution.sources:
            return
        span = attribution.sources[0]
        chunk = card.answer.chunk(span.chunk_id) if card.answer is not None else None
        if chunk is None:
            return
        self._span_sentence = (card, attribution.sentence.index)
        self.span_view_requested.emit(chunk, span.start, span.end, self.document_view.request_width())

    def _on_document_view_highlight_clicked(self) -> None:
        """A click on the lit span goes back to the answer sentence it supports."""
        if self._span_sentence is None:
            return
        card, index = self._span_sentence
        if card not in self.chat_view.answers():
            return
        if card.view.selected_sentence != index:
            self.select_sentence(card, index)
        self._scroll_to(card, index)
        card.view.setFocus()

    def _on_sources_panel_chunk_clicked(self, chunk_id: str) -> None:
        """Mark the current answer's sentences that this passage supports (blue), and say how many."""
        card = self.current
        if card is None or card.answer is None:
            return
        supported = list(card.answer.sentences_supported_by(chunk_id))
        card.select_sentence(None)
        card.view.set_marked_sentences(supported)
        self.sources_panel.set_active_chunk(chunk_id)
        source = self.sources_panel.card_for(chunk_id)
        rank = f"[{source.rank}] " if source else ""
        if supported:
            n = len(supported)
            self.sources_panel.caption.setText(
                f"Passage {rank}supports {n} sentence{'s' if n != 1 else ''} of the answer (highlighted in blue).")
            self._scroll_to(card, min(supported))
        else:
            self.sources_panel.caption.setText(f"Passage {rank}supports none of the answer's sentences.")

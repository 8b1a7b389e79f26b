"""One assistant answer in the chat: its state line, its text and its sources.

An `AnswerCard` is what an `AnswerBridge`'s signals are connected to for one
run. Its state line says where the run is ("Searching your documents...",
"Writing...", "Answered"); a server that reports its progress (the Assistants
API: queued, in progress, calling a tool) has that shown there too, until the
next piece of text arrives. Its controller hands it the answer's state as the
run goes (`answer`, a core.answer.state.Answer folded from the same events: the
retrieved chunks, sentences, attributions, which sentences each chunk
supports, the status), so the window can show this answer's sources whenever
the user selects it; the card reads the chunks from there and keeps no lists
of its own. It forwards sentence clicks with itself as the first argument so
the window knows which answer they belong to.

Once its run has ended the card also holds the turn as history records it
(`record`, a core.history.StoredTurn) - what "Copy answer with citations"
exports - and, for a reopened answer, notes about passages whose file changed
since (`source_notes`).
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from gui.text_positions import plain_tooltip
from gui.widgets.answer_view import AnswerView

# How often the summary line may change while an answer streams (see AnswerCard.__init__).
SUMMARY_MS = 100

WAITING, RETRIEVING, STREAMING, COMPLETED, CANCELLED, FAILED = (
    "waiting", "retrieving", "streaming", "completed", "cancelled", "failed")


class AnswerCard(QFrame):
    """An answer: header with its state, the `AnswerView`, and a one-line summary."""

    sentence_selected = Signal(object, int)  # (card, sentence index): clicked by the user
    chunks_changed = Signal(object)  # card
    attribution_added = Signal(object, object)  # (card, AttributionReady)
    state_changed = Signal(object, str)  # (card, state)
    link_clicked = Signal(QUrl)
    copy_requested = Signal(object)  # card: "Copy answer with citations"

    def __init__(self, question: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("answerCard")
        self.setAccessibleName("Answer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)
        # Preferred, not Fixed: see QuestionView (a Fixed card adds its summary
        # label's unwrapped height to the chat column as blank space).
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.question = question
        self.answer = None  # core.answer.state.Answer: the answer's state, handed in by the controller as it changes
        self.state = WAITING
        self.answer_text = ""
        self.error = None  # core.events.Failed, when the run failed
        self.record = None  # core.history.StoredTurn, once the run has ended (or when reopened)
        self.source_notes: dict[str, str] = {}  # chunk id -> note (file changed since), reopened answers
        self.server_statuses: list[str] = []  # the server's progress codes, in the order they came
        self._showing_server_status = False

        self._who = QLabel("Sourcelight")
        font = self._who.font()
        font.setBold(True)
        self._who.setFont(font)
        self._status = QLabel()
        self._status.setObjectName("answerStatus")
        self._status.setAccessibleName("Answer status")
        self._status.setTextFormat(Qt.TextFormat.PlainText)
        self._status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        # A long status ("Answered (stopped at the answer length limit - raise it in
        # Settings)") wraps inside the column; unwrapped, it made the whole card wider
        # than the chat and cut off its right edge.
        self._status.setWordWrap(True)
        self._status.setMinimumWidth(40)
        self._status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self._who)
        header.addWidget(self._status, 1)
        self.copy_action = QAction("Copy answer with citations", self)
        self.copy_action.setObjectName("copyWithCitationsAction")
        self.copy_action.triggered.connect(self._on_copy_action_triggered)
        self.copy_button = QToolButton(self)
        self.copy_button.setObjectName("copyWithCitations")
        self.copy_button.setText("Copy with citations")
        self.copy_button.setAccessibleName("Copy answer with citations")
        self.copy_button.setToolTip("Copy this answer as Markdown, each sentence with a footnote quoting its "
                                    "source")
        self.copy_button.setAutoRaise(True)
        self.copy_button.clicked.connect(self.copy_action.trigger)
        self.copy_button.hide()  # until there is a finished answer to copy
        header.addWidget(self.copy_button)

        self.view = AnswerView(self)
        self.view.sentence_clicked.connect(self._on_view_sentence_clicked)
        self.view.link_clicked.connect(self.link_clicked)
        # The text view's own menu (Copy, Select All) plus "Copy answer with citations".
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_view_custom_context_menu_requested)

        self._summary = QLabel()
        self._summary.setObjectName("answerSummary")
        self._summary.setAccessibleName("Answer summary")
        self._summary.setTextFormat(Qt.TextFormat.PlainText)
        self._summary.setWordWrap(True)
        self._summary.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._summary.hide()
        # While an answer streams, attributions arrive a dozen per painted batch; the
        # summary (a count over all sentences, and a re-wrap of the card that may move
        # the chat and repaint all of it) is redone at most every SUMMARY_MS, not once
        # per attribution; it is exact again the moment the answer ends.
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(SUMMARY_MS)
        self._summary_timer.timeout.connect(self._update_summary)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.view)
        layout.addWidget(self._summary)
        self._set_state(WAITING, "Waiting for the models to load - your question will be answered as soon "
                                 "as they are ready.")

    # -- run progress (connected to an AnswerBridge) -----------------------
    def set_waiting(self, message: str) -> None:
        self._set_state(WAITING, message)

    def start_run(self) -> None:
        self._set_state(RETRIEVING, "Searching your documents...")

    @property
    def chunks(self) -> tuple:
        """The passages retrieved for this answer (from its state)."""
        return self.answer.chunks if self.answer is not None else ()

    def set_chunks(self, _chunks) -> None:
        """Retrieval is done (the chunks themselves are in `answer`): the answer is being written."""
        self._set_state(STREAMING, "Writing...")
        self.chunks_changed.emit(self)

    def set_server_status(self, status) -> None:
        """Show what the model server reports (a core.events.StatusChanged) while the answer runs."""
        if self.finished:
            return
        self.server_statuses.append(status.status)
        self._set_state(STREAMING, status.message)
        self._showing_server_status = True

    def append_text(self, text: str) -> None:
        if self.state in (WAITING, RETRIEVING) or self._showing_server_status:
            self._showing_server_status = False
            self._set_state(STREAMING, "Writing...")
        self.answer_text += text
        self.view.append_text(text)

    def add_sentence(self, sentence) -> None:
        self.view.add_sentence(sentence)

    def add_attribution(self, attribution) -> None:
        self.view.add_attribution(attribution)
        if self.finished:
            self._update_summary()
        elif not self._summary_timer.isActive():
            self._summary_timer.start()
        self.attribution_added.emit(self, attribution)

    def complete(self, completed) -> None:
        if completed.answer != self.answer_text:  # never expected; the final text wins
            self.answer_text = completed.answer
            self.view.set_text(completed.answer)
        self._finish_text()
        note = f" ({completed.finish_note})" if completed.finish_note else ""
        if not self.answer_text.strip():
            self._set_state(COMPLETED, "The model returned an empty answer. Try Regenerate, or rephrase the "
                                       "question.")
        else:
            self._set_state(COMPLETED, "Answered" + note)

    def cancel(self, partial: str) -> None:
        # `partial` is the engine's own record of what streamed; text it holds
        # beyond what was painted (still queued when the run stopped) is added.
        if partial and len(partial) > len(self.answer_text) and partial.startswith(self.answer_text):
            self.append_text(partial[len(self.answer_text):])
        self._finish_text()
        self._set_state(CANCELLED, "Stopped - the partial answer is kept." if self.answer_text.strip()
                        else "Stopped before the answer began.")

    def fail(self, failed) -> None:
        self.error = failed
        self._finish_text()
        self._set_state(FAILED, "Failed: " + failed.message)

    def _finish_text(self) -> None:
        if self.answer_text:
            self.view.render_markdown()
        self._update_summary()

    @property
    def finished(self) -> bool:
        return self.state in (COMPLETED, CANCELLED, FAILED)

    @property
    def status_text(self) -> str:
        return self._status.text()

    def _set_state(self, state: str, text: str) -> None:
        self.state = state
        self._status.setText(text)
        self._status.setToolTip(plain_tooltip(text))
        self.view.setVisible(bool(self.answer_text) or state == STREAMING)
        self.copy_button.setVisible(self.finished and bool(self.answer_text.strip()))
        self.copy_action.setEnabled(self.finished)
        self.state_changed.emit(self, state)

    def _update_summary(self) -> None:
        self._summary_timer.stop()
        # Counted from the view's attributions by index: O(sentences), once per
        # flushed batch at most (see AnswerBridge), not per token.
        view = self.view
        total = view.sentence_count()
        attributions = view.attribution_list()
        if not attributions:
            self._summary.hide()
            return
        supported = sum(1 for a in attributions if a.supported)
        weak = sum(1 for a in attributions if a.flagged)
        # Sentences that claim nothing are counted apart: they are neither
        # backed by the documents nor a warning sign.
        not_claims = sum(1 for a in attributions if not a.is_claim)
        mismatched = sum(1 for a in attributions if a.supported and a.citation_agrees is False)
        parts = [f"{total} sentence{'s' if total != 1 else ''}", f"{supported} supported by your documents"]
        if weak:
            parts.append(f"{weak} not supported (underlined)")
        if not_claims:
            parts.append(f"{not_claims} not {'a claim' if not_claims == 1 else 'claims'}")
        if mismatched:
            parts.append(f"{mismatched} with a citation that points elsewhere")
        self._summary.setText(" \u00b7 ".join(parts) + ". Click a sentence to see its source.")
        self._summary.show()

    # -- selection ---------------------------------------------------------
    def attributions(self) -> list:
        return self.view.attribution_list()

    def select_sentence(self, index: int | None) -> None:
        self.view.set_selected_sentence(index)

    def step_sentence(self, step: int) -> int | None:
        """Select the next (`step` > 0) or previous sentence; returns its index."""
        indices = [s.index for s in self.view.sentences()]
        if not indices:
            return None
        current = self.view.selected_sentence
        if current is None or current not in indices:
            target = indices[0] if step > 0 else indices[-1]
        else:
            pos = indices.index(current) + step
            target = indices[max(0, min(len(indices) - 1, pos))]
        return target

    def _on_view_sentence_clicked(self, index: int) -> None:
        self.sentence_selected.emit(self, index)

    def _on_copy_action_triggered(self) -> None:
        self.copy_requested.emit(self)

    def context_menu(self, pos: QPoint):
        """The answer text's menu at `pos` (view coordinates): the standard entries and the citations copy."""
        menu = self.view.createStandardContextMenu(pos)
        menu.addSeparator()
        menu.addAction(self.copy_action)
        return menu

    def _on_view_custom_context_menu_requested(self, pos: QPoint) -> None:
        menu = self.context_menu(pos)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.view.viewport().mapToGlobal(pos))

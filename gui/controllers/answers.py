"""Answers: a question becomes a run of the engine streamed into a card, then a saved turn.

Each answer is asked through the Qt-free conversation service
(`core.answer.conversation`), which folds the run's events into one `Answer` state
(`core.answer.state`). The card is handed that state as it changes (`card.answer`),
besides the events the bridge paints; the window's sources panel, the
sentences a passage supports, Copy and the saved turn all read it.

Answers run as the task runner's task "answer": a new question preempts the
answer in flight, and Stop stops it, through the runner (`gui.tasks`), which
stops an answer its own way (`_Answering.stop`: through its run, which ends
with the partial answer kept). When the run ends (completed, failed or
cancelled) the turn is written to history from the `Answer`, chained after the
conversation's earlier writes. Regenerate asks the last question again and
replaces its card. Copy puts a finished answer on the clipboard as Markdown
with footnotes.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid

from gui.answer_bridge import AnswerBridge
from gui.controllers.history import Chat, HistoryAccess
from gui.controllers.support import backend_description, describe, model_name, until_done
from gui.widgets.question_view import QuestionView

if TYPE_CHECKING:  # loaded with the first answer, after the first paint
    from gui.widgets.answer_card import AnswerCard

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """One question and the card showing its (latest) answer."""

    question: str
    question_view: QuestionView
    card: AnswerCard


@dataclass(eq=False)
class _Answering:
    """One answer in flight: its "answer" task and the run it started, kept together to stop it."""

    task: asyncio.Task | None = None
    asking: Any = None  # the core.answer.conversation.Asking, once this task has started its run
    started: bool = False  # the task has taken its first step (inside its try)
    stop_requested: bool = False  # stopped before that first step

    def stop(self) -> None:
        """How the task runner stops this answer (a Stop, a newer question), so that it ends as Cancelled.

        An answer that has started its run is stopped through it (the run ends
        with Cancelled and the engine's partial answer, so the card keeps every
        word); one that has not has streamed nothing yet (it waits for the
        models or for the answer before it), so its task is cancelled directly.
        """
        if self.asking is not None:
            self.asking.cancel()
        elif self.started:
            self.task.cancel()
        else:
            # Its first step has not run yet: a task cancelled now would end
            # before entering its `try` and skip the clean-up (the card would
            # wait forever, busy would stay on); it stops itself on that step.
            self.stop_requested = True


class AnswersController(QObject):
    """Asks, regenerates, stops, records and copies answers; see the module docstring."""

    answer_finished = Signal(object)  # AnswerCard, after its run ended (any way)
    turn_saved = Signal(object)  # core.history.StoredTurn, durable
    conversation_created = Signal(int)  # the first question of a new chat made its conversation
    answer_copied = Signal(str)  # the Markdown put on the clipboard

    def __init__(self, app, history: HistoryAccess, current_chat: Callable[[], Chat], parent=None):
        super().__init__(parent)
        self.app = app  # the composition root: window, tasks, engine
        self.window = app.window
        self.tasks = app.tasks
        self.history = history
        self._current_chat = current_chat
        self._asking = None  # the run streaming now (or winding down after a Stop), whichever answer owns it
        self._turns: list[Turn] = []
        self._verifier_reported = False  # the "no verifier" message is shown once per session
        self.window.question_submitted.connect(self._on_window_question_submitted)
        self.window.stop_requested.connect(self._on_window_stop_requested)
        self.window.regenerate_requested.connect(self._on_window_regenerate_requested)
        self.window.copy_requested.connect(self._on_window_copy_requested)

    def _on_window_question_submitted(self, question: str) -> None:
        self.ask(question)

    def _on_window_stop_requested(self) -> None:
        self.stop()

    def _on_window_regenerate_requested(self) -> None:
        self.regenerate()

    def _on_window_copy_requested(self, card: AnswerCard) -> None:
        self.copy_answer(card)

    # -- the turns shown -----------------------------------------------------
    @property
    def turns(self) -> list[Turn]:
        return list(self._turns)

    def clear_turns(self) -> None:
        self._turns = []

    def prepend_turns(self, turns: list[Turn]) -> None:
        self._turns[0:0] = turns

    def resume_waiting(self) -> None:
        """The models have loaded: questions that waited for them are being answered now."""
        from gui.widgets.answer_card import WAITING  # loaded: a card exists

        for turn in self._turns:
            if turn.card.state == WAITING and self.tasks.running("answer"):
                turn.card.start_run()

    # -- asking --------------------------------------------------------------
    def ask(self, question: str) -> AnswerCard:
        """Show `question` and start answering it (cancelling an answer in flight)."""
        view = self.window.chat_view.add_question(question)
        card = self.window.chat_view.add_answer(question)
        self._turns.append(Turn(question, view, card))
        self._start_answer(question, card)
        return card

    def regenerate(self) -> AnswerCard | None:
        """Ask the last question again; the new answer replaces the old one."""
        if not self._turns:
            return None
        turn = self._turns[-1]
        old = turn.card
        turn.card = self.window.chat_view.add_answer(turn.question, after=old)
        old.hide()  # removed once its run (if still going) has ended
        self._start_answer(turn.question, turn.card, replaces=old)
        return turn.card

    def _start_answer(self, question: str, card: AnswerCard, replaces: AnswerCard | None = None) -> None:
        # Starting the new "answer" task stops this one (the runner's preemption); the new one waits for it to end.
        previous = self.tasks.get("answer")
        self.window.banner.clear()
        self.window.set_busy(True)
        chat = self._current_chat()
        if chat.id is None and chat.saving is None:
            # The first question of a new chat creates its conversation (it shows in the list at once).
            self.history.chain(chat, functools.partial(self._create_conversation, chat, question))
        answering = _Answering()
        answering.task = self.tasks.start(
            "answer", self._answer(answering, question, card, previous, replaces, chat), stop=answering.stop)

    def stop(self) -> None:
        """Stop the running answer; it ends as Cancelled with the partial answer kept."""
        self.stop_answer()

    def stop_answer(self) -> asyncio.Task | None:
        """Stop the current "answer" task and return it while it ends (None: no answer is running)."""
        return self.tasks.stop("answer")

    def cancel_run(self) -> None:
        """The app is closing: end the run streaming now, whichever answer owns it.

        Not always the current answer's: a question asked while the one before
        it winds down waits for that run to end, and the run still belongs to
        the older task.
        """
        if self._asking is not None:
            self._asking.cancel()

    async def _answer(self, answering: _Answering, question: str, card: AnswerCard, previous: asyncio.Task | None,
                      replaces: AnswerCard | None, chat: Chat) -> None:
        answering.started = True
        bridge = self.bridge_for(card, live=True)
        asking = None
        failed = None  # an error raised before the run could report it as an event
        try:
            # Everything from here on is inside the try: a Stop or a newer
            # question may cancel this task while it waits, and the card, the
            # busy state and the turn must still be finished below, as for any
            # stopped answer.
            if answering.stop_requested:  # stopped before this task first ran
                raise asyncio.CancelledError
            if previous is not None and not previous.done():
                # Let the preempted run end (its Cancelled event, its backend freed) first.
                await asyncio.wait({previous})
            if not self.app.ready:
                card.set_waiting("Waiting for the models to load - your question will be answered as soon as "
                                 "they are ready.")
            engine = await self.app.engine_available()
            if self.app.ready:  # otherwise the card keeps saying it waits for the models
                card.start_run()
            # Named as the question is asked: a model chosen meanwhile answers the next one.
            bridge.run_completed.connect(functools.partial(self._on_bridge_run_completed, model_name(engine.backend)))
            context = await self._history_before(chat, replaces)
            from core.answer.conversation import ConversationService  # here: the window paints before core loads

            # The window saves the turn itself, chained after its other history writes (see _record).
            asking = ConversationService(engine).ask(question, messages=context, save=False)
            answering.asking = self._asking = asking
            card.answer = asking.answer
            # The state is folded before the bridge paints each event: the card always holds what it shows.
            await bridge.relay(asking, functools.partial(_show_state, card, asking))
        except asyncio.CancelledError:
            if not card.finished:
                card.cancel(card.answer_text)
            raise
        except Exception as exc:  # the engine could not be built, or a bug before the run started
            from core.events import Failed  # here, not at the top: the window paints before core loads

            failed = Failed(getattr(exc, "code", "internal_error"), describe(exc, "The question could not be answered"),
                            type(exc).__name__)
            self._on_bridge_run_failed(card, failed)
        finally:
            if self._asking is asking:
                self._asking = None
            bridge.deleteLater()
            if self.tasks.get("answer") is asyncio.current_task():
                self.window.set_busy(False)
            if previous is not None and not previous.done():
                # Stopped while the answer before it was still ending: that turn
                # is recorded first (turns are saved in the order they were
                # asked), and a newer question, which waits for this task, waits
                # for both runs to end before it starts its own.
                await until_done(previous)
            if replaces is not None:  # removed now that no run writes to it any more
                self._discard(replaces)
            self._record(chat, card, question, asking, failed)
            self.answer_finished.emit(card)

    def _on_bridge_run_completed(self, name: str, _completed) -> None:
        self.window.set_status(f"Answered by {name}.")

    def _on_bridge_run_failed(self, card: AnswerCard, failed) -> None:
        card.fail(failed)
        self.window.show_error(failed.message)
        # Nothing the user typed is lost: the question goes back into the box.
        self.window.composer.restore_text(card.question)

    def _discard(self, card: AnswerCard) -> None:
        """Remove a replaced card from the chat (unless a switch of conversation deleted it already)."""
        if isValid(card):
            self.window.chat_view.remove(card)

    def bridge_for(self, card: AnswerCard, *, live: bool) -> AnswerBridge:
        """A bridge wired to `card`; a replayed (stored) failure updates the card only, no banner."""
        # Parented to the controller, not the card: a card may be deleted while
        # its bridge still relays; Qt drops connections to a deleted receiver.
        bridge = AnswerBridge(self)
        bridge.retrieval_done.connect(card.set_chunks)
        bridge.status_changed.connect(card.set_server_status)
        bridge.text_appended.connect(card.append_text)
        bridge.sentence_closed.connect(card.add_sentence)
        bridge.attribution_arrived.connect(card.add_attribution)
        bridge.run_completed.connect(card.complete)
        bridge.run_cancelled.connect(card.cancel)
        bridge.run_failed.connect(functools.partial(self._on_bridge_run_failed, card) if live else card.fail)
        return bridge

    def replay(self, card: AnswerCard, turn, notes: dict[str, str]) -> None:
        """Rebuild `card` from a stored turn through the live answer's bridge and card code."""
        card.record = turn
        card.answer = turn.answer_state()
        card.source_notes = notes
        bridge = self.bridge_for(card, live=False)
        card.start_run()
        bridge.replay(turn.replay())
        bridge.deleteLater()

    async def _history_before(self, chat: Chat, replaces: AnswerCard | None = None) -> list:
        """The conversation's earlier turns as chat messages, for a follow-up question."""
        if chat.saving is not None:  # the turns before this question must be on disk first
            await asyncio.wait({chat.saving})
        history = await self.history.available()
        if history is None or chat.id is None:
            return []
        loop = asyncio.get_running_loop()
        try:
            messages = await loop.run_in_executor(None, history.history_messages, chat.id)
        except Exception as exc:  # answer anyway, without the context
            log.warning("reading the conversation's earlier turns failed", exc_info=True)
            self.window.show_error(describe(exc, "The earlier answers could not be read") +
                                   " This question is answered without them.")
            return []
        old = replaces.answer if replaces is not None else None
        if old is not None and old.status == "completed" and old.text and len(messages) >= 2 \
                and messages[-2].content == old.question:
            # Regenerate: the answer being replaced is not context for its own question.
            messages = messages[:-2]
        return messages

    # -- recording -----------------------------------------------------------
    async def _create_conversation(self, chat: Chat, question: str, history) -> None:
        loop = asyncio.get_running_loop()
        try:
            chat.id = await loop.run_in_executor(None, _create_conversation, history, question)
        except Exception as exc:  # the turn's own save tries again
            self.window.show_error(describe(exc, "The conversation could not be saved"))
            return
        self.conversation_created.emit(chat.id)

    def _report_verifier(self) -> None:
        """Say once, after an answer, that support came without the verifier (it loads with the first answer,
        on the attribution worker: loading it at start-up competed with start-up and with quitting)."""
        engine = self.app.engine
        problem = engine.attributor.verifier_error if engine is not None else None
        if problem and not self._verifier_reported:
            self._verifier_reported = True
            self.window.show_error(problem)

    def _record(self, chat: Chat, card: AnswerCard, question: str, asking, failed) -> None:
        """Keep the ended run as a turn on the card and write it to history (in the executor).

        The turn is the run's `Answer` state (folded from each event the card
        was shown); only an ending the run could not report itself is added
        here: stopped before or under the stream, or an error raised before the
        run existed (`failed`). Nothing is read back from the card.
        """
        self._report_verifier()
        try:
            from core import events as ev

            if asking is None:  # the run never started (cancelled or failed while waiting)
                asking = _asking(question, self.app.engine)
                asking.fold(ev.RunStarted("", question))
            if not asking.done:  # the state keeps the text streamed so far as the partial answer
                asking.fold(failed if failed is not None else ev.Cancelled(""))
            turn = asking.turn()
        except Exception:  # recording must never break the answer's clean-up
            log.error("recording the turn failed", exc_info=True)
            return
        _show_state(card, asking)
        card.record = turn
        self.history.chain(chat, functools.partial(self._save_turn, chat, card, turn))

    async def _save_turn(self, chat: Chat, card: AnswerCard, turn, history) -> None:
        loop = asyncio.get_running_loop()
        try:
            chat.id, stored = await loop.run_in_executor(None, _store_turn, history, chat.id, turn)
        except Exception as exc:
            self.window.show_error(describe(exc, "The answer could not be saved to the conversation history"))
            return
        try:
            if card.record is turn:
                card.record = stored
        except RuntimeError:  # the card was deleted meanwhile (another conversation opened)
            pass
        self.turn_saved.emit(stored)

    # -- copy ----------------------------------------------------------------
    def copy_answer(self, card: AnswerCard) -> str | None:
        """Put the answer, with a footnote per supported sentence, on the clipboard as Markdown."""
        answer = card.answer
        if answer is None or not answer.done:
            self.window.show_notice("This answer is still being written. Copy it once it has finished.")
            return None
        from core.export import answer_to_markdown

        text = answer_to_markdown(answer)  # string work only: quick enough for the UI thread
        self.window.copy_to_clipboard(text)
        self.window.set_status("Copied the answer with its citations (Markdown).")
        self.answer_copied.emit(text)
        return text


def _asking(question: str, engine):
    """The record of a question whose run never started, naming the backend and model that were to answer."""
    from core.answer.conversation import Asking

    if engine is None:
        return Asking(None, question, save=False)
    return Asking(engine, question, save=False, backend=backend_description(engine.backend),
                  model=str(getattr(engine.settings, "model", "")))


def _show_state(card: AnswerCard, asking, _event=None) -> None:
    """Hand the card the answer's state as it now stands (the card may be gone: another conversation opened)."""
    try:
        card.answer = asking.answer
    except RuntimeError:
        pass


# History work for the executor (each call blocks on SQLite, maybe an fsync).
def _create_conversation(history, question: str) -> int:
    from core.history import title_from_question

    return history.create_conversation(title_from_question(question))


def _store_turn(history, conversation_id: int | None, turn):
    if conversation_id is None:  # its creation failed before: try once more with the turn
        conversation_id = _create_conversation(history, turn.question)
    return conversation_id, history.add_turn(conversation_id, turn)

"""The controller: user actions in the window become engine work on the event loop.

It owns the engine (built in the background after the window is painted),
the API-key store, and the named tasks of every action (`gui.tasks`): "load",
"answer", "ingest", "remove:<doc>", "settings", "test-connection", "models"
(looking for models for the Models page) and "model-download" (one download
at a time; it goes on when the dialog closes, and says how it went in the
status bar). Choosing a model on the Models page applies it at once, through
the same queued save as the Save button. A new
question preempts the "answer" task; Stop cancels the run, which ends with the
partial answer kept. Settings saves queue up in "apply-settings" instead (one
stopped half-way would leave a backend switch half done). Blocking engine
calls (load, ingest, documents, remove, keyring access) go to the loop's
executor, never onto the event-loop thread (architecture rule 7), and every
action resets the window's busy state in a `finally` so an error never leaves
the window stuck (rule 10).

Conversation history (issue 7): the controller owns one
`core.history.HistoryStore`, opened on a worker thread by the factory the
composition root hands in (like the engine). Every run is recorded: a
`TurnRecorder` sees each event the bridge relays, and when the run ends
(completed, failed or cancelled) the turn is written in the executor. History
writes of one conversation are chained, so turns land in the order they were
asked and a follow-up reads its context only after the earlier turns are on
disk. Opening a conversation replays its stored turns through the same
bridge and card code as a live answer (named task "conversation"; older pages
on request, task "earlier").

Nothing from `core` is imported at module level: the composition root must
paint the window before torch, chromadb and friends are imported.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid

from gui.answer_bridge import AnswerBridge
from gui.main_window import MainWindow
from gui.page_view_controller import PageViewController
from gui.tasks import TaskRunner
from gui.widgets.question_view import QuestionView

if TYPE_CHECKING:  # loaded with the first answer, after the first paint
    from gui.widgets.answer_card import AnswerCard

log = logging.getLogger(__name__)

# Settings whose change needs a new backend object.
BACKEND_FIELDS = ("backend", "model", "base_url", "api_mode", "threads", "request_timeout_s", "local_model_path")


@dataclass
class Turn:
    """One question and the card showing its (latest) answer."""

    question: str
    question_view: QuestionView
    card: AnswerCard


_FAILED = object()  # a history call that could not be made (the window already said why)


@dataclass
class _Chat:
    """The conversation the window shows: its id once created, and its chain of history writes."""

    id: int | None = None
    saving: asyncio.Task | None = None  # the last history write of this conversation
    loaded_from: int = 0  # how many older turns are not shown yet


@dataclass(eq=False)
class _Answering:
    """One answer in flight: its "answer" task and the engine run it started, kept together to stop it."""

    task: asyncio.Task | None = None
    run: Any = None  # the engine's run, once this task has started one
    started: bool = False  # the task has taken its first step (inside its try)
    stop_requested: bool = False  # stopped before that first step


@dataclass(frozen=True)
class _FailedLike:
    """Shape of core.events.Failed for errors raised before a run exists."""

    code: str
    message: str
    error_type: str
    partial_answer: str = ""


class Controller(QObject):
    """Connects the window's signals to the engine; see the module docstring."""

    engine_loaded = Signal()
    engine_failed = Signal(str)
    answer_finished = Signal(object)  # AnswerCard, after its run ended (any way)
    ingest_finished = Signal(object)  # core.ingest.IngestReport
    documents_changed = Signal(list)  # list[DocumentRecord]
    settings_applied = Signal(object)  # Settings
    history_opened = Signal()
    turn_saved = Signal(object)  # core.history.StoredTurn, durable
    conversations_changed = Signal(list)  # list[ConversationSummary] now in the list
    conversation_opened = Signal(int)  # its first page of turns is in the chat
    earlier_loaded = Signal(int)  # how many older turns were added above
    conversation_deleted = Signal(int)
    conversation_restored = Signal(int)
    conversation_renamed = Signal(int, str)
    answer_copied = Signal(str)  # the Markdown put on the clipboard
    exported = Signal(str)  # path written
    models_found = Signal(list)  # list[ModelEntry] now on the Models page
    model_download_ended = Signal(str)  # the message shown when a download ended (any way)

    def __init__(self, window: MainWindow, *, settings=None, engine_factory: Callable[[Any], Any] | None = None,
                 key_store=None, settings_path: Path | None = None, history=None,
                 history_factory: Callable[[], Any] | None = None):
        super().__init__(window)
        self.window = window
        self._settings = settings
        self._settings_path = settings_path
        self._engine_factory = engine_factory
        self._key_store = key_store
        self.tasks = TaskRunner()
        self.engine = None
        self._engine_future: asyncio.Future | None = None
        self.ready = False
        self._verifier_reported = False  # the "no verifier" message is shown once per session
        self._run = None  # the run streaming now (or winding down after a Stop), whichever answer owns it
        self._answering: _Answering | None = None  # the latest answer (the task named "answer")
        self._turns: list[Turn] = []
        self._ingest_cancel: threading.Event | None = None
        self.settings_dialog = None
        self._backend_settings = None  # the settings the engine's backend was built from
        self._key_unused = False  # a key was saved that no backend has been built with yet
        self._pending_saves: list[tuple[Any, str | None]] = []  # Save clicks not applied yet, oldest first
        self._download_cancel: threading.Event | None = None  # set to stop the model download in flight
        self._downloading = None  # the Recommended model being downloaded
        self._shutting_down = False
        # History: given ready-made (tests) or opened by the factory on a worker.
        self.history = history
        self._history_factory = history_factory
        self._history_future: asyncio.Future | None = None
        self._chat = _Chat()
        self._saves: set[asyncio.Task] = set()
        self._search = ""
        self._undo: tuple[int, bool] | None = None  # (conversation id, was open) of the last delete

        window.question_submitted.connect(self._on_window_question_submitted)
        window.stop_requested.connect(self._on_window_stop_requested)
        window.regenerate_requested.connect(self._on_window_regenerate_requested)
        window.paths_chosen.connect(self._on_window_paths_chosen)
        window.removal_requested.connect(self._on_window_removal_requested)
        window.ingest_cancel_requested.connect(self._on_window_ingest_cancel_requested)
        window.refresh_requested.connect(self._on_window_refresh_requested)
        window.settings_requested.connect(self._on_window_settings_requested)
        window.new_conversation_requested.connect(self._on_window_new_conversation_requested)
        window.conversation_chosen.connect(self._on_window_conversation_chosen)
        window.conversation_rename_requested.connect(self._on_window_conversation_rename_requested)
        window.conversation_deletion_requested.connect(self._on_window_conversation_deletion_requested)
        window.conversation_search_changed.connect(self._on_window_conversation_search_changed)
        window.earlier_requested.connect(self._on_window_earlier_requested)
        window.copy_requested.connect(self._on_window_copy_requested)
        window.export_requested.connect(self._on_window_export_requested)
        window.undo_requested.connect(self._on_window_undo_requested)
        # The document view (issue 16): spans and pages rendered as the named task "page-view".
        self.page_view = PageViewController(window, self.tasks, lambda: self.engine)

    # -- start-up ------------------------------------------------------------
    @property
    def settings(self):
        return self._settings

    @property
    def turns(self) -> list[Turn]:
        return list(self._turns)

    def start(self) -> asyncio.Task:
        """Build and load the engine in the background (call after the window is painted)."""
        self._future()
        self.tasks.start("history", self._open_history())
        return self.tasks.start("load", self._load())

    def _future(self) -> asyncio.Future:
        if self._engine_future is None:
            self._engine_future = asyncio.get_event_loop().create_future()
        return self._engine_future

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        window = self.window
        window.set_status("Starting the document engine...")
        try:
            if self._settings is None:
                self._settings = await loop.run_in_executor(None, self._read_settings)
            if self._key_store is None:
                self._key_store = await loop.run_in_executor(None, _make_key_store)
            factory = self._engine_factory or functools.partial(_default_engine, key_store=self._key_store)
            built_from = self._settings
            engine = await loop.run_in_executor(None, factory, built_from)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = _describe(exc, "Sourcelight could not start its document engine")
            if not self._future().done():
                self._future().set_exception(_EngineUnavailable(message))
                self._future().exception()  # retrieved here; waiting actions re-raise it
            window.set_status("Not ready")
            window.show_error(message)
            self.engine_failed.emit(message)
            return
        self.engine = engine
        self._backend_settings = built_from
        if not self._future().done():
            self._future().set_result(engine)
        window.set_backend_description(_backend_description(engine.backend))

        def status(message: str) -> None:  # called on the loading thread
            loop.call_soon_threadsafe(window.set_status, message)

        try:
            await loop.run_in_executor(None, engine.load, status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = _describe(exc, "Sourcelight could not load its models")
            window.set_status("Not ready")
            window.show_error(message)
            self.engine_failed.emit(message)
            return
        self.ready = True
        window.set_status("Ready")
        for turn in self._turns:  # questions that waited for the models are being answered now
            from gui.widgets.answer_card import WAITING  # loaded: a card exists

            if turn.card.state == WAITING and self.tasks.running("answer"):
                turn.card.start_run()
        await self._refresh_documents()
        self.engine_loaded.emit()
        await self._warm_backend(engine.backend)

    async def _warm_backend(self, backend) -> None:
        """Load the local model now rather than on the first question (it loads on its own thread)."""
        load = getattr(backend, "load", None)
        if load is None or getattr(backend, "loaded", True):
            return
        self.window.set_status(f"Loading the language model ({_backend_description(backend)})...")
        try:
            await load()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the first question will report it again, with its next step
            self.window.show_error(_describe(exc, "The language model could not be loaded"))
            self.window.set_status("Ready (the language model could not be loaded)")
            return
        self.window.set_status("Ready")

    def _read_settings(self):
        from core.settings import Settings

        return Settings.load(self._settings_path)

    async def _engine_available(self):
        """The engine object, waiting for it to be built (not necessarily loaded)."""
        return await asyncio.shield(self._future())

    # -- answers -------------------------------------------------------------
    def _on_window_question_submitted(self, question: str) -> None:
        self.ask(question)

    def ask(self, question: str) -> AnswerCard:
        """Show `question` and start answering it (cancelling an answer in flight)."""
        view = self.window.chat_view.add_question(question)
        card = self.window.chat_view.add_answer(question)
        self._turns.append(Turn(question, view, card))
        self._start_answer(question, card)
        return card

    def _on_window_regenerate_requested(self) -> None:
        self.regenerate()

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
        previous = self._stop_answer()
        self.window.banner.clear()
        self.window.set_busy(True)
        chat = self._chat
        if chat.id is None and chat.saving is None:
            # The first question of a new chat creates its conversation (it shows in the list at once).
            self._chain(chat, functools.partial(self._create_conversation, chat, question))
        answering = _Answering()
        answering.task = self.tasks.start(
            "answer", self._answer(answering, question, card, previous, replaces, chat), preempt=False)
        self._answering = answering

    def _on_window_stop_requested(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the running answer; it ends as Cancelled with the partial answer kept."""
        self._stop_answer()

    def _stop_answer(self) -> asyncio.Task | None:
        """Stop the current "answer" task and return it (None: no answer is running).

        `self._run` is not always the current answer's: a question asked while
        the one before it winds down waits for that run to end, and the run
        still belongs to the older task. An answer that has started its own run
        is stopped through it (the run ends with Cancelled and the engine's
        partial answer, so the card keeps every word); one that has not has
        streamed nothing yet (it waits for the models or for the answer before
        it), so its task is cancelled directly.
        """
        answering = self._answering
        if answering is None or answering.task is None or answering.task.done():
            return None
        if answering.run is not None:
            answering.run.cancel()
        elif answering.started:
            answering.task.cancel()
        else:
            # Its first step has not run yet: a task cancelled now would end
            # before entering its `try` and skip the clean-up (the card would
            # wait forever, busy would stay on); it stops itself on that step.
            answering.stop_requested = True
        return answering.task

    async def _answer(self, answering: _Answering, question: str, card: AnswerCard, previous: asyncio.Task | None,
                      replaces: AnswerCard | None = None, chat: _Chat | None = None) -> None:
        answering.started = True
        chat = chat or self._chat
        bridge = self._bridge_for(card, live=True)
        run = None
        recorder = None
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
            if not self.ready:
                card.set_waiting("Waiting for the models to load - your question will be answered as soon as "
                                 "they are ready.")
            engine = await self._engine_available()
            if self.ready:  # otherwise the card keeps saying it waits for the models
                card.start_run()
            # Named as the question is asked: a model chosen meanwhile answers the next one.
            bridge.run_completed.connect(functools.partial(self._on_bridge_run_completed,
                                                           _model_name(engine.backend)))
            recorder = _recorder(question, engine)
            context = await self._history_before(chat, replaces)
            run = engine.ask(question, context)
            answering.run = self._run = run
            await bridge.relay(run, recorder.observe)
        except asyncio.CancelledError:
            if not card.finished:
                card.cancel(card.answer_text)
            raise
        except Exception as exc:  # the engine could not be built, or a bug before the run started
            failed = _FailedLike(getattr(exc, "code", "internal_error"),
                                 _describe(exc, "The question could not be answered"), type(exc).__name__)
            self._on_bridge_run_failed(card, failed)
        finally:
            if self._run is run:
                self._run = None
            bridge.deleteLater()
            if self.tasks.get("answer") is asyncio.current_task():
                self.window.set_busy(False)
            if previous is not None and not previous.done():
                # Stopped while the answer before it was still ending: that turn
                # is recorded first (turns are saved in the order they were
                # asked), and a newer question, which waits for this task, waits
                # for both runs to end before it starts its own.
                await _until_done(previous)
            if replaces is not None:  # removed now that no run writes to it any more
                self._discard(replaces)
            self._record(chat, card, recorder)
            self.answer_finished.emit(card)

    def _on_bridge_run_completed(self, model_name: str, _completed) -> None:
        self.window.set_status(f"Answered by {model_name}.")

    def _discard(self, card: AnswerCard) -> None:
        """Remove a replaced card from the chat (unless a switch of conversation deleted it already)."""
        if isValid(card):
            self.window.chat_view.remove(card)

    def _bridge_for(self, card: AnswerCard, *, live: bool) -> AnswerBridge:
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

    async def _history_before(self, chat: _Chat, replaces: AnswerCard | None = None) -> list:
        """The conversation's earlier turns as chat messages, for a follow-up question."""
        if chat.saving is not None:  # the turns before this question must be on disk first
            await asyncio.wait({chat.saving})
        history = await self._history_available()
        if history is None or chat.id is None:
            return []
        loop = asyncio.get_running_loop()
        try:
            messages = await loop.run_in_executor(None, history.history_messages, chat.id)
        except Exception as exc:  # answer anyway, without the context
            log.warning("reading the conversation's earlier turns failed", exc_info=True)
            self.window.show_error(_describe(exc, "The earlier answers could not be read") +
                                   " This question is answered without them.")
            return []
        old = replaces.record if replaces is not None else None
        if old is not None and old.status == "completed" and old.answer and len(messages) >= 2 \
                and messages[-2].content == old.question:
            # Regenerate: the answer being replaced is not context for its own question.
            messages = messages[:-2]
        return messages

    # -- history -------------------------------------------------------------
    def _history_slot(self) -> asyncio.Future:
        if self._history_future is None:
            self._history_future = asyncio.get_event_loop().create_future()
        return self._history_future

    async def _open_history(self) -> None:
        loop = asyncio.get_running_loop()
        slot = self._history_slot()
        try:
            if self.history is None:
                if self._history_factory is None:
                    raise RuntimeError("no conversation history was configured")
                self.history = await loop.run_in_executor(None, self._history_factory)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not slot.done():
                slot.set_result(None)
            self.window.show_error(_describe(exc, "The conversation history could not be opened") +
                                   " Answers still work, but they are not saved.")
            return
        if not slot.done():
            slot.set_result(self.history)
        self.history_opened.emit()
        self.refresh_conversations()

    async def _history_available(self):
        """The HistoryStore once open, or None when it could not be opened."""
        return await asyncio.shield(self._history_slot())

    def _chain(self, chat: _Chat, job: Callable[[Any], Any]) -> asyncio.Task:
        """Run `job(history)` after every earlier history write of `chat` (kept in order, awaited at shutdown)."""
        previous = chat.saving

        async def run():
            if previous is not None:
                await asyncio.wait({previous})
            history = await self._history_available()
            if history is not None:
                await job(history)

        task = asyncio.get_event_loop().create_task(run(), name="history-write")
        chat.saving = task
        self._saves.add(task)
        task.add_done_callback(self._on_save_done)
        return task

    def _on_save_done(self, task: asyncio.Task) -> None:
        self._saves.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a history write failed", exc_info=task.exception())

    async def _create_conversation(self, chat: _Chat, question: str, history) -> None:
        loop = asyncio.get_running_loop()
        try:
            chat.id = await loop.run_in_executor(None, _create_conversation, history, question)
        except Exception as exc:  # the turn's own save tries again
            self.window.show_error(_describe(exc, "The conversation could not be saved"))
            return
        self.refresh_conversations()

    def _report_verifier(self) -> None:
        """Say once, after an answer, that support came without the verifier (it loads with the first answer,
        on the attribution worker: loading it at start-up competed with start-up and with quitting)."""
        problem = self.engine.attributor.verifier_error if self.engine is not None else None
        if problem and not self._verifier_reported:
            self._verifier_reported = True
            self.window.show_error(problem)

    def _record(self, chat: _Chat, card: AnswerCard, recorder) -> None:
        """Keep the ended run as a turn on the card and write it to history (in the executor)."""
        self._report_verifier()
        try:
            from core import events as ev

            if recorder is None:  # the run never started (cancelled or failed while waiting)
                recorder = _recorder(card.question, self.engine)
                recorder.observe(ev.RunStarted("", card.question))
            if not recorder.done:  # cancelled under the stream, or failed before the run existed
                if card.state == "failed" and card.error is not None:
                    recorder.observe(ev.Failed(card.error.code, card.error.message, card.error.error_type,
                                               card.answer_text))
                else:
                    recorder.observe(ev.Cancelled(card.answer_text))
            turn = recorder.result()
        except Exception:  # recording must never break the answer's clean-up
            log.error("recording the turn failed", exc_info=True)
            return
        card.record = turn
        self._chain(chat, functools.partial(self._save_turn, chat, card, turn))

    async def _save_turn(self, chat: _Chat, card: AnswerCard, turn, history) -> None:
        loop = asyncio.get_running_loop()
        try:
            chat.id, stored = await loop.run_in_executor(None, _store_turn, history, chat.id, turn)
        except Exception as exc:
            self.window.show_error(_describe(exc, "The answer could not be saved to the conversation history"))
            return
        try:
            if card.record is turn:
                card.record = stored
        except RuntimeError:  # the card was deleted meanwhile (another conversation opened)
            pass
        self.turn_saved.emit(stored)
        self.refresh_conversations()

    async def _saves_settled(self) -> None:
        while self._saves:
            await asyncio.wait(set(self._saves))

    @property
    def conversation_id(self) -> int | None:
        """The id of the conversation the window shows (None: a new one, not saved yet)."""
        return self._chat.id

    # -- conversation list ---------------------------------------------------
    def refresh_conversations(self) -> asyncio.Task:
        """Re-read the conversation list (with the current search) in the background."""
        return self.tasks.start("conversations", self._refresh_conversations())

    async def _refresh_conversations(self) -> None:
        history = await self._history_available()
        if history is None:
            return
        loop = asyncio.get_running_loop()
        try:
            summaries = await loop.run_in_executor(None, history.list_conversations, self._search or None)
        except Exception as exc:
            self.window.show_error(_describe(exc, "The list of conversations could not be read"))
            return
        self.window.conversation_list.set_conversations(summaries, self._chat.id)
        self.conversations_changed.emit(summaries)

    def _on_window_conversation_search_changed(self, text: str) -> None:
        self.search_conversations(text)

    def search_conversations(self, text: str) -> asyncio.Task:
        self._search = text.strip()
        return self.refresh_conversations()

    def _on_window_new_conversation_requested(self) -> None:
        self.new_conversation()

    def new_conversation(self) -> asyncio.Task:
        """Stop the running answer and start an empty chat (saved once a question is asked)."""
        return self._switch(None)

    def _on_window_conversation_chosen(self, conversation_id: int) -> None:
        self.open_conversation(conversation_id)

    def open_conversation(self, conversation_id: int) -> asyncio.Task:
        """Show a saved conversation: its latest turns first, older ones on request."""
        return self._switch(conversation_id)

    def _switch(self, conversation_id: int | None) -> asyncio.Task:
        """Show conversation `conversation_id` (None: a new one); its turns are read in task "conversation".

        The chat and the conversation the next question goes to switch here,
        at once, not after the running answer has ended: a question sent
        right after the click belongs to the conversation the user chose. The
        stopped answer's turn still belongs to the conversation it was asked
        in; it ends, and is saved, there.
        """
        old = self._chat
        ending = self._stop_answer()
        self.tasks.cancel("earlier")
        if ending is not None:
            # Cards whose runs are still ending are written to until then: they
            # leave the chat, hidden, and are deleted once the answer has ended.
            leaving = [card for card in self.window.chat_view.answers() if not card.finished]
            for card in leaving:
                card.hide()
                card.setParent(self.window)
            ending.add_done_callback(lambda _task, cards=leaving: _delete_later(cards))
        if conversation_id is not None and conversation_id == old.id:
            # The same conversation again: keep its chain of writes, so a turn
            # still being saved (the stopped one) is on disk before a follow-up
            # reads its context.
            self._chat = old
            old.loaded_from = 0
        else:
            self._chat = _Chat(conversation_id)
        self._turns = []
        self.window.clear_conversation()
        self.window.conversation_list.set_current(conversation_id)
        if conversation_id is None:
            self.window.set_status("New conversation.")
            self.window.composer.setFocus()
        return self.tasks.start("conversation", self._open(self._chat, ending))

    async def _open(self, chat: _Chat, ending: asyncio.Task | None) -> None:
        if ending is not None:
            # The stopped answer's turn is saved first (it may be a turn of
            # this very conversation, which is read back below).
            await asyncio.wait({ending})
        if chat.id is not None:
            await self._load_page(chat, first=True)

    def _on_window_earlier_requested(self) -> None:
        self.load_earlier()

    def load_earlier(self) -> asyncio.Task | None:
        """Add the previous page of the open conversation above the turns shown."""
        chat = self._chat
        if chat.id is None or chat.loaded_from <= 0 or self.tasks.running("earlier") \
                or self.tasks.running("conversation"):
            return None
        self.window.chat_view.set_earlier_loading()
        return self.tasks.start("earlier", self._load_page(chat, first=False))

    async def _load_page(self, chat: _Chat, *, first: bool) -> None:
        loop = asyncio.get_running_loop()
        chat_view = self.window.chat_view
        history = await self._history_available()
        if history is None:
            self.window.show_error("The conversation history is not available, so saved conversations cannot "
                                   "be opened. Restart Sourcelight; if it keeps happening, see the first error.")
            return
        await self._saves_settled()  # what this window wrote is on disk before it is read back
        try:
            start, page, notes = await loop.run_in_executor(None, _read_page, history, chat.id,
                                                            None if first else chat.loaded_from)
        except Exception as exc:
            self.window.show_error(_describe(exc, "The conversation could not be opened"))
            chat_view.set_earlier_available(not first and chat.loaded_from > 0)
            return
        # Newest first, each one above the last, with the loop free between
        # them: the answer the user reads is painted after one card, not after
        # a page of Markdown layouts, and the window never freezes while the
        # older ones come in above (the chat view keeps the reader's place).
        added = []
        for k, turn in enumerate(reversed(page)):
            anchor = chat_view.first_message()  # older turns go above what is shown (or asked meanwhile)
            card = chat_view.add_answer(turn.question, before=anchor)
            view = chat_view.add_question(turn.question, before=card)
            self._replay(card, turn, notes.get(turn.id, {}))
            added.append(Turn(turn.question, view, card))
            if first and k == 0:
                self.window.set_current_answer(card)
            await asyncio.sleep(0)
        added.reverse()
        self._turns[0:0] = added
        chat.loaded_from = start
        chat_view.set_earlier_available(start > 0)
        self.window.set_busy(self.window.busy)
        if first:
            self.window.set_current_answer(chat_view.last_answer())
            self.window.set_status(f"Opened the conversation ({start + len(page)} question"
                                   f"{'s' if start + len(page) != 1 else ''}).")
            self.conversation_opened.emit(chat.id)
        else:
            self.earlier_loaded.emit(len(page))

    def _replay(self, card: AnswerCard, turn, notes: dict[str, str]) -> None:
        """Rebuild `card` from a stored turn through the live answer's bridge and card code."""
        card.record = turn
        card.source_notes = notes
        bridge = self._bridge_for(card, live=False)
        card.start_run()
        bridge.replay(turn.replay())
        bridge.deleteLater()

    def _on_window_conversation_rename_requested(self, conversation_id: int, title: str) -> None:
        self.rename_conversation(conversation_id, title)

    def rename_conversation(self, conversation_id: int, title: str) -> asyncio.Task:
        return self.tasks.start(f"rename:{conversation_id}", self._rename(conversation_id, title))

    async def _in_history(self, failure: str, call: Callable[[Any], Any]) -> Any:
        """`call(history)` on a worker thread; `_FAILED` if history is unavailable or the call raised.

        A raised error is shown in the window as `failure` with its cause.
        """
        history = await self._history_available()
        if history is None:
            return _FAILED
        try:
            return await asyncio.get_running_loop().run_in_executor(None, call, history)
        except Exception as exc:
            self.window.show_error(_describe(exc, failure))
            return _FAILED

    async def _rename(self, conversation_id: int, title: str) -> None:
        renamed = await self._in_history("The conversation could not be renamed",
                                         lambda history: history.rename(conversation_id, title))
        self.refresh_conversations()  # the new title, or the old one back after a failure
        if renamed is _FAILED:
            return
        self.conversation_renamed.emit(conversation_id, title)

    def _on_window_conversation_deletion_requested(self, conversation_id: int) -> None:
        self.delete_conversation(conversation_id)

    def delete_conversation(self, conversation_id: int) -> asyncio.Task:
        """Move a conversation to the trash; the banner offers Undo."""
        return self.tasks.start(f"delete:{conversation_id}", self._delete(conversation_id))

    async def _delete(self, conversation_id: int) -> None:
        was_open = conversation_id == self._chat.id

        def delete(history):
            summary = history.conversation(conversation_id)  # its title, for the Undo notice
            history.delete(conversation_id)
            return summary

        summary = await self._in_history("The conversation could not be deleted", delete)
        if summary is _FAILED:
            return
        if was_open and conversation_id == self._chat.id:
            self._switch(None)
        self._undo = (conversation_id, was_open)
        self.window.show_notice(f"Deleted “{summary.title}”.", "Undo",
                                "Undo deleting the conversation")
        self.refresh_conversations()
        self.conversation_deleted.emit(conversation_id)

    def _on_window_undo_requested(self) -> None:
        self.undo_delete()

    def undo_delete(self) -> asyncio.Task | None:
        """Bring back the conversation deleted last (and reopen it if it was open)."""
        if self._undo is None:
            return None
        conversation_id, was_open = self._undo
        self._undo = None
        return self.tasks.start(f"undo:{conversation_id}", self._undo_delete(conversation_id, was_open))

    async def _undo_delete(self, conversation_id: int, was_open: bool) -> None:
        restored = await self._in_history("The conversation could not be restored",
                                          lambda history: history.undo_delete(conversation_id))
        if restored is _FAILED:
            return
        self.window.set_status("Conversation restored.")
        if was_open and self._chat.id is None and not self._turns:
            self.open_conversation(conversation_id)
        self.refresh_conversations()
        self.conversation_restored.emit(conversation_id)

    # -- copy and export -----------------------------------------------------
    def _on_window_copy_requested(self, card: AnswerCard) -> None:
        self.copy_answer(card)

    def copy_answer(self, card: AnswerCard) -> str | None:
        """Put the answer, with a footnote per supported sentence, on the clipboard as Markdown."""
        if card.record is None:
            self.window.show_notice("This answer is still being written. Copy it once it has finished.")
            return None
        from core.export import answer_to_markdown

        text = answer_to_markdown(card.record)  # string work only: quick enough for the UI thread
        self.window.copy_to_clipboard(text)
        self.window.set_status("Copied the answer with its citations (Markdown).")
        self.answer_copied.emit(text)
        return text

    def _on_window_export_requested(self, path: str) -> None:
        self.export_conversation(path)

    def export_conversation(self, path) -> asyncio.Task:
        """Write the open conversation to `path`: Markdown with footnotes, or JSON for a .json path."""
        return self.tasks.start("export", self._export(Path(path)))

    async def _export(self, path: Path) -> None:
        loop = asyncio.get_running_loop()
        chat = self._chat
        if chat.saving is not None:  # the last answer is part of the export
            await asyncio.wait({chat.saving})
        history = await self._history_available()
        if history is None or chat.id is None:
            self.window.show_notice("There is nothing to export yet: ask a question or open a conversation "
                                    "first.")
            return
        fmt = "json" if path.suffix.lower() == ".json" else "md"
        try:
            await loop.run_in_executor(None, _write_export, history, chat.id, fmt, path)
        except Exception as exc:
            self.window.show_error(_describe(exc, f"The conversation could not be exported to {path}"))
            return
        self.window.set_status(f"Exported the conversation to {path}.")
        self.exported.emit(str(path))

    def _on_bridge_run_failed(self, card: AnswerCard, failed) -> None:
        card.fail(failed)
        self.window.show_error(failed.message)
        # Nothing the user typed is lost: the question goes back into the box.
        self.window.composer.restore_text(card.question)

    # -- documents -----------------------------------------------------------
    def _on_window_paths_chosen(self, paths: list) -> None:
        self.add_paths(paths)

    def add_paths(self, paths) -> asyncio.Task | None:
        """Ingest files and folders in the background (one ingest at a time)."""
        if self.tasks.running("ingest"):
            self.window.show_notice("Documents are being added already. Wait for it to finish or click "
                                    "Cancel, then add these.")
            return None
        return self.tasks.start("ingest", self._ingest([Path(p) for p in paths]))

    def _on_window_refresh_requested(self) -> None:
        self.refresh()

    def refresh(self) -> asyncio.Task | None:
        """Sync the index with the disk in the background (`Engine.refresh`), as one ingest."""
        if self.tasks.running("ingest"):
            self.window.show_notice("Documents are being added already. Wait for it to finish or click "
                                    "Cancel, then refresh.")
            return None
        return self.tasks.start("ingest", self._ingest([], refresh=True))

    def _on_window_ingest_cancel_requested(self) -> None:
        if self._ingest_cancel is not None:
            self._ingest_cancel.set()
            self.window.documents_panel.ingest_cancelling()

    async def _ingest(self, paths: list[Path], *, refresh: bool = False) -> None:
        loop = asyncio.get_running_loop()
        panel = self.window.documents_panel
        cancel = self._ingest_cancel = threading.Event()
        if refresh:
            panel.ingest_started("Checking the folders added before..." if self.ready else
                                 "Refreshing once the models have loaded...")
        else:
            what = paths[0].name if len(paths) == 1 else f"{len(paths)} items"
            panel.ingest_started(f"Adding {what}..." if self.ready else
                                 f"Adding {what} once the models have loaded...")
        latest: list = [None]
        pending = threading.Event()

        def deliver() -> None:  # on the event loop
            pending.clear()
            p = latest[0]
            if p is not None and not cancel.is_set():
                panel.ingest_progressed(p)

        def progress(p) -> None:  # on the ingest thread: coalesce to at most one pending update
            latest[0] = p
            if not pending.is_set():
                pending.set()
                loop.call_soon_threadsafe(deliver)

        report = None
        try:
            engine = await self._engine_available()
            await loop.run_in_executor(None, engine.load, None)
            if refresh:
                work = functools.partial(engine.refresh, progress=progress, cancel=cancel)
            else:
                work = functools.partial(engine.ingest, paths, progress=progress, cancel=cancel)
            report = await loop.run_in_executor(None, work)
        except asyncio.CancelledError:
            cancel.set()
            panel.ingest_finished("Cancelled.", [])
            raise
        except Exception as exc:
            message = _describe(exc, "The documents could not be added")
            panel.ingest_finished(message, [])
            self.window.show_error(message)
            return
        finally:
            self._ingest_cancel = None
        from core.ingest import describe_types

        panel.ingest_finished(report.summary(), [(str(p), r) for p, r in report.failed],
                              [(str(p), w) for p, w in report.warnings], list(report.removed),
                              describe_types(report.skipped_types) if report.skipped_types else "")
        self.window.set_status("Documents: " + report.summary())
        await self._refresh_documents()
        self.ingest_finished.emit(report)

    def _on_window_removal_requested(self, doc_key: str) -> None:
        self.tasks.start(f"remove:{doc_key}", self._remove(doc_key))

    async def _remove(self, doc_key: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            engine = await self._engine_available()
            await loop.run_in_executor(None, engine.load, None)
            record = next((r for r in await loop.run_in_executor(None, engine.documents) if r.doc_key == doc_key),
                          None)
            removed = await loop.run_in_executor(None, engine.remove_document, doc_key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.window.show_error(_describe(exc, "The document could not be removed"))
            return
        name = record.file_name if record is not None else "The document"
        self.window.set_status(f"Removed {name} from the index." if removed else f"{name} was not in the index.")
        await self._refresh_documents()

    async def _refresh_documents(self) -> None:
        if self.engine is None:
            return
        loop = asyncio.get_running_loop()
        try:
            records = await loop.run_in_executor(None, self.engine.documents)
        except Exception as exc:
            self.window.show_error(_describe(exc, "The list of documents could not be read"))
            return
        self.window.documents_panel.set_documents(records)
        self.documents_changed.emit(records)

    # -- settings ------------------------------------------------------------
    def _on_window_settings_requested(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return
        self.tasks.start("settings", self._open_settings())

    async def _open_settings(self) -> None:
        loop = asyncio.get_running_loop()
        from core.settings import COMPATIBLE_PRESETS, Settings

        from gui.dialogs.settings_dialog import SettingsDialog

        if self._settings is None:
            self._settings = await loop.run_in_executor(None, self._read_settings)
        if self._key_store is None:
            self._key_store = await loop.run_in_executor(None, _make_key_store)
        status = await loop.run_in_executor(None, self._key_store.status)
        from core.models.download import RECOMMENDED

        dialog = SettingsDialog(self._settings, Settings.describe(), COMPATIBLE_PRESETS, status.message,
                                parent=self.window, recommended=RECOMMENDED)
        page = dialog.models_page
        page.refresh_requested.connect(self.find_models)
        page.model_chosen.connect(self.use_model)
        page.folder_added.connect(self.add_model_folder)
        page.download_requested.connect(self.download_model)
        page.download_cancel_requested.connect(self.cancel_download)
        if self._downloading is not None:  # a download started from an earlier opening goes on
            page.download_started(self._downloading)
        dialog.connection_test_requested.connect(
            lambda settings, key, d=dialog: self.tasks.start("test-connection", self._test_connection(d, settings, key)))
        dialog.accepted.connect(lambda d=dialog: self._on_settings_dialog_accepted(d))
        dialog.finished.connect(self._on_settings_dialog_finished)
        self.settings_dialog = dialog
        dialog.open()
        self.find_models()

    # -- models (the Models page in Settings > Model) ---------------------------------
    def _models_page(self):
        dialog = self.settings_dialog
        return dialog.models_page if dialog is not None and isValid(dialog) else None

    def find_models(self) -> asyncio.Task:
        """Look for models (files and local servers) on a worker thread and list them on the Models page."""
        return self.tasks.start("models", self._find_models())

    async def _find_models(self, select: str | None = None) -> None:
        from core.models.discovery import discover

        page = self._models_page()
        if page is not None:
            page.set_searching()
        settings = self._settings
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, discover, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the page says so; the rest of the dialog stays usable
            page = self._models_page()
            if page is not None:
                page.set_models([], None, problems=[_describe(exc, "Looking for models failed")])
            return
        page = self._models_page()
        if page is None:
            return
        current = next((m.key for m in found.models if m.is_current(settings)), None)
        page.set_models(found.models, current, problems=found.problems, servers=found.servers_found)
        if select is not None:
            page.select(select)
        self.models_found.emit(found.models)

    def use_model(self, entry) -> asyncio.Task:
        """Make `entry` (a ModelEntry) the model that answers: applied and saved at once."""
        settings = entry.apply_to(self._settings)
        dialog = self.settings_dialog
        if dialog is not None and isValid(dialog):
            dialog.adopt(settings)  # Save afterwards keeps the choice
            dialog.models_page.set_current(entry.key, f"{entry.name} answers from the next question on.")
        return self.save_settings(settings)

    def add_model_folder(self, folder: str) -> asyncio.Task:
        """Add one of the user's own model folders, then look again."""
        import dataclasses

        folders = list(self._settings.model_folders)
        if folder not in folders:
            folders.append(folder)
        settings = dataclasses.replace(self._settings, model_folders=folders)
        dialog = self.settings_dialog
        if dialog is not None and isValid(dialog):
            dialog.adopt(settings)
        task = self.save_settings(settings)

        async def then_look() -> None:
            await asyncio.wait({task})
            await self._find_models()

        return self.tasks.start("models", then_look())

    def download_model(self, model) -> asyncio.Task | None:
        """Download a recommended model (core.models.download.Recommended); progress goes to the Models page."""
        if self.tasks.running("model-download"):
            return None
        return self.tasks.start("model-download", self._download_model(model))

    def cancel_download(self) -> None:
        if self._download_cancel is not None:
            self._download_cancel.set()

    async def _download_model(self, model) -> None:
        from core.models.download import DownloadError, download_model
        from core.models.text import download_progress_text

        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        self._download_cancel, self._downloading = cancel, model
        page = self._models_page()
        if page is not None:
            page.download_started(model)

        def deliver(p) -> None:  # on the event loop
            if self._downloading is not model:
                return  # a late report after the end
            text = download_progress_text(p)
            page = self._models_page()
            if page is not None:
                page.download_progressed(model.name, text, p.fraction)
            self.window.set_status(f"Downloading {model.name}: {text}")

        def progress(p) -> None:  # on the download thread; the download reports at most 4 times a second
            loop.call_soon_threadsafe(deliver, p)

        path = None
        try:
            path = await loop.run_in_executor(None, functools.partial(
                download_model, model.repo_id, model.filename, progress=progress, cancel=cancel))
            message = f"{model.name} is downloaded and verified. Select it above and click Use this model."
        except asyncio.CancelledError:
            cancel.set()  # the app is closing: the thread stops at its next chunk, the part is kept
            raise
        except DownloadError as exc:
            message = exc.message
        except Exception as exc:
            message = _describe(exc, "The download failed")
        finally:
            self._download_cancel, self._downloading = None, None
        page = self._models_page()
        if page is not None:
            page.download_ended(message)
        self.window.set_status(message)
        self.model_download_ended.emit(message)
        if path is not None and page is not None:
            await self._find_models(select=f"file:{path}")

    def _on_settings_dialog_finished(self, _result: int) -> None:
        self.tasks.cancel("test-connection")
        self.tasks.cancel("models")
        dialog, self.settings_dialog = self.settings_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _on_settings_dialog_accepted(self, dialog) -> None:
        self.save_settings(dialog.settings(), dialog.api_key())

    def save_settings(self, settings, api_key: str | None = None) -> asyncio.Task:
        """What Save does: apply `settings` (and the key) once the saves before it have been applied.

        Saves queue up in one task ("apply-settings") instead of preempting
        each other: a save cancelled half-way through a backend switch would
        leave a backend built and never closed, or the old one running while
        the status says the switch happened.
        """
        self._pending_saves.append((settings, api_key))
        task = self.tasks.get("apply-settings")
        if task is not None and not task.done():
            return task  # it takes this save after the one it is applying
        return self.tasks.start("apply-settings", self._apply_pending_saves())

    async def _apply_pending_saves(self) -> None:
        while self._pending_saves:
            settings, api_key = self._pending_saves.pop(0)
            await self.apply_settings(settings, api_key)

    async def _test_connection(self, dialog, settings, api_key: str | None) -> None:
        loop = asyncio.get_running_loop()
        dialog.test_started()
        backend = None
        try:
            key = api_key if api_key else await loop.run_in_executor(None, self._key_store.stored)
            backend = await loop.run_in_executor(None, _make_backend, settings, key)
            message = await backend.check()
            dialog.show_test_result(True, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dialog.show_test_result(False, _describe(exc, "The connection test failed"))
        finally:
            if backend is not None:
                try:
                    await backend.aclose()
                except Exception:  # closing a failed client must not mask the result
                    log.debug("closing the test backend failed", exc_info=True)

    async def apply_settings(self, settings, api_key: str | None = None) -> None:
        """Save `settings` (and the key: keyring, else session only), and switch the backend if needed."""
        loop = asyncio.get_running_loop()
        settings = settings.validated()
        try:
            await loop.run_in_executor(None, settings.save, self._settings_path)
            if api_key is not None:
                self._key_unused = True  # before the await: the key may be stored even if this is cancelled
                status = await loop.run_in_executor(None, self._key_store.set, api_key)
                if status.source == "session":
                    self.window.show_notice(status.message)
            self._settings = settings
            if self.engine is None:
                self.settings_applied.emit(settings)
                return
            self.engine.apply_settings(settings)
            # Compared with what the running backend was built from, not with
            # the settings saved last: a save stopped before its switch (the
            # app closing, a caller that cancelled it) has already saved its
            # settings, and the next save must still make the switch.
            built = self._backend_settings
            if self._key_unused or built is None or any(getattr(built, f) != getattr(settings, f)
                                                         for f in BACKEND_FIELDS):
                task = self._stop_answer()
                if task is not None:  # the answer (and any it waits for) uses the old backend: let it end first
                    await asyncio.wait({task})
                key = await loop.run_in_executor(None, self._key_store.stored)
                backend = await loop.run_in_executor(None, _make_backend, settings, key)
                previous = self.engine.set_backend(backend)
                self._backend_settings, self._key_unused = settings, False
                self.window.set_backend_description(_backend_description(self.engine.backend))
                await previous.aclose()
                self.tasks.start("warm-backend", self._warm_backend(backend))
            self.window.set_status("Settings saved.")
            self.settings_applied.emit(settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.window.show_error(_describe(exc, "The settings could not be applied"))

    # -- shutdown ------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop everything and release the engine (the model, sockets, threads)."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if self._ingest_cancel is not None:
            self._ingest_cancel.set()
        if self._run is not None:
            self._run.cancel()
        await self.tasks.cancel_all()
        try:  # open PDFs and rendered pages (waits for a render still running on a worker)
            await asyncio.get_running_loop().run_in_executor(None, self.page_view.close)
        except Exception:
            log.warning("closing the document view's files failed", exc_info=True)
        if self.settings_dialog is not None:
            self.settings_dialog.reject()
        # The runs just stopped are being saved: let every history write finish, then close.
        if not self._history_slot().done():
            self._history_slot().set_result(None)
        await self._saves_settled()
        if self.history is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.history.close)
            except Exception:
                log.warning("closing the conversation history failed", exc_info=True)
        if self.engine is not None:
            try:
                await self.engine.aclose()
            except Exception:
                log.warning("closing the engine failed", exc_info=True)


def _delete_later(widgets) -> None:
    """deleteLater() each widget still alive (a window closed meanwhile has deleted its children)."""
    for widget in widgets:
        if isValid(widget):
            widget.deleteLater()


async def _until_done(task: asyncio.Task) -> None:
    """Wait until `task` has ended, even if the waiting task is cancelled again meanwhile.

    Only called for a task that has been stopped already, so it ends soon; the
    waiter is itself ending (in a `finally`) and must not skip its clean-up.
    """
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            continue


class _EngineUnavailable(Exception):
    """The engine could not be built; the message says why and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.code = "engine_unavailable"


def _describe(exc: BaseException, what: str) -> str:
    """A user-facing message: core errors already say the next step; anything else is a bug report."""
    message = getattr(exc, "message", None)
    if message:
        return str(message)
    return (f"{what} ({type(exc).__name__}: {exc}). Try again; if it keeps happening, report it with this "
            "message.")


def _model_name(backend) -> str:
    """The name of the model a backend answers with ("Answered by ..."): its own name, else its description."""
    for attribute in ("model_name", "model"):
        try:
            name = getattr(backend, attribute, None)
        except Exception:
            name = None
        if isinstance(name, str) and name.strip():
            return name.strip()
    return _backend_description(backend)


def _backend_description(backend) -> str:
    try:
        return str(backend.description)
    except Exception:
        return type(backend).__name__


def _make_backend(settings, api_key):
    """A backend for `settings` (on a worker thread: the first call imports the openai SDK)."""
    from core.llm.factory import make_backend

    return make_backend(settings, api_key)


def _recorder(question: str, engine):
    """A TurnRecorder naming the backend and model that answer (engine None: it never started)."""
    from core.history import TurnRecorder

    if engine is None:
        return TurnRecorder(question)
    return TurnRecorder(question, _backend_description(engine.backend), str(getattr(engine.settings, "model", "")))


# History work for the executor (each call blocks on SQLite, maybe an fsync).
PAGE_TURNS = 20  # turns per page: about two screens of answers; 200 at once would take seconds to lay out


def _create_conversation(history, question: str) -> int:
    from core.history import title_from_question

    return history.create_conversation(title_from_question(question))


def _store_turn(history, conversation_id: int | None, turn):
    if conversation_id is None:  # its creation failed before: try once more with the turn
        conversation_id = _create_conversation(history, turn.question)
    return conversation_id, history.add_turn(conversation_id, turn)


def _read_page(history, conversation_id: int, before: int | None):
    """(index of the page's first turn, the turns, {turn id: {chunk id: note}}) for one page.

    `before` None: the last PAGE_TURNS turns; else the PAGE_TURNS turns before
    turn number `before`. Each source file is compared with its fingerprint
    here, on the worker (a stat, maybe a hash), not on the UI thread.
    """
    from core.history import source_note, source_state

    if before is None:
        total = history.turn_count(conversation_id)
        page = history.turns(conversation_id, offset=-PAGE_TURNS)
        start = max(0, total - len(page))
    else:
        start = max(0, before - PAGE_TURNS)
        page = history.turns(conversation_id, offset=start, limit=before - start)
    states: dict = {}
    notes: dict[int, dict[str, str]] = {}
    for turn in page:
        for chunk in turn.chunks:
            fingerprint = turn.fingerprint(chunk.source)
            if fingerprint not in states:
                states[fingerprint] = source_state(fingerprint)
            note = source_note(states[fingerprint], chunk.file_name)
            if note:
                notes.setdefault(turn.id, {})[chunk.id] = note
    return start, page, notes


def _write_export(history, conversation_id: int, fmt: str, path: Path) -> None:
    from core.export import export_conversation

    text = export_conversation(history, conversation_id, fmt)
    path.write_text(text, encoding="utf-8")


def _make_key_store():
    from core.secrets import ApiKeyStore

    return ApiKeyStore()


def _default_engine(settings, *, key_store):
    """The real engine with the backend the settings choose (runs on a worker thread)."""
    from core.engine import Engine
    from core.llm.factory import make_backend

    return Engine(settings, backend=make_backend(settings, key_store.stored()))

"""The controller: user actions in the window become engine work on the event loop.

It owns the engine (built in the background after the window is painted),
the API-key store, and the named tasks of every action (`gui.tasks`): "load",
"answer", "ingest", "remove:<doc>", "settings", "test-connection". A new
question preempts the "answer" task; Stop cancels the run, which ends with the
partial answer kept. Blocking engine calls (load, ingest, documents, remove,
keyring access) go to the loop's executor, never onto the event-loop thread
(architecture rule 7), and every action resets the window's busy state in a
`finally` so an error never leaves the window stuck (rule 10).

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
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from gui.answer_bridge import AnswerBridge
from gui.main_window import MainWindow
from gui.tasks import TaskRunner
from gui.widgets.answer_card import WAITING, AnswerCard
from gui.widgets.question_view import QuestionView

log = logging.getLogger(__name__)

# Settings whose change needs a new backend object.
BACKEND_FIELDS = ("backend", "model", "base_url", "api_mode", "threads", "request_timeout_s", "local_model_path")


@dataclass
class Turn:
    """One question and the card showing its (latest) answer."""

    question: str
    question_view: QuestionView
    card: AnswerCard


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

    def __init__(self, window: MainWindow, *, settings=None, engine_factory: Callable[[Any], Any] | None = None,
                 key_store=None, settings_path: Path | None = None):
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
        self._run = None
        self._turns: list[Turn] = []
        self._ingest_cancel: threading.Event | None = None
        self.settings_dialog = None
        self._shutting_down = False

        window.question_submitted.connect(self._on_window_question_submitted)
        window.stop_requested.connect(self._on_window_stop_requested)
        window.regenerate_requested.connect(self._on_window_regenerate_requested)
        window.paths_chosen.connect(self._on_window_paths_chosen)
        window.removal_requested.connect(self._on_window_removal_requested)
        window.ingest_cancel_requested.connect(self._on_window_ingest_cancel_requested)
        window.settings_requested.connect(self._on_window_settings_requested)

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
            engine = await loop.run_in_executor(None, factory, self._settings)
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
        previous = self.tasks.get("answer")
        if previous is not None and not previous.done():
            if self._run is not None:
                # Stop it the way Stop does: the run ends with Cancelled and the
                # engine's partial answer, so the old card keeps every word.
                self._run.cancel()
            else:  # still waiting for the models: nothing has streamed yet
                previous.cancel()
        self.window.banner.clear()
        self.window.set_busy(True)
        self.tasks.start("answer", self._answer(question, card, previous, replaces), preempt=False)

    def _on_window_stop_requested(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the running answer; it ends as Cancelled with the partial answer kept."""
        if self._run is not None:
            self._run.cancel()
        else:  # still waiting for the models: there is no run to cancel yet
            self.tasks.cancel("answer")

    async def _answer(self, question: str, card: AnswerCard, previous: asyncio.Task | None,
                      replaces: AnswerCard | None = None) -> None:
        if previous is not None and not previous.done():
            # Let the preempted run end (its Cancelled event, its backend freed) first.
            await asyncio.wait({previous})
        if replaces is not None:
            self.window.chat_view.remove(replaces)
        # Parented to the controller, not the card: a card may be deleted while
        # its bridge still relays; Qt drops connections to a deleted receiver.
        bridge = AnswerBridge(self)
        bridge.retrieval_done.connect(card.set_chunks)
        bridge.text_appended.connect(card.append_text)
        bridge.sentence_closed.connect(card.add_sentence)
        bridge.attribution_arrived.connect(card.add_attribution)
        bridge.run_completed.connect(card.complete)
        bridge.run_cancelled.connect(card.cancel)
        bridge.run_failed.connect(functools.partial(self._on_bridge_run_failed, card))
        run = None
        try:
            if not self.ready:
                card.set_waiting("Waiting for the models to load - your question will be answered as soon as "
                                 "they are ready.")
            engine = await self._engine_available()
            if self.ready:  # otherwise the card keeps saying it waits for the models
                card.start_run()
            run = engine.ask(question, self._history_before(card))
            self._run = run
            await bridge.relay(run)
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
            self.answer_finished.emit(card)

    def _history_before(self, card: AnswerCard) -> list:
        # Follow-up context belongs to conversation history (issue 7); until it
        # lands every question is answered on its own.
        return []

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

    def _on_window_ingest_cancel_requested(self) -> None:
        if self._ingest_cancel is not None:
            self._ingest_cancel.set()
            self.window.documents_panel.ingest_cancelling()

    async def _ingest(self, paths: list[Path]) -> None:
        loop = asyncio.get_running_loop()
        panel = self.window.documents_panel
        cancel = self._ingest_cancel = threading.Event()
        what = paths[0].name if len(paths) == 1 else f"{len(paths)} items"
        panel.ingest_started(f"Adding {what}..." if self.ready else
                             f"Adding {what} once the models have loaded...")
        latest: list = [None]
        pending = threading.Event()

        def deliver() -> None:  # on the event loop
            pending.clear()
            p = latest[0]
            if p is not None and not cancel.is_set():
                panel.ingest_progressed(p.files_done, p.files_total, p.current, p.chunks_written)

        def progress(p) -> None:  # on the ingest thread: coalesce to at most one pending update
            latest[0] = p
            if not pending.is_set():
                pending.set()
                loop.call_soon_threadsafe(deliver)

        report = None
        try:
            engine = await self._engine_available()
            await loop.run_in_executor(None, engine.load, None)
            report = await loop.run_in_executor(
                None, functools.partial(engine.ingest, paths, progress=progress, cancel=cancel))
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
        panel.ingest_finished(report.summary(), [(str(p), r) for p, r in report.failed])
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
        dialog = SettingsDialog(self._settings, Settings.describe(), COMPATIBLE_PRESETS, status.message,
                                parent=self.window)
        dialog.connection_test_requested.connect(
            lambda settings, key, d=dialog: self.tasks.start("test-connection", self._test_connection(d, settings, key)))
        dialog.accepted.connect(lambda d=dialog: self._on_settings_dialog_accepted(d))
        dialog.finished.connect(self._on_settings_dialog_finished)
        self.settings_dialog = dialog
        dialog.open()

    def _on_settings_dialog_finished(self, _result: int) -> None:
        self.tasks.cancel("test-connection")
        dialog, self.settings_dialog = self.settings_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _on_settings_dialog_accepted(self, dialog) -> None:
        self.tasks.start("apply-settings", self.apply_settings(dialog.settings(), dialog.api_key()))

    async def _test_connection(self, dialog, settings, api_key: str | None) -> None:
        loop = asyncio.get_running_loop()
        dialog.test_started()
        backend = None
        try:
            key = api_key if api_key else await loop.run_in_executor(None, self._key_store.get)
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
        old = self._settings
        settings = settings.validated()
        try:
            await loop.run_in_executor(None, settings.save, self._settings_path)
            key_changed = api_key is not None
            if key_changed:
                status = await loop.run_in_executor(None, self._key_store.set, api_key)
                if status.source == "session":
                    self.window.show_notice(status.message)
            self._settings = settings
            if self.engine is None:
                self.settings_applied.emit(settings)
                return
            self.engine.apply_settings(settings)
            if key_changed or old is None or any(getattr(old, f) != getattr(settings, f) for f in BACKEND_FIELDS):
                if self._run is not None:  # the running answer uses the old backend: stop it first
                    self._run.cancel()
                    task = self.tasks.get("answer")
                    if task is not None:
                        await asyncio.wait({task})
                key = await loop.run_in_executor(None, self._key_store.get)
                backend = await loop.run_in_executor(None, _make_backend, settings, key)
                previous = self.engine.set_backend(backend)
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
        if self.settings_dialog is not None:
            self.settings_dialog.reject()
        if self.engine is not None:
            try:
                await self.engine.aclose()
            except Exception:
                log.warning("closing the engine failed", exc_info=True)


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


def _backend_description(backend) -> str:
    try:
        return str(backend.description)
    except Exception:
        return type(backend).__name__


def _make_backend(settings, api_key):
    """A backend for `settings` (on a worker thread: the first call imports the openai SDK)."""
    from core.llm.factory import make_backend

    return make_backend(settings, api_key)


def _make_key_store():
    from core.secrets import ApiKeyStore

    return ApiKeyStore()


def _default_engine(settings, *, key_store):
    """The real engine with the backend the settings choose (runs on a worker thread)."""
    from core.engine import Engine
    from core.llm.factory import make_backend

    return Engine(settings, backend=make_backend(settings, key_store.get()))

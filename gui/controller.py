"""The window's composition root: builds the engine in the background and one controller per feature.

`Controller` owns what every feature shares: the task runner (`gui.tasks`,
named tasks such as "load", "answer", "ingest", "settings", "models"), the
engine (built and loaded on workers after the window is painted), the settings
and the API-key store. It builds the feature controllers of `gui.controllers`
(answers, conversations, documents, settings, models) and the document view's
controller, and connects the window's signals to them; the features talk to
each other only through what it hands them. Blocking engine calls go to the
loop's executor, never onto the event-loop thread (architecture rule 7), and
every action resets the window's busy state in a `finally` so an error never
leaves the window stuck (rule 10).

Nothing from `core` is imported at module level: the composition root must
paint the window before torch, chromadb and friends are imported.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from gui import gc_pacing

from gui.controllers import support
from gui.controllers.answers import AnswersController
from gui.controllers.conversations import ConversationsController
from gui.controllers.documents import DocumentsController
from gui.controllers.history import HistoryAccess
from gui.controllers.models import ModelsController
from gui.controllers.settings import SettingsController
from gui.controllers.support import EngineUnavailable, backend_description, describe
from gui.main_window import MainWindow
from gui.page_view_controller import PageViewController
from gui.tasks import TaskRunner

log = logging.getLogger(__name__)


class Controller(QObject):
    """Builds the engine and the feature controllers and wires them to the window; see the module docstring."""

    engine_loaded = Signal()
    engine_failed = Signal(str)

    def __init__(self, window: MainWindow, *, settings=None, engine_factory: Callable[[Any], Any] | None = None,
                 key_store=None, settings_path: Path | None = None, history=None,
                 history_factory: Callable[[], Any] | None = None):
        super().__init__(window)
        self.window = window
        self.settings = settings
        self.settings_path = settings_path
        self.key_store = key_store
        self._engine_factory = engine_factory
        self.tasks = TaskRunner()
        self.engine = None
        self._engine_future: asyncio.Future | None = None
        self.ready = False
        self.backend_settings = None  # the settings the engine's backend was built from
        self._shutting_down = False

        # Each feature controller connects the window's signals it serves.
        self.history_access = HistoryAccess(window, history=history, factory=history_factory, parent=self)
        self.answers = AnswersController(self, self.history_access, lambda: self.conversations.chat, parent=self)
        self.conversations = ConversationsController(self, self.history_access, self.answers, parent=self)
        self.documents = DocumentsController(self, parent=self)
        self.settings_controller = SettingsController(self, self.answers.stop_answer, parent=self)
        self.models = ModelsController(self, self.settings_controller, parent=self)
        # The document view (issue 16): spans and pages rendered as the named task "page-view".
        self.page_view = PageViewController(window, self.tasks, lambda: self.engine)
        # Between answers the long-lived heap is frozen, so that no full garbage
        # collection stalls a stream (gui.gc_pacing).
        self.engine_loaded.connect(self._on_self_engine_loaded)
        self.answers.answer_finished.connect(self._on_answers_answer_finished)
        window.chat_view.messages_cleared.connect(self._on_chat_view_messages_cleared)

    def _on_self_engine_loaded(self) -> None:
        QTimer.singleShot(0, gc_pacing.settle)  # after the other listeners, not inside the signal

    def _on_answers_answer_finished(self, _card) -> None:
        QTimer.singleShot(0, gc_pacing.settle)

    def _on_chat_view_messages_cleared(self) -> None:
        QTimer.singleShot(0, gc_pacing.release)

    # -- what tests and the harnesses read -------------------------------------
    @property
    def history(self):
        """The conversation store once open (None before, or when it could not be opened)."""
        return self.history_access.history

    @property
    def conversation_id(self) -> int | None:
        """The id of the conversation the window shows (None: a new one, not saved yet)."""
        return self.conversations.conversation_id

    @property
    def settings_dialog(self):
        return self.settings_controller.dialog

    # -- start-up ------------------------------------------------------------
    def start(self) -> asyncio.Task:
        """Build and load the engine in the background (call after the window is painted)."""
        self._future()
        self.tasks.start("history", self.history_access.open())
        return self.tasks.start("load", self._load())

    def _future(self) -> asyncio.Future:
        if self._engine_future is None:
            self._engine_future = asyncio.get_event_loop().create_future()
        return self._engine_future

    async def engine_available(self):
        """The engine object, waiting for it to be built (not necessarily loaded)."""
        return await asyncio.shield(self._future())

    async def ensure_settings(self) -> None:
        """Read the settings and open the key store (on workers) if start-up has not done so yet."""
        loop = asyncio.get_running_loop()
        if self.settings is None:
            self.settings = await loop.run_in_executor(None, self._read_settings)
        if self.key_store is None:
            self.key_store = await loop.run_in_executor(None, support.make_key_store)

    def _read_settings(self):
        from core.settings import Settings

        return Settings.load(self.settings_path)

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        window = self.window
        window.set_status("Starting the document engine...")
        try:
            await self.ensure_settings()
            factory = self._engine_factory or functools.partial(support.default_engine, key_store=self.key_store)
            built_from = self.settings
            engine = await loop.run_in_executor(None, factory, built_from)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._not_ready(describe(exc, "Sourcelight could not start its document engine"), engine_missing=True)
            return
        self.engine = engine
        self.backend_settings = built_from
        if not self._future().done():
            self._future().set_result(engine)
        window.set_backend_description(backend_description(engine.backend))

        def status(message: str) -> None:  # called on the loading thread
            loop.call_soon_threadsafe(window.set_status, message)

        try:
            await loop.run_in_executor(None, engine.load, status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._not_ready(describe(exc, "Sourcelight could not load its models"))
            return
        self.ready = True
        window.set_status("Ready")
        self.answers.resume_waiting()
        await self.documents.refresh_list()
        self.engine_loaded.emit()
        await self.warm_backend(engine.backend)

    def _not_ready(self, message: str, *, engine_missing: bool = False) -> None:
        if engine_missing and not self._future().done():
            self._future().set_exception(EngineUnavailable(message))
            self._future().exception()  # retrieved here; waiting actions re-raise it
        self.window.set_status("Not ready")
        self.window.show_error(message)
        self.engine_failed.emit(message)

    async def warm_backend(self, backend) -> None:
        """Load the local model now rather than on the first question (it loads on its own thread)."""
        load = getattr(backend, "load", None)
        if load is None or getattr(backend, "loaded", True):
            return
        self.window.set_status(f"Loading the language model ({backend_description(backend)})...")
        try:
            await load()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the first question will report it again, with its next step
            self.window.show_error(describe(exc, "The language model could not be loaded"))
            self.window.set_status("Ready (the language model could not be loaded)")
            return
        self.window.set_status("Ready")

    # -- shutdown ------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop everything and release the engine (the model, sockets, threads)."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self.documents.shutdown()
        self.answers.cancel_run()
        await self.tasks.cancel_all()
        try:  # open PDFs and rendered pages (waits for a render still running on a worker)
            await asyncio.get_running_loop().run_in_executor(None, self.page_view.close)
        except Exception:
            log.warning("closing the document view's files failed", exc_info=True)
        self.settings_controller.shutdown()
        await self.history_access.close()  # after the runs just stopped are saved
        if self.engine is not None:
            try:
                await self.engine.aclose()
            except Exception:
                log.warning("closing the engine failed", exc_info=True)
        gc_pacing.release(collect=False)  # what this window froze may be collected again

"""Settings: the dialog, queued saves, backend switches and the connection test.

Saves queue up in one task ("apply-settings") instead of preempting each
other: a save stopped half-way would leave a backend switch half done. A
switch waits for the answer in flight (which uses the old backend) to end,
builds the new backend on a worker, and closes the old one.
"""
from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid

from gui.controllers import support
from gui.controllers.support import backend_description, describe

log = logging.getLogger(__name__)

# Settings whose change needs a new backend object.
BACKEND_FIELDS = ("backend", "model", "base_url", "api_mode", "threads", "request_timeout_s", "local_model_path")


class SettingsController(QObject):
    """Opens Settings, applies saves in order, switches backends; see the module docstring."""

    settings_applied = Signal(object)  # Settings
    dialog_opened = Signal(object)  # the SettingsDialog, wired and shown

    def __init__(self, app, stop_answer, parent=None):
        super().__init__(parent)
        self.app = app  # the composition root: window, tasks, engine, settings, key store
        self.window = app.window
        self.tasks = app.tasks
        self._stop_answer = stop_answer  # returns the "answer" task it stopped (or None)
        self.dialog = None
        self._key_unused = False  # a key was saved that no backend has been built with yet
        self._pending: list[tuple[object, str | None]] = []  # Save clicks not applied yet, oldest first
        self.window.settings_requested.connect(self._on_window_settings_requested)

    def _on_window_settings_requested(self) -> None:
        self.open_dialog()

    def open_dialog(self) -> None:
        """Show Settings (or bring the open one to the front)."""
        if self.dialog is not None:
            self.dialog.raise_()
            self.dialog.activateWindow()
            return
        self.tasks.start("settings", self._open())

    async def _open(self) -> None:
        from core.models.download import RECOMMENDED
        from core.settings import COMPATIBLE_PRESETS, Settings

        from gui.dialogs.settings_dialog import SettingsDialog

        await self.app.ensure_settings()
        status = await asyncio.get_running_loop().run_in_executor(None, self.app.key_store.status)
        dialog = SettingsDialog(self.app.settings, Settings.describe(), COMPATIBLE_PRESETS, status.message,
                                parent=self.window, recommended=RECOMMENDED)
        dialog.connection_test_requested.connect(
            lambda settings, key, d=dialog: self.tasks.start("test-connection",
                                                             self._test_connection(d, settings, key)))
        dialog.accepted.connect(lambda d=dialog: self._on_dialog_accepted(d))
        dialog.finished.connect(self._on_dialog_finished)
        self.dialog = dialog
        self.dialog_opened.emit(dialog)
        dialog.open()

    def live_dialog(self):
        """The open dialog, or None (closed, or deleted with the window)."""
        return self.dialog if self.dialog is not None and isValid(self.dialog) else None

    def _on_dialog_accepted(self, dialog) -> None:
        self.save_settings(dialog.settings(), dialog.api_key())

    def _on_dialog_finished(self, _result: int) -> None:
        self.tasks.cancel("test-connection")
        self.tasks.cancel("models")
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def save_settings(self, settings, api_key: str | None = None) -> asyncio.Task:
        """What Save does: apply `settings` (and the key) once the saves before it have been applied."""
        self._pending.append((settings, api_key))
        task = self.tasks.get("apply-settings")
        if task is not None and not task.done():
            return task  # it takes this save after the one it is applying
        return self.tasks.start("apply-settings", self._apply_pending())

    async def _apply_pending(self) -> None:
        while self._pending:
            settings, api_key = self._pending.pop(0)
            await self.apply_settings(settings, api_key)

    async def _test_connection(self, dialog, settings, api_key: str | None) -> None:
        loop = asyncio.get_running_loop()
        dialog.test_started()
        backend = None
        try:
            key = api_key if api_key else await loop.run_in_executor(None, self.app.key_store.stored)
            backend = await loop.run_in_executor(None, support.make_backend, settings, key)
            message = await backend.check()
            dialog.show_test_result(True, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dialog.show_test_result(False, describe(exc, "The connection test failed"))
        finally:
            if backend is not None:
                try:
                    await backend.aclose()
                except Exception:  # closing a failed client must not mask the result
                    log.debug("closing the test backend failed", exc_info=True)

    async def apply_settings(self, settings, api_key: str | None = None) -> None:
        """Save `settings` (and the key: keyring, else session only), and switch the backend if needed."""
        app = self.app
        loop = asyncio.get_running_loop()
        settings = settings.validated()
        try:
            await loop.run_in_executor(None, settings.save, app.settings_path)
            if api_key is not None:
                self._key_unused = True  # before the await: the key may be stored even if this is cancelled
                status = await loop.run_in_executor(None, app.key_store.set, api_key)
                if status.source == "session":
                    self.window.show_notice(status.message)
            app.settings = settings
            engine = app.engine
            if engine is None:
                self.settings_applied.emit(settings)
                return
            engine.apply_settings(settings)
            # Compared with what the running backend was built from, not with
            # the settings saved last: a save stopped before its switch (the
            # app closing, a caller that cancelled it) has already saved its
            # settings, and the next save must still make the switch.
            built = app.backend_settings
            if self._key_unused or built is None or any(getattr(built, f) != getattr(settings, f)
                                                         for f in BACKEND_FIELDS):
                task = self._stop_answer()
                if task is not None:  # the answer (and any it waits for) uses the old backend: let it end first
                    await asyncio.wait({task})
                key = await loop.run_in_executor(None, app.key_store.stored)
                backend = await loop.run_in_executor(None, support.make_backend, settings, key)
                previous = engine.set_backend(backend)
                app.backend_settings, self._key_unused = settings, False
                self.window.set_backend_description(backend_description(engine.backend))
                await previous.aclose()
                self.tasks.start("warm-backend", app.warm_backend(backend))
            self.window.set_status("Settings saved.")
            self.settings_applied.emit(settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.window.show_error(describe(exc, "The settings could not be applied"))

    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.reject()

"""The Models page (Settings > Model): find the models on this computer, use one, download a recommended one.

Looking runs on a worker (task "models"); choosing a model applies it at once
through the same queued save as the Save button. One download at a time (task
"model-download"): it goes on when the dialog closes and says how it went in
the status bar; reopening the dialog shows it again.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading

from PySide6.QtCore import QObject, Signal

from gui.controllers.settings import SettingsController
from gui.controllers.support import describe


class ModelsController(QObject):
    """Backs the Models page of the Settings dialog; see the module docstring."""

    models_found = Signal(list)  # list[ModelEntry] now on the Models page
    model_download_ended = Signal(str)  # the message shown when a download ended (any way)

    def __init__(self, app, settings_controller: SettingsController, parent=None):
        super().__init__(parent)
        self.app = app  # the composition root: window, tasks, settings
        self.window = app.window
        self.tasks = app.tasks
        self.settings_controller = settings_controller  # the dialog this page lives in, and its saves
        self._download_cancel: threading.Event | None = None  # set to stop the model download in flight
        self._downloading = None  # the Recommended model being downloaded
        settings_controller.dialog_opened.connect(self._on_settings_dialog_opened)

    def _on_settings_dialog_opened(self, dialog) -> None:
        page = dialog.models_page
        page.refresh_requested.connect(self.find_models)
        page.model_chosen.connect(self.use_model)
        page.folder_added.connect(self.add_model_folder)
        page.download_requested.connect(self.download_model)
        page.download_cancel_requested.connect(self.cancel_download)
        if self._downloading is not None:  # a download started from an earlier opening goes on
            page.download_started(self._downloading)
        self.find_models()

    def _page(self):
        dialog = self.settings_controller.live_dialog()
        return dialog.models_page if dialog is not None else None

    def find_models(self) -> asyncio.Task:
        """Look for models (files and local servers) on a worker thread and list them on the Models page."""
        return self.tasks.start("models", self._find_models())

    async def _find_models(self, select: str | None = None) -> None:
        from core.models.discovery import discover

        page = self._page()
        if page is not None:
            page.set_searching()
        settings = self.app.settings
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, discover, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the page says so; the rest of the dialog stays usable
            page = self._page()
            if page is not None:
                page.set_models([], None, problems=[describe(exc, "Looking for models failed")])
            return
        page = self._page()
        if page is None:
            return
        current = next((m.key for m in found.models if m.is_current(settings)), None)
        page.set_models(found.models, current, problems=found.problems, servers=found.servers_found)
        if select is not None:
            page.select(select)
        self.models_found.emit(found.models)

    def use_model(self, entry) -> asyncio.Task:
        """Make `entry` (a ModelEntry) the model that answers: applied and saved at once."""
        settings = entry.apply_to(self.app.settings)
        dialog = self.settings_controller.live_dialog()
        if dialog is not None:
            dialog.adopt(settings)  # Save afterwards keeps the choice
            dialog.models_page.set_current(entry.key, f"{entry.name} answers from the next question on.")
        return self.settings_controller.save_settings(settings)

    def add_model_folder(self, folder: str) -> asyncio.Task:
        """Add one of the user's own model folders, then look again."""
        folders = list(self.app.settings.model_folders)
        if folder not in folders:
            folders.append(folder)
        settings = dataclasses.replace(self.app.settings, model_folders=folders)
        dialog = self.settings_controller.live_dialog()
        if dialog is not None:
            dialog.adopt(settings)
        task = self.settings_controller.save_settings(settings)

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
        page = self._page()
        if page is not None:
            page.download_started(model)

        def deliver(p) -> None:  # on the event loop
            if self._downloading is not model:
                return  # a late report after the end
            text = download_progress_text(p)
            page = self._page()
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
            message = describe(exc, "The download failed")
        finally:
            self._download_cancel, self._downloading = None, None
        page = self._page()
        if page is not None:
            page.download_ended(message)
        self.window.set_status(message)
        self.model_download_ended.emit(message)
        if path is not None and page is not None:
            await self._find_models(select=f"file:{path}")

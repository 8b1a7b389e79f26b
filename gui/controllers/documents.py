"""Documents: add files and folders, sync with the disk, cancel, remove, and keep the panel's list current.

One ingest at a time (task "ingest"); it waits for the models when they are
still loading. Progress reports from the ingest thread are coalesced to at
most one pending update on the event loop, so a fast ingest cannot flood it.
"""
from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gui.controllers.support import describe


class DocumentsController(QObject):
    """Ingest, refresh, cancel and removal of documents; see the module docstring."""

    ingest_finished = Signal(object)  # core.ingest.ingestor.IngestReport
    documents_changed = Signal(list)  # list[DocumentRecord]

    def __init__(self, app, parent=None):
        super().__init__(parent)
        self.app = app  # the composition root: window, tasks, engine
        self.window = app.window
        self.tasks = app.tasks
        self._cancel: threading.Event | None = None
        self.window.paths_chosen.connect(self._on_window_paths_chosen)
        self.window.refresh_requested.connect(self._on_window_refresh_requested)
        self.window.ingest_cancel_requested.connect(self._on_window_ingest_cancel_requested)
        self.window.removal_requested.connect(self._on_window_removal_requested)

    def _on_window_paths_chosen(self, paths: list) -> None:
        self.add_paths(paths)

    def _on_window_refresh_requested(self) -> None:
        self.refresh()

    def _on_window_ingest_cancel_requested(self) -> None:
        self.cancel()

    def _on_window_removal_requested(self, doc_key: str) -> None:
        self.remove(doc_key)

    def add_paths(self, paths) -> asyncio.Task | None:
        """Ingest files and folders in the background (one ingest at a time)."""
        if self.tasks.running("ingest"):
            self.window.show_notice("Documents are being added already. Wait for it to finish or click "
                                    "Cancel, then add these.")
            return None
        return self.tasks.start("ingest", self._ingest([Path(p) for p in paths]))

    def refresh(self) -> asyncio.Task | None:
        """Sync the index with the disk in the background (`Engine.refresh`), as one ingest."""
        if self.tasks.running("ingest"):
            self.window.show_notice("Documents are being added already. Wait for it to finish or click "
                                    "Cancel, then refresh.")
            return None
        return self.tasks.start("ingest", self._ingest([], refresh=True))

    def cancel(self) -> None:
        """Stop the ingest after the batch it is writing (what it finished stays indexed)."""
        if self._cancel is not None:
            self._cancel.set()
            self.window.documents_panel.ingest_cancelling()

    async def _ingest(self, paths: list[Path], *, refresh: bool = False) -> None:
        loop = asyncio.get_running_loop()
        panel = self.window.documents_panel
        cancel = self._cancel = threading.Event()
        if refresh:
            panel.ingest_started("Checking the folders added before..." if self.app.ready else
                                 "Refreshing once the models have loaded...")
        else:
            what = paths[0].name if len(paths) == 1 else f"{len(paths)} items"
            panel.ingest_started(f"Adding {what}..." if self.app.ready else
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
            engine = await self.app.engine_available()
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
            message = describe(exc, "The documents could not be added")
            panel.ingest_finished(message, [])
            self.window.show_error(message)
            return
        finally:
            self._cancel = None
        from core.ingest.ingestor import describe_types

        panel.ingest_finished(report.summary(), [(str(p), r) for p, r in report.failed],
                              [(str(p), w) for p, w in report.warnings], list(report.removed),
                              describe_types(report.skipped_types) if report.skipped_types else "")
        self.window.set_status("Documents: " + report.summary())
        await self.refresh_list()
        self.ingest_finished.emit(report)

    def remove(self, doc_key: str) -> asyncio.Task:
        return self.tasks.start(f"remove:{doc_key}", self._remove(doc_key))

    async def _remove(self, doc_key: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            engine = await self.app.engine_available()
            await loop.run_in_executor(None, engine.load, None)
            record = next((r for r in await loop.run_in_executor(None, engine.documents) if r.doc_key == doc_key),
                          None)
            removed = await loop.run_in_executor(None, engine.remove_document, doc_key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.window.show_error(describe(exc, "The document could not be removed"))
            return
        name = record.file_name if record is not None else "The document"
        self.window.set_status(f"Removed {name} from the index." if removed else f"{name} was not in the index.")
        await self.refresh_list()

    async def refresh_list(self) -> None:
        """Re-read the indexed documents into the Documents panel."""
        engine = self.app.engine
        if engine is None:
            return
        loop = asyncio.get_running_loop()
        try:
            records = await loop.run_in_executor(None, engine.documents)
        except Exception as exc:
            self.window.show_error(describe(exc, "The list of documents could not be read"))
            return
        self.window.documents_panel.set_documents(records)
        self.documents_changed.emit(records)

    def shutdown(self) -> None:
        """The app is closing: stop an ingest at its next batch."""
        if self._cancel is not None:
            self._cancel.set()

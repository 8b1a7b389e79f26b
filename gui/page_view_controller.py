"""The document view's side of the controller: a clicked span (or another page) is rendered off the UI thread.

The window asks (`span_view_requested`, `page_view_requested`,
`open_at_page_requested`); this object runs the work as the named task
"page-view" (a newer click preempts an older one, so fast Alt+Down presses
never queue renders) in the loop's executor with `core.page_view.PageViews`,
and hands the result to `DocumentView`. The chunk's stored page map is read
from the engine's store on the same worker. `shown` is emitted once the
view has painted what was asked for (tests and the page-view benchmark wait
on it).

Nothing from `core` is imported at module level (start-up budget).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from gui.main_window import MainWindow
from gui.tasks import TaskRunner

log = logging.getLogger(__name__)


class PageViewController(QObject):
    """Renders spans and pages for the window's document view, one named task at a time."""

    shown = Signal(str, int)  # source, page (0 for a text document): painted

    def __init__(self, window: MainWindow, tasks: TaskRunner, engine: Callable[[], Any]):
        super().__init__(window)
        self.window = window
        self.tasks = tasks
        self._engine = engine
        self._views = None
        self._span = None  # (chunk, start, end) of the span shown, to light it again after paging back
        window.span_view_requested.connect(self._on_window_span_view_requested)
        window.page_view_requested.connect(self._on_window_page_view_requested)
        window.open_at_page_requested.connect(self._on_window_open_at_page_requested)

    def _page_views(self):
        if self._views is None:
            from core.page_view import PageViews

            self._views = PageViews(char_map_for=self._char_map_for)
        return self._views

    def _char_map_for(self, chunk_id: str) -> str:
        """The page map stored with a chunk (worker thread); "" without an engine or a stored map."""
        engine = self._engine()
        if engine is None:
            return ""
        try:
            chunks, _ = engine.store.get_chunks([chunk_id])
        except Exception:  # noqa: BLE001 - no map: the view looks the text up on the page instead
            log.warning("could not read the page map of %s", chunk_id, exc_info=True)
            return ""
        return chunks[0].char_map if chunks else ""

    # -- requests ------------------------------------------------------------
    def _on_window_span_view_requested(self, chunk, start: int, end: int, width: int) -> None:
        self.show_span(chunk, start, end, width)

    def show_span(self, chunk, start: int, end: int, width: int) -> asyncio.Task:
        self._span = (chunk, start, end)
        views = self._page_views()
        return self.tasks.start("page-view", self._run(views.show, chunk, start, end, width))

    def _on_window_page_view_requested(self, source: str, page: int, width: int) -> None:
        self.show_page(source, page, width)

    def show_page(self, source: str, page: int, width: int) -> asyncio.Task:
        views = self._page_views()
        span = self._span
        if span is not None and span[0].source == source and span[0].page == page:
            return self.tasks.start("page-view", self._run(views.show, *span, width))
        return self.tasks.start("page-view", self._run(views.page, source, page, width))

    async def _run(self, job, *args) -> None:
        from core.page_view import PdfView

        view = self.window.document_view
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, job, *args)
        except asyncio.CancelledError:
            raise
        except FileNotFoundError as exc:
            view.show_message(f"{exc.filename or 'The file'} is no longer there. It was moved or deleted after "
                              "it was added; add it again to refresh the index.")
            return
        except Exception as exc:  # noqa: BLE001 - a damaged file must not break the window
            log.warning("page view failed", exc_info=True)
            view.show_message(f"The document cannot be shown ({type(exc).__name__}: {exc}).")
            return
        if isinstance(result, PdfView):
            view.show_pdf(result)
            page = result.page
        else:
            view.show_text(result)
            page = 0
        view.update()
        # Emitted after the next paint: what was asked for is then really on screen.
        QTimer.singleShot(0, self, lambda: self.shown.emit(result.source, page))

    def _on_window_open_at_page_requested(self, source: str, page: int) -> None:
        self.tasks.start("open-viewer", self._open(source, page))

    async def _open(self, source: str, page: int) -> None:
        from core.page_view import resolve
        from core.viewer import open_at_page

        path = resolve(source)
        opened = False
        if page > 0 and path.suffix.lower() == ".pdf":
            opened = await asyncio.get_running_loop().run_in_executor(None, open_at_page, path, page)
        if not opened:
            self.window.open_in_system_viewer(path)

    def close(self) -> None:
        if self._views is not None:
            self._views.close()

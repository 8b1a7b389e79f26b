"""The document view: the supporting span shown where it lives, on the PDF page or in the document's text.

For a PDF the page is shown as rendered by the engine off the UI thread
(`core.page_view.PdfView`: RGBX pixels at the width this view asked for) with
the span's rectangles painted over it (multiplied, so the text stays
readable) and scrolled into view; Previous/Next page and zoom ask for another
rendering through `page_requested`. For Word, HTML, Markdown and text the
whole document's text is shown with the span lit in context
(`core.page_view.TextView`). A scanned page, a passage that could not be
placed, or a file that is gone is said in the note line, never shown as an
empty highlight.

Clicking the highlight emits `highlight_clicked` (the window goes back to the
answer sentence); "Open" emits `open_requested` with the page shown. The
view does no work of its own beyond painting (architecture rule 5).
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QStackedWidget, QTextBrowser,
                               QTextEdit, QToolButton, QVBoxLayout, QWidget)

from gui import theme
from gui.text_positions import Utf16Index, display_safe

ZOOMS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
# Multiplied over the page: white paper turns this colour, black text stays black.
HIGHLIGHT = QColor(255, 214, 0)
_PAGE_MARGIN = 8


class PageCanvas(QWidget):
    """One rendered page and its highlight rectangles (page fractions), at the image's own size."""

    highlight_clicked = Signal()
    painted = Signal()  # a page was painted (the page-view benchmark times click to this)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Page")
        self._image: QImage | None = None
        self._rects: tuple = ()
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_page(self, image: QImage, rects) -> None:
        self._image = image
        self._rects = tuple(rects)
        ratio = image.devicePixelRatio() or 1.0
        self.setFixedSize(int(image.width() / ratio), int(image.height() / ratio))
        self.update()

    @property
    def image(self) -> QImage | None:
        return self._image

    def highlight_rects(self) -> list[QRectF]:
        """The highlight rectangles in this widget's coordinates (logical pixels)."""
        w, h = self.width(), self.height()
        return [QRectF(QPointF(l * w, t * h), QPointF(r * w, b * h)).adjusted(-1, -1, 1, 1)
                for l, t, r, b in self._rects]

    def paintEvent(self, event) -> None:  # Qt override
        if self._image is None:
            return
        painter = QPainter(self)
        painter.drawImage(self.rect(), self._image)
        if self._rects:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
            for rect in self.highlight_rects():
                painter.fillRect(rect, HIGHLIGHT)
        painter.end()
        self.painted.emit()

    def mouseReleaseEvent(self, event) -> None:  # Qt override
        if event.button() == Qt.MouseButton.LeftButton and \
                any(r.contains(event.position()) for r in self.highlight_rects()):
            self.highlight_clicked.emit()
        super().mouseReleaseEvent(event)

    def sizeHint(self) -> QSize:  # Qt override
        return self.size()


class _DocumentText(QTextBrowser):
    """A document's whole text, read-only, with one span lit; a click on the span emits `span_clicked`."""

    span_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Document text")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.document().setUndoRedoEnabled(False)
        self._span: tuple[int, int] | None = None  # UTF-16 positions

    def show_text(self, text: str, span: tuple[int, int] | None, color: QColor) -> None:
        index = Utf16Index(text)
        self.setPlainText(display_safe(text))
        self._span = None
        if span is None:
            self.setExtraSelections([])
            return
        a, b = index.to_utf16(span[0]), index.to_utf16(span[1])
        self._span = (a, b)
        sel = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.document())
        cursor.setPosition(a)
        cursor.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setBackground(color)
        sel.cursor = cursor
        sel.format = fmt
        self.setExtraSelections([sel])
        end = QTextCursor(self.document())
        end.setPosition(b)
        self.setTextCursor(end)
        self.ensureCursorVisible()
        start = QTextCursor(self.document())
        start.setPosition(a)
        self.setTextCursor(start)
        self.ensureCursorVisible()

    @property
    def span(self) -> tuple[int, int] | None:
        return self._span

    def mouseReleaseEvent(self, event) -> None:  # Qt override
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._span is not None:
            at = self.cursorForPosition(event.position().toPoint()).position()
            if self._span[0] <= at <= self._span[1] and not self.textCursor().hasSelection():
                self.span_clicked.emit()


class DocumentView(QWidget):
    """The span in its document: a PDF page with the span lit, or the document's text with it lit."""

    page_requested = Signal(str, int, int)  # source, page (1-based), width in device pixels
    highlight_clicked = Signal()
    open_requested = Signal(str, int)  # source, page (0 when the format has none)
    shown = Signal()  # a page or text is on screen (after the paint it asked for)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("documentView")
        self.setAccessibleName("Document")
        self._source = ""
        self._page = 0
        self._page_count = 0
        self._zoom = ZOOMS.index(1.0)

        self.title = QLabel("Click a sentence of the answer to see its source in the document.")
        self.title.setObjectName("documentTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # file names are untrusted text
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note = QLabel()
        self.note.setObjectName("documentNote")
        self.note.setAccessibleName("Note about the document")
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setWordWrap(True)
        self.note.hide()

        def button(text: str, name: str, tip: str, slot) -> QToolButton:
            b = QToolButton(self)
            b.setText(text)
            b.setAccessibleName(name)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            return b

        self.previous_button = button("\u25b2", "Previous page", "Previous page", self._on_previous_button_clicked)
        self.next_button = button("\u25bc", "Next page", "Next page", self._on_next_button_clicked)
        self.zoom_out_button = button("\u2212", "Zoom out", "Zoom out", self._on_zoom_out_button_clicked)
        self.zoom_in_button = button("+", "Zoom in", "Zoom in", self._on_zoom_in_button_clicked)
        self.open_button = button("Open", "Open in the system's viewer",
                                  "Open the file in the system's viewer, at this page where the viewer allows it",
                                  self._on_open_button_clicked)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(2)
        bar.addWidget(self.title, 1)
        for b in (self.previous_button, self.next_button, self.zoom_out_button, self.zoom_in_button,
                  self.open_button):
            bar.addWidget(b)

        self.canvas = PageCanvas()
        self.canvas.highlight_clicked.connect(self.highlight_clicked)
        self.page_scroll = QScrollArea()
        self.page_scroll.setObjectName("pageScroll")
        self.page_scroll.setAccessibleName("Page view")
        self.page_scroll.setWidget(self.canvas)
        self.page_scroll.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.page_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.text_view = _DocumentText()
        self.text_view.span_clicked.connect(self.highlight_clicked)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.page_scroll)
        self.stack.addWidget(self.text_view)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.note)
        layout.addWidget(self.stack, 1)
        self._sync_buttons()

    # -- what is shown -----------------------------------------------------
    @property
    def source(self) -> str:
        return self._source

    @property
    def page(self) -> int:
        """The PDF page shown (1-based), 0 for a text view or nothing."""
        return self._page

    @property
    def zoom(self) -> float:
        return ZOOMS[self._zoom]

    def request_width(self) -> int:
        """The width in device pixels a page should be rendered at to fill this view at the zoom."""
        logical = max(200, self.page_scroll.viewport().width() - 2 * _PAGE_MARGIN)
        return int(logical * self.zoom * self.devicePixelRatioF())

    def show_pdf(self, view) -> None:
        """Show a `core.page_view.PdfView`: its page image, the span's rectangles, its note."""
        image = QImage(view.image.pixels, view.image.width, view.image.height, view.image.stride,
                       QImage.Format.Format_RGBX8888).copy()  # copy: the bytes belong to the engine's cache
        image.setDevicePixelRatio(self.devicePixelRatioF())
        self._source, self._page, self._page_count = view.source, view.page, view.page_count
        self.canvas.set_page(image, view.rects)
        # The page first: a long file name is elided at the end, the page number must stay readable.
        self.title.setText(f"Page {view.page} of {view.page_count} \u00b7 {view.path.name}")
        self.title.setToolTip(str(view.path))
        self._set_note(view.note)
        self.stack.setCurrentWidget(self.page_scroll)
        self._sync_buttons()
        if view.rects:
            first = self.canvas.highlight_rects()[0]
            self.page_scroll.ensureVisible(int(first.center().x()), int(first.center().y()),
                                           50, max(50, self.page_scroll.viewport().height() // 3))
        else:
            self.page_scroll.verticalScrollBar().setValue(0)
        self.shown.emit()

    def show_text(self, view) -> None:
        """Show a `core.page_view.TextView`: the document's text with the span lit in context."""
        self._source, self._page, self._page_count = view.source, 0, 0
        color = theme.colors(self.palette()).support_span
        self.text_view.show_text(view.text, view.span, color)
        self.title.setText(view.path.name)
        self.title.setToolTip(str(view.path))
        self._set_note(view.note)
        self.stack.setCurrentWidget(self.text_view)
        self._sync_buttons()
        self.shown.emit()

    def show_message(self, text: str) -> None:
        """Say why nothing can be shown (the file is gone, it cannot be read...)."""
        self._set_note(text)

    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _sync_buttons(self) -> None:
        pdf = self._page > 0
        self.previous_button.setEnabled(pdf and self._page > 1)
        self.next_button.setEnabled(pdf and self._page < self._page_count)
        self.zoom_out_button.setEnabled(pdf and self._zoom > 0)
        self.zoom_in_button.setEnabled(pdf and self._zoom < len(ZOOMS) - 1)
        self.open_button.setEnabled(bool(self._source))

    # -- slots -------------------------------------------------------------
    def _on_previous_button_clicked(self) -> None:
        if self._page > 1:
            self.page_requested.emit(self._source, self._page - 1, self.request_width())

    def _on_next_button_clicked(self) -> None:
        if self._page < self._page_count:
            self.page_requested.emit(self._source, self._page + 1, self.request_width())

    def _zoom_by(self, step: int) -> None:
        self._zoom = max(0, min(len(ZOOMS) - 1, self._zoom + step))
        self._sync_buttons()
        if self._page:
            self.page_requested.emit(self._source, self._page, self.request_width())

    def _on_zoom_out_button_clicked(self) -> None:
        self._zoom_by(-1)

    def _on_zoom_in_button_clicked(self) -> None:
        self._zoom_by(+1)

    def _on_open_button_clicked(self) -> None:
        if self._source:
            self.open_requested.emit(self._source, self._page)

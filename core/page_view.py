"""What the document view shows for a support span: the PDF page with the span's rectangles, or the
document's text with the span's offsets.

`PageViews.show` answers one click: for a PDF chunk, the page it is on,
rendered at the width asked, with the rectangles (fractions of the page) of
the span's characters from the chunk's page map (`core.page_map`; a chunk
stored without one, or whose file changed since, is looked up on the page
instead); for Word, HTML, Markdown and text, the whole document's text and
where the span is in it. `PageViews.page` renders another page of the same
PDF (previous/next, zoom).

Everything here blocks (file reads, pdfium): call it from a worker thread.
Calls from several threads are safe: pdfium is serialised by
`core.pdf_pages.PDFIUM_LOCK` and the caches by their own lock. Memory stays
bounded: at most `OPEN_DOCUMENTS` PDFs open and `RENDERED_PAGES` rendered
pages kept (an A4 page at 1,000 px wide is ~5.6 MB of pixels), so paging
through a 500-page PDF keeps only the last few.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core import page_map, pdf_pages
from core.ingest.documents import clean_text

OPEN_DOCUMENTS = 4
RENDERED_PAGES = 8
TEXT_DOCUMENTS = 4
# A stored map is trusted when this share of the chunk's characters it places match the page's.
_MAP_TRUSTED = 0.9
_MARKERS = "\x02\ufffe"
NOTE_SCANNED = ("This page has no text layer (a scanned image?), so the passage cannot be shown on it. "
                "Run OCR (e.g. ocrmypdf) on the file and add it again.")
NOTE_NOT_FOUND = ("The passage could not be placed on this page (the file may have changed since it was added, "
                  "or its text is stored in an unusual order); its page is shown without a highlight.")
NOTE_CHANGED = "The file changed since it was added, so the passage is not in it any more; add it again."


@dataclass(frozen=True)
class PdfView:
    """A PDF page to show, with the span's rectangles (left, top, right, bottom as page fractions)."""

    source: str
    path: Path
    page: int  # 1-based
    page_count: int
    image: pdf_pages.RenderedPage
    rects: tuple[tuple[float, float, float, float], ...] = ()
    has_text: bool = True
    note: str = ""  # what the user should know (scanned page, passage not placed)


@dataclass(frozen=True)
class TextView:
    """A document's whole text with the span's [start, end) in it (None when it is not there)."""

    source: str
    path: Path
    text: str
    span: tuple[int, int] | None
    note: str = ""


class _Recent:
    """A least-recently-used map of at most `size` entries; callers hold the shared lock."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()

    def get(self, key, stamp=None):
        """The value kept for `key` (and, when given, written for this file `stamp`), or None."""
        kept = self._items.get(key)
        if kept is None or (stamp is not None and kept[0] != stamp):
            return None
        self._items.move_to_end(key)
        return kept[1]

    def put(self, key, value, stamp=None) -> list:
        """Keep `value`; returns the values it replaced or pushed out (for closing)."""
        gone = [self._items.pop(key)[1]] if key in self._items else []
        self._items[key] = (stamp, value)
        while len(self._items) > self.size:
            gone.append(self._items.popitem(last=False)[1][1])
        return gone

    def values(self) -> list:
        return [value for _stamp, value in self._items.values()]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _Caches:
    lock: threading.Lock = field(default_factory=threading.Lock)
    docs: _Recent = field(default_factory=lambda: _Recent(OPEN_DOCUMENTS))  # path -> pdfium document
    renders: _Recent = field(default_factory=lambda: _Recent(RENDERED_PAGES))  # (path, stamp, page, width)
    texts: _Recent = field(default_factory=lambda: _Recent(TEXT_DOCUMENTS))  # path -> text


def resolve(source: str) -> Path:
    """The file of a chunk's source ("sample:<name>" is a file of the built-in corpus)."""
    if source.startswith("sample:"):
        from core.engine import sample_corpus_dir

        return sample_corpus_dir() / source.split(":", 1)[1]
    return Path(source)


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class PageViews:
    """Open PDFs, rendered pages and document texts, each cached (LRU) for the next click."""

    def __init__(self, char_map_for: Callable[[str], str] | None = None):
        # chunk id -> its stored page map ("" when none): the store, looked up only for PDFs.
        self._char_map_for = char_map_for
        self._c = _Caches()

    # -- one click ---------------------------------------------------------
    def show(self, chunk, start: int, end: int, width_px: int) -> PdfView | TextView:
        """The view for span [start, end) of `chunk` (a RetrievedChunk or StoredChunk).

        Raises FileNotFoundError when the file is gone, and pdfium's error when
        a PDF cannot be opened any more.
        """
        path = resolve(chunk.source)
        if path.suffix.lower() == ".pdf" and chunk.page:
            return self._pdf(chunk, path, start, end, width_px)
        return self._text(chunk, path, start, end)

    def page(self, source: str, number: int, width_px: int) -> PdfView:
        """Another page of a PDF (no span on it)."""
        path = resolve(source)
        doc = self._document(path)
        count = pdf_pages.page_count(doc)
        number = max(1, min(number, count))
        has_text = pdf_pages.has_text_layer(doc, number)
        return PdfView(source, path, number, count, self._render(path, doc, number, width_px), (), has_text,
                       "" if has_text else NOTE_SCANNED)

    def rects(self, chunk, start: int, end: int) -> tuple[int, tuple]:
        """(page, rectangles) of span [start, end) of a PDF chunk, without rendering (tests, benchmarks)."""
        path = resolve(chunk.source)
        doc = self._document(path)
        return chunk.page, self._span_rects(doc, chunk, start, end)[0]

    def close(self) -> None:
        with self._c.lock:
            docs = self._c.docs.values()
            self._c.docs.clear()
            self._c.renders.clear()
            self._c.texts.clear()
        for doc in docs:
            pdf_pages.close_document(doc)

    # -- PDF ---------------------------------------------------------------
    def _pdf(self, chunk, path: Path, start: int, end: int, width_px: int) -> PdfView:
        doc = self._document(path)
        count = pdf_pages.page_count(doc)
        number = max(1, min(int(chunk.page), count))
        if not pdf_pages.has_text_layer(doc, number):
            return PdfView(chunk.source, path, number, count, self._render(path, doc, number, width_px), (),
                           False, NOTE_SCANNED)
        rects, note = self._span_rects(doc, chunk, start, end)
        return PdfView(chunk.source, path, number, count, self._render(path, doc, number, width_px), rects,
                       True, note)

    def _span_rects(self, doc, chunk, start: int, end: int) -> tuple[tuple, str]:
        chars = pdf_pages.page_chars(doc, chunk.page)
        stored = getattr(chunk, "char_map", "") or (self._char_map_for(chunk.id) if self._char_map_for else "")
        runs = page_map.decode(stored) if stored and _agrees(stored, chunk.text, chars) else None
        if runs is None:  # stored before maps existed, or the file changed since: look the text up
            runs = page_map.decode(page_map.locate_in_page(chunk.text, chars))
        ranges = page_map.span_ranges(runs, start, end)
        if not ranges:
            return (), NOTE_NOT_FOUND
        return tuple(pdf_pages.char_rects(doc, chunk.page, ranges)), ""

    def _document(self, path: Path):
        stamp = _stamp(path)
        key = str(path)
        with self._c.lock:
            doc = self._c.docs.get(key, stamp)
        if doc is not None:
            return doc
        doc = pdf_pages.open_document(path)
        with self._c.lock:
            stale = self._c.docs.put(key, doc, stamp)
        for d in stale:
            pdf_pages.close_document(d)
        return doc

    def _render(self, path: Path, doc, number: int, width_px: int) -> pdf_pages.RenderedPage:
        key = (str(path), _stamp(path), number, int(width_px))
        with self._c.lock:
            image = self._c.renders.get(key)
        if image is None:
            image = pdf_pages.render(doc, number, int(width_px))
            with self._c.lock:
                self._c.renders.put(key, image)
        return image

    def forget_renders(self) -> None:
        """Drop the rendered pages (the page-view benchmark measures clicks on pages not seen yet)."""
        with self._c.lock:
            self._c.renders.clear()

    def cached_pages(self) -> int:
        """How many rendered pages are kept (bounded by RENDERED_PAGES)."""
        with self._c.lock:
            return len(self._c.renders)

    # -- text formats ------------------------------------------------------
    def _text(self, chunk, path: Path, start: int, end: int) -> TextView:
        text = self._document_text(path)
        at = text.find(chunk.text)
        if at < 0:
            return TextView(chunk.source, path, text, None, NOTE_CHANGED)
        limit = len(chunk.text)
        return TextView(chunk.source, path, text, (at + max(0, min(start, limit)), at + max(0, min(end, limit))))

    def _document_text(self, path: Path) -> str:
        from core.ingest.documents import extract

        stamp = _stamp(path)
        key = str(path)
        with self._c.lock:
            text = self._c.texts.get(key, stamp)
        if text is None:
            text = extract(path).text
            with self._c.lock:
                self._c.texts.put(key, text, stamp)
        return text


def _agrees(stored: str, chunk_text: str, chars: str) -> bool:
    """Do the page's characters at the map's indices still match the chunk (the file is unchanged)?"""
    checked = same = 0
    for offset, index, length in page_map.decode(stored):
        for k in range(length):
            ours = chunk_text[offset + k] if offset + k < len(chunk_text) else ""
            if not ours or ours.isspace():
                continue
            checked += 1
            theirs = chars[index + k] if index + k < len(chars) else ""
            # pdfium's U+0002 is stored as "-" (a line-end hyphen) or U+FFFD (a glyph it cannot name).
            same += bool(theirs) and (ours in clean_text(theirs) or theirs in _MARKERS or ours == "\ufffd")
    return checked > 0 and same >= _MAP_TRUSTED * checked

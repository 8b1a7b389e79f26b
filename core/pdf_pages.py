"""PDF pages through pdfium: a page's text layer, the rectangles of a range of its characters, a rendered page.

pypdfium2 (Apache-2.0/BSD-3-Clause, binary wheels, Chrome's PDF engine) is
the one PDF library of the app: ingest reads each page's text from it
(`text_layer`, used by `core.ingest.documents.pdf`), and the page view draws with
it: page rendering, and a text page whose characters each have an index and
a box (`FPDFText_GetUnicode`, `FPDFText_CountRects`/`GetRect` merge a range
of characters into one rectangle per line). Because the stored text is built
from the same character indices, a chunk's page map (`core.page_map`) is a
slice of the index list extraction keeps, not a guess. It was chosen over pypdf by
measurement (tests/core/data/documents/README.md): it reads more files,
18-28x faster, and spaces words by glyph position as poppler does.

pdfium is not thread-safe: every call into it, from any thread, happens under
`PDFIUM_LOCK` (ingest's reader thread and the page view's worker may both use
it at once). The functions here take the lock themselves; code holding
pdfium objects across calls must hold it too. No other module calls pdfium
(the evaluation scripts aside), so this lock is the only one there is.

Coordinates: rectangles are returned as fractions of the page *as displayed*
(rotation and crop box applied, y downwards), so a view can scale them to any
zoom without asking pdfium again.
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

PDFIUM_LOCK = threading.RLock()

# Device size used to turn page points into display fractions (FPDF_PageToDevice works in whole pixels).
_FRACTION_GRID = 100_000


@dataclass(frozen=True)
class RenderedPage:
    """A rendered page: RGBX pixels (4 bytes each, rows `stride` bytes apart) and its size in pixels."""

    number: int  # 1-based
    width: int
    height: int
    stride: int
    pixels: bytes


# pdfium's FPDF_ERR_PASSWORD (fpdfview.h), as pypdfium2's PdfiumError.err_code.
_ERR_PASSWORD = 4


def open_document(source: Path | bytes):
    """A `pypdfium2.PdfDocument` for a path or the PDF's bytes; raises `pypdfium2.PdfiumError` if unreadable.

    A PDF whose *owner* password is empty opens without asking, as in poppler
    and pypdf; pdfium only tries the empty password as the user password (it
    refused the corpus's `encryption_r6-user-password.pdf`, which pypdf and
    poppler read). For such a file pypdf writes a decrypted copy in memory and
    pdfium reads that: the same content streams, so the same characters.
    """
    import pypdfium2 as pdfium

    try:
        with PDFIUM_LOCK:
            return pdfium.PdfDocument(source if isinstance(source, bytes) else str(source))
    except pdfium.PdfiumError as exc:
        if exc.err_code != _ERR_PASSWORD:
            raise
        copy = _open_with_empty_owner_password(source if isinstance(source, bytes) else Path(source).read_bytes())
        if copy is None:
            raise
    with PDFIUM_LOCK:
        return pdfium.PdfDocument(copy)


def _open_with_empty_owner_password(data: bytes) -> bytes | None:
    """The PDF decrypted, if its owner password is empty; None otherwise (it needs a password)."""
    import io

    try:
        import pypdf

        reader = pypdf.PdfReader(io.BytesIO(data))
        if not reader.is_encrypted or reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            return None
        writer = pypdf.PdfWriter(clone_from=reader)
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    except Exception:  # noqa: BLE001 - pypdf cannot do it either: the password error stands
        return None


def close_document(doc) -> None:
    with PDFIUM_LOCK:
        doc.close()


def page_count(doc) -> int:
    with PDFIUM_LOCK:
        return len(doc)


@dataclass(frozen=True)
class TextLayer:
    """What pdfium parsed from one page: its characters, and whether it draws images.

    `chars` has one character per pdfium character index (the indices the
    boxes of `char_rects` use). pdfium writes line breaks as "\\r\\n" and
    gives U+0002 (U+FFFE through `FPDFText_GetText`) both for a hyphen at a
    line end, where it joins the lines without a break, and for a glyph it
    cannot name; `line_end_hyphens` holds the indices of the former (the next
    character is on another line). `objects` counts the page objects the
    content stream gave (0 for a blank page and for a stream pdfium could not
    decode: it says nothing in either case); `images` is True when one of them,
    at any depth of form XObjects, is an image (a scan). Both are only counted
    for a page without text (`objects` is -1 otherwise): nobody asks then.
    """

    chars: str
    line_end_hyphens: frozenset[int]
    objects: int
    images: bool


def text_layer(doc, number: int) -> TextLayer:
    """The text layer of page `number` (1-based); raises `pypdfium2.PdfiumError` if the page cannot be loaded."""
    import pypdfium2.raw as pdfium_c

    with PDFIUM_LOCK:
        page = doc[number - 1]
        try:
            textpage = page.get_textpage()
            try:
                raw = textpage.raw
                count = textpage.count_chars()
                out = []
                markers = []
                for i in range(count):
                    code = pdfium_c.FPDFText_GetUnicode(raw, i)
                    if code in (0x2, 0xFFFE):
                        markers.append(i)
                    out.append(chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd")
                chars = "".join(out)
                hyphens = frozenset(i for i in markers if _ends_line(textpage, chars, i))
            finally:
                textpage.close()
            objects, images = _objects(page.raw) if not chars.strip() else (-1, False)
        finally:
            page.close()
    return TextLayer(chars, hyphens, objects, images)


def _ends_line(textpage, chars: str, i: int) -> bool:
    """Is character `i` the last of its line (the next visible character is on another line, or none follows)?

    Measured on the corpus: of 257 U+0002 in the IEEE paper, 132 end a line
    (hyphens) and 125 sit inside one (a Greek epsilon the font does not name).
    """
    import pypdfium2.raw as pdfium_c

    j = i + 1
    while j < len(chars) and (chars[j].isspace() or pdfium_c.FPDFText_IsGenerated(textpage.raw, j) == 1):
        j += 1
    if j >= len(chars):
        return True
    _l, bottom, _r, top = textpage.get_charbox(i, loose=True)
    _l2, bottom2, _r2, top2 = textpage.get_charbox(j, loose=True)
    overlap = min(top, top2) - max(bottom, bottom2)
    return overlap < 0.5 * max(1e-6, min(top - bottom, top2 - bottom2))


def _objects(page_raw) -> tuple[int, bool]:
    """(page objects, whether any is an image), looking inside form XObjects (a scan may be wrapped in one)."""
    import pypdfium2.raw as pdfium_c

    count = pdfium_c.FPDFPage_CountObjects(page_raw)
    pending = [pdfium_c.FPDFPage_GetObject(page_raw, k) for k in range(count)]
    seen = 0
    while pending and seen < 100_000:  # a bound: forms nest, and a hostile file may nest deeply
        obj = pending.pop()
        seen += 1
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            return count, True
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            inside = pdfium_c.FPDFFormObj_CountObjects(obj)
            pending.extend(pdfium_c.FPDFFormObj_GetObject(obj, k) for k in range(inside))
    return count, False


def page_chars(doc, number: int) -> str:
    """The characters of page `number` (1-based), one per pdfium character index.

    Read one index at a time: `get_text_range` may drop or insert characters
    relative to the index list (it did on 10 of 12 pages of the IEEE paper in
    the corpus), and the map needs the index of every character. A character
    pdfium cannot name becomes U+FFFD.
    """
    import pypdfium2.raw as pdfium_c

    with PDFIUM_LOCK:
        page = doc[number - 1]
        textpage = page.get_textpage()
        try:
            raw = textpage.raw
            out = []
            for i in range(textpage.count_chars()):
                code = pdfium_c.FPDFText_GetUnicode(raw, i)
                out.append(chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd")
            return "".join(out)
        finally:
            textpage.close()
            page.close()


def _to_fraction(page_raw, width: int, height: int, x: float, y: float) -> tuple[float, float]:
    import pypdfium2.raw as pdfium_c

    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page_raw, 0, 0, width, height, 0, x, y, dx, dy)
    return dx.value / width, dy.value / height


def char_rects(doc, number: int, ranges: list[tuple[int, int]]) -> list[tuple[float, float, float, float]]:
    """Rectangles (left, top, right, bottom as fractions of the displayed page) covering the
    characters of `ranges` ([first, stop) pdfium indices) on page `number`: one per line piece."""
    rects: list[tuple[float, float, float, float]] = []
    with PDFIUM_LOCK:
        page = doc[number - 1]
        textpage = page.get_textpage()
        try:
            count = textpage.count_chars()
            w, h = _grid(page)
            for first, stop in ranges:
                first, stop = max(0, first), min(count, stop)
                if stop <= first:
                    continue
                for i in range(textpage.count_rects(first, stop - first)):
                    left, bottom, right, top = textpage.get_rect(i)
                    rects.append(_fraction_rect(page.raw, w, h, left, bottom, right, top))
        finally:
            textpage.close()
            page.close()
    return [r for r in rects if r[2] > r[0] and r[3] > r[1]]


def char_boxes(doc, number: int) -> list[tuple[str, tuple[float, float, float, float] | None]]:
    """Every character of page `number` with its box as display fractions (None for generated
    spaces and line breaks, which have no box). For checking what lies under a rectangle."""
    import pypdfium2.raw as pdfium_c

    out = []
    with PDFIUM_LOCK:
        page = doc[number - 1]
        textpage = page.get_textpage()
        try:
            w, h = _grid(page)
            for i in range(textpage.count_chars()):
                code = pdfium_c.FPDFText_GetUnicode(textpage.raw, i)
                ch = chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"
                if pdfium_c.FPDFText_IsGenerated(textpage.raw, i) == 1:
                    out.append((ch, None))
                    continue
                left, bottom, right, top = textpage.get_charbox(i)
                out.append((ch, _fraction_rect(page.raw, w, h, left, bottom, right, top)))
        finally:
            textpage.close()
            page.close()
    return out


def _grid(page) -> tuple[int, int]:
    width, height = page.get_size()
    longest = max(width, height, 1.0)
    return max(1, round(_FRACTION_GRID * width / longest)), max(1, round(_FRACTION_GRID * height / longest))


def _fraction_rect(page_raw, w: int, h: int, left: float, bottom: float, right: float, top: float
                   ) -> tuple[float, float, float, float]:
    x0, y0 = _to_fraction(page_raw, w, h, left, top)
    x1, y1 = _to_fraction(page_raw, w, h, right, bottom)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def has_text_layer(doc, number: int) -> bool:
    """Does page `number` hold any text characters (False for a scanned page without OCR)?"""
    with PDFIUM_LOCK:
        page = doc[number - 1]
        textpage = page.get_textpage()
        try:
            return textpage.count_chars() > 0
        finally:
            textpage.close()
            page.close()


def page_size(doc, number: int) -> tuple[float, float]:
    """Width and height of page `number` in points (1/72 inch), as displayed."""
    with PDFIUM_LOCK:
        page = doc[number - 1]
        try:
            return page.get_size()
        finally:
            page.close()


def render(doc, number: int, width_px: int) -> RenderedPage:
    """Page `number` rendered `width_px` pixels wide (height to scale), forms and annotations drawn."""
    with PDFIUM_LOCK:
        page = doc[number - 1]
        try:
            width, _height = page.get_size()
            scale = max(0.05, width_px / max(width, 1.0))
            # RGBX: 4 bytes a pixel, which QImage takes without conversion (Format_RGBX8888).
            bitmap = page.render(scale=scale, rev_byteorder=True, prefer_bgrx=True, draw_annots=True)
            try:
                pixels = bytes(bitmap.buffer)
                return RenderedPage(number, bitmap.width, bitmap.height, bitmap.stride, pixels)
            finally:
                bitmap.close()
        finally:
            page.close()

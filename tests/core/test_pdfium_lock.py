"""pdfium is not thread-safe: ingest reading a PDF while the page view renders one must not crash or mix up pages.

Ingest's reader thread (text, page maps) and the page view's worker
(rendering, character boxes) both call pdfium; `core.pdf_pages.PDFIUM_LOCK`
serialises every call. The first test runs the two at once for real, on the
IEEE paper of the committed corpus, and compares what each gets with what it
gets alone. That one passed here even with the lock taken out (12 rounds):
pdfium's races are rare, so it cannot be the proof. The second test is: it
wraps every pdfium function and fails if any is called without the lock held,
on every path ingest and the page view take (text, scanned and broken pages,
rendering, boxes, a chunk looked up without a stored map).
"""
from __future__ import annotations

import ctypes
import hashlib
import threading

from core import pdf_pages
from core.eval.documents_quality import CORPUS
from core.ingest.ingestor import file_hash, iter_parts
from core.page_view import PageViews

PAPER = CORPUS / "pdf" / "contrib_issue-1061-colour-space-stack.pdf"
ROUNDS = 2


def _ingest_read() -> list[tuple[int | None, str, str]]:
    """What ingest stores for the paper: each chunk's page, text and page map."""
    return [(c.page, c.text, c.char_map) for kind, part, _ in iter_parts(PAPER, file_hash(PAPER), chunk_chars=900,
                                                                          overlap=1)
            if kind == "part" for c in part]


def _views(views: PageViews, chunk) -> list[str]:
    """Every page rendered (a digest of its pixels), then the chunk's span lit."""
    out = []
    count = pdf_pages.page_count(views._document(PAPER))
    for number in range(1, count + 1):
        views.forget_renders()
        out.append(hashlib.sha256(views.page(str(PAPER), number, 400).image.pixels).hexdigest())
    out.append(repr(views.rects(chunk, 0, len(chunk.text))))
    return out


class _Chunk:
    def __init__(self, page: int, text: str, char_map: str):
        self.source, self.page, self.text, self.char_map, self.id = str(PAPER), page, text, char_map, "c"


def test_ingest_reading_a_pdf_while_the_page_view_renders_gives_what_each_gets_alone():
    alone_ingest = _ingest_read()
    page, text, char_map = alone_ingest[5]
    chunk = _Chunk(page, text, char_map)
    views = PageViews()
    alone_views = _views(views, chunk)

    results: dict[str, list] = {"ingest": [], "views": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(name: str, work) -> None:
        try:
            start.wait()
            for _ in range(ROUNDS):
                results[name].append(work())
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("ingest", _ingest_read)),
               threading.Thread(target=run, args=("views", lambda: _views(views, chunk)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    views.close()
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert results["ingest"] == [alone_ingest] * ROUNDS
    assert results["views"] == [alone_views] * ROUNDS
    assert alone_views[-1] != "()"  # the span was lit on its page


def test_every_pdfium_call_of_ingest_and_the_page_view_holds_the_lock(monkeypatch, tmp_path):
    # Each pdfium function (pypdfium2.raw, which pypdfium2's own classes call too) is wrapped to
    # note a call made by a thread that does not hold PDFIUM_LOCK. A concurrency test may pass
    # by luck; this one fails as soon as any path reaches pdfium without the lock.
    import pypdfium2.raw as pdfium_c

    from core.ingest.documents import extract
    from tests.core.test_documents import THREE_PAGES, make_pdf

    unlocked: list[str] = []
    calls: list[str] = []

    def guarded(name, function):
        def call(*args):
            calls.append(name)
            if not pdf_pages.PDFIUM_LOCK._is_owned():
                unlocked.append(name)
            return function(*args)
        return call

    for name in dir(pdfium_c):
        if name.startswith("FPDF") and isinstance(getattr(pdfium_c, name), ctypes._CFuncPtr):  # not the types
            monkeypatch.setattr(pdfium_c, name, guarded(name, getattr(pdfium_c, name)))
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(make_pdf(THREE_PAGES, broken_pages=frozenset({3})))
    assert "could not be read" in extract(damaged).warnings[0]
    scanned = extract(CORPUS / "pdf" / "text-then-scanned-pages.pdf")
    assert "no text, only images" in scanned.warnings[0]
    page, text, char_map = _ingest_read()[5]
    views = PageViews()
    try:
        _views(views, _Chunk(page, text, char_map))
        views.rects(_Chunk(page, text, ""), 0, 40)  # no stored map: looked up on the page
    finally:
        views.close()
    assert {"FPDFText_GetUnicode", "FPDF_RenderPageBitmap", "FPDFText_GetRect", "FPDFPage_CountObjects"} <= set(calls)
    assert unlocked == []

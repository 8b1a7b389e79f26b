"""pdfium is not thread-safe: ingest reading a PDF while the page view renders one must not crash or mix up pages.

Ingest's reader thread (text, page maps) and the page view's worker
(rendering, character boxes) both call pdfium; `core.pdf_pages.PDFIUM_LOCK`
serialises every call. Here the two run at once for real, on the IEEE paper of
the committed corpus, and what each gets is compared with what it gets alone.
"""
from __future__ import annotations

import hashlib
import threading

from core import pdf_pages
from core.eval.documents_quality import CORPUS
from core.ingest import file_hash, iter_parts
from core.page_view import PageViews

PAPER = CORPUS / "pdf" / "contrib_issue-1061-colour-space-stack.pdf"
ROUNDS = 3


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

"""PDF: pdfium's text page by page, with pages that have no text layer or garbled text reported by range.

The text comes from pypdfium2 (`core.pdf_pages.text_layer`, under the one
process-wide pdfium lock), the library the page view draws with, chosen by
measurement on the real corpus (tests/core/data/documents/README.md). Each
page's text is built from pdfium's characters and keeps, for every character
of it, the pdfium index it came from (`PageText.char_index`), so a chunk's
page map is a slice of that list rather than a guess.

What pdfium returns is mapped before anything stores it, one pdfium
character to the characters that stand for it: "\\r\\n" (pdfium's line break)
becomes "\\n"; the U+0002 it puts for a hyphen at a line end, where it joins
the two lines, becomes "-\\n", so `core.ingest.segment` repairs "infor-\\nmation" as
it does for any text; U+0002 inside a line (a glyph the font does not name)
and other control characters become U+FFFD, which the garbled-text check
counts; ligatures and compatibility forms go through `clean_text` per
character, so the list stays exact.

pdfium says nothing when a page's content stream cannot be decoded: such a
page reads as empty, like a blank one. A page with no characters and no page
objects at all is therefore asked about once more, through pypdf, which does
report a stream it cannot decode; only then is it "could not be read". A page
with image objects and no text is a scan ("no text, only images").
"""
from __future__ import annotations

import io
import logging
import threading
import unicodedata
from pathlib import Path
from typing import Callable

from core.ingest.documents.cleaning import clean_text, text_problem
from core.ingest.documents.pages import PageText
from core.ingest.documents.problems import encrypted
from core.errors import CODE_CORRUPT, CODE_ENCRYPTED, IngestError

# pdfium's FPDF_ERR_* codes from FPDF_GetLastError (fpdfview.h), as pypdfium2's PdfiumError.err_code.
_ERR_PASSWORD = 4
_ERR_SECURITY = 5


def pdf_pages(path: Path, data: bytes, on_page: Callable[[int, int], None] | None = None
               ) -> tuple[tuple[PageText, ...], tuple[str, ...]]:
    import pypdfium2 as pdfium

    from core import pdf_pages as pdfium_pages

    corrupt = IngestError(
        f"{path} is damaged or incomplete and cannot be read as a PDF; "
        "if it was downloaded or copied, fetch it again, or re-export it from the program that made it.",
        code=CODE_CORRUPT,
    )
    try:
        # No password given: pdfium tries the empty one itself, which opens the many "protected"
        # PDFs that only restrict printing or copying.
        doc = pdfium_pages.open_document(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == _ERR_PASSWORD:
            raise encrypted(path) from exc
        if exc.err_code == _ERR_SECURITY:
            raise IngestError(
                f"{path} is encrypted with a security handler Sourcelight cannot open (not the standard "
                "password encryption); open it in the program that made it, save an unprotected copy and add that.",
                code=CODE_ENCRYPTED,
            ) from exc
        raise corrupt from exc
    except Exception as exc:  # noqa: BLE001 - whatever the binding raises for a file it cannot take
        raise corrupt from exc

    pages: list[PageText] = []
    failed: dict[int, str] = {}
    blank: list[int] = []  # pages with images but no text: scanned, most likely
    garbled: dict[int, str] = {}
    empty: list[int] = []  # no characters and no page objects: blank, or a stream pdfium could not decode
    try:
        page_count = pdfium_pages.page_count(doc)
        for number in range(1, page_count + 1):
            if on_page is not None:  # outside the per-page guard: a cancel it raises ends the read
                on_page(number - 1, page_count)
            try:
                layer = pdfium_pages.text_layer(doc, number)
            except Exception as exc:  # noqa: BLE001 - one page pdfium cannot load must not lose the whole book
                failed[number] = str(exc) or type(exc).__name__
                continue
            text, index = stored_text(layer.chars, layer.line_end_hyphens)
            if text.strip():
                pages.append(PageText(number, text, index))
                problem = text_problem(text)
                if problem:
                    garbled[number] = problem
            elif layer.images:
                blank.append(number)
            elif layer.objects == 0:
                empty.append(number)
    finally:
        pdfium_pages.close_document(doc)
    failed.update(_undecodable(data, empty))
    failed = dict(sorted(failed.items()))
    if failed and not pages:
        raise corrupt
    warnings: list[str] = []
    if failed:
        listed = ", ".join(map(str, failed))
        first_reason = next(iter(failed.values()))
        # No path in the message: the ingest report pairs every warning with its file.
        warnings.append(f"The text of page(s) {listed} could not be read ({first_reason}) and was left out.")
    if blank and pages:
        warnings.append(f"{_pages_phrase(blank, page_count)} no text, only images (scanned?), so nothing on "
                        f"{'it' if len(blank) == 1 else 'them'} can be found or cited; run OCR (e.g. ocrmypdf) "
                        "and add the result to search them.")
    for problem, numbers in _by_problem(garbled).items():
        warnings.append(f"{_pages_phrase(numbers, page_count)} text that looks garbled ({problem}); answers from "
                        f"{'it' if len(numbers) == 1 else 'them'} may be wrong. If the PDF reads fine on screen, "
                        "its fonts lack a usable text encoding: OCR (e.g. ocrmypdf --force-ocr) gives clean text.")
    return tuple(pages), tuple(warnings)


def stored_text(chars: str, line_end_hyphens: frozenset[int] = frozenset()) -> tuple[str, tuple[int, ...]]:
    """The text to store for a page's pdfium characters, and for each of its characters the pdfium
    index it stands for (-1 for the "\\n" added after a line-end hyphen).

    See the module docstring for the mapping; every other character goes
    through `clean_text` on its own, so "ﬁ" (one index) becomes "fi" (two
    characters, both that index). The result is NFC already: `clean_text` of
    the whole page (which `extract` applies to every format) leaves it as is,
    so the index list stays aligned.
    """
    out: list[str] = []
    index: list[int] = []
    n = len(chars)
    for i, ch in enumerate(chars):
        if ch == "\r":
            if i + 1 < n and chars[i + 1] == "\n":
                continue  # "\r\n": the "\n" that follows stands for both
            ch = "\n"
        elif ch in "\x02\ufffe":
            if i in line_end_hyphens:
                out.append("-")
                index.append(i)
                if i + 1 < n and chars[i + 1] in "\r\n":
                    continue
                ch, i = "\n", -1
            else:
                ch = "\ufffd"
        elif ch == "\x00" or (ch not in "\n\t" and unicodedata.category(ch) == "Cc"):
            # NULs and other controls come from fonts without a usable encoding; they carry no text and
            # break stores that treat strings as C strings. U+FFFD keeps the place (and the index).
            ch = "\ufffd"
        for c in (ch if ch.isascii() else clean_text(ch)):
            out.append(c)
            index.append(i)
    text = "".join(out)
    if not text.isascii() and unicodedata.normalize("NFC", text) != text:
        # A combining mark after its letter composes across two pdfium characters; the composed
        # character keeps the first one's index.
        text, index = _compose(out, index)
    return text, tuple(index)


def _compose(chars: list[str], index: list[int]) -> tuple[str, list[int]]:
    text: list[str] = []
    where: list[int] = []
    for c, i in zip(chars, index):
        if text and unicodedata.combining(c):
            joined = unicodedata.normalize("NFC", text[-1] + c)
            if len(joined) == 1:
                text[-1] = joined
                continue
        text.append(c)
        where.append(i)
    composed = unicodedata.normalize("NFC", "".join(text))
    if len(composed) != len(text):  # a composition this pass does not cover: no index beats a wrong one
        return composed, [-1] * len(composed)
    return composed, where


def _undecodable(data: bytes, numbers: list[int]) -> dict[int, str]:
    """Of pages pdfium found empty, those whose content stream pypdf cannot decode, with its reason.

    pdfium reads a blank page and a page whose stream is broken alike (nothing,
    no error); pypdf logs or raises on the broken one. Asked only about such
    pages, so a normal PDF never loads pypdf. If pypdf cannot open the file
    at all, the pages count as blank: nothing better is known.
    """
    if not numbers:
        return {}
    try:
        import pypdf

        with _PypdfProblems() as problems:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                reader.decrypt("")
            out: dict[int, str] = {}
            for number in numbers:
                logged = len(problems.messages)
                try:
                    contents = reader.pages[number - 1].get_contents()
                    if contents is not None:
                        contents.get_data()
                except Exception as exc:  # noqa: BLE001 - the reason is what we are after
                    out[number] = str(exc) or type(exc).__name__
                    continue
                if len(problems.messages) > logged:
                    out[number] = problems.messages[logged]
            return out
    except Exception:  # noqa: BLE001 - pypdf cannot open what pdfium did: no diagnosis
        return {}


def _by_problem(problems: dict[int, str]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for number, problem in problems.items():
        grouped.setdefault(problem, []).append(number)
    return grouped


def _pages_phrase(numbers: list[int], page_count: int) -> str:
    """"Page 3 has" / "Pages 10-39 have" / "Pages 2, 5-7 (of 9) have": consecutive pages as ranges."""
    ranges: list[list[int]] = []
    for n in sorted(numbers):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    listed = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
    if len(numbers) == 1:
        return f"Page {listed} (of {page_count}) has"
    return f"Pages {listed} (of {page_count}) have"


class _PypdfProblems(logging.Handler):
    """Collects the warnings pypdf logs on this thread while the handler is installed.

    Filtered by thread because ingest may extract several documents at once
    and the "pypdf" logger is process-wide.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())

    def __enter__(self) -> _PypdfProblems:
        logging.getLogger("pypdf").addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("pypdf").removeHandler(self)

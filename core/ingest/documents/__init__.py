"""Text extraction: the first step of ingest, from a file on disk to plain text.

`extract` turns one supported file (plain text, Markdown, HTML, DOCX, PDF) into
an `ExtractedDocument`: its text, split into pages where the format has pages,
plus a content hash so re-ingesting an unchanged file can be skipped.
`iter_files` expands the paths a user picked (files and folders) into the files
to extract, deterministically and without looping on symlink cycles.

Every way a single file can fail becomes an `IngestError` whose message names
the file, says what is wrong and what to do next, and whose `code` is one of the
`CODE_*` constants below; ingest reports it and carries on with the next file.

Extracted text is what chunking, highlighting and attribution index into, so it
is returned as the document says it (Markdown markup included); the only
changes are decoding, newline normalisation to "\\n", Unicode clean-up
(`clean_text`: ligatures such as U+FB01 become "fi", so "file" matches;
done here, before anything indexes the text, so offsets stay exact), for
HTML/DOCX, the line structure needed to keep paragraphs apart, and for PDF the
mapping of pdfium's line-end markers (`core.ingest.documents.pdf`: a hyphen pdfium
joined across a line end is stored "-\\n"). A PDF page also keeps, per
character, the pdfium index it came from (`PageText.char_index`), which is
what the page view lights.

A PDF's pages are also checked (`text_problem`): pages without a text layer
(scanned images) and pages whose text looks garbled (unreadable characters,
letters spaced out, scripts mixed inside words: a font without a usable
encoding) are reported as warnings by page range, so a user learns that
"pages 10-39 have no text" instead of finding out from a missing answer.

Parsing is left to maintained libraries (pypdfium2, python-docx's package reader, BeautifulSoup);
they are imported on first use because `core` is imported at start-up and the
cold-start budget has no room for parsers nobody has asked for yet.

The package, one reader per format: `plain` (text, Markdown), `pdf`,
`html_text`, `docx_text`; `cleaning` (Unicode clean-up, garbled-text check),
`files` (walking folders, reading bytes), `formats`, `pages` (what extraction
returns) and `problems` (the error for every way a file fails).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from core.ingest.documents.cleaning import clean_text, text_problem
from core.ingest.documents.files import iter_files, read_bytes
from core.ingest.documents.formats import HTML_SUFFIXES, MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from core.ingest.documents.html_text import html_text
from core.ingest.documents.pages import ExtractedDocument, PageText
from core.ingest.documents.pdf import pdf_pages
from core.ingest.documents.plain import plain_text
from core.ingest.documents.problems import no_text
# Stable machine-readable `IngestError.code` values, importable from here too.
from core.errors import (CODE_BAD_NAME, CODE_BINARY, CODE_CHANGED, CODE_CORRUPT, CODE_ENCRYPTED, CODE_NO_TEXT,
                         CODE_NOT_A_FILE, CODE_NOT_FOUND, CODE_PERMISSION, CODE_READ_FAILED, CODE_TOO_LARGE,
                         CODE_UNSUPPORTED, IngestError)



def extract(path: Path, *, on_page: Callable[[int, int], None] | None = None) -> ExtractedDocument:
    """Read `path` and return its text; raise `IngestError` if there is none to be had.

    Blocking and CPU-bound (PDF parsing especially): call it from a worker
    thread, never on the event loop. Safe to run for several files at once.
    `on_page(pages_read, page_count)` is called after each PDF page, so a long
    parse can show progress; an exception it raises (a cancel) ends the read.
    """
    path = Path(path)
    data = read_bytes(path)
    suffix = path.suffix.lower()
    if not data:
        raise IngestError(
            f"{path} is empty (0 bytes); add some text to it or remove it from the list.",
            code=CODE_NO_TEXT,
        )
    content_hash = hashlib.sha256(data).hexdigest()
    warnings: tuple[str, ...] = ()
    if suffix == ".pdf":
        pages, warnings = pdf_pages(path, data, on_page)
    elif suffix == ".docx":
        from core.ingest.documents.docx_text import docx_text

        text, warnings = docx_text(path, data)
        pages = (PageText(None, text),)
    elif suffix in HTML_SUFFIXES:
        pages = (PageText(None, html_text(path, data)),)
    else:
        text, warnings = plain_text(path, data)
        pages = (PageText(None, text),)
    pages = tuple(_cleaned(p) for p in pages)
    if not any(p.text.strip() for p in pages):
        raise no_text(path, suffix)
    return ExtractedDocument(path=path, pages=pages, content_hash=content_hash, warnings=warnings)


def _cleaned(page: PageText) -> PageText:
    text = clean_text(page.text)
    if text is page.text or text == page.text:
        return page
    # The PDF reader cleans per character and keeps an index per character; text that still
    # changed here no longer lines up with it.
    return PageText(page.page, text)


__all__ = ["HTML_SUFFIXES", "MAX_FILE_BYTES", "SUPPORTED_SUFFIXES", "CODE_BAD_NAME", "CODE_BINARY", "CODE_CHANGED",
           "CODE_CORRUPT", "CODE_ENCRYPTED", "CODE_NO_TEXT", "CODE_NOT_A_FILE", "CODE_NOT_FOUND", "CODE_PERMISSION",
           "CODE_READ_FAILED", "CODE_TOO_LARGE", "CODE_UNSUPPORTED", "ExtractedDocument", "IngestError", "PageText",
           "clean_text", "extract", "iter_files", "text_problem"]

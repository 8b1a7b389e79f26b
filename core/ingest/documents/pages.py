"""What extraction returns: a document's text page by page, with its content hash and warnings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PageText:
    """The text of one page; `page` is 1-based for PDFs, None for formats without pages.

    `char_index`, for a PDF page, gives for each character of `text` the index
    of the pdfium character it was read from (-1 for none), the indices the
    page view's boxes use (`core.pdf_pages`); None for other formats.
    """

    page: int | None
    text: str
    char_index: tuple[int, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ExtractedDocument:
    """The text of one file, page by page, and the sha256 (hex) of its bytes.

    `warnings` lists what could not be extracted from an otherwise readable
    file (say, one PDF page whose content stream is broken), so the loss is
    reported rather than silent.
    """

    path: Path
    pages: tuple[PageText, ...]
    content_hash: str
    warnings: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """All pages joined by a blank line (the single page's text as is, without a copy)."""
        if len(self.pages) == 1:
            return self.pages[0].text
        return "\n\n".join(p.text for p in self.pages)

"""PDF: pypdf's text page by page, with pages that have no text layer or garbled text reported by range."""
from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Callable

from core.documents.cleaning import clean_text, text_problem
from core.documents.pages import PageText
from core.documents.plain import normalise_newlines
from core.documents.problems import encrypted
from core.errors import CODE_CORRUPT, CODE_ENCRYPTED, IngestError


def pdf_pages(path: Path, data: bytes, on_page: Callable[[int, int], None] | None = None
               ) -> tuple[tuple[PageText, ...], tuple[str, ...]]:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    corrupt = IngestError(
        f"{path} is damaged or incomplete and cannot be read as a PDF; "
        "if it was downloaded or copied, fetch it again, or re-export it from the program that made it.",
        code=CODE_CORRUPT,
    )
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many "protected" PDFs only restrict printing/copying and open
            # with an empty user password; only ask for one if that fails.
            if reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
                raise encrypted(path)
        page_count = len(reader.pages)
    except IngestError:
        raise
    except DependencyError as exc:
        raise IngestError(
            f"{path} is encrypted with AES, which needs the 'cryptography' package to read; "
            "install it (pip install cryptography) and add the file again.",
            code=CODE_ENCRYPTED,
        ) from exc
    except FileNotDecryptedError as exc:
        raise encrypted(path) from exc
    except Exception as exc:
        # Broken PDFs make pypdf raise far more than PdfReadError (KeyError,
        # ValueError, struct and zlib errors...); all of them mean "damaged".
        raise corrupt from exc

    pages: list[PageText] = []
    failed: dict[int, str] = {}
    blank: list[int] = []  # pages with images but no text: scanned, most likely
    garbled: dict[int, str] = {}
    with _PypdfProblems() as problems:
        for number in range(1, page_count + 1):
            if on_page is not None:  # outside the per-page guard: a cancel it raises ends the read
                on_page(number - 1, page_count)
            logged = len(problems.messages)
            try:
                page = reader.pages[number - 1]
                text = page.extract_text()
            except Exception as exc:  # any parser failure on one page must not lose the whole book
                failed[number] = str(exc) or type(exc).__name__
                continue
            # NULs come from fonts without a usable encoding; they carry no text
            # and break downstream stores that treat strings as C strings.
            text = clean_text(normalise_newlines(text.replace("\x00", "")))
            if text.strip():
                pages.append(PageText(number, text))
                problem = text_problem(text)
                if problem:
                    garbled[number] = problem
            elif len(problems.messages) > logged:
                # pypdf logs (rather than raises) most damage, e.g. a broken
                # compressed stream, and returns "": not an image-only page.
                failed[number] = problems.messages[logged]
            elif _has_images(page):
                blank.append(number)
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


def _has_images(page) -> bool:
    """Does the page draw images (a scan) rather than being blank? True when unsure."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        if resources is None:
            return False
        xobjects = resources.get("/XObject")
        if xobjects:
            return True
        data = page.get_contents()
        return data is not None and b"BI" in data.get_data()  # an inline image
    except Exception:  # noqa: BLE001 - a damaged page: better one warning too many than a silent loss
        return True


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


# -- text clean-up and quality ------------------------------------------------


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


# -- DOCX -------------------------------------------------------------------

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
done here, before anything indexes the text, so offsets stay exact) and, for
HTML/DOCX, the line structure needed to keep paragraphs apart.

A PDF's pages are also checked (`text_problem`): pages without a text layer
(scanned images) and pages whose text looks garbled (unreadable characters,
letters spaced out, scripts mixed inside words: a font without a usable
encoding) are reported as warnings by page range, so a user learns that
"pages 10-39 have no text" instead of finding out from a missing answer.

Parsing is left to maintained libraries (pypdf, python-docx's package reader, BeautifulSoup);
they are imported on first use because `core` is imported at start-up and the
cold-start budget has no room for parsers nobody has asked for yet.
"""
from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import stat
import threading
from collections import Counter
from typing import Callable
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import IngestError
# Stable machine-readable `IngestError.code` values (shown in `--json` output); they live in
# core.errors so the per-format readers can raise them without importing this module.
from core.errors import (CODE_BAD_NAME, CODE_BINARY, CODE_CHANGED, CODE_CORRUPT, CODE_ENCRYPTED,
                         CODE_NO_TEXT, CODE_NOT_A_FILE, CODE_NOT_FOUND, CODE_PERMISSION, CODE_READ_FAILED,
                         CODE_TOO_LARGE, CODE_UNSUPPORTED)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".docx")

# Large enough for any real book or manual; the cap exists because the whole
# file is held in memory (bytes, then decoded text) while it is extracted.
MAX_FILE_BYTES = 200 * 1024 * 1024


_TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})

# Binary sniffing looks at a bounded prefix so a 50 MB file costs no more than a
# small one. Uniformly random bytes are ~11% C0 control characters, while real
# text (even ANSI-coloured logs) stays far below 10%; NUL bytes, checked over
# the whole text, catch nearly every binary format on their own.
_SNIFF_CHARS = 64 * 1024
_MAX_CONTROL_RATIO = 0.10
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")

# Longest BOMs first: the UTF-32 LE BOM starts with the UTF-16 LE one. The BOM
# is sliced off before decoding (the explicit-endian codecs would keep it).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


@dataclass(frozen=True)
class PageText:
    """The text of one page; `page` is 1-based for PDFs, None for formats without pages."""

    page: int | None
    text: str


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


def extract(path: Path, *, on_page: Callable[[int, int], None] | None = None) -> ExtractedDocument:
    """Read `path` and return its text; raise `IngestError` if there is none to be had.

    Blocking and CPU-bound (PDF parsing especially): call it from a worker
    thread, never on the event loop. Safe to run for several files at once.
    `on_page(pages_read, page_count)` is called after each PDF page, so a long
    parse can show progress; an exception it raises (a cancel) ends the read.
    """
    path = Path(path)
    data = _read_bytes(path)
    suffix = path.suffix.lower()
    if not data:
        raise IngestError(
            f"{path} is empty (0 bytes); add some text to it or remove it from the list.",
            code=CODE_NO_TEXT,
        )
    content_hash = hashlib.sha256(data).hexdigest()
    warnings: tuple[str, ...] = ()
    if suffix == ".pdf":
        pages, warnings = _pdf_pages(path, data, on_page)
    elif suffix == ".docx":
        from core.docx_text import docx_text

        text, warnings = docx_text(path, data)
        pages = (PageText(None, text),)
    elif suffix in _HTML_SUFFIXES:
        pages = (PageText(None, _html_text(path, data)),)
    else:
        text, warnings = _plain_text(path, data)
        pages = (PageText(None, text),)
    pages = tuple(PageText(p.page, clean_text(p.text)) for p in pages)
    if not any(p.text.strip() for p in pages):
        raise _no_text(path, suffix)
    return ExtractedDocument(path=path, pages=pages, content_hash=content_hash, warnings=warnings)


def iter_files(paths: Iterable[Path], *, skipped: Counter | None = None
               ) -> Iterator[tuple[Path, IngestError | None]]:
    """Expand files and folders into `(file, None)` for each supported file to extract.

    Folders are walked recursively in name order. Inside folders, hidden
    entries (names starting with ".") are skipped, and files of unsupported
    types are skipped but counted by suffix in `skipped` when it is given
    (".png" -> 12; "" for names without one); a path given explicitly is never skipped silently: if it is
    missing, unsupported or unreadable it comes back as `(path, IngestError)`,
    as do folders that cannot be listed. A file reachable twice (through
    symlinks, or given both directly and inside a folder) is yielded once, and
    symlink cycles are walked once.
    """
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    for path in paths:
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            yield path, _not_found(path)
            continue
        except OSError as exc:  # permission on a parent, a symlink loop (ELOOP), ...
            yield path, _os_error(path, exc)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, seen_dirs, seen_files, skipped)
        elif not stat.S_ISREG(st.st_mode):
            yield path, _not_a_file(path)
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            yield path, _unsupported(path)
        elif _first_visit(path, seen_files):
            yield path, _name_error(path)


def _walk(root: Path, seen_dirs: set[str], seen_files: set[str], skipped: Counter | None = None
          ) -> Iterator[tuple[Path, IngestError | None]]:
    """Depth-first, name-ordered walk; an explicit stack so deep trees cannot hit the recursion limit."""
    if not _first_visit(root, seen_dirs):
        return
    listing = _sorted_entries(root)
    if isinstance(listing, IngestError):
        yield root, listing
        return
    stack = [iter(listing)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        entry_path = Path(entry.path)
        supported = entry_path.suffix.lower() in SUPPORTED_SUFFIXES
        try:
            is_dir = entry.is_dir()  # follows symlinks, so linked folders are walked too
            is_file = not is_dir and entry.is_file()
        except OSError as exc:  # e.g. ELOOP from a symlink that points at itself
            if supported:
                yield entry_path, _os_error(entry_path, exc)
            continue
        if is_dir:
            if not _first_visit(entry_path, seen_dirs):
                continue
            listing = _sorted_entries(entry_path)
            if isinstance(listing, IngestError):
                yield entry_path, listing
            else:
                stack.append(iter(listing))
        elif is_file:
            if supported and _first_visit(entry_path, seen_files):
                yield entry_path, _name_error(entry_path)
            elif not supported and skipped is not None and _first_visit(entry_path, seen_files):
                skipped[entry_path.suffix.lower()] += 1
        elif supported and entry.is_symlink():
            # A dangling link named like a document: the user probably expects it.
            yield entry_path, _not_found(entry_path)


def _sorted_entries(folder: Path) -> list[os.DirEntry] | IngestError:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return _not_found(folder)
    except PermissionError:
        return IngestError(
            f"Cannot open the folder {folder}: permission denied. "
            "Allow your user to read it, or remove it from the list.",
            code=CODE_PERMISSION,
        )
    except OSError as exc:
        return _os_error(folder, exc)


def _first_visit(path: Path, seen: set[str]) -> bool:
    """Record `path` by its real location; False if it was recorded already."""
    key = os.path.normcase(os.path.realpath(path))
    if key in seen:
        return False
    seen.add(key)
    return True


# -- reading ----------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """The whole file, once it is known to be a regular, supported file under the size cap."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _not_found(path) from None
    except OSError as exc:
        raise _os_error(path, exc) from exc
    if stat.S_ISDIR(st.st_mode):
        raise _os_error(path, IsADirectoryError())
    # Opening a FIFO would block until someone writes to it, so check first.
    if not stat.S_ISREG(st.st_mode):
        raise _not_a_file(path)
    # Refused before reading: no point in reading 200 MB of a .exe.
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise _unsupported(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise _too_large(path, size)
            # Reading one byte past the cap bounds memory even if the file grows meanwhile.
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        # It existed a moment ago (the stat above): deleted or moved since.
        raise IngestError(
            f"{path} was moved or deleted while it was being read; "
            "add it again from its new location.",
            code=CODE_NOT_FOUND,
        ) from None
    except OSError as exc:
        raise _os_error(path, exc) from exc
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, len(data))
    if len(data) != size:
        raise IngestError(
            f"{path} changed while it was being read ({size} bytes expected, {len(data)} read); "
            "wait until the program writing it has finished, then add it again.",
            code=CODE_CHANGED,
        )
    return data


def _plain_text(path: Path, data: bytes) -> tuple[str, tuple[str, ...]]:
    text = _normalise_newlines(_decode(path, data))
    bad = text.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode("utf-8"))
    if bad > 0:
        return text, (f"{path}: {bad} byte sequence(s) were not valid UTF-8 and show as {_REPLACEMENT}; "
                      "the rest of the text was read as UTF-8.",)
    return text, ()


_REPLACEMENT = "\ufffd"
# Share of a file's non-ASCII characters that may be broken for it still to be
# read as UTF-8 (with U+FFFD for the broken ones) rather than as cp1252.
_MAX_BROKEN_UTF8 = 0.05


def _lenient_utf8(data: bytes) -> str | None:
    """`data` as UTF-8 with U+FFFD for broken sequences, when it is clearly UTF-8 apart from those.

    A UTF-8 file with one bad byte (a part cut by `split -b`, a copy-paste
    accident) would otherwise be read entirely as cp1252, turning every accent
    and every CJK character into mojibake. A cp1252 or latin-1 file almost never
    forms valid multi-byte UTF-8 sequences, so it stays on the cp1252 path.
    """
    text = data.decode("utf-8", errors="replace")
    broken = text.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode("utf-8"))
    valid = len(text) - len(text.encode("ascii", "ignore")) - broken  # non-ASCII characters decoded
    # One broken sequence is allowed in any text that is otherwise UTF-8 (the
    # cut last character of a `split -b` part); more only in proportion.
    allowed = max(1.0, _MAX_BROKEN_UTF8 * (valid + broken))
    return text if valid >= 2 * broken and broken <= allowed else None


def _decode(path: Path, data: bytes) -> str:
    """BOM first, then strict UTF-8, then UTF-8 with a few broken sequences, then cp1252,
    then latin-1 (which cannot fail)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding)
            except UnicodeDecodeError:
                raise IngestError(
                    f"{path} starts with a {encoding.upper()} byte-order mark but is not valid "
                    f"{encoding.upper()} text; re-save it as UTF-8 and add it again.",
                    code=CODE_BINARY,
                ) from None
            _check_not_binary(path, text)
            return text
    # Checked on the bytes so binaries are refused before any decoding work.
    if b"\x00" in data:
        raise _binary(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _lenient_utf8(data)
    if text is None:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            # cp1252 leaves five bytes undefined; latin-1 maps every byte, so
            # it is the last resort (the text may show a stray character).
            text = data.decode("latin-1")
    _check_not_binary(path, text)
    return text


def _check_not_binary(path: Path, text: str) -> None:
    if "\x00" in text:
        raise _binary(path)
    sample = text[:_SNIFF_CHARS]
    if sample and len(_CONTROL_CHARS.findall(sample)) > _MAX_CONTROL_RATIO * len(sample):
        raise _binary(path)


def _normalise_newlines(text: str) -> str:
    # Two linear passes; "\r\n" first so it becomes one newline, not two.
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- PDF --------------------------------------------------------------------


def _pdf_pages(path: Path, data: bytes, on_page: Callable[[int, int], None] | None = None
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
                raise _encrypted(path)
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
        raise _encrypted(path) from exc
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
            text = clean_text(_normalise_newlines(text.replace("\x00", "")))
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

# Compatibility characters are mapped to what they stand for (NFKC) where that
# loses nothing a reader sees: ligatures (U+FB00-FB06), full-width letters and
# digits, math-alphabet letters, Arabic presentation forms, vertical and small
# forms, squared abbreviations. Kept as they are: superscripts, subscripts and
# fractions ("m\u00b2" must not become "m2"), no-break spaces, circled
# numbers, full-width punctuation (a Japanese sentence ends in U+3002/U+FF01),
# the ellipsis, and spacing accents (NFKC turns U+00A8 into a space and a
# combining mark).
_KEEP_TAGS = frozenset({"<super>", "<sub>", "<fraction>", "<noBreak>", "<circle>"})
_KEEP_CHARS = frozenset("\u2026\u2025\u3000")
_COMPAT_RANGES = ((0x00A0, 0x3400), (0xF900, 0x10000), (0x1D400, 0x1D800))


@lru_cache(maxsize=1)
def _compat_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for first, last in _COMPAT_RANGES:
        for cp in range(first, last):
            ch = chr(cp)
            decomposition = unicodedata.decomposition(ch)
            if not decomposition.startswith("<") or ch in _KEEP_CHARS:
                continue
            tag = decomposition.split(">", 1)[0] + ">"
            if tag in _KEEP_TAGS:
                continue
            target = unicodedata.normalize("NFKC", ch)
            if target == ch or target[:1].isspace():
                continue
            if tag == "<wide>" and not target.isalnum():
                continue
            table[cp] = target
    return table


def clean_text(text: str) -> str:
    """`text` with compatibility characters mapped (see `_compat_table`) and composed (NFC).

    Applied to every extracted page before anything indexes it: the stored
    text is what offsets point into, so it must already be the clean one.
    """
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text.translate(_compat_table()))


# Thresholds of `text_problem`, set on the committed corpus and the shared PDF
# test sets: every page flagged there is garbled when compared with poppler's
# text, and none of the clean pages (English, German, Polish, Arabic, Japanese,
# multilingual) comes near them.
_MIN_CHECKED_CHARS = 40
_CHECKED_CHARS = 6000
_MAX_BAD_SHARE = 0.02
_MAX_SPACED_SHARE = 0.5
_MAX_SCRIPT_SWITCH_SHARE = 0.2
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "CJK": "CJK", "HANGUL": "HANGUL",
                  "HALFWIDTH": "CJK", "FULLWIDTH": "LATIN", "IDEOGRAPHIC": "CJK"}


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0]
    return _SCRIPT_GROUPS.get(first, first)


def text_problem(text: str) -> str | None:
    """Why `text` (a page) looks garbled, or None if it looks like text.

    Three signs, each of which clean text of any script stays far from:
    unreadable characters (U+FFFD, unassigned or private-use code points,
    control characters); letters spaced out ("A m e r i c a n", from a PDF that
    places every glyph on its own); and letters that switch script inside a
    word (Greek, Syriac and Bengali in one "word" is a font without a usable
    encoding, read through the wrong table).
    """
    # A page's first few thousand characters tell; the cost stays bounded on huge pages.
    text = text[:_CHECKED_CHARS]
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < _MIN_CHECKED_CHARS:
        return None
    bad = sum(1 for ch in visible if ch == "\ufffd" or unicodedata.category(ch) in ("Cn", "Co", "Cc"))
    if bad > _MAX_BAD_SHARE * len(visible):
        return "unreadable characters"
    tokens = text.split()
    letters_only = [t for t in tokens if t.isalpha()]
    if len(letters_only) >= 20 and sum(len(t) == 1 for t in letters_only) > _MAX_SPACED_SHARE * len(letters_only):
        return "letters spaced out"
    pairs = switches = 0
    previous = ""
    for ch in text:
        if not ch.isalpha():
            previous = ""
            continue
        if unicodedata.category(ch) == "Mn":
            continue  # a combining mark belongs to the letter before it
        script = _script(ch)
        if previous:
            pairs += 1
            switches += script != previous
        previous = script
    if pairs >= _MIN_CHECKED_CHARS and switches > _MAX_SCRIPT_SWITCH_SHARE * pairs:
        return "characters of different scripts mixed inside words"
    return None


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
# Word files are read by `core.docx_text` (body, text boxes, headers, footers,
# footnotes, endnotes and comments, Strict OOXML too).


# -- HTML -------------------------------------------------------------------

# Elements that start a new paragraph or line when a browser renders them.
_HTML_PARAGRAPHS = frozenset(
    "address article aside blockquote caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr main nav ol p pre section summary table ul".split()
)
_HTML_LINES = frozenset("li tr option legend".split())
_HTML_CELLS = frozenset("td th".split())
_HTML_PREFORMATTED = frozenset({"pre", "textarea", "listing", "plaintext", "xmp"})
# Not "head": html.parser builds the tree as written, so with a missing </head>
# the whole body would sit inside it. The title is taken out and put first.
_HTML_DROPPED = frozenset({"script", "style", "noscript", "template", "title"})
_HTML_WHITESPACE = re.compile(r"[ \t\n\r\f]+")
# Preformatted text keeps its spaces and line breaks; they are swapped for
# private-use characters while the page's other whitespace is tidied, then restored.
_PRE_PROTECT = str.maketrans({" ": "\ue000", "\t": "\ue001", "\n": "\ue002"})
_PRE_RESTORE = str.maketrans({"\ue000": " ", "\ue001": "\t", "\ue002": "\n"})


def _html_text(path: Path, data: bytes) -> str:
    from bs4 import BeautifulSoup

    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in data:
        raise _binary(path)
    # Given bytes, BeautifulSoup honours a BOM or <meta charset> before guessing.
    # Its guesser can take a short UTF-8 page for a CJK encoding ("Ünïcödé" read
    # as EUC-KR), so undeclared bytes that are valid UTF-8 are read as UTF-8.
    soup = BeautifulSoup(data, "html.parser", from_encoding=_undeclared_utf8(data))
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    text = _render_html(soup)
    _check_not_binary(path, text)
    lines = [re.sub(r" {2,}", " ", line).strip(" \t") for line in text.split("\n")]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n").translate(_PRE_RESTORE)
    if title and body:
        return f"{title}\n\n{body}"
    return title or body


def _undeclared_utf8(data: bytes) -> str | None:
    """"utf-8" when the page declares no encoding (no BOM, no <meta charset>) and is valid UTF-8."""
    from bs4.dammit import EncodingDetector

    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return None
    if EncodingDetector.find_declared_encoding(data, is_html=True):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "utf-8"


def _render_html(soup) -> str:
    """The visible text, with line breaks where a browser would break blocks.

    One pass over the tree with an explicit stack: editing the soup instead
    (insert_before/replace_with) looks each node up in its parent's children,
    which measured quadratic (12 s for a 4,000-section page), and deep nesting
    from unclosed tags would overflow a recursive walk.
    """
    from bs4 import NavigableString, Tag

    parts: list[str] = []
    stack = [iter(soup.contents)]
    closers: list[tuple[str, bool]] = [("", False)]  # emitted when a level ends; was it preformatted
    preformatted = 0
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            closer, was_pre = closers.pop()
            parts.append(closer)
            preformatted -= was_pre
        elif isinstance(node, Tag):
            name = node.name
            if name in _HTML_DROPPED:
                continue
            if name == "br":
                parts.append("\n")
                continue
            if name in _HTML_PARAGRAPHS:
                parts.append("\n\n")
                closer = "\n\n"
            elif name in _HTML_LINES:
                parts.append("\n")
                closer = "\n"
            else:
                closer = "\t" if name in _HTML_CELLS else ""
            is_pre = name in _HTML_PREFORMATTED
            preformatted += is_pre
            stack.append(iter(node.contents))
            closers.append((closer, is_pre))
        elif type(node) is NavigableString:
            # Exact type: subclasses are comments, doctypes, CDATA and the
            # script/style strings, none of which a browser shows.
            if preformatted:
                parts.append(_normalise_newlines(node).translate(_PRE_PROTECT))
            else:
                parts.append(_HTML_WHITESPACE.sub(" ", node))
    return "".join(parts)


# -- errors -----------------------------------------------------------------


def _not_found(path: Path) -> IngestError:
    return IngestError(
        f"{path} does not exist; check the path, or remove it from the list if it was moved or deleted.",
        code=CODE_NOT_FOUND,
    )


def _name_error(path: Path) -> IngestError | None:
    """An error for a file whose name is not valid UTF-8, else None.

    Linux allows any bytes in a name (Latin-1 names from old archives arrive
    in Python as lone surrogates); the index stores names as UTF-8 text, so such
    a file cannot be recorded until it is renamed.
    """
    try:
        str(path).encode("utf-8")
        return None
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "replace")
        return IngestError(
            f"The name of {shown} is not valid UTF-8 text, so it cannot be indexed. Rename the file "
            "(for example with `convmv -f latin1 -t utf8`, or in a file manager) and add it again.",
            code=CODE_BAD_NAME,
        )


def _not_a_file(path: Path) -> IngestError:
    return IngestError(
        f"{path} is not a regular file (it is a device, pipe or socket); add documents or folders only.",
        code=CODE_NOT_A_FILE,
    )


def _os_error(path: Path, exc: OSError) -> IngestError:
    if isinstance(exc, PermissionError):
        return IngestError(
            f"Cannot read {path}: permission denied. "
            "Allow your user to read it (or copy it somewhere readable) and add it again.",
            code=CODE_PERMISSION,
        )
    if isinstance(exc, IsADirectoryError):
        return IngestError(
            f"{path} is a folder; add the folder itself to ingest the documents inside it.",
            code=CODE_NOT_A_FILE,
        )
    if exc.errno == errno.ELOOP:
        return IngestError(
            f"Cannot read {path}: it is a symbolic link that loops back on itself (or through too many links). "
            "Point the link at a real file or folder, or remove it, and add it again.",
            code=CODE_READ_FAILED,
        )
    reason = exc.strerror or str(exc)
    return IngestError(
        f"Cannot read {path}: {reason}. Check that the drive is connected and the path is valid, then try again.",
        code=CODE_READ_FAILED,
    )


def _too_large(path: Path, size: int) -> IngestError:
    from core.units import format_bytes

    return IngestError(
        f"{path} is {format_bytes(size)}, more than the {format_bytes(MAX_FILE_BYTES)} limit; "
        "split it into smaller files and add those.",
        code=CODE_TOO_LARGE,
    )


def _unsupported(path: Path) -> IngestError:
    kind = f"'{path.suffix}' files are" if path.suffix else "Files without an extension are"
    return IngestError(
        f"Cannot read {path}: {kind} not supported. "
        f"Supported types: {', '.join(SUPPORTED_SUFFIXES)}; convert it to one of these (e.g. PDF or plain text).",
        code=CODE_UNSUPPORTED,
    )


def _binary(path: Path) -> IngestError:
    return IngestError(
        f"{path} holds binary data, not text, despite its '{path.suffix}' extension; "
        "check that it is the file you meant (if it is UTF-16 text without a byte-order mark, re-save it as UTF-8).",
        code=CODE_BINARY,
    )


def _encrypted(path: Path) -> IngestError:
    return IngestError(
        f"{path} is password-protected; open it with its password and save or print an unprotected copy, "
        "then add that copy.",
        code=CODE_ENCRYPTED,
    )


def _no_text(path: Path, suffix: str) -> IngestError:
    if suffix == ".pdf":
        hint = "if it is a scanned PDF, run OCR first (e.g. ocrmypdf) and add the result"
    elif suffix == ".docx":
        hint = "if its content is images of text, run OCR first"
    else:
        hint = "add some text to it or remove it from the list"
    return IngestError(f"{path} contains no text; {hint}.", code=CODE_NO_TEXT)

"""Where a chunk's characters are on its PDF page: a compact map from chunk offsets to pdfium characters.

Chunks are slices of the text extracted from a page (`core.ingest.documents`), and
that text is read from pdfium's characters, which the page view draws with
(`core.pdf_pages`: each character has an index and a box). Extraction keeps,
for every character of a page's text, the pdfium index it came from
(`PageText.char_index`), so a chunk's map is a slice of that list.

`align` pairs two texts character by character instead, for what has no such
list: chunks stored before (by pypdf, which spaced and named characters its
own way: "ﬁ" is one pdfium character and two of ours, a line-end hyphen is
U+0002 in pdfium), looked up on the page at view time (`locate_in_page`), and
a page whose text changed after extraction. It ignores whitespace and
compares pdfium's characters after the same clean-up the extracted text had
(`clean_text`), walks both texts in step and, where they disagree,
re-synchronises on the next run of `_ANCHOR` characters of ours found in
pdfium's text (ahead first, then anywhere: a column read in another order).
It is linear on agreeing text, unlike difflib, which took 0.5 s a page on the
IEEE paper.

A chunk's map is stored with the chunk as runs "offset.index.length;..."
(base 10): chunk offsets `offset .. offset+length-1` sit at pdfium indices
`index ..` in step. A line break costs one run (pdfium's "\\r\\n" is one
"\\n" of ours), so a 900-character chunk needs about 15 runs, ~150 bytes.
`span_ranges` turns a span of the chunk into the pdfium index ranges that
`core.pdf_pages.char_rects` draws.
"""
from __future__ import annotations

from core.ingest.documents import clean_text

_ANCHOR = 8
_CONFIRM = 4

Run = tuple[int, int, int]  # (chunk offset, pdfium index, length)


def _visible(text: str, expand: bool) -> tuple[str, list[int]]:
    """The non-whitespace characters of `text` (each cleaned when `expand`) and where each came from."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in (clean_text(ch) if expand and not ch.isascii() else ch):
            if not c.isspace():
                chars.append(c)
                where.append(i)
    return "".join(chars), where


def align(text: str, pdf_chars: str) -> list[int]:
    """For every character of `text`, the pdfium index of the same character on the page, or -1
    (whitespace, and characters pdfium does not have)."""
    ours, our_pos = _visible(text, expand=False)
    theirs, their_pos = _visible(pdf_chars, expand=True)
    out = [-1] * len(text)
    i = j = 0
    n, m = len(ours), len(theirs)
    while i < n:
        if j < m and ours[i] == theirs[j]:
            out[our_pos[i]] = their_pos[j]
            i += 1
            j += 1
            continue
        if j < m and i + 1 < n and _alike(ours[i + 1:i + 1 + _CONFIRM], theirs[j + 1:j + 1 + _CONFIRM]):
            # One character each side differs and the text goes on alike: the same character
            # spelled differently (pdfium gives U+0002 for a line-end hyphen and for glyphs it
            # cannot name, pypdf "-" and the letter).
            out[our_pos[i]] = their_pos[j]
            i += 1
            j += 1
            continue
        key = ours[i:i + _ANCHOR]
        if len(key) < _ANCHOR:  # the last few characters: too short to look for far away
            at = theirs.find(key, j, j + 2 * _ANCHOR)
        else:
            at = theirs.find(key, j)
            if at < 0:
                at = theirs.find(key)
        if at < 0:
            i += 1  # this character is not on the page as pdfium reads it
            continue
        j = at
    return out


def _alike(a: str, b: str) -> bool:
    """The next characters agree but for at most one (a math font names "," as ";" in one library)."""
    return len(a) == len(b) and len(a) > 0 and sum(x != y for x, y in zip(a, b)) <= 1


def encode(mapping: list[int], start: int, end: int) -> str:
    """The runs of `mapping[start:end]` (a chunk's slice of its page), as stored with the chunk."""
    runs: list[list[int]] = []
    for k in range(start, end):
        index = mapping[k]
        if index < 0:
            continue
        offset = k - start
        if runs and index - offset == runs[-1][1] - runs[-1][0]:
            runs[-1][2] = offset - runs[-1][0] + 1
        else:
            runs.append([offset, index, 1])
    return ";".join(f"{o}.{i}.{n}" for o, i, n in runs)


def decode(stored: str) -> list[Run]:
    """The runs of a stored map ("" gives none)."""
    runs = []
    for part in stored.split(";") if stored else ():
        o, i, n = part.split(".")
        runs.append((int(o), int(i), int(n)))
    return runs


def span_ranges(runs: list[Run], start: int, end: int) -> list[tuple[int, int]]:
    """pdfium index ranges [first, stop) holding chunk characters `start..end`, in chunk order
    (ranges that touch are merged; a gap, even pdfium's own line break, is left out)."""
    out: list[list[int]] = []
    for offset, index, length in runs:
        lo, hi = max(start, offset), min(end, offset + length)
        if hi <= lo:
            continue
        first, stop = index + lo - offset, index + hi - offset
        if out and out[-1][1] == first:
            out[-1][1] = max(out[-1][1], stop)
        else:
            out.append([first, stop])
    return [(a, b) for a, b in out]


def locate_in_page(chunk_text: str, pdf_chars: str) -> str:
    """A map for a chunk stored without one: its text paired with the whole page's characters."""
    mapping = align(chunk_text, pdf_chars)
    return encode(mapping, 0, len(chunk_text))


def mapped_share(stored: str, chunk_text: str) -> float:
    """Share of the chunk's non-whitespace characters that the map places on the page."""
    visible = sum(1 for c in chunk_text if not c.isspace())
    if not visible:
        return 1.0
    covered = 0
    for offset, _index, length in decode(stored):
        covered += sum(1 for c in chunk_text[offset:offset + length] if not c.isspace())
    return min(1.0, covered / visible)


class PdfPageMapper:
    """The pdfium index of every character of one PDF's extracted pages, one page at a time (for ingest).

    A page read by `core.ingest.documents.pdf` carries its index list, which is the
    map. A page without one (its text changed after extraction, which
    `clean_text` should never do) is paired with pdfium's characters by
    `align`: only then is the file opened, after checking it is still the
    bytes that were extracted (`content_hash`); if it changed, or pdfium
    cannot open it, `page` gives None and the chunks are stored without a map
    (the view then looks the text up on the page). pdfium is only asked under
    `PDFIUM_LOCK`.
    """

    def __init__(self, path, content_hash: str):
        self._path = path
        self._content_hash = content_hash
        self._doc = None
        self._opened = False

    def page(self, number: int | None, text: str, char_index: tuple[int, ...] | None = None) -> list[int] | None:
        """The pdfium index of each character of page `number`'s extracted `text` (-1 for none), or None."""
        from core import pdf_pages

        if number is None:
            return None
        if char_index is not None and len(char_index) == len(text):
            return list(char_index)
        doc = self._open()
        if doc is None:
            return None
        try:
            return align(text, pdf_pages.page_chars(doc, number))
        except Exception:  # noqa: BLE001
            return None

    def _open(self):
        import hashlib
        from pathlib import Path

        from core import pdf_pages

        if not self._opened:
            self._opened = True
            try:
                digest = hashlib.sha256()
                with open(self._path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
                if digest.hexdigest() == self._content_hash:  # opened by path: a 200 MB PDF is not held twice
                    self._doc = pdf_pages.open_document(Path(self._path))
            except Exception:  # noqa: BLE001 - no map is a fallback, never a failed ingest
                self._doc = None
        return self._doc

    def close(self) -> None:
        from core import pdf_pages

        if self._doc is not None:
            pdf_pages.close_document(self._doc)
            self._doc = None

"""Sentence segmentation with exact character offsets.

Span quality decides attribution quality, and highlighting needs offsets that
index the original text exactly, so every sentence is returned as
(start, end) into the text it came from, with surrounding whitespace trimmed.

Documents arrive hard-wrapped (PDF lines, Markdown and plain text wrapped at
80 columns): a line break inside a paragraph is not a sentence boundary. The
text is therefore first cut into units by its line structure (`_units`):

- paragraphs: runs of lines between blank lines, where lines wrapped inside a
  paragraph are joined, so a sentence's range may span line breaks (and a
  word hyphenated across a line end: `readable` gives such a span's text with
  the line breaks and hyphens taken out, for embedding and matching);
- lines that are units of their own: Markdown headings, list items (a
  wrapped item keeps its continuation lines), table rows (a tab, or a line
  starting with "|"), lines of fenced code, Markdown link definitions and
  lines of HTML, and short title-like lines
  standing between sentences (a PDF heading such as "3.1 Design", which
  has no blank line around it). A line that ends well before the paragraph's
  wrap width although the next word would have fitted is a deliberate break
  (an address, a list without markers), so it ends its unit too.

pysbd (a rule-based port of the Golden Rules segmenter) then splits each
paragraph or list item into sentences: it handles abbreviations, decimals,
initials and lists without any model download, which NLTK's punkt would
need. pysbd treats a line break as a sentence end, so it is given the unit
with line breaks replaced by spaces (same length, so offsets carry over).
pysbd is slow on huge blocks (its regexes run over the whole input), so any
unit longer than `MAX_BLOCK` is cut at whitespace, which bounds the cost of
pathological inputs such as a 50 MB single-line file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import pysbd

MAX_BLOCK = 4000
# A sentence longer than this is cut at whitespace: nothing useful is
# attributed to (or highlighted as) a 5,000-character "sentence".
MAX_SENTENCE = 600

_NON_WS = re.compile(r"\S")
_LINE = re.compile(r"[^\n]*\n?")
# A blockquote prefix is looked through when classifying a line ("> - item", "> # Title").
_QUOTE = re.compile(r"\s*(?:>\s?)*")
_FENCE = re.compile(r"\s{0,3}(?:```|~~~)")
_MD_HEADING = re.compile(r"\s{0,3}#{1,6}(?:\s|$)")
_SETEXT_RULE = re.compile(r"\s{0,3}(?:=+|-+)\s*$")
# Bullets and enumerators that start a list item; letters only in lower case,
# since "A. Smith" at the start of a wrapped line is more often an initial.
_LIST_ITEM = re.compile(r"\s*(?:[-*+\u2022\u25e6\u25aa\u2023\u25cf\u25a0\u2013]|\d{1,3}[.)]|\(\d{1,3}\)|[a-z][.)]|"
                        r"\([a-z]\)|\([ivx]{1,4}\)|[ivx]{1,4}\.)\s+\S")
_TABLE_ROW = re.compile(r"\s*\|.*\|")
# Markdown link definitions ("[id]: url") and lines of HTML in Markdown
# ("<span class=...>", "<!-- ... -->") are not prose: one unit per line.
_MARKUP_LINE = re.compile(r"\s{0,3}(?:\[[^\]\n]+\]:\s*\S|<[/!A-Za-z][^\n]*>\s*$)")
_NUMBERED_HEADING = re.compile(r"(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,5}\.|[A-Z]\.)\s+[^\W\d_]")
# What ends a sentence at a line end, closing quotes and brackets allowed after it.
_ENDS_SENTENCE = re.compile(r"[.!?:\u2026\u3002\uff01\uff1f\uff61][\"'\u201d\u2019)\]\u300d\u300f\uff09*_]*\s*$")
_SENTENCE_INSIDE = re.compile(r"[.!?][\"'\u201d\u2019)]*\s+[A-Z]|[\u3002\uff01\uff1f].")
# Scripts without case (CJK, Arabic, ...) pack a sentence into few characters.
_CASELESS_HEADING_CHARS = 24
_HEADING_MAX_WORDS = 12
_HEADING_MAX_CHARS = 90
# A line shorter than this share of its paragraph's widest line, although the
# next word would have fitted, was broken on purpose. Characters stand in for
# widths, and proportional PDF fonts vary by ~15% per line, hence the margin.
_HARD_BREAK_SHARE = 0.75
_CONTINUES = (",", ";", "-", "\u00ad", "\u2010", "\u2013", "\u2014")
# Below this width a paragraph is not taken for wrapped prose (verse, short lists).
_MIN_WRAP_WIDTH = 40

# Line-end hyphenation (letter, hyphen, line break, lower-case letter: the
# hyphen goes), a hyphen or dash before a capital or a digit ("Domingo-\nFerrer",
# "737\u2013\n9": it stays, the line break goes), and
# the line breaks (with any blockquote marker) that `readable` takes out of a span.
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])[-\u00ad\u2010]\n[ \t>]*(?=[a-z\u00df-\u00ff])")
_HYPHEN_KEPT = re.compile(r"(?<=[^\W_])([-\u2010\u2013])\n[ \t>]*(?=[^\W_])")
_LINE_BREAK = re.compile(r"[ \t]*\n[ \t>]*")


@dataclass(frozen=True)
class Span:
    """A sentence: `text == source[start:end]`."""

    start: int
    end: int
    text: str


def readable(text: str) -> str:
    """A span's text as one line: wrapped lines joined, line-end hyphenation repaired.

    The span's offsets keep indexing the stored text; this is the text to embed
    and to compare, where "infor-\\nmation" must read as "information".
    """
    if "\n" not in text:
        return text
    return _LINE_BREAK.sub(" ", _HYPHEN_KEPT.sub(r"\1", _HYPHEN_BREAK.sub("", text)))


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


_WHITESPACE_RUN = re.compile(r"\s*")


def _segment(seg: pysbd.Segmenter, text: str) -> list[str]:
    r"""What `seg.segment(text)` returns (a segmenter that does not clean), without a regex per sentence.

    pysbd's `segment` locates each sentence it found in the text again with
    `re.finditer(re.escape(sentence) + r"\s*", text)`: a new pattern per
    sentence. Compiling it costs ~0.5 ms, and the sentence patterns push
    pysbd's own rules out of the `re` module's 512-pattern cache, so those are
    compiled again on the next call: most of the segmenter's time when an
    answer is segmented as it streams (issue 19). Here the same search (first
    occurrence, non-overlapping, trailing whitespace included, ending after the
    previous sentence) is done with `str.find`; the results are identical.
    """
    if seg.clean or seg.doc_type == "pdf" or seg.char_span:  # never here: pysbd's own path
        return seg.segment(text)
    if not text:
        return []
    seg.original_text = text
    out: list[str] = []
    prior_end = 0
    for sent in seg.processor(text).process():
        if not sent:  # an empty pattern matches everywhere: leave that case to the regex, as pysbd does
            matches = ((m.start(), m.end()) for m in _WHITESPACE_RUN.finditer(text))
        else:
            matches = _occurrences(text, sent)
        for start, end in matches:
            if end > prior_end:
                out.append(text[start:end])
                prior_end = end
                break
    return out


def _occurrences(text: str, sent: str) -> Iterator[tuple[int, int]]:
    r"""Non-overlapping matches of `re.escape(sent) + r"\s*"` in `text`, as (start, end)."""
    n = len(text)
    start = text.find(sent)
    while start >= 0:
        end = start + len(sent)
        while end < n and text[end].isspace():
            end += 1
        yield start, end
        start = text.find(sent, end)


class Stopped(Exception):
    """Raised by `iter_sentences` when its `should_stop` callback says so."""


def split_sentences(text: str) -> list[Span]:
    """Split `text` into sentences; each span's offsets index `text` exactly."""
    return list(iter_sentences(text))


# -- units ------------------------------------------------------------------

_BLANK, _TEXT, _HEADING, _ITEM, _ROW, _CODE, _RULE = range(7)
# Kinds that are one unit per line, never joined with the next line.
_SINGLE = frozenset({_HEADING, _ROW, _CODE})


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, without its newline; one pass, no copy of the text."""
    pos, n = 0, len(text)
    while pos < n:
        nl = text.find("\n", pos)
        end = n if nl < 0 else nl
        yield pos, end
        pos = end + 1


def _kind(line: str) -> int:
    body = line[_QUOTE.match(line).end():] if line.lstrip().startswith(">") else line
    if not body.strip():
        return _BLANK
    if _MD_HEADING.match(body):
        return _HEADING
    if "\t" in body or _TABLE_ROW.match(body) or _MARKUP_LINE.match(body):
        return _ROW
    if _LIST_ITEM.match(body):
        return _ITEM
    if not any(ch.isalnum() for ch in body):
        return _RULE  # "---", "* * *", a lone ">" or "}": no words to attribute
    return _TEXT


def _title_like(line: str) -> bool:
    """A short line that reads as a heading: numbered, in capitals, or in title case."""
    line = line.strip()
    words = line.split()
    if len(words) > _HEADING_MAX_WORDS or len(line) > _HEADING_MAX_CHARS or line[-1] in ",;-\u2010\u00ad":
        return False
    if _NUMBERED_HEADING.match(line):
        return True
    if _SENTENCE_INSIDE.search(line):
        return False  # "Stop. Look." is two sentences, whatever its case
    letters = [ch for ch in line if ch.isalpha()]
    if not letters:
        return len(line) <= 12  # a page number or a date on its own line
    if not any(ch.isupper() or ch.islower() for ch in letters):
        return len(line) <= _CASELESS_HEADING_CHARS  # CJK, Arabic, ...: no case to go by, only length
    if not any(ch.islower() for ch in letters):
        return len(letters) > 1 or len(words) == 1
    if not (letters[0].isupper() or not letters[0].islower()):
        return False
    long_words = [w for w in words if sum(ch.isalpha() for ch in w) >= 4]
    if not long_words:
        return len(words) <= 3
    return sum(w.lstrip("(\"'\u201c")[:1].isupper() for w in long_words) / len(long_words) >= 0.6


def _units(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, split_further) for each unit: paragraphs and list items are split by pysbd,
    headings, table rows and code lines are not."""
    return _group(text, _lines(text))


def _group(text: str, lines: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int, bool]]:
    """Lines grouped into units, one paragraph of lookahead at a time (memory stays bounded)."""
    in_fence = False
    para: list[tuple[int, int, int]] = []  # (start, end, kind) of the open paragraph's lines
    prev_ends_sentence = True  # does the text before the current line end a sentence (or a unit)?

    def flush() -> Iterator[tuple[int, int, bool]]:
        if para:
            yield from _paragraph(text, para)
            para.clear()

    pending = next(lines, None)
    while pending is not None:
        start, end = pending
        pending = next(lines, None)
        line = text[start:end]
        if _FENCE.match(line):  # the fence itself ("```rust") holds nothing to attribute
            yield from flush()
            in_fence = not in_fence
            prev_ends_sentence = True
            continue
        kind = _CODE if in_fence else _kind(line)
        if kind == _BLANK:
            yield from flush()
            prev_ends_sentence = True
            continue
        if kind == _RULE:
            if _SETEXT_RULE.match(line) and len(para) == 1 and para[0][2] == _TEXT:
                s, e, _ = para.pop()
                yield s, e, False  # "Title\n=====": the line above is a heading
            yield from flush()
            prev_ends_sentence = True
            continue
        if kind == _TEXT and prev_ends_sentence and end - start <= _HEADING_MAX_CHARS and _title_like(line):
            nxt = text[pending[0]:pending[1]].lstrip(" \t>") if pending is not None else ""
            # A continuation starts in lower case; a heading is followed by a new sentence.
            if not nxt[:1].islower():
                kind = _HEADING
        if kind in _SINGLE:
            yield from flush()
            yield start, end, False
            prev_ends_sentence = True
            continue
        if kind == _ITEM:
            yield from flush()
        para.append((start, end, kind))
        prev_ends_sentence = bool(_ENDS_SENTENCE.search(line))
        # A paragraph without blank lines can run for megabytes (a text file
        # of single-spaced lines): hand it on in parts, at a sentence end when
        # there is one, so memory stays bounded and a Cancel is seen.
        if end - para[0][0] > MAX_BLOCK and (prev_ends_sentence or end - para[0][0] > 2 * MAX_BLOCK):
            yield from flush()
    yield from flush()


def _paragraph(text: str, lines: list[tuple[int, int, int]]) -> Iterator[tuple[int, int, bool]]:
    """A run of text lines (a list item first, perhaps) as units, cut where a line was broken on purpose."""
    width = max(e - s for s, e, _ in lines)
    wrapped = width >= _MIN_WRAP_WIDTH
    unit_start = lines[0][0]
    for i, (start, end, _kind_) in enumerate(lines[:-1]):
        if not wrapped:
            continue
        nxt_start, nxt_end, _ = lines[i + 1]
        line = text[start:end].rstrip()
        next_word = text[nxt_start:nxt_end].split(None, 1)
        fits = len(line) + 1 + (len(next_word[0]) if next_word else 0) <= _HARD_BREAK_SHARE * width
        # A line ending in a comma or a hyphen, or followed by a lower-case word, goes on.
        if fits and next_word and not line.endswith(_CONTINUES) and not next_word[0][:1].islower():
            yield unit_start, end, True
            unit_start = nxt_start
    yield unit_start, lines[-1][1], True


# -- sentences --------------------------------------------------------------


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    m = _NON_WS.search(text, start, end)
    if m is None:
        return None
    start = m.start()
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _bounded(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        yield start, cut
        start = cut
    yield start, end


def iter_sentences(text: str, should_stop: Callable[[], bool] | None = None) -> Iterator[Span]:
    """Sentences of `text` in order, produced unit by unit.

    Lazy so that a huge document is segmented, embedded and written in parts
    with bounded memory; `should_stop` is checked between units so a Cancel
    interrupts even a single 50 MB line.
    """
    seg = _segmenter()
    for u_start, u_end, split in _units(text):
        for b_start, b_end in _bounded(text, u_start, u_end, MAX_BLOCK):
            if should_stop is not None and should_stop():
                raise Stopped()
            trimmed = _trimmed(text, b_start, b_end)
            if trimmed is None:
                continue
            b_start, b_end = trimmed
            if not split:
                yield from _spans(text, b_start, b_end)
                continue
            # Same length as the block, so positions in it are positions in `text`.
            block = text[b_start:b_end].replace("\n", " ")
            # pysbd returns the pieces in order; locate each one from a cursor so
            # repeated sentences get their own offsets.
            cursor = 0
            for piece in _segment(seg, block):
                piece = piece.strip()
                if not piece:
                    continue
                found = block.find(piece, cursor)
                if found < 0:  # pysbd altered the text; fall back to the rest of the block
                    found = cursor
                    piece = block[cursor:]
                yield from _spans(text, b_start + found, b_start + found + len(piece))
                cursor = found + len(piece)
            if cursor < len(block):
                yield from _spans(text, b_start + cursor, b_end)


def _spans(text: str, start: int, end: int) -> Iterator[Span]:
    for s, e in _bounded(text, start, end, MAX_SENTENCE):
        t = _trimmed(text, s, e)
        if t:
            yield Span(t[0], t[1], text[t[0]:t[1]])

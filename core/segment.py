"""Sentence segmentation with exact character offsets.

Span quality decides attribution quality, and highlighting needs offsets that
index the original text exactly, so every sentence is returned as
(start, end) into the text it came from, with surrounding whitespace trimmed.

pysbd (a rule-based port of the Golden Rules segmenter) does the splitting: it
handles abbreviations, decimals, initials and lists without any model download,
which NLTK's punkt would need. pysbd is slow on huge blocks (its regexes run
over the whole input), so the text is first cut at line breaks (sentences in
documents rarely cross a blank line, and a list item per line is a sentence),
and any block longer than `MAX_BLOCK` is cut at whitespace, which bounds the
cost of pathological inputs such as a 50 MB single-line file.
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

_BLOCK_BREAK = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*+•]|\d+[.)]|#{1,6})\s)")
_NON_WS = re.compile(r"\S")


@dataclass(frozen=True)
class Span:
    """A sentence: `text == source[start:end]`."""

    start: int
    end: int
    text: str


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    pos = 0
    for m in _BLOCK_BREAK.finditer(text):
        yield pos, m.start()
        pos = m.end()
    yield pos, len(text)


def _blocks(text: str) -> Iterator[tuple[int, int]]:
    """Cut text at paragraph breaks and list items, then bound the block size."""
    for start, end in _paragraphs(text):
        while end - start > MAX_BLOCK:
            cut = text.rfind(" ", start + MAX_BLOCK // 2, start + MAX_BLOCK)
            cut = cut if cut > start else start + MAX_BLOCK
            yield start, cut
            start = cut
        yield start, end


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    m = _NON_WS.search(text, start, end)
    if m is None:
        return None
    start = m.start()
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _bounded(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    while end - start > MAX_SENTENCE:
        cut = text.rfind(" ", start + MAX_SENTENCE // 2, start + MAX_SENTENCE)
        cut = cut if cut > start else start + MAX_SENTENCE
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


class Stopped(Exception):
    """Raised by `iter_sentences` when its `should_stop` callback says so."""


def split_sentences(text: str) -> list[Span]:
    """Split `text` into sentences; each span's offsets index `text` exactly."""
    return list(iter_sentences(text))


def iter_sentences(text: str, should_stop: Callable[[], bool] | None = None) -> Iterator[Span]:
    """Sentences of `text` in order, produced block by block.

    Lazy so that a huge document is segmented, embedded and written in parts
    with bounded memory; `should_stop` is checked between blocks so a Cancel
    interrupts even a single 50 MB line.
    """
    seg = _segmenter()
    for b_start, b_end in _blocks(text):
        if should_stop is not None and should_stop():
            raise Stopped()
        trimmed = _trimmed(text, b_start, b_end)
        if trimmed is None:
            continue
        b_start, b_end = trimmed
        block = text[b_start:b_end]
        # pysbd returns the pieces in order; locate each one from a cursor so
        # repeated sentences get their own offsets.
        cursor = 0
        for piece in seg.segment(block):
            piece = piece.strip()
            if not piece:
                continue
            found = block.find(piece, cursor)
            if found < 0:  # pysbd altered the text; fall back to the rest of the block
                found = cursor
                piece = block[cursor:]
            s, e = b_start + found, b_start + found + len(piece)
            cursor = found + len(piece)
            for ps, pe in _bounded(text, s, e):
                t = _trimmed(text, ps, pe)
                if t:
                    yield Span(t[0], t[1], text[t[0]:t[1]])
        if cursor < len(block):
            rest = _trimmed(text, b_start + cursor, b_end)
            if rest:
                yield Span(rest[0], rest[1], text[rest[0]:rest[1]])

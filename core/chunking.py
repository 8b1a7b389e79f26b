"""Chunking on sentence boundaries, keeping every sentence's exact offsets.

A chunk is a contiguous slice of one page's text that starts and ends on
sentence boundaries, so `chunk.text == page_text[chunk.start:chunk.end]` and
each of its sentences is a slice of `chunk.text`. Highlighting in the GUI and
the spans in `--json` output rely on that exactness.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from core.segment import Span, split_sentences


@dataclass(frozen=True)
class ChunkSentence:
    start: int  # offsets into the chunk's text
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    index: int  # position within the document
    page: int | None
    text: str
    sentences: tuple[ChunkSentence, ...]


def chunk_page(text: str, page: int | None, *, target_chars: int, overlap_sentences: int,
               first_index: int = 0) -> list[Chunk]:
    """Group a page's sentences into chunks of about `target_chars` characters.

    Consecutive chunks share `overlap_sentences` sentences so that a statement
    spanning a chunk boundary is still retrieved whole in one of them.
    """
    spans = split_sentences(text)
    return list(_group(text, spans, page, target_chars, overlap_sentences, first_index))


def _group(text: str, spans: list[Span], page: int | None, target: int, overlap: int,
           first_index: int) -> Iterable[Chunk]:
    index, i = first_index, 0
    while i < len(spans):
        j = i + 1
        # Grow until the next sentence would push the chunk past the target.
        while j < len(spans) and spans[j].end - spans[i].start <= target:
            j += 1
        start, end = spans[i].start, spans[j - 1].end
        sentences = tuple(ChunkSentence(s.start - start, s.end - start, s.text) for s in spans[i:j])
        yield Chunk(index, page, text[start:end], sentences)
        index += 1
        if j >= len(spans):
            break
        # Step back for overlap, but always move forward by at least one sentence.
        i = max(j - overlap, i + 1)


def document_key(source: str) -> str:
    """Stable id of a document: a hash of its source path."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def chunk_id(doc_key: str, content_hash: str, index: int) -> str:
    """Chunk ids derive from the file's content hash: a changed file gets new ids."""
    return f"{doc_key}-{content_hash[:12]}-{index:05d}"

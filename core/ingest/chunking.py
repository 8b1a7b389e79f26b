"""Chunking on sentence boundaries, keeping every sentence's exact offsets.

A chunk is a contiguous slice of one page's text that starts and ends on
sentence boundaries, so `chunk.text == page_text[chunk.start:chunk.end]` and
each of its sentences is a slice of `chunk.text`. Highlighting in the GUI and
the spans in `--json` output rely on that exactness.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator

from core.ingest.segment import Span, iter_sentences


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
    start: int = 0  # offset of `text` in its page's text (where a page map puts its characters)


def chunk_page(text: str, page: int | None, *, target_chars: int, overlap_sentences: int,
               first_index: int = 0) -> list[Chunk]:
    """Group a page's sentences into chunks of about `target_chars` characters.

    Consecutive chunks share `overlap_sentences` sentences so that a statement
    spanning a chunk boundary is still retrieved whole in one of them.
    """
    return list(iter_chunks(text, page, target_chars=target_chars, overlap_sentences=overlap_sentences,
                            first_index=first_index))


def iter_chunks(text: str, page: int | None, *, target_chars: int, overlap_sentences: int, first_index: int = 0,
                should_stop: Callable[[], bool] | None = None) -> Iterator[Chunk]:
    """`chunk_page`, lazily: only a chunk's worth of sentences is held at a time."""
    spans = iter_sentences(text, should_stop)
    buf: list[Span] = []
    exhausted = False

    def fill(n: int) -> None:
        nonlocal exhausted
        while len(buf) < n and not exhausted:
            nxt = next(spans, None)
            if nxt is None:
                exhausted = True
            else:
                buf.append(nxt)

    index = first_index
    fill(1)
    while buf:
        j = 1
        fill(2)
        # Grow until the next sentence would push the chunk past the target.
        while j < len(buf) and buf[j].end - buf[0].start <= target_chars:
            j += 1
            fill(j + 1)
        start, end = buf[0].start, buf[j - 1].end
        yield Chunk(index, page, text[start:end],
                    tuple(ChunkSentence(sp.start - start, sp.end - start, sp.text) for sp in buf[:j]), start)
        index += 1
        if j >= len(buf) and exhausted:
            break
        # Step back for overlap, but always move forward by at least one sentence.
        del buf[:max(j - overlap_sentences, 1)]
        fill(1)


def document_key(source: str) -> str:
    """Stable id of a document: a hash of its source path."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def chunk_id(doc_key: str, version: str, index: int) -> str:
    """A chunk's id: its document, the write it belongs to, its position.

    Ingest passes the write's version (`core.ingest.store.new_version`), so every
    write of a document gets new ids and is stored beside the version it
    replaces until it commits. (Ids stored by earlier versions, and the
    benchmarks' unversioned writes, carry the content hash there instead.)
    """
    return f"{doc_key}-{version[:12]}-{index:05d}"

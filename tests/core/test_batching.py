"""Streamed text handed on per batch (`core.answer.batching`) and the segmenter's faster search:
nothing lost, nothing reordered, the same sentences as before."""
from __future__ import annotations

import asyncio

from core.answer.batching import TextBatcher
from core.ingest import segment
from core.events import StatusChanged

ANSWER = ("To add documents, click Add files [1]. Sourcelight reads PDF files, e.g. reports. "
          "Mr. Smith wrote 3.5 pages on Jan. 3. Is that all? No! The moon is made of cheese.")


def pieces(text: str, size: int = 7) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


async def test_batches_keep_every_piece_in_order_with_events_in_place():
    out: list = []

    async def deliver(text: str) -> None:
        out.append(text)
        await asyncio.sleep(0)  # a delivery that yields (the pipeline's may wait for the evidence pool)

    batcher = TextBatcher(deliver, out.append)
    status = StatusChanged("tool_call", "Searching...")
    for k, piece in enumerate(pieces(ANSWER)):
        batcher.add(piece)
        if k == 5:
            batcher.add_event(status)
        await asyncio.sleep(0)
    await batcher.close()
    at = out.index(status)
    assert "".join(out[:at]) == "".join(pieces(ANSWER)[:6]) and "".join(out[at + 1:]) == "".join(pieces(ANSWER)[6:])
    assert batcher.batches < len(pieces(ANSWER))  # batched, not one delivery per piece


async def test_a_stopped_stream_hands_back_what_was_not_delivered():
    delivered: list[str] = []

    async def deliver(text: str) -> None:
        delivered.append(text)

    batcher = TextBatcher(deliver, lambda e: None, interval_s=3600)  # only the leading edge is delivered
    for piece in pieces(ANSWER):
        batcher.add(piece)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    batcher.cancel()
    rest, events = batcher.take()
    assert "".join(delivered) + rest == ANSWER and events == []


def test_segmenting_without_a_regex_per_sentence_gives_pysbds_own_result():
    seg = segment._segmenter()
    texts = [ANSWER, "", " ", "Hello.  Hello.  Hello. ", "U.S.A. is big. U.S. too.", "e.g. this and i.e. that... ok?!",
             "1. one 2. two", "Same. Same. Same.", "(Paren.) 'Quoted.' Done"]
    for text in texts:
        assert segment._segment(seg, text) == seg.segment(text), text

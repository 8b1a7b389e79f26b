"""A scripted LLM backend that delivers given text pieces at a fixed rate.

Benchmarks need a backend whose speed is known exactly: `attribution` streams
an answer at a model-like pace, and the GUI's `stream` bench delivers 2,000
tokens/s into the window. Piece k is due at `t0 + k / tokens_per_s` on the
wall clock (not after a fixed sleep each), so a slow consumer or a coarse
timer does not lower the delivered rate. Each wake-up hands over exactly the
pieces that are due, then sleeps at least 1 ms: qasync rounds timer delays
down to whole milliseconds, so a shorter sleep would return at once and a
2,000 tokens/s script would run as fast as the loop allows. When behind
schedule it still yields to the loop between pieces, as a network stream
does: a client that handed over a whole backlog in one step would turn any
slowdown into one long stall (the pipeline and the GUI bridge do not yield
inside a burst). `tokens_per_s=None` delivers everything at once, yielding
between pieces, like a burst from a fast server.

It implements the `LLMBackend` protocol and records when each piece was
handed over (`sent_at`), so a bench can time first paint per token or "after
the last token" from the source.
"""
from __future__ import annotations

import asyncio
import random
import re
import time
from typing import AsyncIterator, Sequence

from core.llm.base import ChatMessage, StreamChunk

_PIECE = re.compile(r"\s*\S+")


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces with their leading whitespace (joined they give `text` back, minus trailing space)."""
    pieces = _PIECE.findall(text)
    rest = text[sum(map(len, pieces)):]
    if rest and pieces:
        pieces[-1] += rest
    return pieces


class PacedBackend:
    """Replays `pieces` at `tokens_per_s` (None: a burst, yielding to the loop between pieces).

    `pieces` and `tokens_per_s` may be changed between questions. After a
    stream, `sent_at[i]` is the perf_counter time piece i was handed over.
    """

    def __init__(self, pieces: Sequence[str] = (), tokens_per_s: float | None = None,
                 chunk_tokens: tuple[int, int] | None = None, seed: int = 0):
        self.pieces: list[str] = list(pieces)
        self.tokens_per_s = tokens_per_s
        # (least, most) pieces per delivered chunk, as fast servers send several
        # tokens per network read; None: one piece per chunk.
        self.chunk_tokens = chunk_tokens
        self.seed = seed
        self.sent_at: list[float] = []
        self.calls = 0
        self.closed = False

    @property
    def description(self) -> str:
        rate = "burst" if not self.tokens_per_s else f"{self.tokens_per_s:g} tokens/s"
        return f"scripted benchmark backend ({rate})"

    @property
    def first_piece_at(self) -> float | None:
        return self.sent_at[0] if self.sent_at else None

    @property
    def last_piece_at(self) -> float | None:
        """When the last piece was handed over (None until the whole script has been)."""
        return self.sent_at[-1] if self.sent_at and len(self.sent_at) == len(self.pieces) else None

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        self.calls += 1
        pieces, rate = list(self.pieces), self.tokens_per_s
        sent = self.sent_at = []
        start = time.perf_counter()
        i, n = 0, len(pieces)
        if rate and self.chunk_tokens:
            async for chunk in self._chunked(pieces, rate, start, sent):
                yield chunk
            i = n
        while i < n:
            now = time.perf_counter()
            if rate:
                due = min(n, int((now - start) * rate) + 1)  # piece k is due at start + k / rate
                while i < due:
                    sent.append(time.perf_counter())
                    yield StreamChunk(text=pieces[i])
                    i += 1
                    if i < due:
                        await asyncio.sleep(0)  # behind schedule: still one loop turn per piece
                if i < n:
                    await asyncio.sleep(max(0.001, start + i / rate - time.perf_counter()))
            else:
                sent.append(now)
                yield StreamChunk(text=pieces[i])
                i += 1
                await asyncio.sleep(0)
        yield StreamChunk(finish_reason="stop", prompt_tokens=sum(len(m.content) for m in messages) // 4,
                          completion_tokens=n)

    async def _chunked(self, pieces: list[str], rate: float, start: float, sent: list[float]):
        """Pieces in chunks of a seeded random size; a chunk is handed over when its last piece is due."""
        rng = random.Random(self.seed)
        least, most = self.chunk_tokens
        i, n = 0, len(pieces)
        while i < n:
            j = min(n, i + rng.randint(least, most))
            wait = start + (j - 1) / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            # Behind schedule, chunks follow each other without a loop turn between them, as
            # they do when one socket read holds several server-sent events.
            now = time.perf_counter()
            sent.extend([now] * (j - i))
            yield StreamChunk(text="".join(pieces[i:j]))
            i = j

    async def check(self) -> str:
        return "scripted benchmark backend ready"

    async def aclose(self) -> None:
        self.closed = True

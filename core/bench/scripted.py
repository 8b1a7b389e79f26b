"""A scripted LLM backend that delivers given text pieces at a fixed rate.

Benchmarks need a backend whose speed is known exactly: `attribution` streams
an answer at a model-like pace, and the GUI's `stream` bench delivers 2,000
tokens/s into the window. Pieces are due at `t0 + i / tokens_per_s` on the
wall clock (not after a fixed sleep each), so a slow consumer or a coarse
timer does not lower the delivered rate: when the producer falls behind, the
pieces already due follow each other with only a `sleep(0)` between them. `tokens_per_s=None` delivers
everything at once (yielding to the loop between pieces, like a burst from
a fast server).

It implements the `LLMBackend` protocol and records when the last piece was
handed over, so a bench can time "after the last token" from the source.
"""
from __future__ import annotations

import asyncio
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
    """Replays `pieces` at `tokens_per_s` (None: as fast as the loop allows)."""

    def __init__(self, pieces: Sequence[str] = (), tokens_per_s: float | None = None):
        self.pieces = list(pieces)
        self.tokens_per_s = tokens_per_s
        self.last_piece_at: float | None = None  # perf_counter when the last piece was yielded
        self.first_piece_at: float | None = None
        self.calls: list[list[ChatMessage]] = []

    @property
    def description(self) -> str:
        rate = "burst" if not self.tokens_per_s else f"{self.tokens_per_s:g} tokens/s"
        return f"scripted benchmark backend ({rate})"

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        self.calls.append(list(messages))
        self.first_piece_at = self.last_piece_at = None
        start = time.perf_counter()
        rate = self.tokens_per_s
        n = len(self.pieces)
        for i, piece in enumerate(self.pieces):
            delay = start + i / rate - time.perf_counter() if rate else 0.0
            # Even when behind schedule, hand the loop back once per piece, as a
            # network stream does: a catch-up burst must not starve the event loop.
            await asyncio.sleep(max(0.0, delay))
            now = time.perf_counter()
            if i == 0:
                self.first_piece_at = now
            if i == n - 1:
                self.last_piece_at = now
            yield StreamChunk(text=piece)
        yield StreamChunk(finish_reason="stop", prompt_tokens=sum(len(m.content) for m in messages) // 4,
                          completion_tokens=n)

    async def check(self) -> str:
        return "scripted benchmark backend ready"

    async def aclose(self) -> None:
        return None

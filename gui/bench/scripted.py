"""Scripted stand-ins for the `stream` bench: a paced backend, an engine-like object, Markdown answers.

What is scripted and what is real (the bench prints the same list):

- real: `gui.app.build` (the `MainWindow` and `Controller`), `Controller.ask`,
  `core.pipeline.AnswerPipeline` / `AnswerRun` (events, `SentenceStream`
  sentence closing on the loop, the attribution worker thread), the
  `AnswerBridge` per-frame batching, `AnswerCard` / `AnswerView` streaming
  and the Markdown render when an answer ends, the Sources panel;
- scripted: the LLM (`PacedStreamBackend`, below), retrieval (four fixed
  generated chunks), the evidence pool and the attributor (constant-time
  results: every fourth sentence "unsupported", so the history carries real
  highlight selections). No embedding model, Chroma or BM25 runs: they would
  compete for the two cores and measure the engine, not the window.

`PacedStreamBackend` implements `core.llm.base.LLMBackend`. It differs from
`core.bench.scripted.PacedBackend` in two ways the window bench needs:
qasync rounds timer delays down to whole milliseconds (`startTimer(int(ms))`),
so a sub-millisecond `sleep` there returns at once and a 2,000 tokens/s
script would run as fast as the loop allows; here every wake-up hands over
exactly the pieces that are due and then sleeps at least 1 ms. And it records
when each piece was handed over, so the bench can time first paint per token. Like `PacedBackend`, it yields
to the loop between pieces when behind schedule (a client that hands over a
whole buffered backlog in one step would turn any slowdown into one long
stall: the pipeline and the bridge do not yield inside a burst).
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import AsyncIterator, Sequence

from core.bench.corpus import SentenceGenerator
from core.bench.scripted import split_tokens
from core.llm.base import ChatMessage, StreamChunk

__all__ = ["PacedStreamBackend", "ScriptedEngine", "markdown_answer", "history_answers", "split_tokens"]


class PacedStreamBackend:
    """Replays `pieces` at `tokens_per_s` pieces per second (None: a burst, yielding to the loop between pieces).

    Set `pieces` / `tokens_per_s` before each question. After a stream,
    `sent_at[i]` is the perf_counter time piece i was handed over.
    """

    def __init__(self, pieces: Sequence[str] = (), tokens_per_s: float | None = None):
        self.pieces: list[str] = list(pieces)
        self.tokens_per_s = tokens_per_s
        self.sent_at: list[float] = []
        self.calls = 0
        self.closed = False

    @property
    def description(self) -> str:
        rate = "burst" if not self.tokens_per_s else f"{self.tokens_per_s:g} tokens/s"
        return f"scripted benchmark backend ({rate})"

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        self.calls += 1
        pieces, rate = list(self.pieces), self.tokens_per_s
        sent = self.sent_at = []
        start = time.perf_counter()
        i, n = 0, len(pieces)
        while i < n:
            now = time.perf_counter()
            if rate:
                due = min(n, int((now - start) * rate) + 1)  # piece k is due at start + k / rate
                while i < due:
                    sent.append(time.perf_counter())
                    yield StreamChunk(text=pieces[i])
                    i += 1
                    if i < due:
                        # Behind schedule: hand the loop back once per piece, as core's PacedBackend does,
                        # so a catch-up burst is paced by the consumer instead of running as one callback.
                        await asyncio.sleep(0)
                if i < n:
                    # qasync truncates timer delays to whole ms; never ask for less than 1 ms (no spinning).
                    await asyncio.sleep(max(0.001, start + i / rate - time.perf_counter()))
            else:
                sent.append(now)
                yield StreamChunk(text=pieces[i])
                i += 1
                await asyncio.sleep(0)
        yield StreamChunk(finish_reason="stop", prompt_tokens=sum(len(m.content) for m in messages) // 4,
                          completion_tokens=n)

    async def check(self) -> str:
        return "scripted benchmark backend ready"

    async def aclose(self) -> None:
        self.closed = True


class _ScriptedAttributor:
    """Constant-time attribution results in the real `Attribution` shape (see the module docstring)."""

    def __init__(self, chunks):
        self._chunks = chunks
        self.calls = 0

    def attribute(self, claim: str, pool):
        from core.attribution import Attribution
        from core.events import SupportSpan

        self.calls += 1
        chunk = self._chunks[self.calls % len(self._chunks)]
        end = min(len(chunk.text), 120)
        span = SupportSpan(chunk.id, 0, end, chunk.text[:end], 0.8)
        supported = self.calls % 4 != 0
        return Attribution(spans=(span,), support=0.8 if supported else 0.2, supported=supported)


class ScriptedEngine:
    """What the controller needs of `core.engine.Engine`, over the real `AnswerPipeline`."""

    def __init__(self, settings, backend: PacedStreamBackend, seed: int = 5):
        from core.events import RetrievedChunk
        from core.pipeline import AnswerPipeline

        gen = SentenceGenerator(seed + 1000)
        self.settings = settings
        self.chunks = [RetrievedChunk(id=f"bench-chunk-{k}", source=f"/bench/document-{k}.md", page=None,
                                      text=gen.paragraph(8, ("bench",)), score=0.9 - 0.1 * k)
                       for k in range(4)]
        self.attributor = _ScriptedAttributor(self.chunks)
        self.pipeline = AnswerPipeline(retrieve=lambda _q, _k: list(self.chunks), load_evidence=lambda _c: None,
                                       attributor=self.attributor, backend=backend, top_k=4,
                                       max_tokens=100_000, temperature=0.0, ready=None)
        self.loaded = False

    @property
    def backend(self):
        return self.pipeline.backend

    def set_backend(self, backend):
        old, self.pipeline.backend = self.pipeline.backend, backend
        return old

    def apply_settings(self, settings) -> None:
        self.settings = settings

    def load(self, status=None) -> None:
        self.loaded = True
        if status is not None:
            status("Ready")

    def documents(self) -> list:
        return []

    def ask(self, question: str, history=()):
        return self.pipeline.ask(question, history)

    async def aclose(self) -> None:
        self.pipeline.close()
        await self.backend.aclose()


# -- text ------------------------------------------------------------------------

def _paragraph_tokens(gen: SentenceGenerator, tokens: int, terms) -> str:
    """Sentences joined with spaces (one Markdown paragraph, no line break) until `tokens` pieces."""
    out: list[str] = []
    count = 0
    while count < tokens:
        s = gen.sentence(terms)
        out.append(s)
        count += len(split_tokens(s))
    text = " ".join(out)
    return "".join(split_tokens(text)[:tokens]).strip()


def _block(gen: SentenceGenerator, rng: random.Random, terms, k: int) -> str:
    """One Markdown block of a few dozen tokens: a heading, list, numbered list, quote, code or table."""
    kind = k % 6
    if kind == 0:
        return f"## {gen.noun().capitalize()} and the {rng.choice(terms)} {gen.noun()}"
    if kind == 1:
        return "\n".join(f"- **{gen.noun()}**: {gen.sentence(terms)}" for _ in range(3))
    if kind == 2:
        return "\n".join(f"{j}. {gen.sentence(terms)} See `{gen.noun()}_{j}` [{j}]." for j in range(1, 4))
    if kind == 3:
        return "> " + gen.sentence(terms) + " *" + gen.sentence(terms) + "*"
    if kind == 4:
        lines = [f"def {gen.noun()}_{j}(x):\n    return x * {rng.randint(2, 99)}  # {gen.noun()}" for j in range(2)]
        return "```python\n" + "\n".join(lines) + "\n```"
    rows = "\n".join(f"| {gen.noun()} | {rng.randint(1, 999)} | {rng.choice(terms)} |" for _ in range(3))
    return "| item | value | term |\n|---|---|---|\n" + rows


def markdown_answer(tokens: int, seed: int, long_paragraph: int = 0) -> str:
    """A Markdown answer of about `tokens` pieces; with `long_paragraph` > 0 it holds one paragraph that long.

    The long paragraph sits in the middle, after Markdown blocks and short
    paragraphs, so the stream exercises structure before and after it.
    """
    gen = SentenceGenerator(seed)
    rng = random.Random(seed)
    terms = tuple(gen.topic_term() for _ in range(3))
    long_paragraph = min(long_paragraph, tokens)
    rest = tokens - long_paragraph

    def filler(budget: int, k0: int) -> list[str]:
        parts, used, k = [], 0, k0
        while used < budget:
            block = _block(gen, rng, terms, k) if k % 2 == 0 else _paragraph_tokens(
                gen, min(budget - used, rng.randint(40, 120)), terms)
            n = len(split_tokens(block))
            if used + n > budget and k % 2 == 0:  # a short paragraph fills the end exactly
                block, n = _paragraph_tokens(gen, budget - used, terms), budget - used
            parts.append(block)
            used += n
            k += 1
        return parts

    parts = filler(rest // 2, 0)
    if long_paragraph:
        parts.append(_paragraph_tokens(gen, long_paragraph, terms))
    parts += filler(rest - rest // 2, 1)
    return "\n\n".join(p for p in parts if p)


def history_answers(total_tokens: int, seed: int, per_answer: int = 2000) -> list[str]:
    """Earlier answers totalling `total_tokens` pieces (the conversation's history)."""
    out, left, k = [], total_tokens, 0
    while left > 0:
        n = min(per_answer, left)
        out.append(markdown_answer(n, seed * 7919 + k))
        left -= len(split_tokens(out[-1]))
        k += 1
    return out

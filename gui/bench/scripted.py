"""Scripted stand-ins for the `stream` bench: an engine-like object and Markdown answers.

What is scripted and what is real (the bench prints the same list):

- real: `gui.app.build` (the `MainWindow` and `Controller`), `Controller.ask`,
  `core.answer.pipeline.AnswerPipeline` / `AnswerRun` (events, text handed on
  per batch, sentence closing in a child process, the attribution worker thread), the
  `AnswerBridge` per-frame batching, `AnswerCard` / `AnswerView` streaming
  and the Markdown render when an answer ends, the Sources panel;
- scripted: the LLM (`core.bench.scripted.PacedBackend`), retrieval (four fixed
  generated chunks), the evidence pool and the attributor (constant-time
  results: every fourth sentence "unsupported", so the history carries real
  highlight selections). No embedding model, Chroma or BM25 runs: they would
  compete for the two cores and measure the engine, not the window.
"""
from __future__ import annotations

import random

from core.bench.corpus import SentenceGenerator
from core.bench.scripted import PacedBackend, split_tokens

__all__ = ["PacedBackend", "ScriptedEngine", "markdown_answer", "history_answers", "split_tokens"]


class _ScriptedAttributor:
    """Constant-time attribution results in the real `Attribution` shape (see the module docstring)."""

    verifier_error = None  # no verifier to load: nothing for the window to report

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

    def __init__(self, settings, backend: PacedBackend, seed: int = 5):
        from core.events import RetrievedChunk
        from core.answer.pipeline import AnswerPipeline

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

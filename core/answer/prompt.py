"""Builds the chat messages for an answer: numbered sources plus the question.

Sources are numbered from 1 in retrieval order so that a marker like "[2]" in
the answer maps back to `chunks[1]`. The template lives in
`resources/prompts/system.txt` so wording can change without code changes.
Earlier turns of the conversation are included (newest last) within a
character budget.

The budget comes from the model's context length (`PromptBudget.for_model`):
the prompt and the longest answer allowed must fit together, or llama.cpp
refuses the question (or, for a server, silently cuts the start of the
prompt, which is where the sources are). A model whose context is unknown (a
remote server) gets the fixed default budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from core.events import RetrievedChunk
from core.llm.base import ChatMessage

HISTORY_BUDGET_CHARS = 3000
SOURCE_BUDGET_CHARS = 6000
# Characters per token assumed when fitting text into a context. English prose
# runs at about 4 characters per token with the tokenizers of the small
# instruct models; file names, numbers and markup run lower, so 3 leaves room.
CHARS_PER_TOKEN = 3.0
# Chat-template tokens (role markers, the start of the answer) and a margin.
TEMPLATE_OVERHEAD_TOKENS = 64
MIN_SOURCE_CHARS = 600  # one source's worth, even in a tiny context


@dataclass(frozen=True)
class PromptBudget:
    """How many characters of sources and of earlier turns go into the prompt."""

    sources: int = SOURCE_BUDGET_CHARS
    history: int = HISTORY_BUDGET_CHARS

    @classmethod
    def for_model(cls, context_tokens: int | None, max_tokens: int, question: str = "") -> "PromptBudget":
        """The budget that lets the prompt and an answer of `max_tokens` fit in `context_tokens`."""
        if not context_tokens:
            return cls()
        room = (context_tokens - max_tokens - TEMPLATE_OVERHEAD_TOKENS) * CHARS_PER_TOKEN
        room -= len(_template()) + len(question)
        room = int(max(room, MIN_SOURCE_CHARS))
        # Sources matter more than old turns: two thirds of the room, at most the default each.
        sources = max(MIN_SOURCE_CHARS, min(SOURCE_BUDGET_CHARS, room * 2 // 3))
        history = max(0, min(HISTORY_BUDGET_CHARS, room - sources))
        return cls(sources, history)


@lru_cache(maxsize=1)
def _template() -> str:
    from resources import PROMPTS

    return (PROMPTS / "system.txt").read_text(encoding="utf-8")


def format_sources(chunks: Sequence[RetrievedChunk], budget: int = SOURCE_BUDGET_CHARS) -> str:
    """The numbered sources, cut to `budget` characters (a later source may be shortened or left out)."""
    parts, used = [], 0
    for number, chunk in enumerate(chunks, start=1):
        room = budget - used
        if parts and room < 200:
            break  # the sources left out keep their numbers free: nothing cites them
        where = chunk.file_name + (f", page {chunk.page}" if chunk.page else "")
        text = chunk.text.strip()
        if len(text) > max(room, 200):
            text = text[:max(room, 200)].rsplit(" ", 1)[0] + " ..."
        parts.append(f"[{number}] ({where})\n{text}")
        used += len(text)
    return "\n\n".join(parts) if parts else "(no documents matched the question)"


def build_messages(question: str, chunks: Sequence[RetrievedChunk], history: Sequence[ChatMessage] = (),
                   *, budget: PromptBudget | None = None) -> list[ChatMessage]:
    """System prompt with numbered sources, then recent history, then the question."""
    budget = budget or PromptBudget()
    messages = [ChatMessage("system", _template().format(sources=format_sources(chunks, budget.sources)))]
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(history):
        used += len(message.content)
        if used > budget.history:
            break
        kept.append(message)
    messages.extend(reversed(kept))
    messages.append(ChatMessage("user", question))
    return messages

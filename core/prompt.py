"""Builds the chat messages for an answer: numbered sources plus the question.

Sources are numbered from 1 in retrieval order so that a marker like "[2]" in
the answer maps back to `chunks[1]`. The template lives in
`resources/prompts/system.txt` so wording can change without code changes.
Earlier turns of the conversation are included (newest last) within a
character budget, because the bundled model has a small context window.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from core.events import RetrievedChunk
from core.llm.base import ChatMessage

HISTORY_BUDGET_CHARS = 3000
SOURCE_BUDGET_CHARS = 6000


@lru_cache(maxsize=1)
def _template() -> str:
    from resources import PROMPTS

    return (PROMPTS / "system.txt").read_text(encoding="utf-8")


def format_sources(chunks: Sequence[RetrievedChunk], budget: int = SOURCE_BUDGET_CHARS) -> str:
    parts, used = [], 0
    for number, chunk in enumerate(chunks, start=1):
        where = chunk.file_name + (f", page {chunk.page}" if chunk.page else "")
        text = chunk.text.strip()
        room = max(200, budget - used)
        if len(text) > room:
            text = text[:room].rsplit(" ", 1)[0] + " ..."
        parts.append(f"[{number}] ({where})\n{text}")
        used += len(text)
    return "\n\n".join(parts) if parts else "(no documents matched the question)"


def build_messages(question: str, chunks: Sequence[RetrievedChunk],
                   history: Sequence[ChatMessage] = ()) -> list[ChatMessage]:
    """System prompt with numbered sources, then recent history, then the question."""
    messages = [ChatMessage("system", _template().format(sources=format_sources(chunks)))]
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(history):
        used += len(message.content)
        if used > HISTORY_BUDGET_CHARS:
            break
        kept.append(message)
    messages.extend(reversed(kept))
    messages.append(ChatMessage("user", question))
    return messages

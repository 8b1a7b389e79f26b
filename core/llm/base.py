"""The interface every LLM backend implements.

A backend turns chat messages into an async stream of `StreamChunk`s. It is
deliberately tiny (one streaming method, one connection check) so that adding
a provider is one module, and tests can substitute a scripted fake.

Contract:
- `stream()` yields text chunks as they arrive, then (optionally) one final
  chunk with `finish_reason` and token usage.
- Failures raise a `core.errors.SourcelightError` subclass whose message says
  what to do next; text already yielded stays valid (the caller keeps it).
- Cancelling the consuming task (or closing the generator) must stop the
  generation promptly and free the backend: the local model stops computing
  tokens, an HTTP stream is closed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class StreamChunk:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@runtime_checkable
class LLMBackend(Protocol):
    """One provider of streamed answers."""

    @property
    def description(self) -> str:
        """Human-readable name, e.g. 'bundled SmolLM2-135M-Instruct' or 'gpt-4o-mini at https://...'."""
        ...

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
               temperature: float) -> AsyncIterator[StreamChunk]:
        """Stream the answer to `messages`."""
        ...

    async def check(self) -> str:
        """Test the connection/model; return a success message or raise a SourcelightError."""
        ...

    async def aclose(self) -> None:
        """Release sockets, threads and model memory."""
        ...

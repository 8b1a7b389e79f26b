"""The interface every LLM backend implements.

A backend turns chat messages into an async stream of `StreamChunk`s. It is
deliberately tiny (one streaming method, one connection check) so that adding
a provider is one module, and tests can substitute a scripted fake.

Contract:
- `stream()` yields text chunks as they arrive, then (optionally) one final
  chunk with `finish_reason` and token usage. A backend whose server reports
  progress (the Assistants API's run lifecycle: queued, in progress, calling
  a tool) may yield chunks that carry only a `status`, and a chunk's text may
  come with the model's own `citations` of its sources.
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
class ModelCitation:
    """A citation the server attached to the answer text (an Assistants `file_citation` annotation).

    `marker` is the text in the answer that stands for the citation (for
    OpenAI's file search something like "【4:0†source】"); `quote` is the
    cited passage when the server gives it. The pipeline, which knows the
    numbered sources, turns it into a "[n]" marker (see `core.answer.pipeline`).
    """

    marker: str
    file_id: str | None = None
    quote: str | None = None


@dataclass(frozen=True)
class StreamChunk:
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # What the server says it is doing ("queued", "in_progress", "tool_call", ...)
    # and the sentence the window and the CLI show for it.
    status: str | None = None
    status_message: str = ""
    citations: tuple[ModelCitation, ...] = ()


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

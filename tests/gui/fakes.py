"""A scripted LLM backend for driving the real window.

`ScriptedBackend` implements the `LLMBackend` protocol (`stream`, `check`,
`aclose`, `description`). Each call to `stream` replays the next `Script`
(the last one repeats): its text pieces, then optionally a typed
`core.errors` error raised mid-stream, or a stall that lasts until the
consumer cancels. Every call is recorded (messages, max_tokens, temperature),
and so is how each stream ended, so tests can check that Stop really closed
the stream.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Sequence

from core.llm.base import ChatMessage, StreamChunk


@dataclass
class Script:
    """What one `stream()` call does."""

    pieces: Sequence[str] = ("Hello.",)
    error: Exception | None = None  # raised after `error_after` pieces (default: after all of them)
    error_after: int | None = None
    stall_after: int | None = None  # wait until cancelled after this many pieces
    # While stalled, keep sending this text every `drip_interval` seconds (a
    # model still producing whitespace): the pipeline only forwards finished
    # attributions when a delta arrives. "{n}" in it counts the drips: the
    # pipeline stops an answer that repeats itself, so dripped words must vary.
    drip: str | None = None
    drip_interval: float = 0.05
    finish_reason: str = "stop"


@dataclass
class Call:
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    outcome: str = "running"  # "completed" | "failed" | "cancelled" | "closed"
    pieces_sent: int = 0


@dataclass
class ScriptedBackend:
    scripts: list[Script] = field(default_factory=lambda: [Script()])
    description: str = "scripted test backend"
    check_error: Exception | None = None

    def __post_init__(self) -> None:
        self.calls: list[Call] = []
        self.closed = False
        self.stalled = 0  # streams currently stalled, waiting to be cancelled

    @classmethod
    def replaying(cls, *pieces: str, **script) -> "ScriptedBackend":
        return cls([Script(pieces=pieces, **script)])

    async def stream(self, messages, *, max_tokens: int, temperature: float):
        script = self.scripts[min(len(self.calls), len(self.scripts) - 1)]
        call = Call(list(messages), max_tokens, temperature)
        self.calls.append(call)
        try:
            for i, piece in enumerate(script.pieces):
                if script.error is not None and script.error_after == i:
                    raise script.error
                if script.stall_after == i:
                    await self._stall()
                await asyncio.sleep(0)
                call.pieces_sent += 1
                yield StreamChunk(text=piece)
            if script.error is not None:
                raise script.error
            if script.stall_after is not None and script.stall_after >= len(script.pieces):
                if script.drip is not None:
                    self.stalled += 1
                    try:
                        n = 0
                        while True:
                            await asyncio.sleep(script.drip_interval)
                            n += 1
                            yield StreamChunk(text=script.drip.replace("{n}", str(n)))
                    finally:
                        self.stalled -= 1
                await self._stall()
            yield StreamChunk(finish_reason=script.finish_reason, prompt_tokens=100,
                              completion_tokens=len(script.pieces))
            call.outcome = "completed"
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            raise
        except GeneratorExit:
            call.outcome = "closed"
            raise
        except Exception:
            call.outcome = "failed"
            raise

    async def _stall(self) -> None:
        self.stalled += 1
        try:
            await asyncio.Event().wait()
        finally:
            self.stalled -= 1

    async def check(self) -> str:
        if self.check_error is not None:
            raise self.check_error
        return "scripted backend ready"

    async def aclose(self) -> None:
        self.closed = True

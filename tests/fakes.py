"""Scripted stand-ins for the parts a test cannot get on demand from a real server.

`ScriptedBackend` implements the `LLMBackend` protocol: it replays given text
pieces as stream chunks, can fail mid-stream with a given typed error, can
stall until cancelled, and records every call so tests can assert on what the
pipeline sent. `ScriptedAttributor` answers `Attributor.attribute` with a
given result per sentence, for tests about what the consumers of attribution
show rather than about how well the attributor judges.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Mapping, Sequence

from core.events import SupportSpan
from core.llm.base import ChatMessage, StreamChunk


class ScriptedBackend:
    def __init__(self, pieces: Sequence[str] = ("Hello.",), *, fail_after: int | None = None,
                 error: Exception | None = None, stall_after: int | None = None, delay: float = 0.0):
        self.pieces = list(pieces)
        self.fail_after = fail_after
        self.error = error
        self.stall_after = stall_after
        self.delay = delay
        self.calls: list[list[ChatMessage]] = []
        self.cancelled = 0
        self.closed = False

    @property
    def description(self) -> str:
        return "scripted test backend"

    async def stream(self, messages, *, max_tokens, temperature):
        self.calls.append(list(messages))
        try:
            for i, piece in enumerate(self.pieces):
                if self.fail_after is not None and i == self.fail_after:
                    raise self.error
                if self.stall_after is not None and i == self.stall_after:
                    await asyncio.Event().wait()  # until cancelled
                if self.delay:
                    await asyncio.sleep(self.delay)
                else:
                    await asyncio.sleep(0)
                yield StreamChunk(text=piece)
            if self.fail_after is not None and self.fail_after >= len(self.pieces):
                raise self.error
            yield StreamChunk(finish_reason="stop", prompt_tokens=10, completion_tokens=len(self.pieces))
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise

    async def check(self) -> str:
        return "scripted backend ready"

    async def aclose(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class ScriptedAttribution:
    """The fields of `core.attribution.Attribution` the pipeline reads."""

    spans: tuple[SupportSpan, ...] = ()
    support: float = 0.0
    supported: bool = False
    kind: str = "claim"


class ScriptedAttributor:
    """Returns `results[sentence text]` for each answer sentence."""

    verifier_error = None  # the support verifier is "loaded": nothing to report after the answer

    def __init__(self, results: Mapping[str, ScriptedAttribution]):
        self.results = dict(results)

    def prefetch(self) -> None:
        """Nothing to load."""

    def attribute(self, claim: str, pool) -> ScriptedAttribution:
        return self.results[claim]  # a KeyError names a sentence the test did not script

"""Stand-ins the fault cases need where a real part cannot misbehave on demand.

- `ScriptedBackend` implements the `LLMBackend` protocol: each `stream()`
  call replays a `Script` (text pieces, then optionally a typed error raised
  after N pieces, or a stall until cancelled, optionally dripping text), and
  records the call (messages, limits) and how the stream ended, so a case can
  check that a Stop really closed the stream. It is the only scripted backend:
  the test tree imports it from here, because the fault suite ships in the
  package (`check faults`) and so cannot import `tests`.
- `GatedEmbedder` wraps the real embedder and holds any `encode` that meets a
  chosen text until the case opens the gate, so a phase that is normally
  over in milliseconds (retrieval, one attribution, an ingest batch) can be
  stopped while it is really running.
- `VectorTable` is an embedder for child processes: it returns vectors the
  parent computed with the real bundled model for the texts the child will
  meet, so a child that is going to be killed does not spend 15 s importing
  torch first. Unknown texts get a deterministic unit vector and are counted.
"""
from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.llm.base import ChatMessage, StreamChunk


@dataclass
class Script:
    """What one `stream()` call does: its text pieces, then how it ends."""

    pieces: Sequence[str] = ("Hello.",)
    error: Exception | None = None  # raised after `error_after` pieces (default: after all of them)
    error_after: int | None = None
    stall_after: int | None = None  # wait until cancelled after this many pieces (len(pieces): after all)
    # While stalled after all pieces, keep sending this text every
    # `drip_interval` seconds (a model still producing whitespace): the pipeline
    # only forwards finished attributions when a delta arrives. "{n}" in it
    # counts the drips: the pipeline stops an answer that repeats itself, so
    # dripped words must vary.
    drip: str | None = None
    drip_interval: float = 0.05
    finish_reason: str = "stop"


@dataclass
class Call:
    """One `stream()` call as the backend saw it, and how it ended."""

    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    # "running" | "completed" | "failed" | "cancelled". "cancelled" means the
    # consumer ended the stream early, by cancelling its task or by closing the
    # generator: callers stop a stream either way and both free the backend.
    outcome: str = "running"


class ScriptedBackend:
    """An `LLMBackend` that replays scripts and records every call.

    `ScriptedBackend(pieces, **script)` replays one `Script` on every call;
    `ScriptedBackend.sequence(script, ...)` replays them in turn, the last one
    repeating.
    """

    def __init__(self, pieces: Sequence[str] = ("Hello.",), *, description: str = "scripted test backend",
                 check_error: Exception | None = None, **script):
        self.scripts: list[Script] = [Script(pieces=list(pieces), **script)]
        self.description = description
        self.check_error = check_error  # what `check()` raises (the Settings dialog's Test button)
        self.calls: list[Call] = []
        self.closed = False
        self.streaming = 0  # streams currently inside stream()
        self.stalled = 0  # streams currently stalled, waiting to be cancelled

    @classmethod
    def sequence(cls, *scripts: Script, **options) -> "ScriptedBackend":
        """A backend whose n-th `stream()` call plays `scripts[n]` (the last one repeats)."""
        backend = cls(**options)
        backend.scripts = list(scripts)
        return backend

    @property
    def outcomes(self) -> list[str]:
        """How each call ended, in call order."""
        return [call.outcome for call in self.calls]

    async def stream(self, messages, *, max_tokens: int, temperature: float):
        script = self.scripts[min(len(self.calls), len(self.scripts) - 1)]
        call = Call(list(messages), max_tokens, temperature)
        self.calls.append(call)
        self.streaming += 1
        try:
            for i, piece in enumerate(script.pieces):
                if script.error is not None and script.error_after == i:
                    raise script.error
                if script.stall_after == i:
                    await self._stall()
                await asyncio.sleep(0)  # one loop turn per piece, as a network stream gives
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
            yield StreamChunk(finish_reason=script.finish_reason, prompt_tokens=10,
                              completion_tokens=len(script.pieces))
            call.outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            call.outcome = "cancelled"
            raise
        except Exception:
            call.outcome = "failed"
            raise
        finally:
            self.streaming -= 1

    async def _stall(self) -> None:
        """Wait until cancelled (a model that has gone quiet). Subclasses hook the cancel here."""
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


class GatedEmbedder:
    """The wrapped embedder, except that `encode` waits at a gate while any text matches `hold`."""

    def __init__(self, inner, hold, *, max_hold_s: float = 60.0):
        self._inner = inner
        self._hold = hold
        self._max_hold_s = max_hold_s  # a case that forgets to open the gate still ends
        self.gate = threading.Event()
        self.blocked = threading.Event()  # set once an encode is waiting at the gate
        self._lock = threading.Lock()
        self.active = 0  # encodes in progress (held or not)

    @property
    def loaded(self) -> bool:
        return self._inner.loaded

    def load(self) -> None:
        self._inner.load()

    def encode(self, texts, batch_size: int | None = None) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            self.active += 1
        try:
            if not self.gate.is_set() and any(self._hold(t) for t in texts):
                self.blocked.set()
                self.gate.wait(self._max_hold_s)
            return self._inner.encode(texts, batch_size)
        finally:
            with self._lock:
                self.active -= 1

    def token_vectors(self, texts) -> list:
        """Not gated: the cases hold the embedding of chosen texts, which comes first."""
        return self._inner.token_vectors(texts)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class VectorTable:
    """An embedder that answers from a table of real-model vectors (for child processes)."""

    def __init__(self, table: dict[str, np.ndarray]):
        self._table = table
        self.misses = 0

    @classmethod
    def load_file(cls, path: Path) -> "VectorTable":
        with np.load(path, allow_pickle=False) as data:
            texts = [str(t) for t in data["texts"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
        return cls(dict(zip(texts, vectors)))

    @staticmethod
    def save_file(path: Path, table: dict[str, np.ndarray]) -> None:
        texts = list(table)
        vectors = np.stack([table[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)
        np.savez(path, texts=np.array(texts, dtype=str), vectors=vectors.astype(np.float32))

    @property
    def loaded(self) -> bool:
        return True

    def load(self) -> None:
        return None

    def encode(self, texts, batch_size: int | None = None) -> np.ndarray:
        out = []
        for text in texts:
            vector = self._table.get(text)
            if vector is None:
                self.misses += 1
                vector = _hash_vector(text)
            out.append(vector)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _hash_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return vector / np.linalg.norm(vector)

"""Stand-ins the fault cases need where a real part cannot misbehave on demand.

- `ScriptedBackend` implements the `LLMBackend` protocol: it replays text
  pieces, can raise a typed error after N pieces, can stall until cancelled,
  and records how each stream ended, so a case can check that a Stop really
  closed the stream. (tests/fakes.py has one for the test tree; core cannot
  import tests, so the CLI's `check faults` carries its own.)
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
from pathlib import Path
from typing import Sequence

import numpy as np

from core.llm.base import StreamChunk


class ScriptedBackend:
    """Replays `pieces`; optionally raises `error` after `error_after` pieces or stalls after `stall_after`."""

    def __init__(self, pieces: Sequence[str] = ("Hello.",), *, error: Exception | None = None,
                 error_after: int | None = None, stall_after: int | None = None, delay_s: float = 0.0,
                 description: str = "scripted fault-suite backend"):
        self.pieces = list(pieces)
        self.error = error
        self.error_after = error_after
        self.stall_after = stall_after
        self.delay_s = delay_s
        self.description = description
        self.calls: list[list] = []
        self.outcomes: list[str] = []  # per call: "completed" | "failed" | "cancelled"
        self.streaming = 0  # streams currently inside stream()
        self.closed = False

    async def stream(self, messages, *, max_tokens: int, temperature: float):
        self.calls.append(list(messages))
        index = len(self.calls) - 1
        self.outcomes.append("running")
        self.streaming += 1
        try:
            for i, piece in enumerate(self.pieces):
                if self.error is not None and self.error_after == i:
                    raise self.error
                if self.stall_after == i:
                    await asyncio.Event().wait()  # until cancelled
                await asyncio.sleep(self.delay_s)
                yield StreamChunk(text=piece)
            if self.error is not None and (self.error_after is None or self.error_after >= len(self.pieces)):
                raise self.error
            if self.stall_after is not None and self.stall_after >= len(self.pieces):
                await asyncio.Event().wait()
            yield StreamChunk(finish_reason="stop", prompt_tokens=10, completion_tokens=len(self.pieces))
            self.outcomes[index] = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            self.outcomes[index] = "cancelled"
            raise
        except Exception:
            self.outcomes[index] = "failed"
            raise
        finally:
            self.streaming -= 1

    async def check(self) -> str:
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

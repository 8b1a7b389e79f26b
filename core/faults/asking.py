"""Driving one question through the real engine and recording what the user would see.

`ask()` reads `AnswerRun.events()` exactly as the GUI adapter and the CLI do,
optionally pressing Stop (`run.cancel()`) when a predicate over the events so
far says so, and returns every event with its arrival time. Each run is
bounded by a timeout so a hung stream fails the case instead of the suite.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from core.events import Cancelled, Completed, Failed, TextDelta


@dataclass
class Asked:
    """Everything one run produced."""

    events: list = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds since the question was asked
    cancelled_at: float | None = None  # when Stop was pressed
    timed_out: bool = False

    @property
    def terminal(self):
        last = self.events[-1] if self.events else None
        return last if isinstance(last, (Completed, Failed, Cancelled)) else None

    @property
    def streamed(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def message(self) -> str:
        """What the user is shown when the run ends badly (the error message)."""
        end = self.terminal
        return end.message if isinstance(end, Failed) else ""

    @property
    def kept(self) -> str:
        """The answer the user keeps: the completed answer or the partial one."""
        end = self.terminal
        if isinstance(end, Completed):
            return end.answer
        if isinstance(end, (Failed, Cancelled)):
            return end.partial_answer
        return ""

    def kinds(self) -> list[str]:
        return [e.type for e in self.events]

    def describe(self) -> str:
        end = self.terminal
        if end is None:
            return "no terminal event" + (" (timed out)" if self.timed_out else "")
        if isinstance(end, Failed):
            return f"failed[{end.code}] after {self.times[-1]:.2f} s, partial {_short(end.partial_answer)}"
        if isinstance(end, Cancelled):
            return f"cancelled after {self.times[-1]:.2f} s, partial {_short(end.partial_answer)}"
        return f"completed in {self.times[-1]:.2f} s: {end.answer[:60]!r}"


def _short(text: str, limit: int = 80) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


async def ask_async(engine, question: str, *, history: Sequence = (),
                    stop_when: Callable[[list], bool] | None = None,
                    stop_once: Callable[[], bool] | None = None, timeout_s: float = 60.0) -> Asked:
    """Ask `question`; press Stop once `stop_when(events so far)` is true, or once `stop_once()` is.

    `stop_when` is checked as each event arrives; `stop_once` is polled every
    10 ms, for moments no event marks (a retrieval that is still running).
    """
    run = engine.ask(question, history)
    asked = Asked()
    started = time.perf_counter()

    def stop() -> None:
        if asked.cancelled_at is None:
            asked.cancelled_at = time.perf_counter() - started
            run.cancel()

    async def consume() -> None:
        async for event in run.events():
            asked.events.append(event)
            asked.times.append(time.perf_counter() - started)
            if stop_when is not None and stop_when(asked.events):
                stop()

    async def watch() -> None:
        while not stop_once():
            await asyncio.sleep(0.01)
        stop()

    watcher = asyncio.ensure_future(watch()) if stop_once is not None else None
    try:
        await asyncio.wait_for(consume(), timeout_s)
    except asyncio.TimeoutError:
        asked.timed_out = True
    finally:
        if watcher is not None:
            watcher.cancel()
    return asked


def ask(engine, question: str, **kwargs) -> Asked:
    """`ask_async` on a fresh event loop (each case owns its loop)."""
    return asyncio.run(ask_async(engine, question, **kwargs))


def with_backend(engine, backend):
    """Swap the engine's backend (as the settings dialog does); returns the previous one."""
    return engine.set_backend(backend)

"""Hands streamed text on in batches, at most once per frame, so per-token work becomes per-batch work.

Fast servers deliver 1,000-3,000 tokens/s (a bench delivers 5,000) in
network-sized chunks of a few tokens, each on its own event-loop turn. What
the pipeline does with shown text - a `TextDelta` through the run's queue,
the fold into the answer's state, the GUI bridge, sentence segmentation
(pysbd, ~3.5 ms per 500 characters here) - cost the event loop ~100 ms per
100 ms of stream when done per chunk (issue 19: 22 heartbeats in a second).
`TextBatcher` collects the text the stream may show and delivers it joined:

- leading edge: text that arrives after a quiet interval is delivered on the
  next loop turn, so a slow model's tokens show at once;
- then at most once per `interval_s`: chunks arriving meanwhile wait for the
  next batch (one frame at most), as qtconsole and the GUI bridge do for paints.

Events that must keep their place among the text (a server's status report)
ride the same queue and flush it at once. Delivery runs in one task beside the
stream, in order; what it raises is raised again to the stream's reader at its
next `add` or at `close`. `take()` hands back what was never delivered (a run
that is cancelled or fails keeps every word it was given).
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

# One frame at 60 Hz: nobody sees a batch boundary finer than that, and the GUI
# bridge paints at most this often anyway.
BATCH_S = 0.016


class TextBatcher:
    """Collects shown text (and ordered events); `deliver(text)` / `emit(event)` get them per batch."""

    def __init__(self, deliver: Callable[[str], Awaitable[None]], emit: Callable[[object], None], *,
                 interval_s: float = BATCH_S, clock: Callable[[], float] = time.monotonic):
        self._deliver = deliver
        self._emit = emit
        self._interval = interval_s
        self._clock = clock
        self._items: list[str | object] = []  # text pieces and events, in arrival order
        self._urgent = False  # an event waits: deliver without waiting for the interval
        self._last = float("-inf")  # when the last batch was delivered
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._delivering = False
        self._closing = False
        self.batches = 0  # how many deliveries the stream took (tests and benchmarks read it)

    def add(self, text: str) -> None:
        """Text the stream may show now; delivered with the next batch."""
        if text:
            self._put(text)

    def add_event(self, event: object) -> None:
        """An event that belongs after the text added so far; delivered (with that text) at once."""
        self._urgent = True
        self._put(event)

    def _put(self, item) -> None:
        task = self._task
        if task is None:
            self._task = asyncio.ensure_future(self._run())
        elif task.done():
            task.result()  # delivery failed: the reader's stream fails with it
        self._items.append(item)
        self._arrived.set()

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            wait = self._last + self._interval - self._clock()
            if wait > 0 and not self._urgent:
                await asyncio.sleep(wait)
            self._arrived.clear()
            self._delivering = True
            try:
                await self._deliver_now()
            finally:
                self._delivering = False
            if self._closing:
                return

    async def _deliver_now(self) -> None:
        # Items leave the list only as they are handed on, so a delivery that is
        # cancelled half-way leaves the rest for `take`.
        # What arrives while a delivery awaits waits for the next batch.
        self._urgent = False
        self._last = self._clock()
        left = len(self._items)
        while left and self._items:
            items = self._items
            if not isinstance(items[0], str):
                self._emit(items.pop(0))
                left -= 1
                continue
            k = 1
            while k < left and isinstance(items[k], str):
                k += 1
            text = "".join(items[:k])
            del items[:k]
            left -= k
            self.batches += 1
            await self._deliver(text)

    async def close(self) -> None:
        """The stream ended normally: deliver what is left, stop, and raise what delivery raised."""
        task, self._task = self._task, None
        if task is not None:
            if self._delivering:
                self._closing = True  # let it finish this delivery (and the rest) itself
            else:
                task.cancel()  # it waits for text or for the interval: nothing is half-delivered
            try:
                await task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # this reader itself is being stopped
                    raise
        if self._items:
            await self._deliver_now()

    def cancel(self) -> None:
        """The stream failed or was stopped: stop delivering (what is left stays for `take`)."""
        task, self._task = self._task, None
        if task is not None:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the run already ends with an error of its own
            task.cancel()

    def take(self) -> tuple[str, list]:
        """What was added but never delivered: (text, events), removed from the batcher."""
        items, self._items = self._items, []
        return "".join(i for i in items if isinstance(i, str)), [i for i in items if not isinstance(i, str)]

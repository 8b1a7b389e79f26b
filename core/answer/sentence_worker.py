"""Closes an answer's sentences on a worker thread, beside the stream, in order.

Sentence segmentation (`SentenceStream`, pysbd underneath) costs ~7 us per
character here, more when the `re` module's 512-pattern cache thrashes on
pysbd's per-abbreviation patterns: at 5,000 tokens/s that is a third of a
core, and run on the event loop it stalled the window for 70 ms at a time
(issue 19). Architecture rule 7 puts CPU-heavy work off the loop, so the
pipeline hands each batch of shown text to `SentenceWorker.add` and gets the
sentences that closed back on the loop, in order, through `on_closed`.

One task on the loop feeds one worker thread: text that arrives while the
worker is busy is joined and fed in one call (the segmenter reads the open
tail again per call, so fewer, larger calls cost less). The `SentenceStream`
is touched only by the worker thread while the run streams.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Awaitable, Callable

from core.answer.sentence_stream import SentenceStream
from core.events import AnswerSentence

_FINISH = object()


class SentenceWorker:
    """Feeds shown text to a `SentenceStream` on `executor`; `on_closed(sentences)` runs on the loop, in order."""

    def __init__(self, executor: Executor, on_closed: Callable[[list[AnswerSentence]], Awaitable[None]]):
        self._executor = executor
        self._on_closed = on_closed
        self._stream = SentenceStream()
        self._texts: list = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.calls = 0  # segmenter calls (tests and benchmarks read it)

    def add(self, text: str) -> None:
        """Text shown after everything added before (empty text is ignored)."""
        if text:
            self._put(text)

    async def finish(self) -> None:
        """The answer ended: close the remaining sentences; returns once `on_closed` has seen all of them."""
        self._put(_FINISH)
        task, self._task = self._task, None
        await task

    def cancel(self) -> None:
        """The run stopped: hand nothing more on (a segmenter call already running finishes in its thread)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _put(self, item) -> None:
        task = self._task
        if task is None:
            self._task = asyncio.ensure_future(self._run())
        elif task.done():
            task.result()  # handing sentences on failed: the run fails with that error
        self._texts.append(item)
        self._arrived.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            items, self._texts = self._texts, []
            finish = items and items[-1] is _FINISH
            text = "".join(items[:-1] if finish else items)
            self.calls += 1
            closed = await loop.run_in_executor(self._executor, self._segment, text, finish)
            if closed:
                await self._on_closed(closed)
            if finish:
                return

    def _segment(self, text: str, finish: bool) -> list[AnswerSentence]:
        closed = self._stream.feed(text)
        if finish:
            closed += self._stream.finish()
        return closed

"""Finds an answer's sentences in a child process, beside the stream, in order.

Sentence segmentation (`SentenceStream`, pysbd underneath) costs ~7 us per
character here: at 5,000 tokens/s a fifth of the event loop's second, the
largest single item left after the per-batch work of issue 19. A thread does
not help: pysbd is pure Python and holds the GIL, and the window then waits
for it after every Qt event (measured: 40-70 ms stalls). So the pipeline
hands each batch of shown text to `SentenceWorker.add`; the open tail is
segmented by `split_sentences` in one child process (`segmenter_pool`), and
the sentences that closed come back on the loop, in order, through
`on_closed`. The bookkeeping (`SentenceStream.add` / `close`) stays here.

One task feeds the child one call at a time: text that arrives meanwhile is
joined and segmented in the next call. Without a pool (`executor=None`) the
segmenter runs on the loop, as before.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Awaitable, Callable

from core.answer.sentence_stream import SentenceStream
from core.events import AnswerSentence
from core.ingest.segment import split_sentences

log = logging.getLogger(__name__)
_FINISH = object()


def segmenter_pool() -> ProcessPoolExecutor:
    """One child process for `split_sentences`, started now in the background (~0.3 s, pysbd's import)."""
    # spawn, not fork: the parent runs Qt and threads, which a forked child must not inherit.
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(split_sentences, "Warm up.")
    return pool


class SentenceWorker:
    """Feeds shown text to a `SentenceStream`, segmenting on `executor`; `on_closed(sentences)` runs on the loop."""

    def __init__(self, executor: Executor | None, on_closed: Callable[[list[AnswerSentence]], Awaitable[None]]):
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
        """The run stopped: hand nothing more on."""
        task, self._task = self._task, None
        if task is not None:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the run already ends with an error of its own
            task.cancel()

    def _put(self, item) -> None:
        task = self._task
        if task is None:
            self._task = asyncio.ensure_future(self._run())
        elif task.done():
            task.result()  # segmenting failed: the run fails with that error
        self._texts.append(item)
        self._arrived.set()

    async def _split(self, text: str):
        self.calls += 1
        if self._executor is not None:
            try:
                return await asyncio.get_running_loop().run_in_executor(self._executor, split_sentences, text)
            except (BrokenProcessPool, RuntimeError):
                # The child died (killed, out of memory) or the pool was shut down: the answer
                # still gets its sentences, found here on the loop as before the child existed.
                log.warning("the sentence segmenter process is gone; segmenting on the event loop", exc_info=True)
                self._executor = None
        return split_sentences(text)

    async def _run(self) -> None:
        stream = self._stream
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            items, self._texts = self._texts, []
            finish = bool(items) and items[-1] is _FINISH
            tail = stream.add("".join(items[:-1] if finish else items))
            closed = stream.close(await self._split(tail)) if tail is not None else []
            if finish:
                closed += stream.close(await self._split(stream.open_tail()), final=True)
            if closed:
                await self._on_closed(closed)
            if finish:
                return

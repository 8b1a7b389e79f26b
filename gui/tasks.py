"""Named, cancellable asyncio tasks for user actions (architecture rule 6).

Every user action (an answer, an ingest, loading the engine, a connection
test) runs as one task under a name. Starting a task under a name that is
still running cancels the old one first (preemption, as FeelUOwn does), so a
new question always stops the answer in flight. The runner keeps a reference
to every task: asyncio itself only keeps weak references, and a task nobody
holds can be garbage-collected mid-flight.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

log = logging.getLogger(__name__)


class TaskRunner:
    """Owns the app's running tasks, one per name."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self._loop = loop
        self._tasks: dict[str, asyncio.Task] = {}

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_event_loop()

    def start(self, name: str, coro: Coroutine[Any, Any, Any], *, preempt: bool = True) -> asyncio.Task:
        """Run `coro` as the task `name`, cancelling a running task of that name first.

        With `preempt=False` the old task keeps running (the caller has asked it
        to wind down in its own way) and only stops being the one under `name`.
        """
        if preempt:
            self.cancel(name)
        task = self._get_loop().create_task(coro, name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda t, n=name: self._finished(n, t))
        return task

    def _finished(self, name: str, task: asyncio.Task) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]
        if not task.cancelled() and task.exception() is not None:
            # Actions handle their own errors; anything left here is a bug.
            log.error("task %s failed", name, exc_info=task.exception())

    def get(self, name: str) -> asyncio.Task | None:
        return self._tasks.get(name)

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def cancel(self, name: str) -> bool:
        task = self._tasks.get(name)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    @property
    def names(self) -> list[str]:
        return [n for n, t in self._tasks.items() if not t.done()]

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have all finished."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

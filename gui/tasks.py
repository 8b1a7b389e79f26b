"""Named, cancellable asyncio tasks for user actions (architecture rule 6).

Every user action (an answer, an ingest, loading the engine, a connection
test) runs as one task under a name. Starting a task under a name that is
still running stops the old one first (preemption, as FeelUOwn does), so a
new question always stops the answer in flight. The runner keeps a reference
to every task: asyncio itself only keeps weak references, and a task nobody
holds can be garbage-collected mid-flight.

A task is stopped by cancelling it, unless it was started with its own `stop`:
an answer is stopped through its run, which then ends with `Cancelled` and the
partial answer (cancelling the task would lose that ending), and the new task
waits for the old one (`get` it before `start`) to end before it begins.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

log = logging.getLogger(__name__)


class TaskRunner:
    """Owns the app's running tasks, one per name."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self._loop = loop
        self._tasks: dict[str, asyncio.Task] = {}
        self._stops: dict[asyncio.Task, Callable[[], None]] = {}  # tasks that are stopped their own way

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_event_loop()

    def start(self, name: str, coro: Coroutine[Any, Any, Any], *,
              stop: Callable[[], None] | None = None) -> asyncio.Task:
        """Run `coro` as the task `name`, stopping a running task of that name first (`stop(name)`).

        `stop` (if given) is how this task is stopped later, instead of
        cancelling it. A stopped task may still be ending when the new one
        starts; the new one waits for it if it must (`get(name)` before this).
        """
        self.stop(name)
        task = self._get_loop().create_task(coro, name=name)
        self._tasks[name] = task
        if stop is not None:
            self._stops[task] = stop
        task.add_done_callback(lambda t, n=name: self._finished(n, t))
        return task

    def _finished(self, name: str, task: asyncio.Task) -> None:
        self._stops.pop(task, None)
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

    def stop(self, name: str) -> asyncio.Task | None:
        """Stop the running task `name` (its own `stop`, else cancel it); returns it while it ends, else None."""
        task = self._tasks.get(name)
        if task is None or task.done():
            return None
        stop = self._stops.get(task)
        if stop is not None:
            stop()
        else:
            task.cancel()
        return task

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

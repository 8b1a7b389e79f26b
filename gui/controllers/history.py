"""The conversation store as the controllers use it: opened on a worker, its writes kept in order.

One `core.history.HistoryStore`, opened on a worker thread by the factory the
composition root hands in (or given ready-made by tests). History writes of
one conversation are chained, so turns land in the order they were asked and
a follow-up reads its context only after the earlier turns are on disk.
Every blocking call runs in the loop's executor.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from gui.controllers.support import describe

log = logging.getLogger(__name__)

FAILED = object()  # a history call that could not be made (the window already said why)


@dataclass
class Chat:
    """The conversation the window shows: its id once created, and its chain of history writes."""

    id: int | None = None
    saving: asyncio.Task | None = None  # the last history write of this conversation
    loaded_from: int = 0  # how many older turns are not shown yet


class HistoryAccess(QObject):
    """Opens the store in the background and runs calls and ordered writes against it."""

    opened = Signal()

    def __init__(self, window, *, history=None, factory: Callable[[], Any] | None = None, parent=None):
        super().__init__(parent)
        self.window = window
        self.history = history
        self._factory = factory
        self._future: asyncio.Future | None = None
        self._saves: set[asyncio.Task] = set()

    def _slot(self) -> asyncio.Future:
        if self._future is None:
            self._future = asyncio.get_event_loop().create_future()
        return self._future

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        slot = self._slot()
        try:
            if self.history is None:
                if self._factory is None:
                    raise RuntimeError("no conversation history was configured")
                self.history = await loop.run_in_executor(None, self._factory)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not slot.done():
                slot.set_result(None)
            self.window.show_error(describe(exc, "The conversation history could not be opened") +
                                   " Answers still work, but they are not saved.")
            return
        if not slot.done():
            slot.set_result(self.history)
        self.opened.emit()

    async def available(self):
        """The HistoryStore once open, or None when it could not be opened."""
        return await asyncio.shield(self._slot())

    def chain(self, chat: Chat, job: Callable[[Any], Any]) -> asyncio.Task:
        """Run `job(history)` after every earlier history write of `chat` (kept in order, awaited at shutdown)."""
        previous = chat.saving

        async def run():
            if previous is not None:
                await asyncio.wait({previous})
            history = await self.available()
            if history is not None:
                await job(history)

        task = asyncio.get_event_loop().create_task(run(), name="history-write")
        chat.saving = task
        self._saves.add(task)
        task.add_done_callback(self._on_save_done)
        return task

    def _on_save_done(self, task: asyncio.Task) -> None:
        self._saves.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a history write failed", exc_info=task.exception())

    async def settled(self) -> None:
        """Every write started so far has ended."""
        while self._saves:
            await asyncio.wait(set(self._saves))

    async def call(self, failure: str, call: Callable[[Any], Any]) -> Any:
        """`call(history)` on a worker thread; `FAILED` if history is unavailable or the call raised.

        A raised error is shown in the window as `failure` with its cause.
        """
        history = await self.available()
        if history is None:
            return FAILED
        try:
            return await asyncio.get_running_loop().run_in_executor(None, call, history)
        except Exception as exc:
            self.window.show_error(describe(exc, failure))
            return FAILED

    async def close(self) -> None:
        """Let every write finish (the runs just stopped are being saved), then close the store."""
        if not self._slot().done():
            self._slot().set_result(None)
        await self.settled()
        if self.history is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.history.close)
            except Exception:
                log.warning("closing the conversation history failed", exc_info=True)

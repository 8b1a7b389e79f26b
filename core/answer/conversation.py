"""Asking within a conversation: earlier turns as context, the run folded into one `Answer`, the turn saved.

`ConversationService.ask` starts an `Asking`: iterating its `events()` loads
the conversation's earlier (completed) turns unless the caller handed them in,
forms the prompt and runs the pipeline (`Engine.ask`), folds every event into
the one `Answer` state (`core.answer.state`) and, when the stream ends however it
ends, saves the turn to history from that state. Readers take the events as
they pass (the CLI prints them, the window's bridge paints them) and read
`Asking.answer` for everything folded so far; nobody keeps lists of their own.

A stop from outside the stream (Ctrl+C, a task cancelled before the run could
say so) is folded in as `Cancelled` with the engine's partial answer, so the
question and what streamed are saved either way.

Qt-free. History calls block on SQLite (and an fsync when saving), so
`events()` runs them in the loop's executor. The window keeps its own ordering
of history writes (a conversation created before its first turn is saved,
turns saved in the order asked): it hands in the earlier turns itself and
saves `Asking.turn()` through that chain (`save=False`).
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Sequence

from core.answer.state import Answer
from core.events import Cancelled, Event
from core.history.recorder import TurnRecorder


class Asking:
    """One question being answered; read `events()` once, `answer` at any time, `cancel()` to stop it."""

    def __init__(self, engine, question: str, *, history=None, conversation_id: int | None = None,
                 messages: Sequence | None = None, save: bool = True, backend: str = "", model: str = "",
                 clock=time.time):
        self.engine = engine
        self.question = question
        self.history = history
        self.conversation_id = conversation_id
        self._messages = None if messages is None else list(messages)
        self._save = save and history is not None
        self._recorder = TurnRecorder(question, backend, model, clock=clock)
        self.run = None  # the engine's AnswerRun, once started
        self._stop_before_run = False
        self.stopped: Cancelled | None = None  # the ending folded in for a stop from outside the stream
        self.saved = None  # the StoredTurn as history stored it

    @property
    def answer(self) -> Answer:
        """The answer as the events so far describe it."""
        return self._recorder.answer

    @property
    def done(self) -> bool:
        return self._recorder.done

    def turn(self):
        """The turn to save (a StoredTurn); only once the answer has ended."""
        return self._recorder.result()

    def fold(self, event: Event) -> Answer:
        """Fold in what the run could not report itself (it never started, or an error before it existed)."""
        return self._recorder.observe(event)

    def cancel(self) -> None:
        """Stop the run; its stream ends with `Cancelled` (the partial answer kept)."""
        if self.run is not None:
            self.run.cancel()
        else:  # stopped while the earlier turns are read: the run is never started
            self._stop_before_run = True

    async def events(self) -> AsyncIterator[Event]:
        """The run's events, each folded into `answer` before it is handed on; the turn is saved at the end."""
        loop = asyncio.get_running_loop()
        try:
            if self._messages is None:
                self._messages = []
                if self.history is not None and self.conversation_id is not None:
                    self._messages = await loop.run_in_executor(None, self.history.history_messages,
                                                                self.conversation_id)
            if self._stop_before_run:
                stopped = Cancelled("")
                self._recorder.observe(stopped)
                yield stopped
                return
            self.run = self.engine.ask(self.question, self._messages)
            async for event in self.run.events():
                self._recorder.observe(event)
                yield event
        except asyncio.CancelledError:
            if not self.done:
                self.stopped = Cancelled(self.run.answer if self.run is not None else "")
                self._recorder.observe(self.stopped)
            raise
        finally:
            if not self.done:  # the stream ended without a terminal event (a bug upstream): keep the turn
                self._recorder.observe(Cancelled(self.run.answer if self.run is not None else ""))
            if self._save:
                # Blocking on purpose here: a cancelled task cannot wait for the executor, and the
                # turn must be on disk before the caller (a CLI about to exit) goes on.
                self.saved = self.history.add_turn(self.conversation_id, self.turn())


class ConversationService:
    """Questions asked in the conversations of one history store, answered by one engine."""

    def __init__(self, engine, history=None):
        self.engine = engine
        self.history = history

    def ask(self, question: str, conversation_id: int | None = None, *, messages: Sequence | None = None,
            save: bool = True) -> Asking:
        """Start answering `question` as the next turn of `conversation_id` (iterate `events()`).

        `messages` (the earlier turns as chat messages) is read from history
        when not given; with `save=False` the caller saves `Asking.turn()`.
        """
        engine = self.engine
        return Asking(engine, question, history=self.history, conversation_id=conversation_id, messages=messages,
                      save=save and conversation_id is not None, backend=_description(engine.backend),
                      model=str(getattr(engine.settings, "model", "")))


def _description(backend) -> str:
    try:
        return str(backend.description)
    except Exception:  # a backend that cannot describe itself is still named
        return type(backend).__name__

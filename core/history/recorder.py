"""`TurnRecorder`: one run's events folded into the `StoredTurn` that history saves."""
from __future__ import annotations

import time

from core.events import (AttributionReady, Cancelled, Completed, Event, Failed, RetrievalDone, RetrievedChunk,
                         RunStarted, TextDelta, Usage)
from core.history.model import StoredTurn


class TurnRecorder:
    """Collects one run's events into a `StoredTurn`.

    Feed it every event of the run (`observe` is cheap and does no I/O, so it
    can sit in the event loop); once a terminal event arrived, `result()`
    returns the turn to hand to `HistoryStore.add_turn`. Failed and cancelled
    runs are recorded too, with the partial answer and the error, so the
    question is never lost; `history_messages` leaves them out of follow-ups.
    """

    def __init__(self, question: str, backend_description: str = "", model: str = "", *,
                 clock=time.time):
        self._clock = clock
        self._question = question
        self._backend = backend_description
        self._model = model
        self._started_at = clock()
        self._run_id: str | None = None
        self._chunks: tuple[RetrievedChunk, ...] = ()
        self._deltas: list[str] = []
        self._attributions: list[AttributionReady] = []
        self._usage: Usage | None = None
        self._terminal: Completed | Failed | Cancelled | None = None
        self._finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self._terminal is not None

    def observe(self, event: Event) -> None:
        if self._terminal is not None:
            return  # the stream ends at its terminal event; anything later is not part of this turn
        if isinstance(event, RunStarted):
            self._run_id = event.run_id
            self._question = event.question or self._question
        elif isinstance(event, RetrievalDone):
            self._chunks = tuple(event.chunks)
        elif isinstance(event, TextDelta):
            self._deltas.append(event.text)
        elif isinstance(event, AttributionReady):
            self._attributions.append(event)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, (Completed, Failed, Cancelled)):
            self._terminal = event
            self._finished_at = self._clock()

    def result(self) -> StoredTurn:
        """The finished turn; raises RuntimeError before the run's terminal event."""
        end = self._terminal
        if end is None:
            raise RuntimeError("The run has not finished yet: feed every event to observe() first.")
        streamed = "".join(self._deltas)
        common = dict(question=self._question, chunks=self._chunks, attributions=tuple(self._attributions),
                      backend=self._backend, model=self._model, started_at=self._started_at,
                      finished_at=self._finished_at, run_id=self._run_id,
                      prompt_tokens=self._usage.prompt_tokens if self._usage else None,
                      completion_tokens=self._usage.completion_tokens if self._usage else None)
        if isinstance(end, Completed):
            return StoredTurn(answer=end.answer or streamed, status="completed", finish_reason=end.finish_reason,
                              **common)
        if isinstance(end, Failed):
            return StoredTurn(answer=end.partial_answer or streamed, status="failed", error_code=end.code,
                              error_type=end.error_type, error_message=end.message, **common)
        return StoredTurn(answer=end.partial_answer or streamed, status="cancelled", **common)

"""`TurnRecorder`: one run's `Answer` state (core.answer.state) saved as the `StoredTurn` history keeps."""
from __future__ import annotations

import time

from core.answer.state import COMPLETED, FAILED, Answer
from core.events import Event
from core.history.model import StoredTurn


class TurnRecorder:
    """Folds one run's events into its `Answer` and turns that state into a `StoredTurn`.

    Feed it every event of the run (`observe` is cheap and does no I/O, so it
    can sit in the event loop), or hand it the state a reader already folded
    (`answer=`, then `finish`); once the run has ended, `result()` returns the
    turn to hand to `HistoryStore.add_turn`. Failed and cancelled runs are
    recorded too, with the partial answer and the error, so the question is
    never lost; `history_messages` leaves them out of follow-ups.
    """

    def __init__(self, question: str, backend_description: str = "", model: str = "", *,
                 clock=time.time):
        self._clock = clock
        self.answer = Answer(question=question)
        self._backend = backend_description
        self._model = model
        self._started_at = clock()
        self._finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.answer.done

    def observe(self, event: Event) -> Answer:
        """Fold `event` into the answer; returns the new state."""
        return self.update(self.answer.apply(event))

    def update(self, answer: Answer) -> Answer:
        """Take `answer` (folded elsewhere from this run's events) as the run's state."""
        if not self.answer.done:
            self.answer = answer
            if answer.done:
                self._finished_at = self._clock()
        return self.answer

    def result(self) -> StoredTurn:
        """The finished turn; raises RuntimeError before the run's terminal event."""
        return turn_from_answer(self.answer, backend=self._backend, model=self._model,
                                started_at=self._started_at, finished_at=self._finished_at)


def turn_from_answer(answer: Answer, *, backend: str = "", model: str = "", started_at: float | None = None,
                     finished_at: float | None = None) -> StoredTurn:
    """The `StoredTurn` of an ended answer; raises RuntimeError while it still runs."""
    if not answer.done:
        raise RuntimeError("The run has not finished yet: feed every event to observe() first.")
    usage = answer.usage
    common = dict(question=answer.question, answer=answer.text, chunks=answer.chunks,
                  attributions=answer.attributions, backend=backend, model=model, started_at=started_at,
                  finished_at=finished_at, run_id=answer.run_id,
                  prompt_tokens=usage.prompt_tokens if usage else None,
                  completion_tokens=usage.completion_tokens if usage else None)
    if answer.status == COMPLETED:
        return StoredTurn(status="completed", finish_reason=answer.finish_reason, **common)
    if answer.status == FAILED:
        error = answer.error
        return StoredTurn(status="failed", error_code=error.code, error_type=error.error_type,
                          error_message=error.message, **common)
    return StoredTurn(status="cancelled", **common)

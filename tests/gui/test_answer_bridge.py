"""The adapter from core events to Qt signals: per-frame batching and event order."""
from __future__ import annotations

import asyncio

from core.events import (AnswerSentence, AttributionReady, Cancelled, Completed, RetrievalDone, RunStarted,
                         SentenceClosed, SupportSpan, TextDelta)

from gui.answer_bridge import AnswerBridge
from tests.gui.helpers import run_async


class ListRun:
    """A run that replays events, yielding to the loop every `burst` events (as a backend would)."""

    def __init__(self, events, burst: int = 10, stall_at: int | None = None):
        self._events = events
        self._burst = burst
        self._stall_at = stall_at

    async def events(self):
        for i, event in enumerate(self._events):
            if i == self._stall_at:
                await asyncio.Event().wait()
            if i % self._burst == 0:
                await asyncio.sleep(0)
            yield event

    def cancel(self) -> None:  # pragma: no cover - the tests cancel the relay task
        pass


def spy(bridge: AnswerBridge):
    log = []
    for name in ("run_started", "retrieval_done", "text_appended", "sentence_closed", "attribution_arrived",
                 "run_completed", "run_failed", "run_cancelled", "run_finished"):
        getattr(bridge, name).connect(lambda *args, n=name: log.append((n, args)))
    return log


def test_thousands_of_deltas_arrive_as_a_few_batches(qtbot, qloop):
    tokens = [f"w{i} " for i in range(2000)]
    answer = "".join(tokens)
    run = ListRun([RunStarted("r", "q"), RetrievalDone(()), *map(TextDelta, tokens), Completed(answer)])
    bridge = AnswerBridge()
    log = spy(bridge)
    run_async(qtbot, qloop, bridge.relay(run))
    batches = [args[0] for name, args in log if name == "text_appended"]
    assert "".join(batches) == answer
    assert bridge.deltas == 2000
    # Painted per frame, not per token: a burst of 2,000 deltas is a handful of paints.
    assert len(batches) <= 2000 // 20
    assert [n for n, _ in log][-2:] == ["run_completed", "run_finished"]


def test_text_is_flushed_before_the_sentence_that_indexes_it(qtbot, qloop):
    text = "One sentence. Two sentences here."
    first = AnswerSentence(0, 0, 13, "One sentence.")
    span = SupportSpan("c", 0, 3, "One", 0.9)
    events = [RunStarted("r", "q"), RetrievalDone(()), TextDelta("One sen"), TextDelta("tence. Tw"),
              SentenceClosed(first), AttributionReady(first, (span,), 0.9, True), TextDelta("o sentences here."),
              Completed(text)]
    bridge = AnswerBridge()
    seen = []
    received = []
    bridge.text_appended.connect(received.append)
    bridge.sentence_closed.connect(lambda s: seen.append("".join(received)[s.start:s.end]))
    run_async(qtbot, qloop, bridge.relay(ListRun(events, burst=100)))
    assert seen == ["One sentence."]
    assert "".join(received) == text


def test_cancelling_the_relay_reports_the_partial_answer_once(qtbot, qloop):
    events = [RunStarted("r", "q"), RetrievalDone(()), TextDelta("Partial "), TextDelta("answer"),
              Completed("never reached")]
    bridge = AnswerBridge()
    log = spy(bridge)
    task = qloop.create_task(bridge.relay(ListRun(events, burst=1, stall_at=4)))
    qtbot.waitUntil(lambda: bridge.answer == "Partial answer")
    task.cancel()
    qtbot.waitUntil(task.done)
    assert task.cancelled()
    names = [n for n, _ in log]
    assert names.count("run_cancelled") == 1 and names.count("run_finished") == 1
    assert ("run_cancelled", ("Partial answer",)) in log
    assert "".join(args[0] for n, args in log if n == "text_appended") == "Partial answer"


def test_a_cancelled_event_from_the_engine_ends_the_run(qtbot, qloop):
    events = [RunStarted("r", "q"), TextDelta("Half"), Cancelled("Half")]
    bridge = AnswerBridge()
    log = spy(bridge)
    run_async(qtbot, qloop, bridge.relay(ListRun(events)))
    assert [n for n, _ in log][-3:] == ["text_appended", "run_cancelled", "run_finished"]

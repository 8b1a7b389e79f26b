"""The adapter between an answer's event stream (core) and Qt signals (gui).

`AnswerBridge.relay(run)` reads `run.events()` on the event loop and turns each
typed event into a signal; the widgets that listen know only signals and
slots (architecture rule 5). One bridge serves one run, so a late signal of a
cancelled run can never reach the next answer's widgets.

Text deltas are not forwarded one by one: a backend may deliver 2,000 tokens
a second, and per-token insertion into a QTextDocument is quadratic
(shared/docs/environment.md). Deltas are buffered and flushed as one
`text_appended` per frame by a single-shot QTimer. As in jupyter/qtconsole,
the flush interval adapts to how long the last flush (emit -> slot -> insert)
took, so a slow paint makes flushes rarer instead of starving the event loop.
Closed sentences and their attributions ride the same per-frame flush, right
after the text they refer to: forwarding each one at once would flush (and lay
out) the text once per sentence, a dozen times a frame at 2,000 tokens/s.
Every other event flushes what is buffered first, so listeners always have
the text a sentence's offsets refer to, and order is kept. When the run
completes, the last words are flushed and painted before `run_completed`
starts the card's final Markdown render (`_paint_before_completing`).

`replay(events)` forwards a recorded turn (`StoredTurn.replay()`, history)
through the very same signals at once, without frame pacing: a reopened answer
is built by the code that built it live, so its highlights are the same.
"""
from __future__ import annotations

import asyncio
import time

from PySide6.QtCore import QObject, QTimer, Signal

# One frame at 60 Hz; the flush never runs more often than this.
MIN_FLUSH_MS = 16
# However slow painting gets, the user sees progress at least this often.
MAX_FLUSH_MS = 100
# How long the bridge waits, when an answer completes, for the last words to be painted.
PAINT_WAIT_S = 0.002
# The interval is this multiple of the last flush's cost, so painting takes at
# most about a third of the event loop's time while text streams.
COST_FACTOR = 3


class AnswerBridge(QObject):
    """Turns one `AnswerRun`'s events into Qt signals, batching text per frame."""

    run_started = Signal(str)  # run id
    retrieval_done = Signal(object)  # tuple[RetrievedChunk, ...]
    status_changed = Signal(object)  # StatusChanged: what the model server says it is doing
    text_appended = Signal(str)  # a batch of deltas
    sentence_closed = Signal(object)  # AnswerSentence
    attribution_arrived = Signal(object)  # AttributionReady
    usage_reported = Signal(object)  # Usage
    run_completed = Signal(object)  # Completed
    run_failed = Signal(object)  # Failed
    run_cancelled = Signal(str)  # the partial answer
    run_finished = Signal()  # after exactly one of completed / failed / cancelled

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._buffer: list[str] = []
        self._held: list = []  # SentenceClosed / AttributionReady waiting for the next flush
        self._answer: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._interval_ms = MIN_FLUSH_MS
        self._last_flush = 0.0
        self._finished = False
        self.flushes = 0  # how many paints the run took (benchmarks read it)
        self.deltas = 0

    @property
    def interval_ms(self) -> int:
        return self._interval_ms

    @property
    def answer(self) -> str:
        """The answer text forwarded so far (plus what is buffered)."""
        return "".join(self._answer) + "".join(self._buffer)

    async def relay(self, run, observer=None) -> None:
        """Forward every event of `run` until it ends; cancellation ends it with `run_cancelled`.

        `observer(event)` (if given) sees every event first, deltas included:
        the history's TurnRecorder reads the same stream the widgets do.
        """
        from core.events import Completed

        try:
            async for event in run.events():
                if observer is not None:
                    observer(event)
                if isinstance(event, Completed) and (self._answer or self._buffer):
                    await self._paint_before_completing(event)
                self._forward(event, paced=True)
        except asyncio.CancelledError:
            # The task was cancelled (a new question, Stop, closing the window):
            # `events()` has cancelled the producer; say so with what streamed.
            self.flush()
            self._finish(self.run_cancelled, self.answer)
            raise
        finally:
            self._timer.stop()
            if not self._finished:  # the stream ended without a terminal event (a bug upstream)
                self.flush()
                self._finish(self.run_cancelled, self.answer)

    async def _paint_before_completing(self, completed) -> None:
        """Let the window paint the last streamed words before the card's final Markdown render.

        The render of a long answer is a frame's work of its own (~25 ms for
        4,000 tokens); done in the same event-loop pass as the last batch, the
        last words waited for it and the two made one long stall. One short
        wait splits them: Qt paints the plain text first.
        """
        self.flush()
        try:
            await asyncio.sleep(PAINT_WAIT_S)
        except asyncio.CancelledError:
            self._forward(completed, paced=True)  # the run did complete: say so, then stop
            raise

    def replay(self, events) -> None:
        """Forward recorded events now, in order: the signals of a live run without the per-frame pacing."""
        for event in events:
            self._forward(event, paced=False)
        self.flush()
        if not self._finished:
            self._finish(self.run_cancelled, self.answer)

    def _forward(self, event, *, paced: bool) -> None:
        from core import events as ev

        if isinstance(event, ev.TextDelta):
            if paced:
                self._on_delta(event.text)
            elif event.text:
                self.deltas += 1
                self._buffer.append(event.text)
            return
        if isinstance(event, (ev.SentenceClosed, ev.AttributionReady)):
            self._held.append(event)
            if paced:
                self._schedule_flush()
            return
        self.flush()
        if isinstance(event, ev.RunStarted):
            self.run_started.emit(event.run_id)
        elif isinstance(event, ev.RetrievalDone):
            self.retrieval_done.emit(event.chunks)
        elif isinstance(event, ev.StatusChanged):
            self.status_changed.emit(event)
        elif isinstance(event, ev.Usage):
            self.usage_reported.emit(event)
        elif isinstance(event, ev.Completed):
            self._finish(self.run_completed, event)
        elif isinstance(event, ev.Failed):
            self._finish(self.run_failed, event)
        elif isinstance(event, ev.Cancelled):
            self._finish(self.run_cancelled, event.partial_answer or self.answer)

    def _finish(self, signal, payload) -> None:
        if self._finished:
            return
        self._finished = True
        signal.emit(payload)
        self.run_finished.emit()

    # -- batching ----------------------------------------------------------
    def _on_delta(self, text: str) -> None:
        if not text:
            return
        self.deltas += 1
        self._buffer.append(text)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._timer.isActive():
            return
        since_ms = (time.perf_counter() - self._last_flush) * 1000
        if since_ms >= self._interval_ms:
            # Leading edge: a slow trickle of tokens shows each one at once.
            self.flush()
        else:
            self._timer.start(max(1, int(self._interval_ms - since_ms)))

    def _on_timer_timeout(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Emit the buffered text (one `text_appended`), then the held sentence events; adapt the interval."""
        if not self._buffer and not self._held:
            return
        started = time.perf_counter()
        if self._buffer:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._answer.append(text)
            self.text_appended.emit(text)
        from core.events import SentenceClosed

        held, self._held = self._held, []
        for event in held:
            if isinstance(event, SentenceClosed):
                self.sentence_closed.emit(event.sentence)
            else:
                self.attribution_arrived.emit(event)
        cost_ms = (time.perf_counter() - started) * 1000
        self._last_flush = time.perf_counter()
        self.flushes += 1
        self._interval_ms = int(min(MAX_FLUSH_MS, max(MIN_FLUSH_MS, cost_ms * COST_FACTOR)))

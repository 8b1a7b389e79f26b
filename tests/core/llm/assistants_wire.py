"""Assistants API v2 event streams for `core.faults.fake_openai.AssistantsRoutes` to replay.

Where the founding document gives an event's payload (run steps with
message-creation and tool-call deltas, the `error` event; kept verbatim in
tests/core/data/assistants_v2_events.md), it is sent byte for byte: the
`data` object's text is cut out of the document unchanged and written as
SSE `data:` lines, which the SDK's decoder joins back into the same text.
The events the document does not show (the run lifecycle, the message and its
deltas with `file_citation` annotations, `done`) are built in the shapes the
`openai` SDK's own types define (`core.faults.fake_openai`; the tests check
them against those types).
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from core.faults.fake_openai import (ASSISTANT_ID, RUN_ID, THREAD_ID, AssistantsRoutes, Handler, file_citation,
                                     message_delta, message_object, run_object)

SEED_COPY = Path(__file__).resolve().parents[1] / "data" / "assistants_v2_events.md"
# Where the copy came from: shared/seeds/ beside the checkout on the project's machines.
SEED_NAME = "000_9ae4646ba0210efc.txt"
SEED_ORIGINAL = next((parent / "shared" / "seeds" / SEED_NAME for parent in Path(__file__).resolve().parents
                      if (parent / "shared" / "seeds" / SEED_NAME).is_file()), None)
SEED_LINES = (17, 143)  # 1-based, inclusive: the part of the original the copy holds

USAGE = {"prompt_tokens": 412, "completion_tokens": 31, "total_tokens": 443}
# The run's answer: the sample guide backs its first sentence (the quote is a
# passage of resources/sample_corpus/getting-started.md); the citation marker
# is OpenAI's file-search notation, which the pipeline turns into "[n]".
MARKER = "【4:0†source】"
QUOTE = "Press Esc or click Stop to stop an answer early"
PIECES = ["Press Esc or click ", "Stop to stop an answer early", MARKER, ". ", "The part already written ",
          "is kept."]
ANSWER = "".join(PIECES)
FILE_ID = "file-getting-started"
# What the window and the CLI show, in order, for the events `happy_run` sends.
STATUS_SEQUENCE = ["created", "queued", "in_progress", "tool_call", "writing"]


# The clean-up requests an answer ends with.
CANCEL = ("POST", f"threads/{THREAD_ID}/runs/{RUN_ID}/cancel")
DELETE_THREAD = ("DELETE", f"threads/{THREAD_ID}")
DELETE_ASSISTANT = ("DELETE", f"assistants/{ASSISTANT_ID}")


def assert_cleaned_up(routes: AssistantsRoutes, *, cancelled: bool) -> None:
    """The answer's last requests: the run cancelled (only if it was still going) before its thread was
    deleted, and the assistant deleted (alongside, so in any order with those two)."""
    expected = [CANCEL, DELETE_THREAD, DELETE_ASSISTANT] if cancelled else [DELETE_THREAD, DELETE_ASSISTANT]
    last = routes.calls[-len(expected):]
    assert sorted(last) == sorted(expected), routes.calls
    assert routes.called(*CANCEL) == cancelled, routes.calls
    if cancelled:
        assert last.index(CANCEL) < last.index(DELETE_THREAD), routes.calls


def seed_events() -> list[tuple[str, str]]:
    """(event type, the `data` payload's exact text) of each complete JSON example in the document."""
    text = SEED_COPY.read_text(encoding="utf-8")
    events = []
    for block in re.findall(r"```json\n(.*?)\n```", text, flags=re.S):
        parsed = json.loads(block)
        start = block.index('"data": ') + len('"data": ')
        end = block.rstrip().rindex("\n}")  # the object's own closing brace comes last
        raw = block[start:end]
        assert json.loads(raw) == parsed["data"], "the cut must be exactly the data object"
        events.append((parsed["type"], raw))
    return events


def seed_event(kind: str, step_details: str | None = None) -> tuple[str, str]:
    """The document's `kind` event (for step deltas: the one whose `step_details.type` is `step_details`)."""
    for name, raw in seed_events():
        if name != kind:
            continue
        details = json.loads(raw).get("delta", {}).get("step_details", {})
        if step_details is None or details.get("type") == step_details:
            return name, raw
    raise LookupError(f"the founding document has no {kind} {step_details or ''}")


def send(h: Handler, kind: str, payload) -> None:
    h.event(kind, payload if isinstance(payload, str) else json.dumps(payload))


def _opening(h: Handler) -> None:
    """Run lifecycle up to the first text: created, queued, in progress, a tool call, the message step."""
    h.start_sse()
    send(h, "thread.run.created", run_object("queued"))
    send(h, "thread.run.queued", run_object("queued"))
    send(h, "thread.run.in_progress", run_object("in_progress"))
    send(h, *seed_event("thread.run.step.delta", "tool_calls"))
    send(h, *seed_event("thread.run.step.in_progress"))
    send(h, *seed_event("thread.run.step.delta", "message_creation"))
    send(h, "thread.message.created", message_object("in_progress"))
    send(h, "thread.message.in_progress", message_object("in_progress"))


def _deltas(h: Handler, pieces) -> None:
    written = 0
    for piece in pieces:
        notes = [file_citation(0, MARKER, written, FILE_ID, QUOTE)] if piece == MARKER else None
        send(h, "thread.message.delta", message_delta(piece, notes))
        written += len(piece)


def happy_run(h: Handler, body: dict) -> None:
    """A whole run: lifecycle, tool call, message deltas with a citation, completed, done."""
    _opening(h)
    _deltas(h, PIECES)
    send(h, "thread.message.completed", message_object("completed", ANSWER))
    send(h, *seed_event("thread.run.step.completed"))
    send(h, "thread.run.completed", run_object("completed", usage=USAGE))
    h.event("done", "[DONE]")
    h.end_stream()


PARTIAL = PIECES[:2]


def error_run(h: Handler, body: dict) -> None:
    """Part of the answer, then the document's `error` event."""
    _opening(h)
    _deltas(h, PARTIAL)
    send(h, *seed_event("error"))
    h.end_stream()


def ending_run(status: str, **run_fields):
    """Part of the answer, then the run ends in `status` (requires_action, incomplete, failed, expired...)."""
    def script(h: Handler, body: dict) -> None:
        _opening(h)
        _deltas(h, PARTIAL)
        send(h, f"thread.run.{status}", run_object(status, **run_fields))
        if status != "requires_action":  # a run waiting for tool outputs ends the stream there
            h.event("done", "[DONE]")
        h.end_stream()
    return script


class StalledRun:
    """Part of the answer, then nothing more until the server stops: a run the user stops."""

    def __init__(self) -> None:
        self.waiting = threading.Event()  # set once the partial answer is sent

    def __call__(self, h: Handler, body: dict) -> None:
        _opening(h)
        _deltas(h, PARTIAL)
        self.waiting.set()
        h.hold()

"""The Assistants API mode: the real `openai` client against a loopback server replaying Assistants v2 streams.

`core.faults.fake_openai`'s `FakeOpenAIServer` (the server the other OpenAI
backend tests and `sourcelight check faults` use) answers the Assistants
endpoints through `AssistantsRoutes`; the run streams come from
`tests/core/llm/assistants_wire.py`: the founding document's payloads byte
for byte where it gives them, the SDK's own shapes elsewhere. Checked: the
answer text, the statuses, the model's citations, the endings (completed,
error event, requires_action, incomplete, failed), that text already written
is kept, that the assistant and thread are deleted, that Stop cancels the run
on the server, and the 404 of a server that no longer offers the API.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from core.errors import BackendError, BackendUnavailable, InvalidQuestion, RateLimited
from core.faults.fake_openai import (ASSISTANT_ID, MESSAGE_ID, MODEL, RUN_ID, THREAD_ID, AssistantsRoutes,
                                     FakeOpenAIServer, assistant_object, file_citation, message_delta,
                                     message_object, run_object, thread_object)
from core.llm.assistants import GONE_MESSAGE, OpenAIAssistantsBackend
from core.llm.base import ChatMessage, ModelCitation
from tests.core.llm import assistants_wire as wire
from tests.core.llm.assistants_wire import CANCEL, assert_cleaned_up

TIMEOUT_S = 2.0
MESSAGES = [ChatMessage("system", "Answer from the numbered sources.\n\n[1] (guide.md)\nPress Esc to stop."),
            ChatMessage("user", "What is Sourcelight?"), ChatMessage("assistant", "A document chat app."),
            ChatMessage("user", "How do I stop an answer early?")]


@pytest.fixture(scope="module")
def server():
    srv = FakeOpenAIServer().start()
    yield srv
    srv.stop()


def serve(server: FakeOpenAIServer, name: str, run=None, **options) -> tuple[OpenAIAssistantsBackend, AssistantsRoutes]:
    routes = AssistantsRoutes(run, **options)
    server.scripts[name] = routes
    return OpenAIAssistantsBackend(MODEL, server.url(name), "sk-test-0123456789abcdef", TIMEOUT_S,
                                   max_retries=0), routes


async def collect(backend, messages=MESSAGES):
    """(chunks, error): every chunk the backend yielded, and the error that ended it, if any."""
    chunks, error = [], None
    try:
        async for chunk in backend.stream(messages, max_tokens=64, temperature=0.2):
            chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - the tests assert on the exact type
        error = exc
    finally:
        await backend.aclose()
    return chunks, error


def text_of(chunks) -> str:
    return "".join(c.text for c in chunks)


def statuses(chunks) -> list[str]:
    return [c.status for c in chunks if c.status]


# -- the wire data itself ------------------------------------------------------------

def test_the_seed_copy_is_the_founding_document_verbatim():
    if wire.SEED_ORIGINAL is None:
        pytest.skip("shared/seeds is not beside this checkout")
    lines = wire.SEED_ORIGINAL.read_text(encoding="utf-8").splitlines(keepends=True)
    first, last = wire.SEED_LINES
    copy = wire.SEED_COPY.read_text(encoding="utf-8")
    assert copy.endswith("".join(lines[first - 1:last]))


def test_the_document_payloads_are_the_ones_replayed():
    kinds = [kind for kind, _ in wire.seed_events()]
    assert kinds == ["thread.run.step.in_progress", "thread.run.step.delta", "thread.run.step.delta",
                     "thread.run.step.completed", "error"]
    _, tool_delta = wire.seed_event("thread.run.step.delta", "tool_calls")
    assert '"name": "get_weather"' in tool_delta  # the raw text, as the document writes it


def test_built_events_have_the_shapes_of_the_sdks_own_types():
    from openai.types.beta import Assistant, Thread
    from openai.types.beta.threads import Message, MessageDeltaEvent, Run

    for status in ("queued", "in_progress", "completed", "cancelling"):
        Run.model_validate(run_object(status, usage=wire.USAGE if status == "completed" else None))
    Run.model_validate(run_object("incomplete", incomplete={"reason": "max_completion_tokens"}))
    Run.model_validate(run_object("failed", last_error={"code": "server_error", "message": "boom"}))
    Message.model_validate(message_object("completed", wire.ANSWER))
    event = MessageDeltaEvent.model_validate(message_delta(wire.MARKER, [file_citation(0, wire.MARKER, 47,
                                                                                       wire.FILE_ID, wire.QUOTE)]))
    assert event.delta.content[0].text.annotations[0].file_citation.quote == wire.QUOTE
    Assistant.model_validate(assistant_object({"model": MODEL, "instructions": "x", "tools": []}))
    Thread.model_validate(thread_object())


# -- a whole run -----------------------------------------------------------------------

async def test_a_run_streams_text_status_citations_and_usage_then_deletes_what_it_created(server):
    backend, routes = serve(server, "asst-happy", wire.happy_run)
    chunks, error = await collect(backend)
    assert error is None
    assert text_of(chunks) == wire.ANSWER
    assert statuses(chunks) == wire.STATUS_SEQUENCE
    tool = next(c for c in chunks if c.status == "tool_call")
    assert tool.status_message == "Calling a tool (get_weather)..."  # the name from the document's delta
    cited = [c for c in chunks if c.citations]
    assert len(cited) == 1 and cited[0].text == wire.MARKER
    assert cited[0].citations == (ModelCitation(wire.MARKER, wire.FILE_ID, wire.QUOTE),)
    final = chunks[-1]
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("stop", 412, 31)
    # What was sent: the system prompt (numbered sources) as the assistant's
    # instructions, the conversation as the thread, a streamed run.
    assistant = routes.bodies["assistants"]
    assert assistant["model"] == MODEL and assistant["instructions"] == MESSAGES[0].content
    assert assistant["tools"] == []
    thread = routes.bodies["threads"]
    assert [(m["role"], m["content"]) for m in thread["messages"]] == [(m.role, m.content) for m in MESSAGES[1:]]
    run = routes.bodies["runs"]
    assert run["stream"] is True and run["assistant_id"] == ASSISTANT_ID and run["max_completion_tokens"] == 64
    # Completed runs need no cancel; the thread and the assistant are gone.
    assert_cleaned_up(routes, cancelled=False)


async def test_the_error_event_keeps_the_partial_answer_and_says_what_to_do(server, assert_actionable):
    backend, routes = serve(server, "asst-error", wire.error_run)
    chunks, error = await collect(backend)
    assert text_of(chunks) == "".join(wire.PARTIAL)
    assert isinstance(error, BackendError) and error.code == "server_error"
    _, raw = wire.seed_event("error")
    assert json.loads(raw)["error"]["message"] in str(error)
    assert_actionable(error)
    # The run was still in progress on the server: cancelled, then everything deleted.
    assert_cleaned_up(routes, cancelled=True)


async def test_requires_action_ends_clearly_and_cancels_the_waiting_run(server, assert_actionable):
    action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
        {"id": "call_abc123", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}}]}}
    backend, routes = serve(server, "asst-action", wire.ending_run("requires_action", required_action=action))
    chunks, error = await collect(backend)
    assert text_of(chunks) == "".join(wire.PARTIAL)
    assert isinstance(error, BackendError) and error.code == "requires_action"
    assert "get_weather" in str(error) and "kept" in str(error)
    assert_actionable(error)
    assert_cleaned_up(routes, cancelled=True)


async def test_incomplete_at_the_answer_limit_is_a_length_finish(server):
    backend, routes = serve(server, "asst-incomplete", wire.ending_run(
        "incomplete", incomplete={"reason": "max_completion_tokens"}, usage=wire.USAGE))
    chunks, error = await collect(backend)
    assert error is None and text_of(chunks) == "".join(wire.PARTIAL)
    assert chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 31
    assert_cleaned_up(routes, cancelled=False)


async def test_incomplete_at_the_prompt_limit_asks_for_a_shorter_question(server, assert_actionable):
    backend, _ = serve(server, "asst-prompt-limit", wire.ending_run("incomplete",
                                                                    incomplete={"reason": "max_prompt_tokens"}))
    _, error = await collect(backend)
    assert isinstance(error, InvalidQuestion) and "Sources per answer" in str(error)
    assert_actionable(error)


async def test_a_failed_run_reports_the_servers_reason(server, assert_actionable):
    backend, routes = serve(server, "asst-failed", wire.ending_run(
        "failed", last_error={"code": "rate_limit_exceeded", "message": "Rate limit reached for requests"}))
    chunks, error = await collect(backend)
    assert text_of(chunks) == "".join(wire.PARTIAL)
    assert isinstance(error, RateLimited) and "Rate limit reached" in str(error)
    assert_actionable(error)
    assert_cleaned_up(routes, cancelled=False)


async def test_stop_cancels_the_run_on_the_server_and_deletes_the_thread_and_assistant(server):
    stalled = wire.StalledRun()
    backend, routes = serve(server, "asst-stop", stalled)
    received: list[str] = []

    async def consume():
        async for chunk in backend.stream(MESSAGES, max_tokens=64, temperature=0.2):
            received.append(chunk.text)

    task = asyncio.create_task(consume())
    while "".join(received) != "".join(wire.PARTIAL):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await backend.aclose()
    # The clean-up ran before the stop finished: nothing is left waiting on the server.
    assert_cleaned_up(routes, cancelled=True)


async def test_a_server_that_never_answers_the_cancel_holds_up_stop_only_for_the_clean_up_limit(server, monkeypatch):
    import core.llm.assistants as assistants

    monkeypatch.setattr(assistants, "CLEANUP_TIMEOUT_S", 0.3)
    stalled = wire.StalledRun()
    backend, routes = serve(server, "asst-stop-hang", stalled, hold=[CANCEL])
    received: list[str] = []

    async def consume():
        async for chunk in backend.stream(MESSAGES, max_tokens=64, temperature=0.2):
            received.append(chunk.text)

    task = asyncio.create_task(consume())
    while "".join(received) != "".join(wire.PARTIAL):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Stopped while the server still sat on the cancel request: the stop did not wait for it.
    assert routes.unanswered == 1
    # The assistant went alongside; the thread, whose run may still be going, was left to expire.
    assert routes.called("DELETE", f"assistants/{ASSISTANT_ID}")
    assert not routes.called("DELETE", f"threads/{THREAD_ID}")
    await backend.aclose()


async def test_a_404_from_the_assistants_endpoints_names_the_other_api_modes(server):
    backend, routes = serve(server, "asst-gone", wire.happy_run, gone=True)
    chunks, error = await collect(backend)
    assert chunks == []
    assert isinstance(error, BackendUnavailable) and str(error) == GONE_MESSAGE
    assert str(error).startswith("This server no longer offers the Assistants API - choose Chat Completions or "
                                 "Responses in Settings > Model")
    assert routes.calls == [("POST", "assistants")]  # nothing was created, so nothing to delete


async def test_check_runs_a_whole_answer(server):
    backend, routes = serve(server, "asst-check", wire.happy_run)
    try:
        message = await backend.check()
    finally:
        await backend.aclose()
    assert "Assistants API" in message and MODEL in message
    assert_cleaned_up(routes, cancelled=False)


def test_message_ids_agree_with_the_document():
    # The built events use the ids of the document's own examples, so one run reads as one.
    _, step = wire.seed_event("thread.run.step.completed")
    data = json.loads(step)
    assert (data["run_id"], data["thread_id"], data["assistant_id"]) == (RUN_ID, THREAD_ID, ASSISTANT_ID)
    assert data["step_details"]["message_creation"]["message_id"] == MESSAGE_ID


# -- through the answer pipeline ------------------------------------------------------

@pytest.fixture
def engine_for(tmp_path, embedder):
    from core.engine import Engine
    from core.settings import Settings

    engines = []

    def make(backend):
        engine = Engine(Settings(top_k=3), backend=backend, embedder=embedder, data_dir=tmp_path)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.pipeline.close()


async def test_the_pipeline_shows_statuses_and_compares_the_models_citation_with_the_measured_support(
        server, engine_for):
    from core.events import AttributionReady, Completed, RetrievalDone, StatusChanged, TextDelta

    backend, routes = serve(server, "asst-pipeline", wire.happy_run)
    engine = engine_for(backend)
    events = [e async for e in engine.ask("How do I stop an answer early?").events()]
    assert isinstance(events[-1], Completed)
    assert [e.status for e in events if isinstance(e, StatusChanged)] == wire.STATUS_SEQUENCE
    chunks = next(e for e in events if isinstance(e, RetrievalDone)).chunks
    # The citation's quote is in one of the numbered sources: its marker became that number.
    number = next(n for n, c in enumerate(chunks, start=1) if wire.QUOTE in " ".join(c.text.split()))
    answer = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert answer == wire.ANSWER.replace(wire.MARKER, f"[{number}]") == events[-1].answer
    first = next(e for e in events if isinstance(e, AttributionReady))
    assert first.cited == (number,)
    # Compared with the measured support as any "[n]" marker is.
    assert first.supported and first.citation_agrees is (first.sources[0].chunk_id == chunks[number - 1].id)
    assert first.citation_agrees is True
    # The sources went to the assistant as its instructions, numbered.
    assert f"[{number}]" in routes.bodies["assistants"]["instructions"]
    assert_cleaned_up(routes, cancelled=False)


async def test_the_pipeline_keeps_the_partial_answer_after_the_error_event(server, engine_for):
    from core.events import Failed

    backend, routes = serve(server, "asst-pipeline-error", wire.error_run)
    engine = engine_for(backend)
    events = [e async for e in engine.ask("How do I stop an answer early?").events()]
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error_type == "BackendError"
    assert failed.partial_answer == "".join(wire.PARTIAL)
    assert_cleaned_up(routes, cancelled=True)


def test_a_citation_is_numbered_by_its_quote_or_its_own_number_and_otherwise_left_as_written():
    from core.events import RetrievedChunk
    from core.llm.base import StreamChunk
    from core.answer.pipeline import with_source_markers

    chunks = [RetrievedChunk("a", "one.md", None, "Sourcelight reads PDF files.", 0.9),
              RetrievedChunk("b", "two.md", None, "Press Esc or click Stop to stop an answer early.", 0.8)]
    by_quote = StreamChunk(text=wire.MARKER, citations=(ModelCitation(wire.MARKER, wire.FILE_ID, wire.QUOTE),))
    assert with_source_markers(by_quote, chunks) == "[2]"
    by_number = StreamChunk(text=" 【1】.", citations=(ModelCitation("【1】", "file-x"),))
    assert with_source_markers(by_number, chunks) == " [1]."
    # Neither a known quote nor a source number: nothing is invented.
    unknown = StreamChunk(text=wire.MARKER, citations=(ModelCitation(wire.MARKER, "file-x", "not in any source"),))
    assert with_source_markers(unknown, chunks) == wire.MARKER
    out_of_range = StreamChunk(text="[7]", citations=(ModelCitation("[7]", "file-x"),))
    assert with_source_markers(out_of_range, chunks) == "[7]"

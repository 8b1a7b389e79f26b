"""Failure handling of the OpenAI backends against a scripted OpenAI-compatible HTTP server.

A real server cannot be made to fail on demand, so `core.faults.fake_openai`'s
`FakeOpenAIServer` (stdlib `http.server` on 127.0.0.1, in a thread; the same
server `sourcelight check faults` uses) replays OpenAI's real wire format:
HTTP status codes with `{"error": {"message", "type", "param", "code"}}`
bodies, Chat Completions SSE (`data: {chat.completion.chunk}` ... `data:
[DONE]`) in chunked transfer encoding, and Responses API SSE (`event: <type>`
plus `data: {...}`). Each test picks a scenario through the URL path
(`http://127.0.0.1:<port>/<scenario>/v1`), so the real `openai` SDK, its
retries and its SSE decoder are all exercised; only the server is scripted.

Timeouts are 0.5 s and retry waits 1 ms so the whole file runs in seconds.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest

from core.errors import (AuthenticationFailed, BackendError, BackendTimeout, BackendUnavailable, InvalidQuestion,
                         ModelNotFound, RateLimited)
from core.faults.fake_openai import (FAST_RETRY, MODEL, FakeOpenAIServer, Handler, Script, chat_chunk,
                                     error_body)
from core.llm.base import ChatMessage
from core.llm.openai_compat import OpenAIChatBackend, OpenAIResponsesBackend

TIMEOUT_S = 0.5
QUESTION = [ChatMessage("system", "Answer briefly."), ChatMessage("user", "What colour is the sky?")]


# -- OpenAI wire format (Chat Completions pieces come from core.faults.fake_openai) --------

USAGE = {"prompt_tokens": 23, "completion_tokens": 3, "total_tokens": 26,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def response_object(status: str, *, usage: dict | None = None, error: dict | None = None,
                    incomplete: dict | None = None) -> dict:
    return {"id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "object": "response",
            "created_at": 1741476542, "status": status, "error": error, "incomplete_details": incomplete,
            "instructions": None, "max_output_tokens": 64, "model": "gpt-4o-mini-2024-07-18", "output": [],
            "parallel_tool_calls": True, "previous_response_id": None, "reasoning": {"effort": None},
            "store": True, "temperature": 0.2, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}


RESPONSE_USAGE = {"input_tokens": 37, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 11,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 48}


@pytest.fixture(scope="module")
def server():
    srv = FakeOpenAIServer().start()
    yield srv
    srv.stop()


def scripted(server: FakeOpenAIServer, name: str):
    def register(script: Script) -> Script:
        server.scripts[name] = script
        return script
    return register


def chat_backend(server: FakeOpenAIServer, scenario: str, *, max_retries: int = 0,
                 api_key: str = "sk-test-0123456789abcdef") -> OpenAIChatBackend:
    return OpenAIChatBackend(MODEL, server.url(scenario), api_key, TIMEOUT_S, max_retries=max_retries)


async def collect(backend, messages=QUESTION, max_tokens: int = 64):
    """Consume a stream; returns (text, final chunk, error) so partial text survives a failure."""
    text, final, error = "", None, None
    try:
        async for chunk in backend.stream(messages, max_tokens=max_tokens, temperature=0.2):
            text += chunk.text
            if chunk.finish_reason:
                final = chunk
    except Exception as exc:  # noqa: BLE001 - the tests assert on the exact type below
        error = exc
    finally:
        await backend.aclose()
    return text, final, error


def happy_chat(h: Handler, body: dict) -> None:
    h.start_sse()
    h.data(chat_chunk("", role="assistant"))
    for piece in ("The sky", " is", " blue."):
        h.data(chat_chunk(piece))
    h.data(chat_chunk(finish="stop"))
    if body.get("stream_options", {}).get("include_usage"):
        h.data(chat_chunk(no_choices=True, usage=USAGE))
    h.data("[DONE]")
    h.end_stream()


# -- happy paths --------------------------------------------------------------------

async def test_chat_stream_happy_path_reports_usage(server):
    server.scripts["happy"] = happy_chat
    text, final, error = await collect(chat_backend(server, "happy"))
    assert error is None
    assert text == "The sky is blue."
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("stop", 23, 3)
    sent = server.bodies("happy")[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == MODEL and sent["max_tokens"] == 64
    assert sent["messages"][0] == {"role": "system", "content": "Answer briefly."}


async def test_server_rejecting_stream_options_still_streams(server):
    @scripted(server, "no-stream-options")
    def script(h, body):
        if "stream_options" in body:
            h.send_json(400, error_body("Unrecognized request argument supplied: stream_options",
                                        "invalid_request_error"))
        else:
            happy_chat(h, body)

    backend = chat_backend(server, "no-stream-options")
    text, final, error = await collect(backend)
    assert error is None and text == "The sky is blue." and final.finish_reason == "stop"
    assert final.prompt_tokens is None  # that server cannot report usage in a stream
    assert ["stream_options" in b for b in server.bodies("no-stream-options")] == [True, False]


async def test_check_reports_connection(server):
    server.scripts["check"] = happy_chat
    backend = chat_backend(server, "check")
    try:
        message = await backend.check()
    finally:
        await backend.aclose()
    assert server.url("check") in message and MODEL in message
    assert server.bodies("check")[0]["max_tokens"] == 1


async def test_cancelling_the_consumer_closes_the_http_stream(server):
    finished = threading.Event()

    @scripted(server, "slow")
    def script(h, body):
        try:
            h.start_sse()
            for i in range(200):
                h.data(chat_chunk(f" w{i}"))
                time.sleep(0.02)
        finally:
            finished.set()

    backend = chat_backend(server, "slow")
    received = []

    async def consume():
        async for chunk in backend.stream(QUESTION, max_tokens=64, temperature=0.2):
            received.append(chunk.text)

    task = asyncio.create_task(consume())
    while len(received) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await backend.aclose()
    # The server notices the closed socket on its next write instead of streaming all 200 pieces (4 s).
    assert await asyncio.to_thread(finished.wait, 2.0)
    assert "slow" in server.disconnects


# -- HTTP status errors ----------------------------------------------------------------

async def test_401_is_authentication_failed_without_leaking_the_key(server, assert_actionable, caplog):
    key = "sk-proj-SECRET0123456789"

    @scripted(server, "401")
    def script(h, body):
        # Some servers echo what they received; the message shown must not.
        h.send_json(401, error_body(f"Incorrect API key provided: {key}. You can find your API key at "
                                    "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                                    "invalid_api_key"))

    caplog.set_level(logging.DEBUG)
    text, _, error = await collect(chat_backend(server, "401", api_key=key))
    assert isinstance(error, AuthenticationFailed)
    assert "Incorrect API key provided" in str(error)
    assert key not in str(error) and key not in caplog.text
    assert_actionable(error)


async def test_403_is_authentication_failed(server, assert_actionable):
    server.scripts["403"] = lambda h, body: h.send_json(
        403, error_body(f"Project `proj_abc` does not have access to model `{MODEL}`", "invalid_request_error",
                        "model_not_found"))
    _, _, error = await collect(chat_backend(server, "403"))
    assert isinstance(error, AuthenticationFailed)
    assert "does not have access" in str(error) and MODEL in str(error)
    assert_actionable(error)


async def test_404_names_the_missing_model(server, assert_actionable):
    server.scripts["404"] = lambda h, body: h.send_json(
        404, error_body(f"The model `{body['model']}` does not exist or you do not have access to it.",
                        "invalid_request_error", "model_not_found"))
    _, _, error = await collect(chat_backend(server, "404"))
    assert isinstance(error, ModelNotFound)
    assert f"'{MODEL}'" in str(error)
    assert_actionable(error)


async def test_404_without_a_model_error_hints_at_the_url(server, assert_actionable):
    @scripted(server, "no-route")
    def script(h, body):
        # What Ollama's router answers when the URL lacks /v1: plain text, no JSON.
        data = b"404 page not found"
        h.send_response(404)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    _, _, error = await collect(chat_backend(server, "no-route"))
    assert isinstance(error, ModelNotFound)
    assert "404 page not found" in str(error) and "/v1" in str(error)
    assert_actionable(error)


async def test_context_length_exceeded_is_an_invalid_question(server, assert_actionable):
    server.scripts["too-long"] = lambda h, body: h.send_json(400, error_body(
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 "
        "tokens. Please reduce the length of the messages.", "invalid_request_error", "context_length_exceeded",
        "messages"))
    _, _, error = await collect(chat_backend(server, "too-long"))
    assert isinstance(error, InvalidQuestion) and "maximum context length" in str(error)
    assert_actionable(error)


async def test_429_then_success_is_retried_by_the_sdk(server):
    @scripted(server, "429-once")
    def script(h, body):
        if h.attempt == 1:
            h.send_json(429, error_body("Rate limit reached for gpt-4o-mini in organization org-x on requests "
                                        "per min (RPM): Limit 3, Used 3, Requested 1.", "requests",
                                        "rate_limit_exceeded"), FAST_RETRY)
        else:
            happy_chat(h, body)

    text, final, error = await collect(chat_backend(server, "429-once", max_retries=2))
    assert error is None and text == "The sky is blue." and final.finish_reason == "stop"
    assert len(server.bodies("429-once")) == 2


async def test_429_after_retries_is_rate_limited(server, assert_actionable):
    server.scripts["429"] = lambda h, body: h.send_json(
        429, error_body("Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): "
                        "Limit 200000, Used 200000, Requested 900.", "tokens", "rate_limit_exceeded"), FAST_RETRY)
    _, _, error = await collect(chat_backend(server, "429", max_retries=2))
    assert isinstance(error, RateLimited)
    assert "Rate limit reached" in str(error)
    assert len(server.bodies("429")) == 3  # first try + the SDK's two retries
    assert_actionable(error)


async def test_429_insufficient_quota_points_to_billing(server, assert_actionable):
    server.scripts["quota"] = lambda h, body: h.send_json(
        429, error_body("You exceeded your current quota, please check your plan and billing details.",
                        "insufficient_quota", "insufficient_quota"), FAST_RETRY)
    _, _, error = await collect(chat_backend(server, "quota"))
    assert isinstance(error, RateLimited) and "billing" in str(error)
    assert_actionable(error)


@pytest.mark.parametrize("status, message", [
    (500, "The server had an error while processing your request. Sorry about that!"),
    (503, "The engine is currently overloaded, please try again later."),
])
async def test_5xx_is_backend_error_after_retries(server, assert_actionable, status, message):
    scenario = f"status-{status}"
    server.scripts[scenario] = lambda h, body: h.send_json(
        status, error_body(message, "server_error"), FAST_RETRY)
    _, _, error = await collect(chat_backend(server, scenario, max_retries=1))
    assert isinstance(error, BackendError)
    assert message in str(error) and str(status) in str(error)
    assert len(server.bodies(scenario)) == 2
    assert_actionable(error)


# -- transport failures ------------------------------------------------------------------

async def test_connection_refused_names_the_url(free_port, assert_actionable):
    url = f"http://127.0.0.1:{free_port()}/v1"
    _, _, error = await collect(OpenAIChatBackend(MODEL, url, "sk-test", TIMEOUT_S, max_retries=0))
    assert isinstance(error, BackendUnavailable)
    assert url in str(error)
    assert_actionable(error)


async def test_connection_refused_on_ollama_port_asks_whether_ollama_runs():
    # Only meaningful when nothing listens on Ollama's port on this machine.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 11434)) == 0:
            pytest.skip("something listens on 11434 here")
    url = "http://127.0.0.1:11434/v1"
    _, _, error = await collect(OpenAIChatBackend("llama3.2", url, "not-needed", TIMEOUT_S, max_retries=0))
    assert isinstance(error, BackendUnavailable)
    assert str(error).startswith(f"Cannot reach {url} - is Ollama running?")


async def test_no_response_headers_is_timeout(server, assert_actionable):
    server.scripts["no-headers"] = lambda h, body: h.hold()
    started = time.monotonic()
    _, _, error = await collect(chat_backend(server, "no-headers"))
    assert isinstance(error, BackendTimeout)
    assert time.monotonic() - started < 3 * TIMEOUT_S + 1
    assert_actionable(error)


async def test_timeout_before_first_token(server, assert_actionable):
    @scripted(server, "silent")
    def script(h, body):
        h.start_sse()  # headers arrive, then nothing
        h.hold()

    started = time.monotonic()
    text, _, error = await collect(chat_backend(server, "silent"))
    assert isinstance(error, BackendTimeout) and text == ""
    assert "sent nothing" in str(error)
    assert time.monotonic() - started < 3 * TIMEOUT_S + 1
    assert_actionable(error)


async def test_stall_mid_stream_hits_the_idle_timeout(server, assert_actionable):
    @scripted(server, "stall")
    def script(h, body):
        h.start_sse()
        h.data(chat_chunk("", role="assistant"))
        h.data(chat_chunk("The sky"))
        h.hold()

    started = time.monotonic()
    text, _, error = await collect(chat_backend(server, "stall"))
    assert isinstance(error, BackendTimeout)
    assert text == "The sky"
    assert "stopped sending" in str(error)
    assert time.monotonic() - started < 3 * TIMEOUT_S + 1
    assert_actionable(error)


async def test_connection_dropped_mid_stream(server, assert_actionable):
    @scripted(server, "drop")
    def script(h, body):
        h.start_sse()
        h.data(chat_chunk("", role="assistant"))
        h.data(chat_chunk("The sky"))
        h.drop()

    text, _, error = await collect(chat_backend(server, "drop"))
    assert isinstance(error, BackendError)
    assert text == "The sky"
    assert "dropped" in str(error)
    assert_actionable(error)


# -- malformed or failing streams ------------------------------------------------------------

async def test_error_event_mid_stream_keeps_partial_text(server, assert_actionable):
    message = "The server had an error while processing your request. Sorry about that!"

    @scripted(server, "error-event")
    def script(h, body):
        h.start_sse()
        h.data(chat_chunk("", role="assistant"))
        h.data(chat_chunk("The sky"))
        h.data(chat_chunk(" is"))
        h.data(error_body(message, "server_error"))
        h.end_stream()

    text, _, error = await collect(chat_backend(server, "error-event"))
    assert text == "The sky is"
    assert isinstance(error, BackendError)
    assert message in str(error)
    assert_actionable(error)


async def test_malformed_json_chunk(server, assert_actionable):
    @scripted(server, "malformed")
    def script(h, body):
        h.start_sse()
        h.data(chat_chunk("The sky"))
        h.raw('data: {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": " is\n\n')
        h.data("[DONE]")
        h.end_stream()

    text, _, error = await collect(chat_backend(server, "malformed"))
    assert text == "The sky"
    assert isinstance(error, BackendError) and "malformed" in str(error)
    assert_actionable(error)


async def test_stream_without_finish_reason(server, assert_actionable):
    @scripted(server, "no-finish")
    def script(h, body):
        h.start_sse()
        h.data(chat_chunk("", role="assistant"))
        h.data(chat_chunk("The sky"))
        h.data("[DONE]")
        h.end_stream()

    text, _, error = await collect(chat_backend(server, "no-finish"))
    assert text == "The sky"
    assert isinstance(error, BackendError)
    assert "closed the stream before the answer finished" in str(error)
    assert_actionable(error)


async def test_missing_api_key(monkeypatch, assert_actionable):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _, _, error = await collect(OpenAIChatBackend(MODEL, "https://api.openai.com/v1", None, TIMEOUT_S))
    assert isinstance(error, AuthenticationFailed) and "OPENAI_API_KEY" in str(error)
    assert_actionable(error)


# -- Responses API ------------------------------------------------------------------------------

def responses_prelude(h: Handler) -> None:
    h.start_sse()
    h.data({"type": "response.created", "sequence_number": 0, "response": response_object("in_progress")},
           event="response.created")
    h.data({"type": "response.in_progress", "sequence_number": 1, "response": response_object("in_progress")},
           event="response.in_progress")
    h.data({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
            "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant",
                     "content": []}}, event="response.output_item.added")


def text_delta(text: str, seq: int) -> dict:
    return {"type": "response.output_text.delta", "sequence_number": seq, "item_id": "msg_1",
            "output_index": 0, "content_index": 0, "delta": text, "logprobs": []}


def responses_backend(server: FakeOpenAIServer, scenario: str) -> OpenAIResponsesBackend:
    return OpenAIResponsesBackend(MODEL, server.url(scenario), "sk-test-0123456789abcdef", TIMEOUT_S,
                                  max_retries=0)


async def test_responses_happy_path(server):
    @scripted(server, "responses-ok")
    def script(h, body):
        responses_prelude(h)
        for i, piece in enumerate(("The sky", " is", " blue.")):
            h.data(text_delta(piece, 3 + i), event="response.output_text.delta")
        h.data({"type": "response.output_text.done", "sequence_number": 6, "item_id": "msg_1", "output_index": 0,
                "content_index": 0, "text": "The sky is blue.", "logprobs": []}, event="response.output_text.done")
        h.data({"type": "response.completed", "sequence_number": 7,
                "response": response_object("completed", usage=RESPONSE_USAGE)}, event="response.completed")
        h.end_stream()

    text, final, error = await collect(responses_backend(server, "responses-ok"))
    assert error is None
    assert text == "The sky is blue."
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("stop", 37, 11)
    (sent,) = server.bodies("responses-ok")
    assert sent["stream"] is True and sent["max_output_tokens"] == 64
    assert sent["input"][1] == {"role": "user", "content": "What colour is the sky?"}
    assert server.requests[-1][1] == "responses"


async def test_responses_error_event_keeps_partial_text(server, assert_actionable):
    message = "The server had an error while processing your request. Sorry about that!"

    @scripted(server, "responses-error")
    def script(h, body):
        responses_prelude(h)
        h.data(text_delta("The sky", 3), event="response.output_text.delta")
        h.data({"type": "error", "code": "server_error", "message": message, "param": None,
                "sequence_number": 4}, event="error")
        h.end_stream()

    text, _, error = await collect(responses_backend(server, "responses-error"))
    assert text == "The sky"
    assert isinstance(error, BackendError) and message in str(error)
    assert_actionable(error)


async def test_responses_failed_event(server, assert_actionable):
    @scripted(server, "responses-failed")
    def script(h, body):
        responses_prelude(h)
        h.data(text_delta("The sky", 3), event="response.output_text.delta")
        h.data({"type": "response.failed", "sequence_number": 4, "response": response_object(
            "failed", error={"code": "server_error", "message": "The model produced invalid content."})},
            event="response.failed")
        h.end_stream()

    text, _, error = await collect(responses_backend(server, "responses-failed"))
    assert text == "The sky"
    assert isinstance(error, BackendError) and "invalid content" in str(error)
    assert_actionable(error)


async def test_responses_stream_without_completion(server, assert_actionable):
    @scripted(server, "responses-truncated")
    def script(h, body):
        responses_prelude(h)
        h.data(text_delta("The sky", 3), event="response.output_text.delta")
        h.end_stream()

    text, _, error = await collect(responses_backend(server, "responses-truncated"))
    assert text == "The sky"
    assert isinstance(error, BackendError) and "before the answer finished" in str(error)
    assert_actionable(error)

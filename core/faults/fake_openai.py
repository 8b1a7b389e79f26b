"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 that fails on demand.

A real server cannot be made to fail at a chosen moment, so this one replays
OpenAI's wire format and breaks it in the ways real servers do: HTTP status
errors with `{"error": {"message", "type", "param", "code"}}` bodies, Chat
Completions server-sent events (`data: {chat.completion.chunk}` ... `data:
[DONE]`) in chunked transfer encoding, an `error` payload mid-stream, a stall,
a dropped connection, a malformed chunk, a stream without a finish reason.
The real `openai` SDK, its retries and its SSE decoder run against it; only
the server is scripted.

It also speaks the Assistants API v2 (`AssistantsRoutes`: create an
assistant and a thread, a streamed run in `event: thread.*` server-sent
events, cancel, delete), for the `assistants` API mode.

The scenario is chosen by the URL path (`http://127.0.0.1:PORT/<scenario>/v1`)
so one server serves every case: the built-in `SCRIPTS` below, or scripts a
caller registers in `server.scripts`. It lives in core so `sourcelight check
faults` runs without the test tree; tests/core/llm/test_openai_faults.py
drives the same server with its own scripts (including the Responses API's
`event:` lines, which `Handler.data` can write).

The server stops itself: `stop()` ends it, and a watchdog ends it after
`max_lifetime_s` in any case, so a crashed caller never leaves a listener
behind; a held ("stalled") response waits at most `HOLD_S` seconds.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

HOLD_S = 10.0
MODEL = "gpt-4o-mini"
# The SDK treats Retry-After 0 as "no hint" and backs off 0.5 s, 1 s, ...;
# 1 ms is the smallest hint it honours, which keeps retried cases fast.
FAST_RETRY = {"retry-after-ms": "1"}


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def chat_chunk(content: str | None = None, *, role: str | None = None, finish: str | None = None,
               usage: dict | None = None, no_choices: bool = False) -> dict:
    """One `chat.completion.chunk` as OpenAI sends it (`no_choices`: the final usage-only chunk)."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    choices = [] if no_choices else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk",
            "created": 1741569952, "model": "gpt-4o-mini-2024-07-18", "service_tier": "default",
            "system_fingerprint": "fp_06737a9306", "choices": choices, "usage": usage}


class Handler(BaseHTTPRequestHandler):
    """Dispatches each request to the scenario named by the first path segment.

    A script is called as `script(handler, body)`; `handler.attempt` is how
    many requests this scenario has had, this one included (for "fail once,
    then succeed" scripts).
    """

    protocol_version = "HTTP/1.1"
    server: "FakeOpenAIServer"
    attempt = 0
    method = "GET"
    endpoint = ""  # the path after /v1/, e.g. "threads/thread_abc123/runs"

    def log_message(self, format: str, *args: Any) -> None:  # the suite's output stays clean
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        scenario, _, endpoint = self.path.lstrip("/").partition("/v1/")
        self.method, self.endpoint = self.command, endpoint.partition("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            body = {}
        self.attempt = self.server.record(scenario, endpoint, body, dict(self.headers))
        script = self.server.scripts.get(scenario) or SCRIPTS.get(scenario)
        try:
            if script is None:
                self.send_json(500, error_body(f"no script for {scenario!r}", "server_error"))
            else:
                script(self, body)
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnects.append(scenario)

    # -- helpers the scripts use ---------------------------------------------------------
    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

    def raw(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def data(self, payload: Any, event: str | None = None) -> None:
        """One SSE event: `data: <json>` (with `event: <type>` first, as the Responses API sends)."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.raw((f"event: {event}\n" if event else "") + f"data: {text}\n\n")

    def event(self, name: str, text: str) -> None:
        """One SSE event whose data is `text` exactly as given: a line break in it becomes a new
        `data:` line, which the client's SSE decoder joins again with "\n"."""
        lines = "".join(f"data: {line}\n" for line in text.split("\n"))
        self.raw(f"event: {name}\n{lines}\n")

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Cut the TCP connection in the middle of the chunked body."""
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def hold(self) -> None:
        """Send nothing more (a stalled server) until the server stops or HOLD_S passes."""
        self.server.release.wait(HOLD_S)

    def stream_text(self, pieces, *, finish: str | None = "stop", done: bool = True) -> None:
        self.start_sse()
        self.data(chat_chunk("", role="assistant"))
        for piece in pieces:
            self.data(chat_chunk(piece))
        if finish:
            self.data(chat_chunk(finish=finish))
        if done:
            self.data("[DONE]")
        self.end_stream()


Script = Callable[[Handler, dict], None]

# Partial text the failing streams send before they fail: the case checks it is kept.
PARTIAL = ["Press Esc ", "or click Stop. "]


def _happy(h: Handler, body: dict) -> None:
    h.stream_text(["Press Esc or click Stop to stop an answer early. ", "The part already written is kept."])


def _headers_then_silence(h: Handler, body: dict) -> None:
    h.start_sse()
    h.hold()


def _stall(h: Handler, body: dict) -> None:
    h.start_sse()
    h.data(chat_chunk("", role="assistant"))
    for piece in PARTIAL:
        h.data(chat_chunk(piece))
    h.hold()


def _drop(h: Handler, body: dict) -> None:
    h.start_sse()
    h.data(chat_chunk("", role="assistant"))
    for piece in PARTIAL:
        h.data(chat_chunk(piece))
    h.drop()


def _sse_error(h: Handler, body: dict) -> None:
    # What OpenAI sends when generation fails part-way (documented `server_error`).
    h.start_sse()
    h.data(chat_chunk("", role="assistant"))
    for piece in PARTIAL:
        h.data(chat_chunk(piece))
    h.data(error_body("The server had an error while processing your request. Sorry about that!",
                      "server_error", "server_error"))
    h.end_stream()


def _malformed(h: Handler, body: dict) -> None:
    h.start_sse()
    h.data(chat_chunk("", role="assistant"))
    for piece in PARTIAL:
        h.data(chat_chunk(piece))
    h.raw('data: {"id": "chatcmpl-fault", "choices": [{"index": 0, "delta": {"content": " is\n\n')
    h.data("[DONE]")
    h.end_stream()


def _no_finish(h: Handler, body: dict) -> None:
    h.stream_text(PARTIAL, finish=None)


def _status(status: int, message: str, type_: str, code: str | None = None) -> Script:
    def script(h: Handler, body: dict) -> None:
        h.send_json(status, error_body(message, type_, code), FAST_RETRY)
    return script


def _echo_key_401(h: Handler, body: dict) -> None:
    # OpenAI echoes (a prefix of) the key it received; some compatible servers echo all of it.
    key = (h.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
    h.send_json(401, error_body(f"Incorrect API key provided: {key}. You can find your API key at "
                                "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                                "invalid_api_key"))


def _hostile(h: Handler, body: dict) -> None:
    # Model output is untrusted: terminal escapes, HTML, Qt rich text and links.
    h.stream_text(HOSTILE_ANSWER)


HOSTILE_ANSWER = [
    "Press Esc to stop. \x1b[2J\x1b[31mRED\x1b[0m ",
    "\x1b]0;pwned-title\x07\x1b]8;;file:///etc/passwd\x07click\x1b]8;;\x07 ",
    "<script>alert(1)</script> <b>bold</b> <img src=\"file:///etc/passwd\"> ",
    "[run](javascript:alert(1)) [local](file:///etc/passwd) [web](https://example.com/ok). ",
    "\rOVERWRITE\x08\x08 \u009b31m C1 done.",
]

SCRIPTS: dict[str, Script] = {
    "happy": _happy,
    "silent": _headers_then_silence,
    "stall": _stall,
    "drop": _drop,
    "sse-error": _sse_error,
    "malformed": _malformed,
    "no-finish": _no_finish,
    "401": _status(401, "Incorrect API key provided: sk-wr***ong. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"),
    "403": _status(403, f"Project `proj_fault` does not have access to model `{MODEL}`", "invalid_request_error",
                   "model_not_found"),
    "404": _status(404, f"The model `{MODEL}` does not exist or you do not have access to it.",
                   "invalid_request_error", "model_not_found"),
    "429": _status(429, "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3.",
                   "requests", "rate_limit_exceeded"),
    "500": _status(500, "The server had an error while processing your request. Sorry about that!",
                   "server_error"),
    "503": _status(503, "The engine is currently overloaded, please try again later.", "server_error"),
    "echo-key-401": _echo_key_401,
    "hostile": _hostile,
    "hostile-error": _status(500, "\x1b[2J\x1b]0;pwned\x07<b>boom</b> <a href=\"file:///etc/passwd\">details</a>",
                             "server_error"),
}


# -- Assistants API v2 ------------------------------------------------------------------
# Objects in the shapes the `openai` SDK's own types define (openai.types.beta:
# Assistant, Thread, threads.Run, threads.Message, threads.MessageDeltaEvent),
# with the ids the API reference's examples use.

ASSISTANT_ID, THREAD_ID, RUN_ID, MESSAGE_ID = "asst_abc123", "thread_abc123", "run_abc123", "msg_abc123"
CREATED_AT = 1682033042


def assistant_object(body: dict) -> dict:
    return {"id": ASSISTANT_ID, "object": "assistant", "created_at": CREATED_AT, "name": body.get("name"),
            "description": None, "model": body.get("model") or MODEL, "instructions": body.get("instructions"),
            "tools": body.get("tools") or [], "tool_resources": None, "metadata": {}, "top_p": 1.0,
            "temperature": body.get("temperature", 1.0), "response_format": "auto"}


def thread_object() -> dict:
    return {"id": THREAD_ID, "object": "thread", "created_at": CREATED_AT, "metadata": {}, "tool_resources": None}


def run_object(status: str, *, usage: dict | None = None, last_error: dict | None = None,
               incomplete: dict | None = None, required_action: dict | None = None) -> dict:
    """A `thread.run` in `status`, as each `thread.run.*` event carries it."""
    ended = status in ("completed", "failed", "cancelled", "expired", "incomplete")
    return {"id": RUN_ID, "object": "thread.run", "created_at": CREATED_AT, "assistant_id": ASSISTANT_ID,
            "thread_id": THREAD_ID, "status": status, "started_at": None if status == "queued" else CREATED_AT + 1,
            "expires_at": None if ended else CREATED_AT + 600, "cancelled_at": None, "failed_at": None,
            "completed_at": CREATED_AT + 18 if status == "completed" else None, "required_action": required_action,
            "last_error": last_error, "model": MODEL, "instructions": "", "tools": [], "metadata": {},
            "incomplete_details": incomplete, "usage": usage, "temperature": 0.2, "top_p": 1.0,
            "max_completion_tokens": 400, "max_prompt_tokens": None,
            "truncation_strategy": {"type": "auto", "last_messages": None}, "response_format": "auto",
            "tool_choice": "auto", "parallel_tool_calls": True}


def message_object(status: str, text: str = "") -> dict:
    """The assistant's `thread.message` (`thread.message.created` / `in_progress` / `completed`)."""
    content = [{"type": "text", "text": {"value": text, "annotations": []}}] if text else []
    return {"id": MESSAGE_ID, "object": "thread.message", "created_at": CREATED_AT, "thread_id": THREAD_ID,
            "status": status, "incomplete_details": None, "completed_at": CREATED_AT + 17 if status == "completed"
            else None, "incomplete_at": None, "role": "assistant", "content": content, "assistant_id": ASSISTANT_ID,
            "run_id": RUN_ID, "attachments": [], "metadata": {}}


def message_delta(value: str, annotations: list[dict] | None = None) -> dict:
    """A `thread.message.delta` with one text piece (and its annotations, e.g. `file_citation`)."""
    text: dict[str, Any] = {"value": value}
    if annotations:
        text["annotations"] = annotations
    return {"id": MESSAGE_ID, "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": text}]}}


def file_citation(index: int, marker: str, start: int, file_id: str, quote: str | None = None) -> dict:
    """A `file_citation` annotation of a message delta (`FileCitationDeltaAnnotation`)."""
    citation: dict[str, Any] = {"file_id": file_id}
    if quote is not None:
        citation["quote"] = quote
    return {"index": index, "type": "file_citation", "text": marker, "start_index": start,
            "end_index": start + len(marker), "file_citation": citation}


class AssistantsRoutes:
    """A script for a scenario that speaks the Assistants API v2.

    Creating an assistant or a thread answers the objects above; creating a
    run calls `run(handler, body)`, which streams the run's events
    (`Handler.start_sse`, `Handler.event`, ...); cancelling answers the run
    as "cancelling"; deleting answers `*.deleted`. `gone=True` answers every
    Assistants endpoint 404, as OpenAI has since it retired the API; a
    request named in `hold` ((method, endpoint)) is never answered (a server
    that stopped answering), and `unanswered` counts those still waiting.
    Every request is kept in `calls` as (method, endpoint).
    """

    def __init__(self, run: Script | None = None, *, gone: bool = False, hold: tuple = ()):
        self.run = run
        self.gone = gone
        self.hold = set(hold)
        self.unanswered = 0
        self.calls: list[tuple[str, str]] = []
        self.bodies: dict[str, dict] = {}  # the last body per endpoint kind ("assistants", "threads", "runs")
        self._lock = threading.Lock()

    def __call__(self, h: Handler, body: dict) -> None:
        with self._lock:
            self.calls.append((h.method, h.endpoint))
            held = (h.method, h.endpoint) in self.hold
            self.unanswered += held
        if held:
            try:
                h.hold()
            finally:
                with self._lock:
                    self.unanswered -= 1
            return
        parts = h.endpoint.strip("/").split("/")
        if h.method == "GET" and parts == ["models"]:
            h.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED_AT,
                                                          "owned_by": "system"}]})
            return
        if self.gone:
            h.send_json(404, error_body(f"Invalid URL ({h.method} /v1/{h.endpoint})", "invalid_request_error"))
            return
        if h.method == "POST" and parts == ["assistants"]:
            self.bodies["assistants"] = body
            h.send_json(200, assistant_object(body))
        elif h.method == "POST" and parts == ["threads"]:
            self.bodies["threads"] = body
            h.send_json(200, thread_object())
        elif h.method == "POST" and len(parts) == 3 and parts[0] == "threads" and parts[2] == "runs":
            self.bodies["runs"] = body
            if self.run is None:
                h.send_json(500, error_body("no run script", "server_error"))
            else:
                self.run(h, body)
        elif h.method == "POST" and len(parts) == 5 and parts[2] == "runs" and parts[4] == "cancel":
            h.send_json(200, run_object("cancelling"))
        elif h.method == "DELETE" and len(parts) == 2 and parts[0] in ("threads", "assistants"):
            kind = "thread" if parts[0] == "threads" else "assistant"
            h.send_json(200, {"id": parts[1], "object": f"{kind}.deleted", "deleted": True})
        else:
            h.send_json(404, error_body(f"Invalid URL ({h.method} /v1/{h.endpoint})", "invalid_request_error"))

    def called(self, method: str, endpoint: str) -> bool:
        with self._lock:
            return (method, endpoint) in self.calls


class FakeOpenAIServer(ThreadingHTTPServer):
    """The scripted server; `url(scenario)` is the base URL a backend is given."""

    daemon_threads = True

    def __init__(self, max_lifetime_s: float = 900.0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.scripts: dict[str, Script] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []  # (scenario, endpoint, body, headers)
        self.disconnects: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._max_lifetime_s = max_lifetime_s

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sourcelight-fake-openai", daemon=True)
        self._thread.start()
        # Watchdog: whatever happens to the caller, the listener goes away.
        threading.Thread(target=self._watchdog, name="sourcelight-fake-openai-watchdog", daemon=True).start()
        return self

    def _watchdog(self) -> None:
        if not self._stopped.wait(self._max_lifetime_s):
            self.stop()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.release.set()
        self.shutdown()
        self.server_close()

    def record(self, scenario: str, endpoint: str, body: dict, headers: dict) -> int:
        """Remember a request; returns how many this scenario has had, this one included."""
        with self._lock:
            self.requests.append((scenario, endpoint, body, headers))
            return sum(1 for r in self.requests if r[0] == scenario)

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{scenario}/v1"

    def calls(self, scenario: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r[0] == scenario)

    def bodies(self, scenario: str) -> list[dict]:
        """The JSON bodies this scenario was sent, in order."""
        with self._lock:
            return [r[2] for r in self.requests if r[0] == scenario]


def free_port() -> int:
    """A loopback port nobody listens on at the moment of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

"""The Assistants API v2 mode of the OpenAI-compatible backend (`api_mode = "assistants"`).

One answer is one short-lived assistant and thread on the server:

1. `assistants.create` with the system prompt (the instructions and the
   numbered sources, as `core.answer.prompt` builds them) and no tools;
2. `threads.create` with the conversation (earlier turns and the question);
3. `threads.runs.create(..., stream=True)`, whose server-sent events are
   mapped into `StreamChunk`s:
   - `thread.message.delta` text -> answer text; its `file_citation`
     annotations -> `ModelCitation`s (the pipeline turns them into "[n]");
   - the run lifecycle (`thread.run.created`, `queued`, `in_progress`,
     `cancelling`) and run steps (`thread.run.step.*`, whose tool-call deltas
     name the tool) -> a status the window shows;
   - `thread.run.completed` -> the finish and the token usage;
     `incomplete` -> "length" (answer limit) or a too-long-question error;
     `requires_action` (the run waits for a tool Sourcelight does not run),
     `failed`, `cancelled`, `expired` and the `error` event -> typed errors
     whose messages say what to do; text already streamed is kept by the
     pipeline.
4. Whatever happens (completed, failed, stopped), the run is cancelled on the
   server if it is still going, and the thread and the assistant are deleted,
   so nothing the user asked stays on the server.

OpenAI retired the Assistants API on 2026-08-26 and answers 404; a 404 from
these endpoints says so and points to the other two API modes.

The `openai` SDK (3.x) still ships the client, marked deprecated: each call
warns. The warning is silenced at the call only, because the deprecation is
the very reason this mode explains itself when a server answers 404.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

import openai

from core.errors import BackendError, BackendTimeout, BackendUnavailable, InvalidQuestion, RateLimited, SourcelightError
from core.llm.base import ChatMessage, ModelCitation, StreamChunk
from core.llm.openai_compat import _SETTINGS_HINT, _OpenAIBackendBase, _error_code

log = logging.getLogger(__name__)

GONE_MESSAGE = ("This server no longer offers the Assistants API - choose Chat Completions or Responses in "
                f"{_SETTINGS_HINT}.")
# The clean-up after an answer (cancel the run, delete the thread and the
# assistant) must not keep a stopped answer, or the next question, waiting on
# a server that stopped answering: each call gets this long at most, no retries.
CLEANUP_TIMEOUT_S = 5.0
# Run states after which there is nothing left to cancel on the server.
_RUN_ENDED = {"completed", "failed", "cancelled", "expired", "incomplete"}

# What the window shows for each state the server reports.
STATUS_MESSAGES = {
    "created": "The server accepted the question...",
    "queued": "Queued on the server...",
    "in_progress": "The assistant is working on the answer...",
    "writing": "Writing...",
    "cancelling": "The server is cancelling the run...",
}
_TOOL_NAMES = {"file_search": "file search", "code_interpreter": "code interpreter"}


@dataclass
class _ServerObjects:
    """What this answer created on the server, so that it can be removed again."""

    assistant_id: str | None = None
    thread_id: str | None = None
    run_id: str | None = None
    run_status: str | None = None


def _quiet(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a deprecated Assistants method of the SDK without its DeprecationWarning (see the module doc)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return method(*args, **kwargs)


class OpenAIAssistantsBackend(_OpenAIBackendBase):
    """Assistants API v2 streaming: an assistant and a thread per answer, a streamed run, then clean-up."""

    @property
    def description(self) -> str:
        return f"{super().description} (Assistants API)"

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        client = self._require_client()
        model = await self._resolve_model(client)
        instructions = "\n\n".join(m.content for m in messages if m.role == "system")
        # Thread messages may only be the user's or the assistant's.
        conversation = [{"role": m.role, "content": m.content} for m in messages if m.role in ("user", "assistant")]
        created = _ServerObjects()
        last_status = ""
        try:
            assistant = await self._call(lambda: _quiet(
                client.beta.assistants.create, model=model, name="Sourcelight", instructions=instructions,
                tools=[], temperature=temperature))
            created.assistant_id = assistant.id
            thread = await self._call(lambda: _quiet(client.beta.threads.create, messages=conversation))
            created.thread_id = thread.id
            sdk_stream = await self._call(lambda: _quiet(
                client.beta.threads.runs.create, thread.id, assistant_id=assistant.id, stream=True,
                temperature=temperature, max_completion_tokens=max_tokens))
            final: StreamChunk | None = None
            async with contextlib.aclosing(self._events(sdk_stream)) as events:
                async for event in events:
                    for chunk in self._map_event(event, created):
                        if chunk.status:
                            if chunk.status_message == last_status:
                                continue  # every step delta repeats the state; show each change once
                            last_status = chunk.status_message
                        if chunk.finish_reason:
                            final = chunk
                        else:
                            yield chunk
            if final is None:
                raise self._truncated()
            yield final
        finally:
            # Also on Stop (the task is cancelled while it waits for the next
            # event; `_events` has closed the HTTP stream by now) and on errors.
            await self._clean_up(client, created)

    async def check(self) -> str:
        """Run a one-line answer end to end: proves the URL, the key, the model and the Assistants endpoints."""
        async for _ in self.stream([ChatMessage("user", "Say OK.")], max_tokens=16, temperature=0.0):
            pass
        return f"Connected to {self._base_url} (model {self._model or 'server default'}, Assistants API)"

    # -- requests ------------------------------------------------------------------

    async def _call(self, request: Callable[[], Any]) -> Any:
        """Send one Assistants request; a 404 means the server does not offer the API (any more)."""
        try:
            return await request()
        except openai.NotFoundError as exc:
            if _error_code(exc) == "model_not_found":
                raise self._map_error(exc, mid_stream=False) from exc
            raise BackendUnavailable(GONE_MESSAGE, code="assistants_unavailable") from exc
        except openai.OpenAIError as exc:
            raise self._map_error(exc, mid_stream=False) from exc

    async def _clean_up(self, client: openai.AsyncOpenAI, created: _ServerObjects) -> None:
        """Cancel the run if it still runs, then delete the thread; delete the assistant alongside.

        Failures are only logged: the answer itself is not affected, and the
        server drops what is left when it expires. The assistant does not
        depend on the thread, so it is deleted at the same time, and the whole
        clean-up gets `CLEANUP_TIMEOUT_S`: a server that stopped answering
        delays a stopped answer (and the next question) by that much at most.
        """
        limit = min(self._timeout_s, CLEANUP_TIMEOUT_S)
        quick = client.with_options(max_retries=0, timeout=limit)

        async def attempt(what: str, request: Callable[[], Any]) -> None:
            try:
                await request()
            except openai.OpenAIError as exc:
                log.warning("Could not %s at %s: %s", what, self._base_url, self._scrub(str(exc)))

        async def run_and_thread() -> None:
            # A thread with a run still going may not be deletable: cancel first.
            if created.run_id and created.thread_id and created.run_status not in _RUN_ENDED:
                await attempt("cancel the run", lambda: _quiet(quick.beta.threads.runs.cancel, created.run_id,
                                                               thread_id=created.thread_id))
            if created.thread_id:
                await attempt("delete the thread", lambda: _quiet(quick.beta.threads.delete, created.thread_id))

        async def assistant() -> None:
            if created.assistant_id:
                await attempt("delete the assistant", lambda: _quiet(quick.beta.assistants.delete,
                                                                     created.assistant_id))

        try:
            async with asyncio.timeout(limit):
                await asyncio.gather(run_and_thread(), assistant())
        except TimeoutError:
            log.warning("%s did not confirm the clean-up of the answer's run within %g s; the server drops "
                        "what is left when it expires", self._base_url, limit)

    # -- events --------------------------------------------------------------------

    def _map_event(self, event: Any, created: _ServerObjects) -> Iterator[StreamChunk]:
        """The chunks one `AssistantStreamEvent` stands for; raises the typed error for a failed ending."""
        kind = getattr(event, "event", None) or getattr(event, "type", None) or ""
        data = getattr(event, "data", None)
        if kind == "error":  # the SDK raises for `error` events itself; this guards other paths
            raise self._stream_error(getattr(data, "code", None), getattr(data, "message", None))
        if kind.startswith("thread.run.step."):
            yield from self._step_status(data)
        elif kind.startswith("thread.run."):
            yield from self._run_event(kind.removeprefix("thread.run."), data, created)
        elif kind in ("thread.message.created", "thread.message.in_progress"):
            yield _status("writing")
        elif kind == "thread.message.delta":
            yield from self._message_delta(data)
        # thread.created, thread.message.completed/incomplete and unknown events
        # add nothing: the run's own ending says how the answer ended.

    def _run_event(self, state: str, run: Any, created: _ServerObjects) -> Iterator[StreamChunk]:
        created.run_id = getattr(run, "id", None) or created.run_id
        created.run_status = getattr(run, "status", None) or state
        if state in ("created", "queued", "in_progress", "cancelling"):
            yield _status(state)
        elif state == "completed":
            usage = getattr(run, "usage", None)
            yield StreamChunk(finish_reason="stop",
                              prompt_tokens=getattr(usage, "prompt_tokens", None) if usage is not None else None,
                              completion_tokens=getattr(usage, "completion_tokens", None) if usage is not None
                              else None)
        elif state == "incomplete":
            reason = getattr(getattr(run, "incomplete_details", None), "reason", None)
            if reason == "max_prompt_tokens":
                raise InvalidQuestion(
                    f"The question and its sources are too long for model '{self._model or 'the server model'}' "
                    "(the server stopped the run at its prompt limit) - ask a shorter question or lower "
                    "'Sources per answer' in Settings.")
            usage = getattr(run, "usage", None)
            # The answer limit (`max_completion_tokens`) is what Sourcelight sets: the card says so.
            yield StreamChunk(finish_reason="length",
                              prompt_tokens=getattr(usage, "prompt_tokens", None) if usage is not None else None,
                              completion_tokens=getattr(usage, "completion_tokens", None) if usage is not None
                              else None)
        elif state == "requires_action":
            names = _required_tools(run)
            which = f" ({', '.join(names)})" if names else ""
            raise BackendError(
                f"The assistant stopped to wait for the result of a tool{which}, and Sourcelight runs no tools "
                "- the part already written is kept; ask again, or choose Chat Completions or Responses in "
                f"{_SETTINGS_HINT}.", code="requires_action")
        elif state == "failed":
            error = getattr(run, "last_error", None)
            raise self._stream_error(getattr(error, "code", None), getattr(error, "message", None))
        elif state == "cancelled":
            raise BackendError(f"{self._base_url} cancelled the run before the answer finished - the part already "
                               "written is kept; try again.", code="run_cancelled")
        elif state == "expired":
            raise BackendTimeout(f"The run expired on {self._base_url} before the answer finished - the part "
                                 "already written is kept; try again, or choose another model in "
                                 f"{_SETTINGS_HINT}.")

    def _step_status(self, step: Any) -> Iterator[StreamChunk]:
        # Run steps (`thread.run.step.*`) carry `step_details`; their deltas carry `delta.step_details`.
        delta = getattr(step, "delta", None)
        details = getattr(delta, "step_details", None) if delta is not None else getattr(step, "step_details", None)
        kind = getattr(details, "type", None)
        if kind == "tool_calls":
            names = [_tool_name(call) for call in getattr(details, "tool_calls", None) or ()]
            names = [n for n in dict.fromkeys(names) if n]
            which = f" ({', '.join(names)})" if names else ""
            yield StreamChunk(status="tool_call", status_message=f"Calling a tool{which}...")
        elif kind == "message_creation":
            yield _status("writing")

    def _message_delta(self, data: Any) -> Iterator[StreamChunk]:
        delta = getattr(data, "delta", None)
        for block in getattr(delta, "content", None) or ():
            block_type = getattr(block, "type", None)
            if block_type == "text":
                text = getattr(block, "text", None)
                value = getattr(text, "value", None) or ""
                citations = tuple(
                    ModelCitation(marker=getattr(a, "text", None) or "",
                                  file_id=getattr(getattr(a, "file_citation", None), "file_id", None),
                                  quote=getattr(getattr(a, "file_citation", None), "quote", None))
                    for a in getattr(text, "annotations", None) or ()
                    if getattr(a, "type", None) == "file_citation")
                if value or citations:
                    yield StreamChunk(text=value, citations=citations)
            elif block_type == "refusal":
                # A refusal is the model's answer too; it is shown as written.
                refusal = getattr(block, "refusal", None)
                if refusal:
                    yield StreamChunk(text=refusal)

    def _stream_error(self, code: str | None, message: str | None) -> SourcelightError:
        message = self._scrub(message or "no details given")
        if code in ("rate_limit_exceeded", "insufficient_quota"):
            return RateLimited(f"{self._base_url} stopped the answer: {message} - wait a minute and try again; "
                               "if it persists, check your plan and billing.")
        if code == "invalid_prompt":
            return InvalidQuestion(f"{self._base_url} refused the question: {message} - rephrase the question "
                                   "and ask again.")
        return BackendError(f"The server reported an error while answering: {message} - try again in a moment; "
                            f"if it keeps happening, pick another model or API in {_SETTINGS_HINT}.")


def _status(state: str) -> StreamChunk:
    return StreamChunk(status=state, status_message=STATUS_MESSAGES[state])


def _tool_name(call: Any) -> str:
    kind = getattr(call, "type", None) or ""
    if kind == "function":
        return getattr(getattr(call, "function", None), "name", None) or "a function"
    return _TOOL_NAMES.get(kind, kind)


def _required_tools(run: Any) -> list[str]:
    action = getattr(run, "required_action", None)
    outputs = getattr(action, "submit_tool_outputs", None)
    names = [getattr(getattr(call, "function", None), "name", None) for call in
             getattr(outputs, "tool_calls", None) or ()]
    return [n for n in dict.fromkeys(names) if n]

"""Backends that talk to OpenAI or any OpenAI-compatible server through the `openai` SDK.

Three wire protocols, one behaviour:
- `OpenAIChatBackend`: Chat Completions streaming, which every compatible
  server speaks (Ollama, LM Studio, vLLM, llama.cpp server) as well as OpenAI.
- `OpenAIResponsesBackend`: OpenAI's Responses API streaming
  (`response.output_text.delta` ... `response.completed`).
- `OpenAIAssistantsBackend`: the Assistants API v2 (assistant, thread, run
  with `stream=True`). OpenAI retired it on 2026-08-26 and answers 404; it is
  here for self-hosted servers that implement the same API. Lives in
  `core.llm.assistants`, which reuses the client set-up and error mapping below.

Everything that can go wrong is turned into one of the typed errors of
`core.errors`, with a message that says what happened and what to do next,
because the GUI and the CLI show these messages as they are. The SDK's own
retries (429, 5xx, connection errors; with backoff and `Retry-After`) are kept;
on top of them each streamed event gets an idle timeout, because the SDK's HTTP
timeout is per socket read and a server that trickles keep-alive bytes or
stalls between events would otherwise hold an answer open indefinitely.

The API key is handed to the SDK only. It never appears in a message: server
error texts are scrubbed of it before they are shown, and nothing here logs it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, AsyncIterator, Sequence
from urllib.parse import urlsplit

import openai

from core.errors import (AuthenticationFailed, BackendError, BackendTimeout, BackendUnavailable, InvalidQuestion,
                         ModelNotFound, RateLimited, SourcelightError)
from core.llm.base import ChatMessage, StreamChunk
from core.settings import COMPATIBLE_PRESETS

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"

_SETTINGS_HINT = "Settings > Model"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
# The Responses API refuses max_output_tokens below 16, so the connection check asks for that many.
_RESPONSES_MIN_OUTPUT_TOKENS = 16


def _server_message(exc: openai.APIError) -> str:
    """The human-readable message the server put in its error body, else the SDK's text."""
    body = exc.body
    if isinstance(body, dict):
        # "message" is OpenAI's shape; FastAPI-based servers (llama.cpp's Python
        # server, vLLM) answer {"detail": ...}.
        for key in ("message", "detail"):
            message = body.get(key)
            if isinstance(message, str) and message:
                return message
    elif isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return exc.message


def _error_code(exc: openai.APIError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        for key in ("code", "type"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return exc.code


class _OpenAIBackendBase:
    """Client set-up, error mapping and idle-timed iteration shared by both protocols."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout_s: float,
                 max_retries: int = 2):
        self._model = (model or "").strip()
        self._base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).strip().rstrip("/")
        self._timeout_s = float(timeout_s)
        key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        self._api_key = key
        self._client: openai.AsyncOpenAI | None = None
        if key:
            # Connecting gets its own, shorter bound: an unreachable host should
            # say so quickly instead of waiting out the full answer timeout.
            timeout = openai.Timeout(self._timeout_s, connect=min(self._timeout_s, 10.0))
            self._client = openai.AsyncOpenAI(api_key=key, base_url=self._base_url, timeout=timeout,
                                              max_retries=max_retries)

    # -- shared public surface ----------------------------------------------------

    @property
    def description(self) -> str:
        return f"{self._model or 'the server default model'} at {self._base_url}"

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self._model!r}, base_url={self._base_url!r})"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    # -- helpers ------------------------------------------------------------------

    def _require_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            raise AuthenticationFailed(
                f"No API key is set for {self._base_url} - enter your key in {_SETTINGS_HINT}, "
                "or set the OPENAI_API_KEY environment variable.")
        return self._client

    def _is_openai(self) -> bool:
        return (urlsplit(self._base_url).hostname or "").endswith("openai.com")

    def _scrub(self, text: str) -> str:
        if self._api_key and len(self._api_key) >= 8:
            text = text.replace(self._api_key, "[API key]")
        return text

    def _unreachable_hint(self) -> str:
        parts = urlsplit(self._base_url)
        if self._is_openai():
            return f"check your internet connection or proxy, then try again ({_SETTINGS_HINT})"
        if (parts.hostname or "") in _LOOPBACK_HOSTS:
            for name, preset in COMPATIBLE_PRESETS.items():
                if urlsplit(preset).port == parts.port:
                    return f"is {name} running? Check the server URL in {_SETTINGS_HINT}"
        return f"is the server running? Check the server URL in {_SETTINGS_HINT}"

    def _map_error(self, exc: BaseException, *, mid_stream: bool) -> SourcelightError:
        """Translate an SDK/transport failure into the typed error the user sees."""
        url = self._base_url
        model = self._model or "(server default)"
        if isinstance(exc, openai.APITimeoutError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else ""
            if "Connect" in cause:
                return BackendUnavailable(f"Cannot reach {url} (connecting timed out) - {self._unreachable_hint()}.")
            return BackendTimeout(
                f"{url} did not answer within {self._timeout_s:g} s - the server may be busy or still loading the "
                f"model; try again, or raise 'Timeout' in {_SETTINGS_HINT}.")
        if isinstance(exc, openai.APIConnectionError):
            if mid_stream:
                return BackendError(
                    f"The connection to {url} dropped before the answer finished - try again; if it keeps "
                    "happening, check the server's log.")
            if _name_not_found(exc):
                host = urlsplit(url).hostname or url
                return BackendUnavailable(
                    f"Cannot reach {url}: the host name {host!r} could not be found - check its spelling in "
                    f"the server URL ({_SETTINGS_HINT}) and that this computer is online.")
            return BackendUnavailable(f"Cannot reach {url} - {self._unreachable_hint()}.")
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc, url, model)
        if isinstance(exc, openai.APIError):
            # An `error` payload inside the event stream (OpenAI sends
            # `data: {"error": {...}}` when generation fails part-way).
            message = self._scrub(_server_message(exc))
            return BackendError(f"The server reported an error while answering: {message} - try again in a "
                                "moment; if it keeps happening, check the server or pick another model in "
                                f"{_SETTINGS_HINT}.")
        if isinstance(exc, ValueError):
            # json.JSONDecodeError from the SDK's SSE decoder: the stream is corrupt.
            return BackendError(f"{url} sent a malformed stream chunk (not valid JSON) - try again; if it keeps "
                                "happening, the server is not OpenAI-compatible enough: check its version or "
                                f"the URL in {_SETTINGS_HINT}.")
        return BackendError(f"The request to {url} failed ({self._scrub(str(exc))}) - try again; if it keeps "
                            f"failing, check the server and {_SETTINGS_HINT}.")

    def _map_status(self, exc: openai.APIStatusError, url: str, model: str) -> SourcelightError:
        status = exc.status_code
        message = self._scrub(_server_message(exc))
        code = _error_code(exc) or ""
        if status == 401:
            return AuthenticationFailed(f"{url} rejected the API key ({message}) - enter a valid key in "
                                        f"{_SETTINGS_HINT}.")
        if status == 403:
            return AuthenticationFailed(f"{url} refused access to model '{model}' ({message}) - check that your key "
                                        f"may use this model, or choose another model in {_SETTINGS_HINT}.")
        if status == 404 or code == "model_not_found":
            # llama.cpp's Python server reports a missing model as 400 model_not_found.
            if code == "model_not_found" or (self._model and self._model in message):
                return ModelNotFound(f"The model '{model}' is not available at {url} ({message}) - check the model "
                                     f"name in {_SETTINGS_HINT} (for Ollama, run `ollama pull {model}` first).")
            return ModelNotFound(f"{url} has no chat endpoint for model '{model}' (404: {message}) - check that the "
                                 f"server URL ends in /v1 and the model name in {_SETTINGS_HINT}.")
        if status == 429:
            if code == "insufficient_quota":
                return RateLimited(f"{url} says the account's quota is used up ({message}) - check your plan and "
                                   "billing, then try again.")
            return RateLimited(f"{url} is rate-limiting requests ({message}) - wait a minute and try again.")
        if status in (400, 413, 422) and (code == "context_length_exceeded" or "context length" in message.lower()):
            return InvalidQuestion(f"The question and its sources are too long for model '{model}' ({message}) - "
                                   "ask a shorter question or lower 'Sources per answer' in Settings.")
        if status >= 500:
            return BackendError(f"The server at {url} failed ({status}: {message}) - try again in a moment; if it "
                                "keeps failing, check the server's log or status page.")
        return BackendError(f"{url} rejected the request ({status}: {message}) - check the model and options in "
                            f"{_SETTINGS_HINT}.")

    async def _open(self, create: Any, **params: Any) -> Any:
        """Start a streaming request, mapping failures before the first byte of the answer."""
        try:
            return await create(**params)
        except openai.OpenAIError as exc:
            raise self._map_error(exc, mid_stream=False) from exc

    async def _events(self, sdk_stream: Any) -> AsyncIterator[Any]:
        """Yield the SDK stream's items, each within the idle timeout; always closes the HTTP response."""
        received = False
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timeout_s):
                        item = await sdk_stream.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if received:
                        raise BackendTimeout(
                            f"{self._base_url} stopped sending the answer for {self._timeout_s:g} s - try again, "
                            f"or raise 'Timeout' in {_SETTINGS_HINT}.") from None
                    raise BackendTimeout(
                        f"{self._base_url} accepted the question but sent nothing for {self._timeout_s:g} s - the "
                        "server may be busy or still loading the model; try again, or raise 'Timeout' in "
                        f"{_SETTINGS_HINT}.") from None
                except (openai.OpenAIError, ValueError) as exc:
                    raise self._map_error(exc, mid_stream=True) from exc
                received = True
                yield item
        finally:
            # Also runs when the consumer is cancelled or closes the stream:
            # closing the response is what frees the server from generating.
            await sdk_stream.close()

    async def _resolve_model(self, client: openai.AsyncOpenAI) -> str:
        """The configured model, or the one model a single-model server (llama.cpp, LM Studio) serves."""
        if self._model:
            return self._model
        try:
            async with asyncio.timeout(self._timeout_s):
                page = await client.models.list()
        except TimeoutError:
            raise BackendTimeout(f"{self._base_url} did not list its models within {self._timeout_s:g} s - "
                                 f"try again, or enter the model name in {_SETTINGS_HINT}.") from None
        except openai.OpenAIError as exc:
            raise self._map_error(exc, mid_stream=False) from exc
        names = [m.id for m in getattr(page, "data", None) or () if getattr(m, "id", None)]
        if len(names) == 1:
            self._model = names[0]
            return self._model
        if not names:
            raise ModelNotFound(f"{self._base_url} serves no models - load or pull a model on the server, then "
                                f"enter its name in {_SETTINGS_HINT}.")
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise ModelNotFound(f"{self._base_url} serves several models ({shown}) - choose one in {_SETTINGS_HINT}.")

    @staticmethod
    def _truncated() -> BackendError:
        return BackendError("The server closed the stream before the answer finished - try again; if it keeps "
                            "happening, check the server's log.")


class OpenAIChatBackend(_OpenAIBackendBase):
    """Chat Completions streaming against OpenAI or any OpenAI-compatible server."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout_s: float,
                 max_retries: int = 2, *, max_tokens_param: str = "max_tokens"):
        """`max_tokens_param`: OpenAI's newer models want `max_completion_tokens`; compatible
        servers (Ollama, llama.cpp server) only read `max_tokens` and silently ignore the other."""
        super().__init__(model, base_url, api_key, timeout_s, max_retries)
        self._max_tokens_param = max_tokens_param
        # Usage in the stream needs `stream_options`; a server that rejects the
        # field is asked again without it, and not offered it again.
        self._send_stream_options = True

    @property
    def max_tokens_param(self) -> str:
        """The request field that carries the answer-length limit."""
        return self._max_tokens_param

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        client = self._require_client()
        model = await self._resolve_model(client)
        params: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "temperature": temperature,
            self._max_tokens_param: max_tokens,
        }
        sdk_stream = await self._open_chat(client, params)
        finish: str | None = None
        prompt_tokens = completion_tokens = None
        async with contextlib.aclosing(self._events(sdk_stream)) as events:
            async for chunk in events:
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    prompt_tokens = getattr(usage, "prompt_tokens", None)
                    completion_tokens = getattr(usage, "completion_tokens", None)
                for choice in getattr(chunk, "choices", None) or ():
                    if getattr(choice, "index", 0) != 0:
                        continue
                    delta = getattr(choice, "delta", None)
                    text = getattr(delta, "content", None) if delta is not None else None
                    if text:
                        yield StreamChunk(text=text)
                    if getattr(choice, "finish_reason", None):
                        finish = choice.finish_reason
        if finish is None:
            raise self._truncated()
        yield StreamChunk(finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    async def check(self) -> str:
        """Stream a one-token answer: proves the URL, the key and the model in one round trip."""
        async for _ in self.stream([ChatMessage("user", "Say OK.")], max_tokens=1, temperature=0.0):
            pass
        return f"Connected to {self._base_url} (model {self._model or 'server default'})"

    async def _open_chat(self, client: openai.AsyncOpenAI, params: dict[str, Any]) -> Any:
        if self._send_stream_options:
            try:
                return await client.chat.completions.create(**params, stream_options={"include_usage": True})
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if "stream_options" not in f"{exc.message} {exc.body}":
                    raise self._map_error(exc, mid_stream=False) from exc
                log.info("%s rejects stream_options; streaming without token usage", self._base_url)
                self._send_stream_options = False
            except openai.OpenAIError as exc:
                raise self._map_error(exc, mid_stream=False) from exc
        return await self._open(client.chat.completions.create, **params)

class OpenAIResponsesBackend(_OpenAIBackendBase):
    """OpenAI Responses API streaming (`client.responses.create(..., stream=True)`)."""

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        client = self._require_client()
        if not self._model:
            raise ModelNotFound(f"No model is set for {self._base_url} - enter a model name in {_SETTINGS_HINT}.")
        sdk_stream = await self._open(
            client.responses.create, model=self._model, stream=True, temperature=temperature,
            max_output_tokens=max(max_tokens, _RESPONSES_MIN_OUTPUT_TOKENS),
            input=[{"role": m.role, "content": m.content} for m in messages])
        finish: str | None = None
        usage: Any = None
        async with contextlib.aclosing(self._events(sdk_stream)) as events:
            async for event in events:
                kind = getattr(event, "type", None)
                if kind == "response.output_text.delta":
                    if event.delta:
                        yield StreamChunk(text=event.delta)
                elif kind == "response.completed":
                    finish, usage = "stop", getattr(event.response, "usage", None)
                elif kind == "response.incomplete":
                    details = getattr(event.response, "incomplete_details", None)
                    reason = getattr(details, "reason", None)
                    finish = "length" if reason in (None, "max_output_tokens") else reason
                    usage = getattr(event.response, "usage", None)
                elif kind == "response.failed":
                    error = getattr(event.response, "error", None)
                    raise self._event_error(getattr(error, "code", None), getattr(error, "message", None))
                elif kind == "error":
                    raise self._event_error(getattr(event, "code", None), getattr(event, "message", None))
        if finish is None:
            raise self._truncated()
        yield StreamChunk(finish_reason=finish,
                          prompt_tokens=getattr(usage, "input_tokens", None) if usage is not None else None,
                          completion_tokens=getattr(usage, "output_tokens", None) if usage is not None else None)

    async def check(self) -> str:
        async for _ in self.stream([ChatMessage("user", "Say OK.")], max_tokens=_RESPONSES_MIN_OUTPUT_TOKENS,
                                   temperature=0.0):
            pass
        return f"Connected to {self._base_url} (model {self._model}, Responses API)"

    def _event_error(self, code: str | None, message: str | None) -> SourcelightError:
        message = self._scrub(message or "no details given")
        if code in ("rate_limit_exceeded", "insufficient_quota"):
            return RateLimited(f"{self._base_url} stopped the answer: {message} - wait a minute and try again; "
                               "if it persists, check your plan and billing.")
        return BackendError(f"The server reported an error while answering: {message} - try again in a moment; if "
                            f"it keeps happening, pick another model in {_SETTINGS_HINT}.")


def _name_not_found(exc: BaseException) -> bool:
    """Whether a connection failure was a DNS lookup that found no such host.

    httpx wraps the resolver's `socket.gaierror` in its ConnectError; the SDK
    wraps that again. The chain is walked rather than the message parsed,
    which differs by platform ("Name or service not known", "getaddrinfo
    failed", "nodename nor servname provided").
    """
    import socket

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, socket.gaierror):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
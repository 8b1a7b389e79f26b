"""Build the LLM backend that the current settings ask for.

The composition root calls `make_backend` whenever the model settings change;
this is the one place that knows which class serves which `Settings.backend`,
which defaults apply (gpt-4o-mini at OpenAI), and which key goes where.

The factory never raises for a missing key or model: the backend reports that
on its first `check()` or `stream()`, with the next step, through the same
error path as every other failure, so the app can always be built.
"""
from __future__ import annotations

import os
from typing import AsyncIterator, Sequence

from core.errors import BackendUnavailable
from core.llm.base import ChatMessage, LLMBackend, StreamChunk
from core.llm.local import LocalBackend
from core.settings import Settings

# `core.llm.openai_compat` is imported inside the functions that need it:
# importing the openai SDK takes ~2 s here, which a user of the bundled model
# should not pay at start-up.

# Local servers (Ollama, LM Studio, llama.cpp server) ignore the key, but the
# SDK refuses to build a client without one.
NO_KEY_PLACEHOLDER = "not-needed"


def make_backend(settings: Settings, api_key: str | None = None) -> LLMBackend:
    """The backend for `settings`; `api_key` is the stored key (see `core.secrets`), if any."""
    if settings.backend == "openai":
        return _openai(settings, api_key)
    if settings.backend == "openai_compatible":
        return _compatible(settings, api_key)
    return LocalBackend(settings.local_model_path or None, threads=settings.threads)


def _openai(settings: Settings, api_key: str | None) -> LLMBackend:
    from core.llm.openai_compat import DEFAULT_OPENAI_MODEL, OPENAI_BASE_URL, OpenAIChatBackend, OpenAIResponsesBackend

    model = settings.model.strip() or DEFAULT_OPENAI_MODEL
    base_url = settings.base_url.strip() or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
    key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if settings.api_mode == "responses":
        return OpenAIResponsesBackend(model, base_url, key, settings.request_timeout_s)
    if settings.api_mode == "assistants":
        # Retired by OpenAI (it answers 404, which the backend explains); kept for servers that mimic it.
        from core.llm.assistants import OpenAIAssistantsBackend

        return OpenAIAssistantsBackend(model, base_url, key, settings.request_timeout_s)
    # OpenAI deprecated max_tokens for Chat Completions, and its reasoning models reject it.
    return OpenAIChatBackend(model, base_url, key, settings.request_timeout_s,
                             max_tokens_param="max_completion_tokens")


def _compatible(settings: Settings, api_key: str | None) -> LLMBackend:
    from core.llm.openai_compat import OpenAIChatBackend

    env_url = os.environ.get("OPENAI_BASE_URL") or ""
    base_url = settings.base_url.strip() or env_url
    if not base_url:
        # Falling back to OpenAI here would send the question to a server the user never chose.
        return UnconfiguredBackend(
            "No server URL is set for the OpenAI-compatible backend - enter it in Settings > Model "
            "(for example http://127.0.0.1:11434/v1 for Ollama).")
    key = api_key
    if not key and not settings.base_url.strip():
        # OPENAI_API_KEY is only paired with OPENAI_BASE_URL; it is never sent to
        # a server typed into the settings, which may not be OpenAI's.
        key = os.environ.get("OPENAI_API_KEY")
    if settings.api_mode == "assistants":
        # Self-hosted servers that implement the Assistants API v2 are the reason this mode exists.
        from core.llm.assistants import OpenAIAssistantsBackend

        return OpenAIAssistantsBackend(settings.model, base_url, key or NO_KEY_PLACEHOLDER,
                                       settings.request_timeout_s)
    # The Responses API is OpenAI's; compatible servers are driven through Chat Completions.
    return OpenAIChatBackend(settings.model, base_url, key or NO_KEY_PLACEHOLDER, settings.request_timeout_s)


class UnconfiguredBackend:
    """Stands in when the settings are incomplete: every use raises the configuration error.

    It lets the app start and show the problem in its one error place, instead
    of failing while the settings dialog is still open.
    """

    def __init__(self, message: str):
        self._message = message

    @property
    def description(self) -> str:
        return "no backend configured"

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        raise BackendUnavailable(self._message)
        yield StreamChunk()  # unreachable; makes this an async generator like every backend

    async def check(self) -> str:
        raise BackendUnavailable(self._message)

    async def aclose(self) -> None:
        return None

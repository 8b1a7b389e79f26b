"""`OpenAIChatBackend` end to end against a real OpenAI-compatible server.

The server is llama-cpp-python's own (`python -m llama_cpp.server`) serving the
bundled SmolLM2 GGUF on loopback, started once for the module with one thread
and an API key, so the real `openai` SDK, real SSE and a real 401 are exercised
without any network beyond 127.0.0.1.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from core.errors import AuthenticationFailed, BackendError
from core.llm.base import ChatMessage
from core.llm.openai_compat import OpenAIChatBackend

pytestmark = pytest.mark.slow

API_KEY = "sk-local-test-key"
ALIAS = "smollm2"
QUESTION = [ChatMessage("system", "Answer in one short sentence."),
            ChatMessage("user", "What is the capital of France?")]


@pytest.fixture(scope="module")
def llama_server(bundled_gguf, free_port, tmp_path_factory):
    """Base URL of a running llama_cpp.server; stopped after the module."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf), "--model_alias", ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1",
           "--n_ctx", "2048", "--api_key", API_KEY]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(proc, base_url, log_path)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until_ready(proc: subprocess.Popen, base_url: str, log_path, limit_s: float = 90.0) -> None:
    request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {API_KEY}"})
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if json.load(response).get("data"):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"llama_cpp.server did not answer /v1/models within {limit_s} s:\n{log_path.read_text()[-2000:]}")


async def stream_text(backend: OpenAIChatBackend, max_tokens: int = 24):
    text, final = "", None
    try:
        async for chunk in backend.stream(QUESTION, max_tokens=max_tokens, temperature=0.0):
            text += chunk.text
            if chunk.finish_reason:
                final = chunk
    finally:
        await backend.aclose()
    return text, final


async def test_streams_an_answer(llama_server):
    text, final = await stream_text(OpenAIChatBackend(ALIAS, llama_server, API_KEY, timeout_s=60))
    assert text.strip()
    assert final is not None and final.finish_reason in ("stop", "length")
    # llama_cpp.server accepts stream_options (no 400) but ignores it: no usage in the stream.
    assert final.prompt_tokens is None and final.completion_tokens is None


async def test_check_succeeds(llama_server):
    backend = OpenAIChatBackend(ALIAS, llama_server, API_KEY, timeout_s=60)
    try:
        message = await backend.check()
    finally:
        await backend.aclose()
    assert message == f"Connected to {llama_server} (model {ALIAS})"


async def test_empty_model_uses_the_single_served_model(llama_server):
    backend = OpenAIChatBackend("", llama_server, API_KEY, timeout_s=60)
    text, final = await stream_text(backend, max_tokens=8)
    assert backend.model == ALIAS
    assert text.strip() and final.finish_reason


async def test_unknown_model_name_is_served_by_the_default_model(llama_server):
    # llama_cpp.server does not reject unknown names: it falls back to its
    # default model and answers (OpenAI and Ollama answer 404 instead).
    text, final = await stream_text(OpenAIChatBackend("no-such-model", llama_server, API_KEY, timeout_s=60),
                                    max_tokens=8)
    assert text.strip() and final.finish_reason in ("stop", "length")


async def test_wrong_api_key_is_authentication_failed(llama_server, assert_actionable):
    backend = OpenAIChatBackend(ALIAS, llama_server, "sk-wrong", timeout_s=60, max_retries=0)
    with pytest.raises(AuthenticationFailed) as caught:
        await stream_text(backend)
    assert "Invalid API key" in str(caught.value)
    assert_actionable(caught.value)


async def test_question_longer_than_the_context(llama_server, assert_actionable):
    # The server checks the length only when its token generator starts, after
    # it has already answered 200 and opened the event stream; it then ends the
    # stream with no event at all (measured: 200, empty body, the ValueError
    # only in the server's log), so the client can only report a truncated answer.
    long_question = [ChatMessage("user", "Tell me about Paris. " * 600)]  # ~3,000 tokens, context 2,048
    backend = OpenAIChatBackend(ALIAS, llama_server, API_KEY, timeout_s=60)
    try:
        with pytest.raises(BackendError) as caught:
            async for _ in backend.stream(long_question, max_tokens=8, temperature=0.0):
                pass
    finally:
        await backend.aclose()
    assert "closed the stream before the answer finished" in str(caught.value)
    assert_actionable(caught.value)

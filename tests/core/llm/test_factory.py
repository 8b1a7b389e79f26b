"""`make_backend`: which class, model, URL and key each backend setting leads to.

Which key is sent where is checked on the wire: a small loopback server
answers every request with OpenAI's 401 body and records the Authorization
header and the request body it received.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from core.errors import AuthenticationFailed, BackendUnavailable
from core.llm.base import ChatMessage, LLMBackend
from core.llm.factory import NO_KEY_PLACEHOLDER, UnconfiguredBackend, make_backend
from core.llm.local import LocalBackend
from core.llm.openai_compat import OPENAI_BASE_URL, OpenAIChatBackend, OpenAIResponsesBackend
from core.settings import Settings


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.seen.append((self.path, self.headers.get("Authorization"), body))
        data = json.dumps({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def recorder():
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_local_is_the_default():
    backend = make_backend(Settings(threads=1))
    assert isinstance(backend, LocalBackend) and isinstance(backend, LLMBackend)
    assert backend.description == "bundled SmolLM2-135M-Instruct"
    assert backend.threads == 1


def test_local_with_a_chosen_file(tmp_path):
    backend = make_backend(Settings(local_model_path=str(tmp_path / "mine.gguf"), threads=2))
    assert backend.description == "local model mine.gguf" and backend.threads == 2


def test_openai_defaults():
    backend = make_backend(Settings(backend="openai"), api_key="sk-stored")
    assert isinstance(backend, OpenAIChatBackend)
    assert backend.model == "gpt-4o-mini" and backend.base_url == OPENAI_BASE_URL
    assert backend.max_tokens_param == "max_completion_tokens"
    assert backend.description == f"gpt-4o-mini at {OPENAI_BASE_URL}"


def test_openai_responses_mode():
    backend = make_backend(Settings(backend="openai", api_mode="responses", model="gpt-4.1-mini"), "sk-stored")
    assert isinstance(backend, OpenAIResponsesBackend) and backend.model == "gpt-4.1-mini"


def test_assistants_mode_for_openai_and_for_compatible_servers():
    from core.llm.assistants import OpenAIAssistantsBackend

    backend = make_backend(Settings(backend="openai", api_mode="assistants"), "sk-stored")
    assert isinstance(backend, OpenAIAssistantsBackend) and backend.model == "gpt-4o-mini"
    assert backend.base_url == OPENAI_BASE_URL
    # Self-hosted servers that still implement the Assistants API are why the mode exists.
    backend = make_backend(Settings(backend="openai_compatible", base_url="http://127.0.0.1:8000/v1",
                                    model="my-model", api_mode="assistants"))
    assert isinstance(backend, OpenAIAssistantsBackend) and backend.base_url == "http://127.0.0.1:8000/v1"


def test_the_cli_offers_every_api_mode():
    from core.cli import build_parser
    from core.settings import API_MODES

    for mode in API_MODES:
        args = build_parser().parse_args(["ask", "question", "--api", mode])
        assert args.api == mode
    assert "assistants" in API_MODES


def test_compatible_uses_chat_completions_unless_assistants():
    backend = make_backend(Settings(backend="openai_compatible", base_url="http://127.0.0.1:11434/v1",
                                    model="llama3.2", api_mode="responses"))
    assert isinstance(backend, OpenAIChatBackend)
    assert backend.max_tokens_param == "max_tokens"  # what Ollama and llama.cpp server read
    assert backend.base_url == "http://127.0.0.1:11434/v1"


async def test_compatible_without_url_explains_what_to_do(assert_actionable):
    backend = make_backend(Settings(backend="openai_compatible", model="llama3.2"))
    assert isinstance(backend, UnconfiguredBackend) and isinstance(backend, LLMBackend)
    with pytest.raises(BackendUnavailable) as caught:
        async for _ in backend.stream([ChatMessage("user", "hi")], max_tokens=8, temperature=0.0):
            pass
    assert "Settings > Model" in str(caught.value)
    assert_actionable(caught.value)


async def _first_request(recorder, backend):
    try:
        with pytest.raises(AuthenticationFailed):
            await backend.check()
    finally:
        await backend.aclose()
    return recorder.seen[0]


async def test_openai_sends_the_stored_key_and_max_completion_tokens(recorder):
    backend = make_backend(Settings(backend="openai", base_url=recorder.url), api_key="sk-stored")
    path, auth, body = await _first_request(recorder, backend)
    assert path == "/v1/chat/completions"
    assert auth == "Bearer sk-stored"
    assert body["model"] == "gpt-4o-mini" and body["max_completion_tokens"] == 1 and "max_tokens" not in body


async def test_openai_falls_back_to_environment(recorder, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", recorder.url)
    backend = make_backend(Settings(backend="openai"))
    assert backend.base_url == recorder.url
    _, auth, _ = await _first_request(recorder, backend)
    assert auth == "Bearer sk-from-env"


async def test_openai_without_any_key_asks_for_one(assert_actionable):
    backend = make_backend(Settings(backend="openai"))
    with pytest.raises(AuthenticationFailed) as caught:
        await backend.check()
    assert "OPENAI_API_KEY" in str(caught.value)
    assert_actionable(caught.value)


async def test_compatible_server_gets_a_placeholder_not_the_openai_key(recorder, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    backend = make_backend(Settings(backend="openai_compatible", base_url=recorder.url, model="llama3.2"))
    _, auth, body = await _first_request(recorder, backend)
    assert auth == f"Bearer {NO_KEY_PLACEHOLDER}"
    assert body["max_tokens"] == 1


async def test_engine_does_not_send_the_environment_key_to_a_typed_server(recorder, monkeypatch, tmp_path,
                                                                          cached_embedder):
    """The app builds its backend from the key store; OPENAI_API_KEY must not leak through it either."""
    import keyring
    from keyring.backends import fail

    from core.engine import Engine

    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # a headless machine: no keyring, the key only in the environment
    try:
        engine = Engine(Settings(backend="openai_compatible", base_url=recorder.url, model="llama3.2"),
                        data_dir=tmp_path, embedder=cached_embedder, index_sample_corpus=False)
    finally:
        keyring.set_keyring(previous)
    _, auth, _ = await _first_request(recorder, engine.backend)
    assert auth == f"Bearer {NO_KEY_PLACEHOLDER}"


async def test_compatible_server_gets_a_given_key(recorder):
    backend = make_backend(Settings(backend="openai_compatible", base_url=recorder.url, model="m"), "sk-vllm")
    _, auth, _ = await _first_request(recorder, backend)
    assert auth == "Bearer sk-vllm"


async def test_compatible_from_environment_pairs_url_and_key(recorder, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", recorder.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-for-that-server")
    backend = make_backend(Settings(backend="openai_compatible", model="m"))
    _, auth, _ = await _first_request(recorder, backend)
    assert auth == "Bearer sk-for-that-server"

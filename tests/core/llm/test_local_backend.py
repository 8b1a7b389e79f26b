"""The bundled SmolLM2-135M-Instruct through `LocalBackend`: real answers, real cancellation.

One model is loaded for the whole module (it takes about a second) with one
thread and short answers, so the file stays fast on two shared cores.
"""
from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time

import pytest

from core.errors import BackendError, InvalidQuestion, ModelNotFound
from core.llm.base import ChatMessage, LLMBackend
from core.llm.local import LocalBackend

pytestmark = pytest.mark.slow

SHORT = [ChatMessage("system", "You are a helpful assistant. Answer in one sentence."),
         ChatMessage("user", "What is the capital of France?")]
LONG = [ChatMessage("user", "Write a very long story about a dragon who learns to cook. Use many chapters.")]


@pytest.fixture(scope="module")
def backend():
    local = LocalBackend(threads=1, n_ctx=2048)
    asyncio.run(local.load())
    yield local
    asyncio.run(local.aclose())


async def answer(backend: LocalBackend, messages=SHORT, max_tokens: int = 24):
    text, final = "", None
    async for chunk in backend.stream(messages, max_tokens=max_tokens, temperature=0.0):
        text += chunk.text
        if chunk.finish_reason:
            final = chunk
    return text, final


async def wait_idle(backend: LocalBackend, bound_s: float = 2.0) -> float:
    """Seconds until the worker thread has stopped; fails past `bound_s`."""
    started = time.monotonic()
    # Polled: a thread ending is no asyncio event; 5 ms is fine against token times of ~25 ms.
    while backend.generating:
        assert time.monotonic() - started < bound_s, "generation did not stop after cancel"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


# `LocalBackend` names its worker thread so; tokens are counted only on it.
WORKER_NAME = "sourcelight-local-llm"


def generation_threads() -> list[threading.Thread]:
    """Live worker threads: while there are none, no token can be generated (or counted)."""
    return [t for t in threading.enumerate() if t.name == WORKER_NAME and t.is_alive()]


def decoding() -> bool:
    """Whether a worker thread is inside llama.cpp's decode (`LlamaContext.decode` on its stack)."""
    frames = sys._current_frames()
    for thread in generation_threads():
        frame = frames.get(thread.ident)
        while frame is not None:
            if frame.f_code.co_name == "decode" and "llama_cpp" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
    return False


async def start_long_answer(backend: LocalBackend, chunks: int) -> asyncio.Task:
    """Start streaming a long answer; return its task once `chunks` chunks have arrived."""
    received: list[str] = []
    arrived = asyncio.Event()

    async def consume():
        async for chunk in backend.stream(LONG, max_tokens=400, temperature=0.8):
            received.append(chunk.text)
            if len(received) >= chunks:
                arrived.set()

    task = asyncio.create_task(consume())
    waiter = asyncio.create_task(arrived.wait())
    # Either the chunks arrive or the stream ends first (an error would otherwise go unseen).
    await asyncio.wait({task, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not arrived.is_set():
        task.cancel()
        pytest.fail(f"{len(received)} of {chunks} chunks arrived; the stream "
                    f"{'ended: ' + repr(task.exception()) if task.done() and not task.cancelled() else 'stalled'}")
    return task


def test_is_an_llm_backend(backend):
    assert isinstance(backend, LLMBackend)
    assert backend.description == "bundled SmolLM2-135M-Instruct"
    assert backend.model_path is not None and backend.model_path.name.endswith(".gguf")


async def test_bundled_model_answers(backend):
    text, final = await answer(backend)
    assert text.strip()
    assert final is not None and final.finish_reason in ("stop", "length")
    assert final.prompt_tokens and final.prompt_tokens > 10
    assert 0 < final.completion_tokens <= 24


async def test_check_loads_and_reports(backend):
    message = await backend.check()
    assert "SmolLM2" in message and "1 thread" in message


async def test_cancel_stops_generation_and_next_request_works(backend):
    task = await start_long_answer(backend, chunks=5)
    at_cancel = backend.tokens_generated
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(backend)
    after_stop = backend.tokens_generated
    # The worker finishes at most the token(s) in flight when the flag was set
    # (~25 ms each with one thread), far from the 400 it was allowed.
    assert after_stop - at_cancel <= 3
    # Tokens are only counted on the worker thread: once none is left, no more can come.
    assert generation_threads() == [], "a generation thread outlived the cancel"
    assert backend.tokens_generated == after_stop, "tokens kept being generated after the cancel"

    text, final = await answer(backend)
    assert text.strip() and final.finish_reason in ("stop", "length")


async def test_cancel_during_prompt_processing_stops_at_once(backend):
    # ~1,500 prompt tokens take seconds on one thread; the abort callback must
    # interrupt the decode instead of letting the whole prompt be processed.
    long_prompt = [ChatMessage("user", "The Eiffel Tower is in Paris. " * 190 + "Where is the tower?")]
    before = backend.tokens_generated
    task = asyncio.create_task(answer(backend, long_prompt, max_tokens=8))
    # Wait until the worker is inside llama.cpp's decode of the prompt (polled:
    # nothing announces it), so the cancel below lands in the decode itself.
    deadline = time.monotonic() + 30
    while not decoding() and not task.done():
        assert time.monotonic() < deadline, "the prompt decode never began"
        await asyncio.sleep(0.005)
    if backend.tokens_generated != before:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        pytest.skip("this machine processed the prompt before the test saw it; there was nothing to interrupt")
    assert backend.generating
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(backend, bound_s=1.5)
    assert backend.tokens_generated - before <= 1  # stopped before (or right at) the first sampled token

    text, final = await answer(backend, max_tokens=8)
    assert text.strip() and final.finish_reason


async def test_question_longer_than_the_context(backend, assert_actionable):
    too_long = [ChatMessage("user", "The Eiffel Tower is in Paris. " * 400)]  # ~3,000 tokens > 2,048
    with pytest.raises(InvalidQuestion) as caught:
        await answer(backend, too_long)
    assert "2048-token context" in str(caught.value)
    assert_actionable(caught.value)


async def test_closing_the_generator_stops_generation(backend):
    stream = backend.stream(LONG, max_tokens=400, temperature=0.8)
    for _ in range(3):
        await stream.__anext__()
    at_close = backend.tokens_generated
    await stream.aclose()
    await wait_idle(backend)
    assert backend.tokens_generated - at_close <= 3
    settled = backend.tokens_generated
    assert generation_threads() == []  # tokens are only counted on the worker thread: none can follow
    assert backend.tokens_generated == settled


async def test_concurrent_questions_are_serialised(backend):
    (text_a, final_a), (text_b, final_b) = await asyncio.gather(
        answer(backend, max_tokens=8), answer(backend, max_tokens=8))
    assert text_a.strip() and text_b.strip()
    assert final_a.finish_reason and final_b.finish_reason


async def test_missing_model_file(tmp_path, assert_actionable):
    path = tmp_path / "nowhere" / "model.gguf"
    backend = LocalBackend(str(path), threads=1)
    assert backend.description == "local model model.gguf"
    with pytest.raises(ModelNotFound) as caught:
        await answer(backend)
    assert str(path) in str(caught.value) and "does not exist" in str(caught.value)
    assert "Settings > Model" in str(caught.value)
    assert_actionable(caught.value)


@pytest.mark.parametrize("content, words", [
    (b"<html>not a model</html>", "not a GGUF model"),
    (b"GGUF" + b"\x00" * 64, "could not be loaded"),
])
async def test_corrupt_model_file(tmp_path, assert_actionable, content, words):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    backend = LocalBackend(str(path), threads=1)
    with pytest.raises(ModelNotFound) as caught:
        await backend.check()
    assert words in str(caught.value) and str(path) in str(caught.value)
    assert_actionable(caught.value)


async def test_aclose_mid_answer_frees_the_model_and_unblocks_the_reader(backend):
    task = await start_long_answer(backend, chunks=3)
    await backend.aclose()
    assert not backend.loaded and not backend.generating
    with pytest.raises(BackendError) as caught:
        await asyncio.wait_for(task, 2.0)
    assert "closed" in str(caught.value)

    text, final = await answer(backend, max_tokens=8)  # loads again on demand
    assert backend.loaded and text.strip() and final.finish_reason

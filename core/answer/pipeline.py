"""The answer pipeline: question -> retrieval -> prompt -> streamed answer -> attribution.

`AnswerRun.events()` is the single async stream every consumer reads (the
GUI adapter, the CLI, tests, history). Work is split so the event loop never
blocks: retrieval, reading stored sentence embeddings and attribution (which
embeds each answer sentence) run in worker threads; only bookkeeping runs on the
loop, and only the repetition guard runs per chunk: the text a fast server
streams in chunks of a few tokens is handed on per batch, at most once a frame
(`core.answer.batching`), as one `TextDelta` per batch.

Attribution is live: each sentence is handed to a single attribution worker
the moment it closes, and its `AttributionReady` is emitted as soon as it is
done, in sentence order. A single worker keeps the order and leaves the other
core to the model and the UI.

Cancelling a run (a Stop, or a new question) cancels its producer task; the
backend's stream is closed at once (the local model stops generating) and the
stream ends with a `Cancelled` event carrying the partial answer.

An answer that starts repeating itself (`core.answer.repetition`) is stopped: the
backend's stream is closed, the text before the loop is kept, and the run
completes with `finish_reason` "repetition". Words that may begin a loop are
held back for a moment, so a loop is never shown and then taken back. The
prompt is cut to the model's context (`core.answer.prompt.PromptBudget`), and a
follow-up question is retrieved for with the question before it
(`core.answer.followup`).

A backend may report the server's progress (`StreamChunk.status`), passed on
as `StatusChanged`, and citations the server attached to the text
(`StreamChunk.citations`, the Assistants API's `file_citation`
annotations). Those become "[n]" markers in the answer text here, where the
numbered sources are known, so the model's own citations are kept and
compared with the measured support exactly as written "[n]" markers are.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import AsyncIterator, Callable, Sequence

from core.attribution import Attribution, Attributor, EvidencePool, SourceSentence, parse_citations
from core.errors import InvalidQuestion, SourcelightError
from core.events import (AnswerSentence, AttributionReady, Cancelled, Completed, Event, Failed, RetrievalDone,
                         RetrievedChunk, RunStarted, SentenceClosed, StatusChanged, TERMINAL_EVENTS, TextDelta, Usage)
from core.llm.base import ChatMessage, LLMBackend, ModelCitation, StreamChunk
from core.answer.batching import TextBatcher
from core.answer.followup import retrieval_query
from core.answer.prompt import PromptBudget, build_messages
from core.answer.repetition import RepetitionGuard
from core.answer.sentence_stream import SentenceStream

MAX_QUESTION_CHARS = 4000


def check_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise InvalidQuestion("The question is empty. Type a question about your documents.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQuestion(f"The question is {len(question):,} characters long; the limit is "
                              f"{MAX_QUESTION_CHARS:,}. Shorten it, or add the long text as a document "
                              "and ask about it.")
    return question


# A stream quiet this long shows the words the repetition guard holds back
# (the last word, which may still grow); tokens of a running model come far faster.
IDLE_RELEASE_S = 0.25


async def _release_when_idle(guard: RepetitionGuard, last_chunk_at: list[float], batcher: TextBatcher) -> None:
    """Runs beside a stream: while it has been quiet for IDLE_RELEASE_S, show what `guard` holds.

    One timer per IDLE_RELEASE_S for the whole answer, not one per chunk: a
    timer per chunk cost the loop a third of its throughput at 2,000 tokens/s.
    """
    while True:
        await asyncio.sleep(IDLE_RELEASE_S)
        if guard.holding and time.monotonic() - last_chunk_at[0] >= IDLE_RELEASE_S:
            batcher.add(guard.release_idle())


class AnswerPipeline:
    """Runs answers against one retriever, store, attributor and backend."""

    def __init__(self, *, retrieve: Callable[[str, int], list[RetrievedChunk]],
                 load_evidence: Callable[[Sequence[RetrievedChunk]], EvidencePool],
                 attributor: Attributor, backend: LLMBackend, top_k: int = 5, max_tokens: int = 400,
                 temperature: float = 0.2, ready: Callable[[], None] | None = None,
                 stop_on_repetition: bool = True, followup_queries: bool = True):
        self._retrieve = retrieve
        self._load_evidence = load_evidence
        self._attributor = attributor
        self.backend = backend
        self.top_k = top_k
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._ready = ready
        # Both switches exist for the evaluations, which measure with and without them.
        self.stop_on_repetition = stop_on_repetition
        self.followup_queries = followup_queries
        # One worker: attribution results arrive in sentence order and never
        # compete with each other for the two cores.
        self._attribution_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sourcelight-attribution")

    def ask(self, question: str, history: Sequence[ChatMessage] = ()) -> "AnswerRun":
        return AnswerRun(self, question, tuple(history))

    def prepare_pool(self, pool: EvidencePool) -> None:
        """Queue the attributor's one-off work on an answer's pool before its first sentence (non-blocking)."""
        prepare = getattr(self._attributor, "prepare", None)
        if prepare is not None:
            self._attribution_worker.submit(prepare, pool)

    def attribute_sentence(self, sentence: AnswerSentence, pool: EvidencePool,
                           chunks: Sequence[RetrievedChunk]) -> AttributionReady:
        """Attribute one closed answer sentence (blocking; runs on the attribution worker)."""
        result: Attribution = self._attributor.attribute(sentence.text, pool)
        cited = parse_citations(sentence.text)
        agrees = None
        if cited:
            cited_ids = {chunks[n - 1].id for n in cited if 0 < n <= len(chunks)}
            agrees = bool(result.spans) and result.spans[0].chunk_id in cited_ids
        # The attributor decides whether the sentence is a claim at all (it
        # reads the same text); an attributor from before kinds existed only
        # ever judged claims. A sentence that claims nothing is never reported
        # as supported, even when a passage happens to match it: every consumer
        # shows it as neither supported nor flagged.
        kind = getattr(result, "kind", "claim")
        return AttributionReady(sentence=sentence, sources=result.spans, support=round(result.support, 4),
                                supported=result.supported and kind == "claim", cited=cited,
                                citation_agrees=agrees, kind=kind)

    def close(self) -> None:
        self._attribution_worker.shutdown(wait=False, cancel_futures=True)


class AnswerRun:
    """One question's run; read `events()` once. `cancel()` stops it."""

    def __init__(self, pipeline: AnswerPipeline, question: str, history: tuple[ChatMessage, ...]):
        self.run_id = uuid.uuid4().hex[:12]
        self.question = question
        self._pipeline = pipeline
        self._history = history
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._shown: list[str] = []  # the text deltas emitted so far

    @property
    def answer(self) -> str:
        return "".join(self._shown)

    async def _stream_answer(self, stream, chunks, guard: RepetitionGuard | None, batcher: TextBatcher) -> None:
        """Read the backend's stream into `batcher`; sets `_finish_reason` and `_usage`.

        Per chunk only the repetition guard runs (so a loop closes the stream at
        the chunk that completes it); everything downstream of it gets the text
        per batch (`core.answer.batching`).
        """
        self._finish_reason, self._usage = "stop", None
        last_chunk_at = [time.monotonic()]
        watcher = None if guard is None else asyncio.ensure_future(
            _release_when_idle(guard, last_chunk_at, batcher))
        try:
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    last_chunk_at[0] = time.monotonic()
                    if chunk.status:
                        batcher.add_event(StatusChanged(chunk.status, chunk.status_message))
                    text = with_source_markers(chunk, chunks)
                    if text:
                        batcher.add(guard.feed(text) if guard is not None else text)
                        if guard is not None and guard.loop is not None:
                            # Leaving the block closes the stream: the model stops generating.
                            self._finish_reason = "repetition"
                            return
                    if chunk.finish_reason:
                        self._finish_reason = chunk.finish_reason
                    if chunk.prompt_tokens is not None or chunk.completion_tokens is not None:
                        self._usage = Usage(chunk.prompt_tokens, chunk.completion_tokens)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    def cancel(self) -> None:
        """Stop the run; its stream ends with `Cancelled` (no-op when already finished)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def events(self) -> AsyncIterator[Event]:
        self._task = asyncio.get_running_loop().create_task(self._produce(), name=f"answer-{self.run_id}")
        try:
            while True:
                event = await self._queue.get()
                yield event
                if isinstance(event, TERMINAL_EVENTS):
                    return
        finally:
            # The consumer went away early: stop the work it no longer wants.
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _produce(self) -> None:
        emit = self._queue.put_nowait
        try:
            emit(RunStarted(self.run_id, self.question))
            await self._run(emit)
        except asyncio.CancelledError:
            emit(Cancelled(self.answer))
        except SourcelightError as exc:
            emit(Failed(exc.code, exc.message, type(exc).__name__, self.answer))
        except Exception as exc:  # a bug must still end the stream, never hang the UI
            emit(Failed("internal_error", f"Something went wrong inside Sourcelight ({type(exc).__name__}: "
                                          f"{exc}). Try again; if it keeps happening, report it.",
                        type(exc).__name__, self.answer))

    async def _run(self, emit) -> None:
        p = self._pipeline
        loop = asyncio.get_running_loop()
        question = check_question(self.question)
        if p._ready is not None:  # a question asked while models load waits for them
            await loop.run_in_executor(None, p._ready)
        # A follow-up ("And PDFs?") is searched for together with what it follows up on.
        query = retrieval_query(question, self._history) if p.followup_queries else question
        chunks = await loop.run_in_executor(None, p._retrieve, query, p.top_k)
        emit(RetrievalDone(tuple(chunks)))
        pool_future = loop.run_in_executor(None, p._load_evidence, chunks)
        budget = PromptBudget.for_model(getattr(p.backend, "context_length", None), p.max_tokens, question)
        messages = build_messages(question, chunks, self._history, budget=budget)
        guard = RepetitionGuard() if p.stop_on_repetition else None

        pending: list[asyncio.Future] = []
        pool: EvidencePool | None = None

        def drain_ready(_done: object = None) -> None:
            # Runs after each delta and whenever an attribution finishes, so a
            # result is sent at once even while the model pauses; order is kept
            # by only ever emitting from the head of the queue.
            while pending and pending[0].done():
                head = pending[0]
                if head.cancelled() or head.exception() is not None:
                    return  # left for the final wait below, which raises it
                emit(pending.pop(0).result())

        async def submit(sentences: list[AnswerSentence]) -> None:
            nonlocal pool
            for sentence in sentences:
                emit(SentenceClosed(sentence))
                if pool is None:
                    pool = await pool_future
                    # Not as soon as the pool loads: with the local model, encoding the pool would
                    # compete with the prompt's evaluation for both cores and delay the first token.
                    p.prepare_pool(pool)
                fut: Future = p._attribution_worker.submit(p.attribute_sentence, sentence, pool, chunks)
                wrapped = asyncio.wrap_future(fut)
                pending.append(wrapped)
                wrapped.add_done_callback(drain_ready)

        sentences = SentenceStream()

        async def show(text: str) -> None:
            if text:
                emit(TextDelta(text))
                self._shown.append(text)
                # Finding sentences costs a few ms per batch (pysbd); it waits for the
                # next loop pass, so the window can paint the text first and the
                # two never add up to one stall.
                await asyncio.sleep(0)
                closed = sentences.feed(text)  # once per batch (core.answer.batching), not per chunk
                if closed:
                    await submit(closed)
            drain_ready()

        stream = p.backend.stream(messages, max_tokens=p.max_tokens, temperature=p.temperature)
        batcher = TextBatcher(show, emit)
        try:
            try:
                await self._stream_answer(stream, chunks, guard, batcher)
                await batcher.close()
            except BaseException:
                # Failed or stopped: what the stream gave but was not handed on
                # yet, and the words held back in case they began a loop, were
                # written by the model all the same; they are kept.
                batcher.cancel()
                rest, events = batcher.take()
                if guard is not None and guard.loop is None:
                    rest += guard.finish()
                if rest:
                    emit(TextDelta(rest))
                    self._shown.append(rest)
                for event in events:
                    emit(event)
                raise
            finish_reason, usage = self._finish_reason, self._usage
            if guard is not None and guard.loop is None:
                await show(guard.finish())  # the words held back in case they began a loop
            await submit(sentences.finish())
            while pending:
                head = pending[0]
                await asyncio.wait([head])
                if head.cancelled() or head.exception() is not None:
                    head.result()  # an attribution bug fails the run with its message
                drain_ready()
        finally:
            # Cancelled or failed: results still in flight must not arrive
            # after the terminal event.
            for fut in pending:
                fut.remove_done_callback(drain_ready)
                fut.cancel()  # frees the attribution worker for the next question
            pending.clear()
        if usage is not None:
            emit(usage)
        emit(Completed(self.answer, finish_reason))


def with_source_markers(chunk: StreamChunk, chunks: Sequence[RetrievedChunk]) -> str:
    """`chunk.text` with each server citation's marker replaced by "[n]", n the cited source's number.

    A citation is resolved by its quote (the source whose text holds it) or,
    failing that, by a number the marker itself carries ("[2]", "【2】"). A
    citation that names no source given to the model keeps its marker as
    written: nothing is invented.
    """
    text = chunk.text
    for citation in chunk.citations:
        number = _cited_source(citation, chunks)
        if number is not None and citation.marker and citation.marker in text:
            text = text.replace(citation.marker, f"[{number}]", 1)
    return text


def _cited_source(citation: ModelCitation, chunks: Sequence[RetrievedChunk]) -> int | None:
    quote = " ".join((citation.quote or "").split())
    if quote:
        for number, chunk in enumerate(chunks, start=1):
            if quote in " ".join(chunk.text.split()):
                return number
    numbers = [n for n in parse_citations(citation.marker) if 0 < n <= len(chunks)]
    return numbers[0] if len(numbers) == 1 else None


def evidence_from_store(store) -> Callable[[Sequence[RetrievedChunk]], EvidencePool]:
    """Builds the evidence pool of an answer from the sentences stored at ingest."""
    from core.ingest.store import StoredChunk

    def load(chunks: Sequence[RetrievedChunk]) -> EvidencePool:
        stored = [StoredChunk(c.id, c.source, c.page, c.text) for c in chunks]
        sentences, embeddings = store.sentences_for(stored)
        return EvidencePool.build([SourceSentence(s.chunk_id, s.start, s.end, s.text) for s in sentences],
                                  embeddings)

    return load

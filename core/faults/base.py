"""The fault-suite framework: a case, its outcome, the shared context and the runner.

A `Case` is one way the world can misbehave (a bad file, a failing server, a
kill -9, a hostile document). Running it returns an `Outcome`:

- `survived`: the app handled it as promised - the run ended with a typed
  error (or completed), the message shown to the user names the next step,
  the rest of the work went on, and the next action works;
- `lost`: something the user already had is gone (an indexed document, a
  partial answer, a completed conversation turn, the settings);
- `message`: exactly what the user was shown; `detail`: the measured facts.

Each case declares the hint its message must contain (`Case.hint`); the
runner checks it, so "a clear message that names the next step" is enforced
for every case, not only for the ones whose author remembered.

`FaultContext` holds what cases share so the suite stays within its time
budget on two busy cores: one embedder (wrapped so repeated texts are encoded
once), one scripted OpenAI-compatible server on 127.0.0.1, one engine with a
tiny corpus for the question cases, the bundled local model, and a temporary
folder removed at the end. Nothing here talks to anything but 127.0.0.1.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

# What the user sees when a case itself crashes: the app did not survive it.
_CRASHED = "(the case raised instead of ending with a message)"


@dataclass(frozen=True)
class Outcome:
    """What happened when one case was tried."""

    name: str
    category: str
    survived: bool
    lost: bool
    message: str  # what the user was shown ("" when the case shows nothing, e.g. a file that simply indexes)
    detail: str  # measured facts, and every expectation that failed
    seconds: float = 0.0
    skipped: str = ""  # why the case could not run on this machine ("" when it ran)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Result:
    """What a case function returns; the runner adds name, category, timing and the hint check."""

    survived: bool
    lost: bool
    message: str
    detail: str


@dataclass(frozen=True)
class Case:
    """One fault: how to provoke it and which next step its message must name."""

    name: str
    category: str
    run: Callable[["FaultContext"], Result]
    hint: str  # substring the user-facing message must contain ("" when no message is expected)
    doc: str
    # Set when the case exposes a bug in code this suite does not own; the
    # pytest wrapper marks it xfail(strict=True) so the fix flips it loudly.
    known_bug: str = ""


class CaseSkipped(Exception):
    """The case cannot run on this machine (the reason says why); it is reported, not counted as tried."""


CATEGORIES = ("bad_input", "folder_sync", "backend", "cancellation", "untrusted_text", "secrets")
_REGISTRY: list[Case] = []


def case(name: str, category: str, *, hint: str = "", known_bug: str = "") -> Callable:
    """Register a case function (its docstring is the case's description)."""
    assert category in CATEGORIES, category

    def register(fn: Callable[["FaultContext"], Result]) -> Callable[["FaultContext"], Result]:
        assert all(c.name != name for c in _REGISTRY), f"duplicate case {name}"
        doc = " ".join((fn.__doc__ or "").split())
        _REGISTRY.append(Case(name, category, fn, hint, doc, known_bug))
        return fn

    return register


def registered() -> list[Case]:
    return list(_REGISTRY)


class Checks:
    """Collects expectations and facts for one case, then builds its `Result`."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.facts: list[str] = []
        self.lost_items: list[str] = []

    def expect(self, condition: Any, what: str) -> bool:
        if not condition:
            self.failed.append(what)
        return bool(condition)

    def lose(self, condition: Any, what: str) -> None:
        """Record a loss of user data when `condition` holds (and count it as a failure)."""
        if condition:
            self.lost_items.append(what)
            self.failed.append("lost: " + what)

    def fact(self, text: str) -> None:
        self.facts.append(text)

    def result(self, message: str) -> Result:
        parts = list(self.facts)
        if self.failed:
            parts.append("FAILED: " + "; ".join(self.failed))
        return Result(survived=not self.failed, lost=bool(self.lost_items), message=message,
                      detail=" | ".join(parts))


def run_case(c: Case, ctx: "FaultContext") -> Outcome:
    """Run one case; a case that raises did not survive (the user would have seen a crash)."""
    started = time.perf_counter()
    try:
        with ctx.captured_output():
            result = c.run(ctx)
    except CaseSkipped as exc:
        return Outcome(c.name, c.category, False, False, "", "", round(time.perf_counter() - started, 2),
                       skipped=str(exc))
    except Exception as exc:  # noqa: BLE001 - any escape is a finding, reported not raised
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4))
        return Outcome(c.name, c.category, False, False, _CRASHED, f"{type(exc).__name__}: {exc}\n{tb}",
                       round(time.perf_counter() - started, 2))
    survived, detail = result.survived, result.detail
    if c.hint and c.hint.lower() not in result.message.lower():
        survived = False
        detail += f" | FAILED: the message does not name the expected next step {c.hint!r}"
    return Outcome(c.name, c.category, survived, result.lost, result.message, detail,
                   round(time.perf_counter() - started, 2))


# -- shared helpers ------------------------------------------------------------------------


class CachingEmbedder:
    """The real bundled embedder, remembering the vector of every text it has encoded.

    Cases index the same few sentences many times (one good file next to each
    bad one); encoding dominates on two busy cores (~50 sentences/s measured
    under load), so each distinct text is encoded once. `calls` and `texts`
    count the work asked for, which cases use to see that a Stop freed the
    attribution worker.
    """

    def __init__(self, real: Any):
        self._real = real
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.texts = 0

    @property
    def loaded(self) -> bool:
        return self._real.loaded

    def load(self) -> None:
        self._real.load()

    def encode(self, texts, batch_size: int | None = None) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            self.calls += 1
            self.texts += len(texts)
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._real.encode(missing, batch_size=batch_size)
            with self._lock:
                self._cache.update(zip(missing, vectors))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def token_vectors(self, texts) -> list:
        """The word pieces the attributor's alignment reads (`Embedder.token_vectors`); counted, not cached
        here (the alignment keeps its own)."""
        texts = list(texts)
        with self._lock:
            self.calls += 1
            self.texts += len(texts)
        return self._real.token_vectors(texts)

    def known_texts(self) -> list[str]:
        """Every text encoded so far."""
        with self._lock:
            return list(self._cache)

    def table(self, texts) -> dict[str, np.ndarray]:
        """Vectors for `texts` (encoding the missing ones), to hand to a child process."""
        texts = list(dict.fromkeys(texts))
        vectors = self.encode(texts)
        return dict(zip(texts, vectors))


class _Captured:
    def __init__(self, path: Path):
        self._path = path

    def text(self) -> str:
        try:
            return self._path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


class FaultContext:
    """Resources the cases share; `close()` stops servers and removes the temporary folder."""

    def __init__(self, embedder: Any | None = None, root: Path | None = None):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="sourcelight-faults-"))
        self._own_root = root is None
        self._real_embedder = embedder
        self._embedder: CachingEmbedder | None = None
        self._server = None
        self._shared = None
        self._local = None
        self._counter = 0
        self._lock = threading.Lock()

    # -- resources -------------------------------------------------------------------------
    @property
    def embedder(self) -> CachingEmbedder:
        """The bundled embedder (loaded on first use), behind the vector cache."""
        with self._lock:
            return self._embedder_unlocked()

    @property
    def server(self):
        """The scripted OpenAI-compatible server on 127.0.0.1 (started on first use)."""
        with self._lock:
            if self._server is None:
                from core.faults.fake_openai import FakeOpenAIServer

                self._server = FakeOpenAIServer().start()
            return self._server

    def dir(self, name: str) -> Path:
        """A fresh folder for one case."""
        with self._lock:
            self._counter += 1
            path = self.root / f"{self._counter:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def shared_engine(self):
        """One engine over a tiny corpus, for the question and backend cases (backend swapped per case)."""
        with self._lock:
            if self._shared is None:
                from core.engine import Engine
                from core.faults.scripted import ScriptedBackend
                from core.settings import Settings

                corpus = self.root / "shared-corpus"
                corpus.mkdir()
                (corpus / "guide.md").write_text(GUIDE_TEXT, encoding="utf-8")
                engine = Engine(Settings(top_k=3, max_tokens=64), backend=ScriptedBackend(["Hello."]),
                                embedder=self._embedder_unlocked(), data_dir=self.root / "shared-home",
                                index_sample_corpus=False)
                engine.load()
                report = engine.ingest([corpus])
                assert report.indexed, report.failed
                self._shared = engine
            return self._shared

    def _embedder_unlocked(self) -> CachingEmbedder:
        # The caller holds self._lock (shared_engine needs the embedder while holding it).
        if self._embedder is None:
            real = self._real_embedder
            if real is None:
                from core.embedding import Embedder

                real = Embedder()
            real.load()
            self._embedder = CachingEmbedder(real)
        return self._embedder

    def local_backend(self):
        """The bundled SmolLM2 on one thread (more threads than free cores collapses its speed)."""
        with self._lock:
            if self._local is None:
                from core.llm.local import LocalBackend

                self._local = LocalBackend(None, threads=1, n_ctx=2048)
            return self._local

    # -- output capture --------------------------------------------------------------------
    @contextlib.contextmanager
    def captured_output(self) -> Iterator[_Captured]:
        """Redirect fds 1 and 2 into a file while a case runs.

        fd level, not sys.stdout: chromadb, llama.cpp and tqdm write below
        Python, and `check faults --json` must print nothing but its JSON.
        """
        path = self.root / f"output-{time.monotonic_ns()}.log"
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        # Both handles append, so bytes from C and text from Python interleave
        # instead of overwriting each other. sys.stdout is swapped as well:
        # under pytest it writes to pytest's own file, not to fd 1.
        with open(path, "ab") as sink, open(path, "a", encoding="utf-8", buffering=1) as text_sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                with contextlib.redirect_stdout(text_sink), contextlib.redirect_stderr(text_sink):
                    yield _Captured(path)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._local is not None:
            import asyncio

            with contextlib.suppress(Exception):
                asyncio.run(self._local.aclose())
            self._local = None
        if self._shared is not None:
            with contextlib.suppress(Exception):
                self._shared.pipeline.close()
            self._shared = None
        if self._own_root:
            _make_removable(self.root)
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "FaultContext":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_removable(root: Path) -> None:
    # A case may leave a file at mode 000 behind (the unreadable-file case).
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                p = Path(dirpath) / name
                if not p.is_symlink():
                    p.chmod(0o700)


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or with None, remove) environment variables for the duration of a block."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# A small guide the shared engine indexes; questions in the cases are about it.
GUIDE_TEXT = """# Stopping and sources

Press Esc or click Stop to stop an answer early. The part of the answer already written is kept.

Every sentence of an answer is traced back to the passage that supports it. Click a sentence to see its source.

The support score says how well a passage backs the selected sentence. The retrieval score says how well a
passage matches the question.
"""

# The answer the scripted backends stream when a question should simply work.
GOOD_ANSWER = ["Press Esc or click ", "Stop to stop an answer early. ", "The part already written is kept."]

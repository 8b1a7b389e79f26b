"""The engine facade: one object that wires the core services together.

The GUI's composition root and the CLI build an `Engine` and talk only to it:
loading models, ingesting, listing and removing documents, and asking. Each
service is constructed here once and handed to the objects that need it
(constructor injection; no globals), and tests can pass their own backend or
store.

Loading is lazy and blocking (`load()`), so callers run it off the event
loop; a question asked before loading finishes waits for it.
"""
from __future__ import annotations

import concurrent.futures
import os
import threading
from pathlib import Path
from typing import Callable, Iterable, Sequence

from core import paths
from core.attribution import Attributor
from core.embedding import Embedder
from core.ingest.ingestor import IngestProgress, IngestReport, Ingestor
from core.answer.lexical import LexicalIndex
from core.llm.base import ChatMessage, LLMBackend
from core.answer.pipeline import AnswerPipeline, AnswerRun, evidence_from_store
from core.answer.retrieval import Retriever
from core.settings import Settings
from core.ingest.store import ChunkStore, DocumentRecord


def _slug(url: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in url)[:80]


def _remove_old_exports(base: Path) -> None:
    """Delete the ONNX files earlier versions exported with torch into the data folder (90 MB per model).

    They were `cache/embedder/*.onnx` and `cache/verifier/*.onnx` (plus
    `*.part` left by an interrupted export); the models' graphs are now built
    from the shipped weights at each start, so nothing reads them.
    """
    for name in ("embedder", "verifier"):
        folder = base / "cache" / name
        if not folder.is_dir():
            continue
        for pattern in ("*.onnx", "*.part"):
            for file in folder.glob(pattern):
                try:
                    file.unlink()
                except OSError:
                    pass
        try:
            folder.rmdir()  # only when empty: anything else there is not ours to delete
        except OSError:
            pass


def sample_corpus_dir() -> Path:
    from resources import SAMPLE_CORPUS

    return SAMPLE_CORPUS


class Engine:
    """Owns the store, the embedder, the retriever, the attributor and the backend."""

    def __init__(self, settings: Settings, *, backend: LLMBackend | None = None, store: ChunkStore | None = None,
                 embedder: Embedder | None = None, data_dir: Path | None = None, workspace: str | None = None,
                 index_sample_corpus: bool = True, verifier=None):
        self.settings = settings
        base = data_dir or paths.data_dir()
        self._data_dir = base
        workspace = workspace or settings.workspace
        server = settings.effective_chroma_url()
        self.embedder = embedder or Embedder()
        self.store = store or ChunkStore(base / "index", workspace, server_url=server)
        # A shared server changes under us (other instances ingest), so the
        # keyword index re-checks the server's documents every few seconds.
        lexical_dir = base / "lexical" / (_slug(server) if server else "local") / workspace
        self.lexical = LexicalIndex(self.store, lexical_dir, recheck_seconds=5.0 if server else None)
        self.retriever = Retriever(self.store, self.embedder, self.lexical)
        # `verifier`: a loaded `Verifier` to share (tests reuse one per session); None loads the shipped one lazily.
        self.attributor = Attributor(self.embedder, verifier=verifier)
        self._index_sample = index_sample_corpus
        self._load_lock = threading.Lock()
        self._loaded = False
        if backend is None:
            from core.llm.factory import make_backend
            from core.secrets import ApiKeyStore

            backend = make_backend(settings, ApiKeyStore().stored() if settings.backend != "local" else None)
        self.pipeline = AnswerPipeline(
            retrieve=self.retriever.retrieve, load_evidence=evidence_from_store(self.store),
            attributor=self.attributor, backend=backend, top_k=settings.top_k, max_tokens=settings.max_tokens,
            temperature=settings.temperature, ready=self.load)

    @property
    def backend(self) -> LLMBackend:
        return self.pipeline.backend

    def set_backend(self, backend: LLMBackend) -> LLMBackend:
        """Swap the backend (after a settings change); returns the old one for closing."""
        old, self.pipeline.backend = self.pipeline.backend, backend
        return old

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.pipeline.top_k = settings.top_k
        self.pipeline.max_tokens = settings.max_tokens
        self.pipeline.temperature = settings.temperature

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self, status: Callable[[str], None] | None = None) -> None:
        """Load the embedding model, open the index, index the sample corpus on first run. Blocking."""
        say = status or (lambda _m: None)
        with self._load_lock:
            if self._loaded:
                return
            # The embedding model loads beside the index: importing chromadb (~1.3 s) and loading the
            # model (~0.5 s building its graph for onnxruntime, ~8 s more on the torch fallback) are
            # independent and each mostly one core's work, so the two cores do them at once.
            embedder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sourcelight-embedder-load")
            try:
                loading = embedder.submit(self.embedder.load)
                say("Opening the document index...")
                self.store.open()
                say("Loading the embedding model...")
                loading.result()  # its error, if any, is raised here
            finally:
                embedder.shutdown(wait=True)
            if self._index_sample and not self.store.documents():
                say("Indexing the sample guide...")
                # Not remembered as an added folder: Refresh must not bring the guide back once removed.
                self._ingestor().ingest([sample_corpus_dir()], remember_folders=False)
            say("Preparing keyword search...")
            self.lexical.ensure_current()
            self._loaded = True
        _remove_old_exports(self._data_dir)
        say("Ready")

    def _ingestor(self) -> Ingestor:
        return Ingestor(self.store, self.embedder, chunk_chars=self.settings.chunk_chars,
                        overlap=self.settings.chunk_overlap_sentences)

    def ingest(self, sources: Iterable[Path], *, progress: Callable[[IngestProgress], None] | None = None,
               cancel: threading.Event | None = None) -> IngestReport:
        """Index files and folders. Blocking; see `Ingestor.ingest`."""
        self.store.open()
        report = None
        try:
            report = self._ingestor().ingest(sources, progress=progress, cancel=cancel)
            return report
        finally:
            self._after_ingest(report)

    def _after_ingest(self, report: IngestReport | None) -> None:
        """Bring keyword search up to date after an ingest or a refresh (`report` None: it raised).

        Rebuilt now, while the user already waits for the ingest, rather than on
        the next question; but not after a Cancel: the user asked for it to stop
        (and the cancelled write's rows are still being deleted), so the next
        search brings it up to date.
        """
        self.lexical.invalidate()
        if report is None or not report.cancelled:
            self.lexical.ensure_current()

    def refresh(self, *, progress: Callable[[IngestProgress], None] | None = None,
                cancel: threading.Event | None = None) -> IngestReport:
        """Bring the index in line with the disk: every folder added before is added again (new and
        changed files indexed, documents whose files are gone removed), and each document added on
        its own is checked the same way. Blocking; see `Ingestor.ingest`.

        A folder that is missing altogether (an unplugged drive, a renamed
        share) is reported, and its documents stay: only files that are gone
        from a folder that is there are removed.
        """
        self.store.open()
        folders = self.store.folders()
        present = [f for f in folders if os.path.isdir(f)]
        missing = [f for f in folders if f not in present]
        singles = [d.source for d in self.store.documents()
                   if not any(d.source.startswith(f.rstrip(os.sep) + os.sep) for f in folders)]
        report = None
        try:
            report = self._ingestor().ingest([Path(p) for p in present + singles], progress=progress,
                                             cancel=cancel, refresh=True)
        finally:
            self._after_ingest(report)
        for folder in missing:
            report.failed.append((folder, f"The folder {folder} is missing (a disconnected drive, or renamed?); "
                                          "its documents stay in the index. Reconnect it and try Refresh again, "
                                          "or remove its documents if it is gone for good."))
        return report

    def documents(self) -> list[DocumentRecord]:
        return self.store.documents()

    def remove_document(self, doc_key: str) -> bool:
        try:
            return self.store.remove_document(doc_key)
        finally:
            self.lexical.invalidate()

    def ask(self, question: str, history: Sequence[ChatMessage] = ()) -> AnswerRun:
        """Start an answer; iterate `run.events()` to drive it."""
        return self.pipeline.ask(question, history)

    async def aclose(self) -> None:
        self.pipeline.close()
        await self.backend.aclose()

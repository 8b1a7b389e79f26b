"""Ingest: files and folders in, chunks and sentence embeddings in the store.

The work is pipelined: a reader thread hashes, extracts and chunks files ahead
of the embedder, and texts from many files are embedded together in large
batches (sentence-transformers sorts each batch by length, so padding is
small). Embedding dominates the cost; one `encode` per file wastes most of it
on small batches. The reader's queue is bounded, so memory stays bounded even
for a folder of thousands of files, and a huge file is embedded and written in
parts (its manifest record, the commit marker, goes last; see `core.store`).

Re-ingesting an unchanged file does nothing (its content hash matches the
manifest); a changed file replaces its old chunks.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from core import documents
from core.chunking import Chunk, chunk_id, chunk_page, document_key
from core.embedding import Embedder
from core.errors import IngestError, SourcelightError
from core.store import ChunkStore, DocumentRecord, StoredChunk, StoredSentence

# Texts embedded per encode call: large enough to amortise batching across
# files, small enough that progress moves and a cancel is honoured quickly.
EMBED_BATCH_TEXTS = 512
READ_AHEAD_FILES = 16
# A file with more texts than this is embedded and written in parts.
PART_TEXTS = 2048


@dataclass(frozen=True)
class IngestProgress:
    files_done: int
    files_total: int
    current: str
    chunks_written: int


@dataclass
class IngestReport:
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason with next step)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # indexed, but e.g. a damaged page was skipped
    chunks: int = 0
    sentences: int = 0
    cancelled: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        text = (f"{len(self.indexed)} indexed, {len(self.unchanged)} unchanged, {len(self.failed)} failed "
                f"({self.chunks} chunks, {self.sentences} sentences, {self.seconds:.1f} s)")
        return text + (" - cancelled; run it again to finish" if self.cancelled else "")


@dataclass
class _Prepared:
    """One file read and chunked, waiting to be embedded."""

    path: Path
    record: DocumentRecord
    chunks: list[StoredChunk]
    sentences: list[StoredSentence]
    warnings: tuple[str, ...] = ()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(path: Path, content_hash: str, *, chunk_chars: int, overlap: int) -> _Prepared:
    """Extract and chunk one file (no embedding yet)."""
    doc = documents.extract(path)
    source = str(path)
    key = document_key(source)
    chunks: list[Chunk] = []
    for page in doc.pages:
        chunks.extend(chunk_page(page.text, page.page, target_chars=chunk_chars, overlap_sentences=overlap,
                                 first_index=len(chunks)))
    if not chunks:
        raise IngestError(f"{path.name} contains no text that could be split into sentences; "
                          "check the file opens in another program.")
    stored_chunks, stored_sentences = [], []
    for chunk in chunks:
        cid = chunk_id(key, content_hash, chunk.index)
        stored_chunks.append(StoredChunk(cid, source, chunk.page, chunk.text))
        stored_sentences.extend(StoredSentence(f"{cid}-{j:04d}", cid, s.start, s.end, s.text)
                                for j, s in enumerate(chunk.sentences))
    pages = sum(1 for p in doc.pages if p.page is not None) or None
    record = DocumentRecord(source, key, content_hash, len(stored_chunks), len(stored_sentences), pages, time.time())
    return _Prepared(path, record, stored_chunks, stored_sentences, tuple(doc.warnings))


class Ingestor:
    """Indexes files into a `ChunkStore` with the bundled embedder."""

    def __init__(self, store: ChunkStore, embedder: Embedder, *, chunk_chars: int = 900, overlap: int = 1):
        self._store = store
        self._embedder = embedder
        self._chunk_chars = chunk_chars
        self._overlap = overlap

    def ingest(self, paths: Iterable[Path], *, progress: Callable[[IngestProgress], None] | None = None,
               cancel: threading.Event | None = None) -> IngestReport:
        """Index `paths` (files or folders). Blocking: run it off the event loop.

        Every file ends up in exactly one of `indexed`, `unchanged`, `failed`;
        a failure never stops the others. Setting `cancel` stops after the
        current batch; what was committed stays committed.
        """
        started = time.perf_counter()
        cancel = cancel or threading.Event()
        report = IngestReport()
        self._store.open()
        self._embedder.load()
        files = []
        for path, error in documents.iter_files(Path(p) for p in paths):
            if error is not None:
                report.failed.append((str(path), error.message))
            else:
                files.append(path)
        total = len(files)
        done = 0
        notify = progress or (lambda _p: None)
        notify(IngestProgress(0, total, "", 0))

        prepared_q: queue.Queue = queue.Queue(maxsize=READ_AHEAD_FILES)
        reader = threading.Thread(target=self._read_all, args=(files, prepared_q, cancel),
                                  name="sourcelight-ingest-reader", daemon=True)
        reader.start()
        pending: list[_Prepared] = []
        pending_texts = 0
        try:
            while True:
                item = prepared_q.get()
                if item is None:
                    break
                if cancel.is_set():
                    report.cancelled = True
                    continue  # drain so the reader can finish
                kind, path, payload = item
                if kind == "failed":
                    report.failed.append((str(path), payload))
                    done += 1
                elif kind == "unchanged":
                    report.unchanged.append(str(path))
                    done += 1
                else:
                    pending.append(payload)
                    pending_texts += len(payload.chunks) + len(payload.sentences)
                    if pending_texts >= EMBED_BATCH_TEXTS:
                        done += self._flush(pending, report, cancel, notify, done, total)
                        pending, pending_texts = [], 0
                notify(IngestProgress(done, total, path.name, report.chunks))
            if pending and not cancel.is_set():
                done += self._flush(pending, report, cancel, notify, done, total)
            report.cancelled = report.cancelled or cancel.is_set()
        except BaseException:
            cancel.set()  # Ctrl+C or a store failure: stop the reader too
            raise
        finally:
            reader.join(timeout=5)
        notify(IngestProgress(done, total, "", report.chunks))
        report.seconds = time.perf_counter() - started
        return report

    def _read_all(self, files: list[Path], out_queue: queue.Queue, cancel: threading.Event) -> None:
        class _Out:
            @staticmethod
            def put(item) -> None:
                # A plain put() could block forever once the consumer stops
                # reading (Ctrl+C, a store failure); give up when cancelled.
                while True:
                    try:
                        out_queue.put(item, timeout=0.2)
                        return
                    except queue.Full:
                        if cancel.is_set():
                            return

        out = _Out()
        try:
            for path in files:
                if cancel.is_set():
                    break
                try:
                    content_hash = file_hash(path)
                    known = self._store.document(document_key(str(path)))
                    if known is not None and known.content_hash == content_hash:
                        out.put(("unchanged", path, None))
                        continue
                    out.put(("ready", path, prepare(path, content_hash, chunk_chars=self._chunk_chars,
                                                     overlap=self._overlap)))
                except SourcelightError as exc:
                    out.put(("failed", path, exc.message))
                except OSError as exc:
                    out.put(("failed", path, f"Cannot read {path.name}: {exc.strerror or exc}. "
                                             "Check that the file exists and you may read it."))
                except Exception as exc:  # a parser bug must not stop the other files
                    out.put(("failed", path, f"Could not read {path.name} ({type(exc).__name__}: {exc}). "
                                             "The file may be damaged; try re-saving it."))
        finally:
            out.put(None)

    def _flush(self, batch: list[_Prepared], report: IngestReport, cancel: threading.Event,
               notify: Callable[[IngestProgress], None], done: int, total: int) -> int:
        """Embed a batch of files together and write them; returns how many files finished."""
        small = [p for p in batch if len(p.chunks) + len(p.sentences) <= PART_TEXTS]
        finished = 0
        if small and not cancel.is_set():
            texts = [t for p in small for t in [c.text for c in p.chunks] + [s.text for s in p.sentences]]
            vectors = self._embedder.encode(texts)  # one call across files: the main speed-up
            offset = 0
            for prepared in small:
                n_c, n_s = len(prepared.chunks), len(prepared.sentences)
                part = vectors[offset:offset + n_c + n_s]
                offset += n_c + n_s
                self._commit(prepared, part[:n_c], part[n_c:], report)
                finished += 1
                notify(IngestProgress(done + finished, total, prepared.path.name, report.chunks))
        for prepared in batch:
            if prepared in small:
                continue
            if cancel.is_set():
                break
            self._write_in_parts(prepared, report, cancel, notify, done + finished, total)
            finished += 1
        if cancel.is_set():
            report.cancelled = True
        return finished

    def _commit(self, prepared: _Prepared, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray,
                report: IngestReport) -> None:
        try:
            self._store.replace_document(prepared.record, prepared.chunks, chunk_vectors, prepared.sentences,
                                         sentence_vectors)
        except SourcelightError as exc:
            report.failed.append((str(prepared.path), exc.message))
            return
        report.indexed.append(str(prepared.path))
        report.warnings.extend((str(prepared.path), w) for w in prepared.warnings)
        report.chunks += len(prepared.chunks)
        report.sentences += len(prepared.sentences)

    def _write_in_parts(self, prepared: _Prepared, report: IngestReport, cancel: threading.Event,
               notify: Callable[[IngestProgress], None], done: int, total: int) -> None:
        store = self._store
        store.begin_document(prepared.record.doc_key)
        # Write in parts, chunk-aligned, so a huge file never holds all its
        # embeddings in memory and progress keeps moving.
        sentences_by_chunk: dict[str, list[StoredSentence]] = {}
        for s in prepared.sentences:
            sentences_by_chunk.setdefault(s.chunk_id, []).append(s)
        part_chunks: list[StoredChunk] = []
        part_sentences: list[StoredSentence] = []
        for i, chunk in enumerate(prepared.chunks):
            part_chunks.append(chunk)
            part_sentences.extend(sentences_by_chunk.get(chunk.id, ()))
            last = i == len(prepared.chunks) - 1
            if len(part_chunks) + len(part_sentences) >= PART_TEXTS or last:
                if cancel.is_set():
                    report.cancelled = True
                    return  # no manifest: the next run redoes this file
                vectors = self._embedder.encode([c.text for c in part_chunks] + [s.text for s in part_sentences])
                store.add_records(part_chunks, vectors[:len(part_chunks)], part_sentences,
                                  vectors[len(part_chunks):])
                report.chunks += len(part_chunks)
                report.sentences += len(part_sentences)
                notify(IngestProgress(done, total, prepared.path.name, report.chunks))
                part_chunks, part_sentences = [], []
        store.commit_document(prepared.record)
        report.indexed.append(str(prepared.path))
        report.warnings.extend((str(prepared.path), w) for w in prepared.warnings)

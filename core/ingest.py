"""Ingest: files and folders in, chunks and sentence embeddings in the store.

The work is pipelined: a reader thread hashes, extracts and chunks files ahead
of the embedder, and texts from many files are embedded together in large
batches (sentence-transformers sorts each batch by length, so padding is
small). Embedding dominates the cost; one `encode` per file wastes most of it
on small batches. Only the sentences go through the model: a chunk's vector
is pooled from its sentences' vectors (`core.chunk_vectors`). The reader's queue is bounded, so memory stays bounded even
for a folder of thousands of files, and a huge file is embedded and written in
parts (its manifest record, the commit marker, goes last; see `core.store`).

Each file is one all-or-nothing write with a fresh version: nothing of it is
listed, retrieved or removable until every chunk and sentence is stored, and
an ingest stopped in the middle of a file (Cancel, Ctrl+C, SIGTERM, SIGKILL, a
crash) leaves nothing of that file searchable; what a kill left is deleted
when the store next opens or the next ingest starts (`ChunkStore.recover`).
Small files are written a batch at a time (`ChunkStore.write_documents`), still
each all or nothing.

Re-ingesting an unchanged file does nothing (its content hash matches the
manifest); a changed file's new version is written beside the old one, which
stays searchable until the new one is complete and is then deleted.
"""
from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from core import documents
from core.chunk_vectors import pooled_chunk_vectors
from core.chunking import chunk_id, document_key, iter_chunks
from core.embedding import Embedder
from core.errors import IngestError, SourcelightError
from core.segment import Stopped, readable
from core.store import ChunkStore, DocumentRecord, StoredChunk, StoredSentence, new_version

# Texts embedded per encode call: large enough to amortise batching across
# files, small enough that progress moves and a cancel is honoured quickly.
EMBED_BATCH_TEXTS = 512
# Items (files or parts of a big file) the reader may run ahead of the embedder.
READ_AHEAD_ITEMS = 16
# A file with more texts (chunks + sentences) than this is segmented, embedded
# and written in parts of this size, so memory stays bounded and progress
# moves (about a second of segmentation and a few of embedding per part here).
PART_TEXTS = 1024


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


def interrupted_message(last: IngestProgress | None) -> str:
    """What to say after Ctrl+C stopped an ingest, given its last progress report.

    Only whole files are kept (see the module docstring), so the message says
    how many were finished rather than promising that "everything" was saved.
    """
    done, total = (last.files_done, last.files_total) if last is not None else (0, 0)
    current = last.current if last is not None and last.current else ""
    if done == 0 and total <= 1:
        name = current or "the file"
        return (f"Interrupted: {name} was not finished, so nothing of it was added to the index. "
                "Run the same command again to index it.")
    if done == 0:
        return (f"Interrupted before any of the {total} files was finished: nothing was added to the index. "
                "Run the same command again to index them.")
    return (f"Interrupted. {done} of {total} files were finished (those indexed are saved); nothing of the "
            "others was added (a file is added only once it is complete). Run the same command again to finish; "
            "files already indexed are skipped.")


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


def chunking_label(chunk_chars: int, overlap: int) -> str:
    """How a document was split, as recorded in its manifest ("1200/1")."""
    return f"{chunk_chars}/{overlap}"


def iter_parts(path: Path, content_hash: str, *, chunk_chars: int, overlap: int,
               should_stop: Callable[[], bool] | None = None, version: str | None = None):
    """Extract a file and yield ("part", chunks, sentences) of at most ~PART_TEXTS texts, then
    ("done", record, warnings). Raises IngestError for an unreadable file, `Stopped` on cancel.

    `version` names this write of the file (a fresh one when not given); the
    chunk ids and the record carry it."""
    version = version or new_version()
    doc = documents.extract(path)
    source = str(path)
    key = document_key(source)
    part_chunks: list[StoredChunk] = []
    part_sentences: list[StoredSentence] = []
    n_chunks = n_sentences = 0
    for page in doc.pages:
        for chunk in iter_chunks(page.text, page.page, target_chars=chunk_chars, overlap_sentences=overlap,
                                 first_index=n_chunks, should_stop=should_stop):
            cid = chunk_id(key, version, chunk.index)
            part_chunks.append(StoredChunk(cid, source, chunk.page, chunk.text))
            part_sentences.extend(StoredSentence(f"{cid}-{j:04d}", cid, s.start, s.end, s.text)
                                  for j, s in enumerate(chunk.sentences))
            n_chunks += 1
            if len(part_chunks) + len(part_sentences) >= PART_TEXTS:
                n_sentences += len(part_sentences)
                yield "part", part_chunks, part_sentences
                part_chunks, part_sentences = [], []
    if part_chunks:
        n_sentences += len(part_sentences)
        yield "part", part_chunks, part_sentences
    if not n_chunks:
        raise IngestError(f"{path.name} contains no text that could be split into sentences; "
                          "check the file opens in another program.")
    pages = sum(1 for p in doc.pages if p.page is not None) or None
    yield "done", DocumentRecord(source, key, content_hash, n_chunks, n_sentences, pages, time.time(),
                                 chunking_label(chunk_chars, overlap), version), \
        tuple(doc.warnings)


def prepare(path: Path, content_hash: str, *, chunk_chars: int, overlap: int) -> "_Prepared":
    """Extract and chunk a whole file at once (no embedding yet)."""
    chunks: list[StoredChunk] = []
    sentences: list[StoredSentence] = []
    for kind, first, second in iter_parts(path, content_hash, chunk_chars=chunk_chars, overlap=overlap):
        if kind == "part":
            chunks += first
            sentences += second
        else:
            return _Prepared(path, first, chunks, sentences, second)
    raise AssertionError("iter_parts always ends with 'done'")


@dataclass
class _OpenFile:
    """The file whose parts are arriving from the reader."""

    path: Path
    chunks: list[StoredChunk] = field(default_factory=list)
    sentences: list[StoredSentence] = field(default_factory=list)
    version: str = ""  # this write of the file (`core.store.new_version`)
    streaming: bool = False  # too big to batch with other files: written part by part
    doc_key: str = ""
    written: tuple[int, int] = (0, 0)  # chunks, sentences stored so far (uncommitted)

    @property
    def texts(self) -> int:
        return len(self.chunks) + len(self.sentences)


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

        Every file ends up in exactly one of `indexed`, `unchanged`, `failed`
        (or is left for the next run when cancelled); a failure never stops
        the others. Setting `cancel` stops within a fraction of a second, even
        inside a huge file; what was committed stays committed.
        """
        started = time.perf_counter()
        cancel = cancel or threading.Event()
        report = IngestReport()
        self._store.open()
        self._store.recover()  # what an ingest killed since the store opened left behind
        self._embedder.load()
        files = []
        # A document's key is a hash of its path, so the path must be absolute: "notes.txt" from two
        # folders would otherwise be one document, and the same file two. abspath, not resolve:
        # the path the user chose (a symlink's name) is the one shown and removed by.
        for path, error in documents.iter_files(Path(os.path.abspath(p)) for p in paths):
            if error is not None:
                report.failed.append((str(path), error.message))
            else:
                files.append(path)
        total = len(files)
        done = 0
        notify = progress or (lambda _p: None)
        notify(IngestProgress(0, total, "", 0))

        items: queue.Queue = queue.Queue(maxsize=READ_AHEAD_ITEMS)
        reader = threading.Thread(target=self._read_all, args=(files, items, cancel),
                                  name="sourcelight-ingest-reader", daemon=True)
        reader.start()
        pending: list[_Prepared] = []
        pending_texts = 0
        current: _OpenFile | None = None
        try:
            while True:
                try:
                    item = items.get(timeout=0.2)
                except queue.Empty:
                    if cancel.is_set():
                        break
                    if not reader.is_alive() and items.empty():
                        break  # the reader ended without its end marker: never wait for it forever
                    continue
                if item is None or cancel.is_set():
                    break
                kind, path, *payload = item
                if kind == "failed":
                    if current is not None and current.path == path:
                        self._abandon(current, report)
                        current = None
                    report.failed.append((str(path), payload[0]))
                    done += 1
                elif kind == "unchanged":
                    report.unchanged.append(str(path))
                    done += 1
                elif kind == "part":
                    if current is None or current.path != path:
                        current = _OpenFile(path, version=payload[2])
                    current.chunks += payload[0]
                    current.sentences += payload[1]
                    if current.streaming or current.texts > PART_TEXTS:
                        if not current.streaming and pending:
                            # Small files read before a big one are committed first: they
                            # would otherwise wait for all of it (hours for a huge file),
                            # and be lost to a kill during it.
                            done += self._flush(pending, report, cancel, notify, done, total)
                            pending, pending_texts = [], 0
                        self._write_part(current, report)
                elif kind == "done":
                    record, warnings = payload[0], payload[1]
                    if current is not None and current.streaming:
                        self._write_part(current, report)
                        try:
                            self._store.commit_document(record)
                        except SourcelightError as exc:  # cleared by another process meanwhile
                            self._abandon(current, report)
                            report.failed.append((str(path), exc.message))
                        else:
                            report.indexed.append(str(path))
                            report.warnings.extend((str(path), w) for w in warnings)
                        done += 1
                    elif current is not None:
                        pending.append(_Prepared(path, record, current.chunks, current.sentences, warnings))
                        pending_texts += current.texts
                        if pending_texts >= EMBED_BATCH_TEXTS:
                            done += self._flush(pending, report, cancel, notify, done, total)
                            pending, pending_texts = [], 0
                    current = None
                notify(IngestProgress(done, total, path.name, report.chunks))
            if pending and not cancel.is_set():
                done += self._flush(pending, report, cancel, notify, done, total)
        except BaseException:
            cancel.set()  # Ctrl+C or a store failure: stop the reader too
            raise
        finally:
            if cancel.is_set():
                report.cancelled = True
            if current is not None and current.streaming:
                # Begun but never committed (cancelled, Ctrl+C, a store failure, a
                # reader that died): its rows go now; the file's old version stays.
                try:
                    self._abandon(current, report)
                except Exception:  # noqa: BLE001 - the store failed: `recover` clears them at the next start
                    pass
            reader.join(timeout=5)
        notify(IngestProgress(done, total, "", report.chunks))
        report.seconds = time.perf_counter() - started
        return report

    def _read_all(self, files: list[Path], out_queue: queue.Queue, cancel: threading.Event) -> None:
        def put(item) -> None:
            # A plain put() could block forever once the consumer stops
            # reading (Ctrl+C, a store failure); give up when cancelled.
            while not cancel.is_set():
                try:
                    out_queue.put(item, timeout=0.2)
                    return
                except queue.Full:
                    pass

        try:
            for path in files:
                if cancel.is_set():
                    break
                try:
                    content_hash = file_hash(path)
                    known = self._store.document(document_key(str(path)))
                    if known is not None and known.content_hash == content_hash \
                            and known.chunking == chunking_label(self._chunk_chars, self._overlap):
                        put(("unchanged", path))
                        continue
                    version = new_version()
                    for kind, first, second in iter_parts(path, content_hash, chunk_chars=self._chunk_chars,
                                                          overlap=self._overlap, should_stop=cancel.is_set,
                                                          version=version):
                        put((kind, path, first, second, version))
                except Stopped:
                    break
                except SourcelightError as exc:
                    put(("failed", path, exc.message))
                except OSError as exc:
                    put(("failed", path, f"Cannot read {path.name}: {exc.strerror or exc}. "
                                         "Check that the file exists and you may read it."))
                except Exception as exc:  # a parser bug must not stop the other files
                    put(("failed", path, f"Could not read {path.name} ({type(exc).__name__}: {exc}). "
                                         "The file may be damaged; try re-saving it."))
        finally:
            # The end marker waits for room like every item: the consumer may
            # be busy embedding a batch for longer than any fixed timeout (a
            # dropped marker once left an ingest waiting forever). It is only
            # given up when cancelled; the consumer also notices a dead reader.
            put(None)

    def _write_part(self, current: _OpenFile, report: IngestReport) -> None:
        """Embed and write what has arrived of a big file (invisible until its manifest, which comes last)."""
        if not current.streaming:
            current.doc_key = document_key(str(current.path))
            self._store.begin_document(current.doc_key, current.version)
            current.streaming = True
        if not current.chunks:
            return
        chunk_vectors, sentence_vectors = self._embed(current.chunks, current.sentences)
        self._store.add_records(current.chunks, chunk_vectors, current.sentences, sentence_vectors,
                                version=current.version)
        report.chunks += len(current.chunks)
        report.sentences += len(current.sentences)
        current.written = (current.written[0] + len(current.chunks), current.written[1] + len(current.sentences))
        current.chunks, current.sentences = [], []

    def _abandon(self, current: _OpenFile, report: IngestReport) -> None:
        """Remove the parts of a big file that will not be committed (cancel, or it failed half-way)."""
        if current.streaming:
            current.streaming = False
            report.chunks -= current.written[0]  # the report counts what is indexed
            report.sentences -= current.written[1]
            self._store.abandon_document(current.doc_key, current.version)

    def _flush(self, batch: list[_Prepared], report: IngestReport, cancel: threading.Event,
               notify: Callable[[IngestProgress], None], done: int, total: int) -> int:
        """Embed a batch of small files together and write them; returns how many files finished."""
        if cancel.is_set():
            return 0
        # One call across files: the main speed-up.
        chunk_vectors, sentence_vectors = self._embed([c for p in batch for c in p.chunks],
                                                      [s for p in batch for s in p.sentences])
        writes = []
        c_at = s_at = 0
        for prepared in batch:
            n_c, n_s = len(prepared.chunks), len(prepared.sentences)
            writes.append((prepared.record, prepared.chunks, chunk_vectors[c_at:c_at + n_c], prepared.sentences,
                           sentence_vectors[s_at:s_at + n_s]))
            c_at += n_c
            s_at += n_s
        # One write for the batch, each file in it still all or nothing (see `ChunkStore.write_documents`).
        try:
            self._store.write_documents(writes)
        except SourcelightError as exc:
            report.failed.extend((str(p.path), exc.message) for p in batch)
            return len(batch)
        for finished, prepared in enumerate(batch, 1):
            report.indexed.append(str(prepared.path))
            report.warnings.extend((str(prepared.path), w) for w in prepared.warnings)
            report.chunks += len(prepared.chunks)
            report.sentences += len(prepared.sentences)
            notify(IngestProgress(done + finished, total, prepared.path.name, report.chunks))
        return len(batch)

    def _embed(self, chunks: list[StoredChunk], sentences: list[StoredSentence]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk vectors, sentence vectors): the model runs on the sentences only.

        A chunk is a run of its sentences, so its vector is pooled from theirs
        (`core.chunk_vectors`) rather than running the model over the same
        words twice; that halves the embedding work of an ingest.
        """
        # Consecutive chunks share their overlap sentences: each distinct text is embedded once.
        # The model reads a wrapped sentence as one line with its hyphenation repaired
        # ("infor-\nmation" is one word to it); the stored text keeps the document's own.
        texts = [readable(s.text) for s in sentences]
        distinct = list(dict.fromkeys(texts))
        where = {text: i for i, text in enumerate(distinct)}
        sentence_vectors = self._embedder.encode(distinct)[[where[t] for t in texts]]
        row = {c.id: i for i, c in enumerate(chunks)}
        chunk_vectors = pooled_chunk_vectors(sentence_vectors, [row[s.chunk_id] for s in sentences],
                                             [len(s.text) for s in sentences], len(chunks))
        return chunk_vectors, sentence_vectors

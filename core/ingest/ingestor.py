"""Ingest: files and folders in, chunks and sentence embeddings in the store.

The work is pipelined: a reader thread hashes, extracts and chunks files ahead
of the embedder, and texts from many files are embedded together in large
batches (sentence-transformers sorts each batch by length, so padding is
small). Embedding dominates the cost; one `encode` per file wastes most of it
on small batches. Only the sentences go through the model: a chunk's vector
is pooled from its sentences' vectors (`core.ingest.chunk_vectors`). The reader's queue is bounded, so memory stays bounded even
for a folder of thousands of files, and a huge file is embedded and written in
parts (its manifest record, the commit marker, goes last; see `core.ingest.store`).

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

Folders stay in sync: adding a folder again (or `Engine.refresh`, which adds
every folder added before) removes the documents whose files are gone from
it, and says so (`IngestReport.removed`). Files of unsupported types found in
folders are counted by type (`IngestReport.skipped_types`). A file that failed
for a reason of its own (damaged, no text, password, too large) is remembered
with its size and modification time beside the index, and is not parsed
again until it changes, or until the extraction code or its libraries do
(`reader_fingerprint`).

A PDF's chunks also carry a page map (`core.page_map`): where each of their
characters is on the page, so the page view can light a span on the page
itself. PDFs indexed before maps existed are read again when re-added.

Progress reports bytes as well as files, so one large file shows how far it
got and roughly how long is left. What libraries log or warn while a file is
read (pypdf's "Error -3 while decompressing data" when it is asked about a
page pdfium found empty) is attached to that file as a warning instead of
reaching the terminal raw.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import queue
import re
import stat
import threading
import time
import warnings as warnings_module
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from core.ingest import documents
from core.ingest.chunk_vectors import pooled_chunk_vectors
from core.ingest.chunking import chunk_id, document_key, iter_chunks
from core.embedding import Embedder
from core.errors import IngestError, SourcelightError
from core.page_map import PdfPageMapper, encode as encode_map
from core.ingest.segment import Stopped, readable
from core.ingest.store import ChunkStore, DocumentRecord, FailureRecord, StoredChunk, StoredSentence, new_version

# Texts embedded per encode call: large enough to amortise batching across
# files, small enough that progress moves and a cancel is honoured quickly.
EMBED_BATCH_TEXTS = 512
# Items (files or parts of a big file) the reader may run ahead of the embedder.
READ_AHEAD_ITEMS = 16
# A file with more texts (chunks + sentences) than this is segmented, embedded
# and written in parts of this size, so memory stays bounded and progress
# moves (about a second of segmentation and a few of embedding per part here).
PART_TEXTS = 1024
# The share of a PDF's progress that reading (parsing) its pages stands for; the
# rest is chunking, embedding and writing, which cost several times more here.
READ_SHARE = 0.2
# The reader thread's name: log records from it belong to the file it reads (see `_LibraryMessages`).
READER_THREAD_NAME = "sourcelight-ingest-reader"
# Failures that are the file's own: they recur until the file (or the reader) changes, so they are
# remembered. Missing files, permissions, files changing while read and store errors are not.
REMEMBERED_FAILURES = frozenset({documents.CODE_NO_TEXT, documents.CODE_BINARY, documents.CODE_CORRUPT,
                                 documents.CODE_ENCRYPTED, documents.CODE_TOO_LARGE, "parser_error"})
# No estimate of the time left before this much has been seen: the first seconds include
# loading the model and reading ahead, and an estimate from them swings wildly.
_ETA_AFTER_S = 3.0
# Library messages quoted per file (the rest are counted).
_MESSAGES_SHOWN = 3


@dataclass(frozen=True)
class IngestProgress:
    """How far an ingest got. Bytes count the files being read in this run (unchanged ones drop
    out of the total once found), and move inside a large file as its parts are stored."""

    files_done: int
    files_total: int
    current: str
    chunks_written: int
    bytes_done: int = 0
    bytes_total: int = 0
    seconds_left: float | None = None  # an estimate, once enough is done to tell

    @property
    def fraction(self) -> float | None:
        """Share of the bytes done (None before the sizes are known)."""
        if self.bytes_total > 0:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.files_total > 0:
            return self.files_done / self.files_total
        return None

    @property
    def amount_text(self) -> str:
        """"52 MiB of 210 MiB, about 3 min left" (binary units), or "" before the sizes are known."""
        from core.units import format_bytes, format_duration

        if self.bytes_total <= 0:
            return ""
        text = f"{format_bytes(self.bytes_done)} of {format_bytes(self.bytes_total)}"
        if self.seconds_left is not None and self.bytes_done < self.bytes_total:
            text += f", {format_duration(self.seconds_left)} left"
        return text


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
    removed: list[str] = field(default_factory=list)  # documents whose files are gone from their folder
    skipped_types: dict[str, int] = field(default_factory=dict)  # unsupported files in folders, by suffix
    not_retried: list[str] = field(default_factory=list)  # failed before and unchanged: not read again

    def summary(self) -> str:
        failed = f"{len(self.failed)} failed"
        if self.not_retried:
            failed += f" ({len(self.not_retried)} unchanged since they last failed)"
        parts = [f"{len(self.indexed)} indexed", f"{len(self.unchanged)} unchanged", failed]
        if self.removed:
            parts.append(f"{len(self.removed)} removed (file gone)")
        if self.skipped_types:
            parts.append(f"{sum(self.skipped_types.values())} of unsupported types skipped "
                         f"({describe_types(self.skipped_types)})")
        text = ", ".join(parts) + f" ({self.chunks} chunks, {self.sentences} sentences, {self.seconds:.1f} s)"
        return text + (" - cancelled; run it again to finish" if self.cancelled else "")


def describe_types(counts: dict[str, int]) -> str:
    """".png: 12, .xlsx: 3, no extension: 1", most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{suffix or 'no extension'}: {n}" for suffix, n in ordered)


def failure_line(path: str, reason: str) -> str:
    """One line for a failed file or a warning, naming the path once.

    Most reasons already start with (or contain) the full path; repeating it
    in front doubled every path on the line.
    """
    return reason if path in reason else f"{path}: {reason}"


def interrupted_message(last: IngestProgress | None) -> str:
    """What to say after Ctrl+C stopped an ingest, given its last progress report.

    Only whole files are kept (see the module docstring), so the message says
    how many were finished rather than promising that "everything" was saved.
    """
    if last is None:
        return ("Interrupted before any file was finished: nothing was added to the index. "
                "Run the same command again to index them.")
    done, total = last.files_done, last.files_total
    current = last.current or ""
    if done == 0 and total <= 1:
        name = current or "the file"
        got = ""
        if last.bytes_total and last.bytes_done:
            got = f" ({last.bytes_done * 100 // last.bytes_total}% of it had been read)"
        return (f"Interrupted: {name} was not finished{got}, so nothing of it was added to the index. "
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
               should_stop: Callable[[], bool] | None = None, version: str | None = None,
               position: Callable[[float], None] | None = None):
    """Extract a file and yield ("part", chunks, sentences) of at most ~PART_TEXTS texts, then
    ("done", record, warnings). Raises IngestError for an unreadable file, `Stopped` on cancel.

    `version` names this write of the file (a fresh one when not given); the
    chunk ids and the record carry it. `position`, when given, is called with
    how far through the file the work is (0-1): after each PDF page read, and
    before each part with the share of the file's text that the parts so far cover."""
    version = version or new_version()
    path = Path(path)
    # A PDF is parsed page by page before its first chunk exists; that part of
    # the work counts as the first READ_SHARE of the file, so a large PDF's bar
    # moves (and a cancel is honoured) while it is read, not only once it is embedded.
    share = READ_SHARE if path.suffix.lower() == ".pdf" else 0.0

    def on_page(done: int, total: int) -> None:
        if should_stop is not None and should_stop():
            raise Stopped()
        if position is not None and total:
            position(share * done / total)

    doc = documents.extract(path, on_page=on_page)
    mapper = PdfPageMapper(path, content_hash) if path.suffix.lower() == ".pdf" else None
    after_read = None if position is None else (lambda f: position(share + (1.0 - share) * f))
    try:
        yield from _parts(path, doc, content_hash, mapper, chunk_chars=chunk_chars, overlap=overlap,
                          should_stop=should_stop, version=version, position=after_read)
    finally:
        if mapper is not None:
            mapper.close()


def _parts(path: Path, doc, content_hash: str, mapper, *, chunk_chars: int, overlap: int, should_stop, version: str,
           position):
    source = str(path)
    key = document_key(source)
    part_chunks: list[StoredChunk] = []
    part_sentences: list[StoredSentence] = []
    n_chunks = n_sentences = 0
    total_chars = max(1, sum(len(p.text) for p in doc.pages))
    pages_before = 0  # characters of the pages already chunked
    for page in doc.pages:
        covered = search_from = 0
        mapping = mapper.page(page.page, page.text, page.char_index) if mapper is not None else None
        for chunk in iter_chunks(page.text, page.page, target_chars=chunk_chars, overlap_sentences=overlap,
                                 first_index=n_chunks, should_stop=should_stop):
            cid = chunk_id(key, version, chunk.index)
            char_map = encode_map(mapping, chunk.start, chunk.start + len(chunk.text)) if mapping else ""
            part_chunks.append(StoredChunk(cid, source, chunk.page, chunk.text, char_map))
            part_sentences.extend(StoredSentence(f"{cid}-{j:04d}", cid, s.start, s.end, s.text)
                                  for j, s in enumerate(chunk.sentences))
            n_chunks += 1
            if position is not None:
                covered, search_from = _chunk_end(page.text, chunk.text, covered, search_from)
            if len(part_chunks) + len(part_sentences) >= PART_TEXTS:
                n_sentences += len(part_sentences)
                if position is not None:
                    position((pages_before + covered) / total_chars)
                yield "part", part_chunks, part_sentences
                part_chunks, part_sentences = [], []
        pages_before += len(page.text)
    if part_chunks:
        n_sentences += len(part_sentences)
        if position is not None:
            position(1.0)
        yield "part", part_chunks, part_sentences
    if not n_chunks:
        raise IngestError(f"{path} contains no text that could be split into sentences; "
                          "check the file opens in another program.", code=documents.CODE_NO_TEXT)
    pages = sum(1 for p in doc.pages if p.page is not None) or None
    yield "done", DocumentRecord(source, key, content_hash, n_chunks, n_sentences, pages, time.time(),
                                 chunking_label(chunk_chars, overlap), version, page_map=mapper is not None), \
        tuple(doc.warnings)


def _chunk_end(text: str, chunk: str, covered: int, search_from: int) -> tuple[int, int]:
    """(where `chunk` ends in `text`, where to look for the next one), for progress inside a file.

    A chunk is a slice of its page that starts at or after the previous
    chunk's start (overlap steps back less than a chunk), so it is looked for
    in a bounded window there: a 50 MB page costs linear time, never a scan
    per chunk. If it is not found the estimate simply advances by its length.
    """
    window_end = search_from + 4 * len(chunk) + 4096
    at = text.find(chunk, search_from, window_end)
    if at < 0:
        covered = min(len(text), covered + len(chunk))
        return covered, covered
    return max(covered, at + len(chunk)), at + 1


@functools.lru_cache(maxsize=1)
def reader_fingerprint() -> str:
    """A fingerprint of the code and libraries that read files: remembered failures carry it,
    so a file that failed is tried again after Sourcelight (or pypdfium2, python-docx...) changes.

    It hashes the engine's top-level modules and the ingest package with its
    readers, `core.ingest.documents` (extraction code lives in all three: the PDFs
    pypdf refused as damaged are read since the switch to pdfium, a change of
    that package and of `core.pdf_pages`), and
    the versions of the parsing libraries installed. Computed once per process
    (a few milliseconds).
    """
    from importlib import metadata

    digest = hashlib.sha256()
    here = Path(__file__).parent  # core/ingest
    try:
        for source in sorted([*here.parent.glob("*.py"), *here.glob("*.py"), *(here / "documents").glob("*.py")]):
            digest.update(str(source.relative_to(here.parent)).encode())
            digest.update(source.read_bytes())
    except OSError:  # a frozen build without sources: its version stands in for them
        pass
    for dist in ("sourcelight", "pypdf", "python-docx", "lxml", "beautifulsoup4", "pdfminer.six", "pymupdf",
                 "pypdfium2"):
        try:
            digest.update(f"{dist}={metadata.version(dist)};".encode())
        except metadata.PackageNotFoundError:
            continue
    return digest.hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a regular file, None if it cannot be looked at."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def _gone(source: str) -> bool:
    """True only when the file is certainly not there (not when it merely cannot be looked at).

    A folder that now has the file's name (notes.md deleted, a folder notes.md
    made) counts as gone too: the document it was is no longer on disk.
    """
    try:
        st = os.stat(source)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode)


def _under(source: str, folder: str) -> bool:
    return source.startswith(folder.rstrip(os.sep) + os.sep)


class _LibraryMessages(logging.Handler):
    """What libraries log (WARNING and up) or warn on the ingest reader thread, kept per file.

    pypdf logs damage it works around ("Object 172 0 not defined.") through
    `logging`; with no handler configured, Python prints such records raw to
    stderr, straight into the progress bar and without a file name. While an
    ingest runs this handler sits on the root logger: records from the reader
    thread are collected and attached to the file being read; records from
    other threads go where they would have gone (Python's last-resort handler
    when nothing else is configured). `warnings.warn` from the reader thread
    is routed the same way. Several ingests may run at once (each registers
    its reader thread).
    """

    _lock = threading.Lock()
    _installed: "_LibraryMessages | None" = None
    _sinks: dict[int, list[tuple[str, str]]] = {}
    _showwarning = None

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    @classmethod
    def collect(cls, thread_id: int) -> list[tuple[str, str]]:
        """Start collecting for `thread_id`; returns the list that fills with (library, message)."""
        sink: list[tuple[str, str]] = []
        with cls._lock:
            if not cls._sinks:
                cls._installed = cls()
                logging.getLogger().addHandler(cls._installed)
                cls._showwarning = warnings_module.showwarning
                warnings_module.showwarning = cls._route_warning
            cls._sinks[thread_id] = sink
        return sink

    @classmethod
    def stop(cls, thread_id: int) -> None:
        with cls._lock:
            cls._sinks.pop(thread_id, None)
            if not cls._sinks and cls._installed is not None:
                logging.getLogger().removeHandler(cls._installed)
                cls._installed = None
                if warnings_module.showwarning is cls._route_warning:
                    warnings_module.showwarning = cls._showwarning
                cls._showwarning = None

    def emit(self, record: logging.LogRecord) -> None:
        sink = self._sinks.get(record.thread)
        if sink is not None:
            try:
                sink.append((record.name.split(".")[0], record.getMessage()))
            except Exception:  # noqa: BLE001 - a record whose message cannot be formatted is dropped
                pass
            return
        # Not ours. Python prints records no handler takes; this handler's presence would
        # otherwise silence them for the whole process while an ingest runs.
        root = logging.getLogger()
        if all(h is self for h in root.handlers) and logging.lastResort is not None \
                and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)

    @classmethod
    def _route_warning(cls, message, category, filename, lineno, file=None, line=None) -> None:
        sink = cls._sinks.get(threading.get_ident())
        if sink is not None and file is None:
            library = re.search(r"[\\/]site-packages[\\/]([^\\/]+)", str(filename))
            sink.append((library.group(1) if library else Path(str(filename)).stem, str(message)))
            return
        original = cls._showwarning or warnings_module._showwarning_orig  # type: ignore[attr-defined]
        original(message, category, filename, lineno, file, line)


def _clip(text: str, limit: int = 160) -> str:
    # Some messages quote a whole font dictionary (pypdf's fontTools notice: over 1,000 characters).
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def library_warning(messages: list[tuple[str, str]], known: Iterable[str] = ()) -> str | None:
    """One warning line for what libraries reported while a file was read (None if nothing new).

    Messages already part of the extractor's own warnings (`known`) are not repeated.
    """
    known_text = " ".join(known)
    distinct = list(dict.fromkeys((lib, text.strip()) for lib, text in messages
                                  if text.strip() and text.strip() not in known_text))
    if not distinct:
        return None
    libraries = ", ".join(dict.fromkeys(lib for lib, _t in distinct))
    shown = "; ".join(f"\"{_clip(t)}\"" for _lib, t in distinct[:_MESSAGES_SHOWN])
    more = f" and {len(distinct) - _MESSAGES_SHOWN} more" if len(distinct) > _MESSAGES_SHOWN else ""
    return (f"{libraries} reported {len(distinct)} problem{'s' if len(distinct) != 1 else ''} while reading it "
            f"({shown}{more}); its text was indexed, but parts of it may be missing or out of order. "
            "If something seems missing, re-save or re-export the file and add it again.")


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
    version: str = ""  # this write of the file (`core.ingest.store.new_version`)
    streaming: bool = False  # too big to batch with other files: written part by part
    doc_key: str = ""
    written: tuple[int, int] = (0, 0)  # chunks, sentences stored so far (uncommitted)

    @property
    def texts(self) -> int:
        return len(self.chunks) + len(self.sentences)


class _Meter:
    """Turns what ingest finished into `IngestProgress` reports: files, bytes and time left."""

    def __init__(self, files: list[Path], sizes: dict[Path, int], notify: Callable[[IngestProgress], None]):
        self._sizes = sizes
        self._notify = notify
        self.files_total = len(files)
        self.bytes_total = sum(sizes.get(p, 0) for p in files)
        self.bytes_done = 0
        self._partial = 0  # bytes of the file being written in parts, by the share of its text stored
        self._started = time.perf_counter()

    def finished(self, path: Path) -> None:
        self.bytes_done += self._sizes.get(path, 0)
        self._partial = 0

    def skipped(self, path: Path) -> None:
        """An unchanged file: no work, so it leaves the total rather than inflating the speed."""
        self.bytes_total -= self._sizes.get(path, 0)

    def inside(self, path: Path, fraction: float) -> None:
        self._partial = int(self._sizes.get(path, 0) * max(0.0, min(1.0, fraction)))

    def report(self, files_done: int, current: str, chunks: int) -> None:
        done = min(self.bytes_total, self.bytes_done + self._partial)
        elapsed = time.perf_counter() - self._started
        left = None
        if done > 0 and elapsed >= _ETA_AFTER_S and self.bytes_total > done:
            left = (self.bytes_total - done) * elapsed / done
        elif done >= self.bytes_total > 0:
            left = 0.0
        self._notify(IngestProgress(files_done, self.files_total, current, chunks, done, max(self.bytes_total, 0),
                                    left))


class Ingestor:
    """Indexes files into a `ChunkStore` with the bundled embedder."""

    def __init__(self, store: ChunkStore, embedder: Embedder, *, chunk_chars: int = 900, overlap: int = 1):
        self._store = store
        self._embedder = embedder
        self._chunk_chars = chunk_chars
        self._overlap = overlap

    def ingest(self, paths: Iterable[Path], *, progress: Callable[[IngestProgress], None] | None = None,
               cancel: threading.Event | None = None, remember_folders: bool = True,
               refresh: bool = False) -> IngestReport:
        """Index `paths` (files or folders). Blocking: run it off the event loop.

        Every file ends up in exactly one of `indexed`, `unchanged`, `failed`
        (or is left for the next run when cancelled); a failure never stops
        the others. Setting `cancel` stops within a fraction of a second, even
        inside a huge file; what was committed stays committed.

        Folders given are synced: indexed documents under them whose files are
        gone are removed (`removed`), and they are remembered for `Engine.refresh`
        unless `remember_folders` is False. With `refresh`, a file given by
        path that is gone while its folder is still there is removed rather than
        reported as missing. Files that failed before and have not changed are
        reported failed again without being read (`not_retried`).
        """
        started = time.perf_counter()
        cancel = cancel or threading.Event()
        report = IngestReport()
        self._store.open()
        self._store.recover()  # what an ingest killed since the store opened left behind
        self._embedder.load()
        # A document's key is a hash of its path, so the path must be absolute: "notes.txt" from two
        # folders would otherwise be one document, and the same file two. abspath, not resolve:
        # the path the user chose (a symlink's name) is the one shown and removed by.
        given = [Path(os.path.abspath(p)) for p in paths]
        folders = [p for p in given if p.is_dir()]
        indexed_docs = {d.source: d for d in self._store.documents()}
        remembered = self._store.failures()
        reader = reader_fingerprint()
        skipped: Counter = Counter()
        files: list[Path] = []
        sizes: dict[Path, int] = {}
        stats: dict[Path, tuple[int, int]] = {}
        seen: set[str] = set()
        for path, error in documents.iter_files(given, skipped=skipped):
            seen.add(str(path))
            if error is not None:
                if refresh and error.code == documents.CODE_NOT_FOUND and str(path) in indexed_docs \
                        and path.parent.is_dir():
                    self._remove_gone([str(path)], report)
                else:
                    report.failed.append((str(path), error.message))
                continue
            st = _stat(path)
            old = remembered.get(str(path))
            if st is not None and old is not None and (old.size, old.mtime_ns, old.reader) == (*st, reader):
                report.failed.append((str(path), old.message + " (Unchanged since it last failed: not read "
                                                               "again. Change or replace the file to retry.)"))
                report.not_retried.append(str(path))
                continue
            files.append(path)
            if st is not None:
                sizes[path], stats[path] = st[0], st
        report.skipped_types = dict(skipped)
        for folder in folders:
            gone = [s for s in indexed_docs if _under(s, str(folder)) and s not in seen and _gone(s)]
            self._remove_gone(gone, report)
        stale = [s for s in remembered if s not in seen and any(_under(s, str(f)) for f in folders) and _gone(s)]
        self._forget_failures(stale)
        if remember_folders and folders:
            self._store.remember_folders([str(f) for f in folders])
        done = 0
        meter = _Meter(files, sizes, progress or (lambda _p: None))
        meter.report(0, "", 0)
        failures: list[FailureRecord] = []

        items: queue.Queue = queue.Queue(maxsize=READ_AHEAD_ITEMS)
        reader_thread = threading.Thread(target=self._read_all, args=(files, items, cancel, stats),
                                         name=READER_THREAD_NAME, daemon=True)
        reader_thread.start()
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
                    if not reader_thread.is_alive() and items.empty():
                        break  # the reader ended without its end marker: never wait for it forever
                    continue
                if item is None or cancel.is_set():
                    break
                kind, path, *payload = item
                if kind == "failed":
                    if current is not None and current.path == path:
                        self._abandon(current, report)
                        current = None
                    message, code, st = payload
                    report.failed.append((str(path), message))
                    if code in REMEMBERED_FAILURES and st is not None:
                        failures.append(FailureRecord(str(path), st[0], st[1], reader, code, message))
                    meter.finished(path)
                    done += 1
                elif kind == "reading":
                    meter.inside(path, payload[0])
                elif kind == "unchanged":
                    report.unchanged.append(str(path))
                    meter.skipped(path)
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
                            done += self._flush(pending, report, cancel, meter, done)
                            pending, pending_texts = [], 0
                        self._write_part(current, report)
                        meter.inside(path, payload[3])
                elif kind == "done":
                    record, doc_warnings = payload[0], payload[1]
                    if current is not None and current.streaming:
                        self._write_part(current, report)
                        try:
                            self._store.commit_document(record)
                        except SourcelightError as exc:  # cleared by another process meanwhile
                            self._abandon(current, report)
                            report.failed.append((str(path), exc.message))
                        else:
                            report.indexed.append(str(path))
                            report.warnings.extend((str(path), w) for w in doc_warnings)
                        meter.finished(path)
                        done += 1
                    elif current is not None:
                        pending.append(_Prepared(path, record, current.chunks, current.sentences, doc_warnings))
                        pending_texts += current.texts
                        if pending_texts >= EMBED_BATCH_TEXTS:
                            done += self._flush(pending, report, cancel, meter, done)
                            pending, pending_texts = [], 0
                    current = None
                meter.report(done, path.name, report.chunks)
            if pending and not cancel.is_set():
                done += self._flush(pending, report, cancel, meter, done)
        except BaseException:
            cancel.set()  # Ctrl+C or a store failure: stop the reader too
            raise
        finally:
            if cancel.is_set():
                report.cancelled = True
            if current is not None and current.streaming:
                # Begun but never committed (cancelled, Ctrl+C, a store failure, a
                # reader that died): its rows go now (after a Cancel, in the background);
                # the file's old version stays.
                try:
                    self._abandon(current, report, cancelled=report.cancelled)
                except Exception:  # noqa: BLE001 - the store failed: `recover` clears them at the next start
                    pass
            reader_thread.join(timeout=5)
            # Files that read fine now forget an old failure; new failures are remembered.
            self._remember(failures, [s for s in report.indexed + report.unchanged if s in remembered])
        meter.report(done, "", report.chunks)
        report.seconds = time.perf_counter() - started
        return report

    def _remove_gone(self, sources: list[str], report: IngestReport) -> None:
        """Remove documents whose files are gone (best effort: a store error leaves them for next time)."""
        for source in sources:
            try:
                if self._store.remove_document(document_key(source)):
                    report.removed.append(source)
            except SourcelightError as exc:
                report.failed.append((source, f"{source} is gone from its folder but could not be removed from "
                                              f"the index ({exc.message})"))

    def _forget_failures(self, sources: list[str]) -> None:
        try:
            self._store.forget_failures(sources)
        except Exception:  # noqa: BLE001 - memory of failures is an optimisation; the file is simply tried again
            pass

    def _remember(self, failures: list[FailureRecord], succeeded: list[str]) -> None:
        try:
            self._store.remember_failures(failures)
            self._store.forget_failures([s for s in succeeded if s not in {f.source for f in failures}])
        except Exception:  # noqa: BLE001 - as above: at worst a failed file is read again next time
            pass

    def _read_all(self, files: list[Path], out_queue: queue.Queue, cancel: threading.Event,
                  stats: dict[Path, tuple[int, int]] | None = None) -> None:
        stats = stats or {}

        def put(item) -> None:
            # A plain put() could block forever once the consumer stops
            # reading (Ctrl+C, a store failure); give up when cancelled.
            while not cancel.is_set():
                try:
                    out_queue.put(item, timeout=0.2)
                    return
                except queue.Full:
                    pass

        messages = _LibraryMessages.collect(threading.get_ident())
        try:
            for path in files:
                if cancel.is_set():
                    break
                messages.clear()
                st = stats.get(path)
                try:
                    content_hash = file_hash(path)
                    known = self._store.document(document_key(str(path)))
                    if known is not None and known.content_hash == content_hash \
                            and known.chunking == chunking_label(self._chunk_chars, self._overlap) \
                            and (known.page_map or path.suffix.lower() != ".pdf"):
                        put(("unchanged", path))
                        continue
                    version = new_version()
                    # How far through the file; what was last reported; whether parts flow yet
                    # (from then on every part carries the position itself).
                    where = [0.0, 0.0, False]

                    def position(fraction: float, path=path, where=where) -> None:
                        where[0] = fraction
                        if not where[2] and fraction - where[1] >= 0.01:  # a report per percent at most
                            where[1] = fraction
                            with contextlib.suppress(queue.Full):  # advisory: never wait for room
                                out_queue.put_nowait(("reading", path, fraction))

                    for kind, first, second in iter_parts(path, content_hash, chunk_chars=self._chunk_chars,
                                                          overlap=self._overlap, should_stop=cancel.is_set,
                                                          version=version, position=position):
                        where[2] = True
                        if kind == "done":
                            note = library_warning(messages, second)
                            second = second + (note,) if note else second
                        put((kind, path, first, second, version, where[0]))
                except Stopped:
                    break
                except SourcelightError as exc:
                    put(("failed", path, exc.message, exc.code, st))
                except OSError as exc:
                    put(("failed", path, f"Cannot read {path}: {exc.strerror or exc}. "
                                         "Check that the file exists and you may read it.", "read_failed", st))
                except Exception as exc:  # a parser bug must not stop the other files
                    put(("failed", path, f"Could not read {path} ({type(exc).__name__}: {exc}). "
                                         "The file may be damaged; try re-saving it.", "parser_error", st))
        finally:
            _LibraryMessages.stop(threading.get_ident())
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

    def _abandon(self, current: _OpenFile, report: IngestReport, *, cancelled: bool = False) -> None:
        """Remove the parts of a big file that will not be committed (cancel, or it failed half-way).

        After a Cancel the rows are deleted in the background (`ChunkStore.abandon_document`),
        so Cancel returns at once however much of the file was stored.
        """
        if current.streaming:
            current.streaming = False
            report.chunks -= current.written[0]  # the report counts what is indexed
            report.sentences -= current.written[1]
            self._store.abandon_document(current.doc_key, current.version, wait=not cancelled)

    def _flush(self, batch: list[_Prepared], report: IngestReport, cancel: threading.Event, meter: _Meter,
               done: int) -> int:
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
            meter.finished(prepared.path)
            meter.report(done + finished, prepared.path.name, report.chunks)
        return len(batch)

    def _embed(self, chunks: list[StoredChunk], sentences: list[StoredSentence]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk vectors, sentence vectors): the model runs on the sentences only.

        A chunk is a run of its sentences, so its vector is pooled from theirs
        (`core.ingest.chunk_vectors`) rather than running the model over the same
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

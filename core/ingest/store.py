"""The ChromaDB store: chunks, their sentences, and a manifest of documents.

Four collections per workspace, all in cosine space with our own embeddings
(Chroma's default embedding function would download an ONNX model):

- `<ws>-chunks`: one record per chunk, the unit of retrieval;
- `<ws>-sentences`: one record per source sentence, embedded once at ingest so
  live attribution only has to embed the answer sentence;
- `<ws>-documents`: one record per ingested file (path, content hash, counts):
  the manifest;
- `<ws>-staging`: one record per write in progress (which document, which
  version, which process), so whatever an interrupted write left can be found
  and removed without scanning the index;
- `<ws>-sources`: what ingest remembers about where documents come from: the
  folders the user added (so Refresh can sync them) and the files that failed
  (with their size and modification time, so an unchanged file that failed is
  not parsed again). It lives beside the index, on the server when the index
  does.

A document is all or nothing. Each write of a document gets a fresh version
(`new_version()`); its chunks and sentences carry it (metadata "ver", and in
their ids) and the manifest record, written *last* in one upsert, names the
version that counts. Every read (vector query, chunks by id, the texts the
BM25 index is built from) keeps only rows whose version is the one their
document's manifest names, so rows of a write that has not committed - still
running, or killed by SIGKILL, SIGTERM, a crash or a closed terminal - are
never listed, retrieved or found by `remove`: they do not exist for the user.
A re-added (changed) file is written beside the old version, which stays
visible until the new one commits and is then deleted; an interrupted re-add
leaves the old version exactly as it was.

Clean-up: a finished write deletes the versions it replaced; a cancelled one
deletes its own rows; and `recover()` (run when the store opens and before
every ingest) deletes the rows of writes whose process is gone, found through
`<ws>-staging`; writes still running in another process (a second window, a
CLI ingest, another computer on a shared server) are left alone. Rows written
by earlier versions of Sourcelight carry no version and stay visible under
manifests that name none, so their indexes keep working as they are; the first
open by this version also sweeps out the rows those versions left without any
manifest when an ingest was killed.

Not covered: two processes writing the *same* document at the same moment
(each commit keeps the rows of writes it can see running, but a write that
starts between another's look and its delete can lose rows), and an older
Sourcelight writing while this version opens the index for the first time.
"""
from __future__ import annotations

import atexit
import os
import re
import secrets
import socket
import threading
import time
from urllib.parse import urlparse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from core.errors import StoreError

# Workspace names become collection-name prefixes; Chroma allows [a-zA-Z0-9._-], 3-512 chars.
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")

# Manifest records need a vector; a constant unit vector keeps cosine defined.
_MANIFEST_VECTOR = [1.0] + [0.0] * 383

# A write in progress refreshes its staging record at most this often...
HEARTBEAT_S = 60.0
# ...and one not refreshed for this long is taken as dead even where its process cannot be
# checked (another computer writing to a shared Chroma server, a system without /proc).
# A part of a big file is embedded in seconds, so ten minutes leaves a wide margin.
STALE_WRITE_S = 600.0
# The staging record that says rows left by earlier versions (without any manifest) were swept.
_SWEPT = "~legacy-rows-swept"
# SQLite allows 32,766 variables per statement; stay well below it in `$in`/`$nin` lists.
_MAX_IN = 10_000
_HOST = socket.gethostname()


@dataclass(frozen=True)
class DocumentRecord:
    source: str
    doc_key: str
    content_hash: str
    chunks: int
    sentences: int
    pages: int | None
    ingested_at: float
    # The chunk settings it was split with, "CHARS/OVERLAP" ("" in manifests
    # written before they were recorded): re-adding a file after changing them
    # must split it again, not report it unchanged.
    chunking: str = ""
    # The write whose rows are this document's content (see the module docstring);
    # "" for documents written by earlier versions, whose rows carry no version.
    version: str = ""
    # A PDF whose chunks were given page maps (`core.page_map`) at ingest; False in manifests
    # written before maps existed, so re-adding such a PDF reads it again and upgrades it.
    page_map: bool = False

    @property
    def file_name(self) -> str:
        return self.source.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class StoredChunk:
    id: str
    source: str
    page: int | None
    text: str
    # Where the chunk's characters are on its PDF page (`core.page_map` runs); "" when unknown.
    char_map: str = ""


@dataclass(frozen=True)
class StoredSentence:
    id: str
    chunk_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class FailureRecord:
    """A file that could not be indexed, as it was when it failed.

    `reader` fingerprints the extraction code and libraries that failed on it
    (`core.ingest.ingestor.reader_fingerprint`): after an upgrade the file is tried again.
    """

    source: str
    size: int
    mtime_ns: int
    reader: str
    code: str
    message: str


def _page_meta(page: int | None) -> dict:
    return {} if page is None else {"page": page}


def new_version() -> str:
    """A fresh version for one write of a document (tags its rows and its chunk ids)."""
    return secrets.token_hex(6)


def _process_start(pid: int) -> str | None:
    """The start time of a process from /proc (ticks since boot); None if it is gone or a zombie,
    "" where /proc is missing."""
    if not os.path.exists("/proc/self/stat"):
        return ""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


_OWN_START = _process_start(os.getpid()) or ""


def _process_alive(pid: int, started: str) -> bool | None:
    """Whether a process of this computer still runs (None: cannot tell here)."""
    now_started = _process_start(pid)
    if now_started is None:
        return False
    if now_started:
        return not started or now_started == started  # another start time: the pid was reused
    if os.name == "posix":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return None  # Windows: os.kill would terminate it; the heartbeat decides


def _writer_alive(meta: dict, now: float) -> bool:
    """Whether the process that started a staged write may still be writing it.

    On this computer the process itself is asked (a writer suspended with the
    laptop for an hour is still alive); elsewhere, or where processes cannot
    be asked, a write silent for `STALE_WRITE_S` is taken as dead.
    """
    if meta.get("host") == _HOST:
        alive = _process_alive(int(meta.get("pid", -1)), str(meta.get("pstart", "")))
        if alive is not None:
            return alive
    return now - float(meta.get("beat", 0.0)) <= STALE_WRITE_S


def _staging_id(doc_key: str, version: str) -> str:
    return f"{doc_key}-{version}"


def _doc_of(row_id: str, meta: dict | None) -> str:
    return (meta or {}).get("doc") or row_id.split("-", 1)[0]


def _batches(items: list, size: int = _MAX_IN):
    for lo in range(0, len(items), size):
        yield items[lo:lo + size]


def valid_workspace(name: str) -> str:
    if not _WORKSPACE.fullmatch(name or ""):
        raise StoreError(f"'{name}' is not a usable workspace name. Use letters, digits, '-' or '_' "
                         "(up to 63 characters), starting with a letter or digit.")
    return name


def connect_server(url: str):
    """A client for a Chroma server (`chroma run`), checked to answer and to speak our API version."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parsed = urlparse(url if "://" in url else f"http://{url}")
    try:
        explicit_port = parsed.port  # raises ValueError on "8OOO" or "80000"
    except ValueError:
        explicit_port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or explicit_port == -1:
        raise StoreError(f"'{url}' is not a Chroma server URL. Use the form http://HOST:PORT "
                         "(Settings > Documents, or SOURCELIGHT_CHROMA_URL).")
    port = explicit_port or (443 if parsed.scheme == "https" else 8000)
    try:
        client = chromadb.HttpClient(host=parsed.hostname, port=port, ssl=parsed.scheme == "https",
                                     settings=ChromaSettings(anonymized_telemetry=False))
        client.heartbeat()
        server_version = client.get_version()
    except Exception as exc:  # chromadb raises ValueError/ConnectionError/httpx errors
        raise StoreError(f"Cannot reach the Chroma server at {url} ({exc}). Is `chroma run` running there? "
                         "Start it, or clear the Chroma server setting to use the index on this "
                         "computer.") from exc
    if str(server_version).split(".")[0] != chromadb.__version__.split(".")[0]:
        raise StoreError(f"The Chroma server at {url} runs version {server_version}, which this client "
                         f"(chromadb {chromadb.__version__}) cannot talk to. Run a {chromadb.__version__.split('.')[0]}.x "
                         "server (`pip install chromadb` there) or use the index on this computer.")
    return client


def list_workspaces(client) -> list[str]:
    """Workspace names that have a chunk collection on this client."""
    names = [getattr(c, "name", c) for c in client.list_collections()]
    return sorted(n[: -len("-chunks")] for n in names if n.endswith("-chunks"))


class ChunkStore:
    """Thread-safe access to one workspace's collections.

    Chroma's client is safe to share across threads, but a write's steps
    (stage, add, commit, clean up) must not interleave with another write's
    clean-up, so writes take a lock.
    """

    def __init__(self, path: Path | None = None, workspace: str = "default", *, client=None,
                 server_url: str = ""):
        self._path = path
        self._workspace = valid_workspace(workspace)
        self._client = client
        self._server_url = server_url
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._chunks = self._sentences = self._documents = self._staging = self._sources = None
        self._beats: dict[str, float] = {}  # staging id -> last heartbeat, for writes of this store
        # doc key -> the version its manifest named when last read. Reads trust it
        # when a row agrees with it and read the manifest again when not, so a
        # query costs no extra Chroma call unless another write is in sight.
        self._known: dict[str, str] = {}
        # Whether every manifest has been read into `_known` once. Until then each
        # document a query meets for the first time costs a Chroma get (about 1.5 ms,
        # a few per query on a fresh start: issue 19); one read of all manifests
        # costs less than two of those.
        self._known_all = False
        # Clean-ups of cancelled writes still deleting their rows (`abandon_document(wait=False)`).
        self._cleanups: list[threading.Thread] = []
        self._waits_at_exit = False  # `wait_for_cleanup` registered with atexit

    # -- opening ---------------------------------------------------------
    def open(self) -> None:
        """Open (or create) the collections. Blocking: call off the event loop."""
        with self._open_lock:
            if self._chunks is not None:
                return
            if self._client is None and self._server_url:
                self._client = connect_server(self._server_url)
            try:
                if self._client is None:
                    import chromadb
                    from chromadb.config import Settings as ChromaSettings

                    from core import paths

                    path = self._path or paths.index_dir()
                    self._client = chromadb.PersistentClient(
                        path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
                make = self._client.get_or_create_collection
                config = {"hnsw": {"space": "cosine"}}
                self._chunks = make(f"{self._workspace}-chunks", configuration=config, embedding_function=None)
                self._sentences = make(f"{self._workspace}-sentences", configuration=config,
                                       embedding_function=None)
                self._documents = make(f"{self._workspace}-documents", configuration=config,
                                       embedding_function=None)
                staging = make(f"{self._workspace}-staging", configuration=config, embedding_function=None)
                self._sources = make(f"{self._workspace}-sources", configuration=config, embedding_function=None)
                self._max_batch = max(1, int(self._client.get_max_batch_size()))
                self._staging = staging
            except Exception as exc:  # chromadb raises many unrelated types
                self._chunks = self._sentences = self._documents = self._staging = self._sources = None
                raise StoreError(f"Cannot open the document index at {self.location}: {exc}. "
                                 "Close other Sourcelight windows, or move the index folder aside and "
                                 "re-add your documents.") from exc
            with self._write_lock:
                self._recover_quietly()

    @property
    def workspace(self) -> str:
        return self._workspace

    @property
    def location(self) -> str:
        """Where the index lives, for messages: the server URL or the folder."""
        return self._server_url or str(self._path or "the data folder")

    def workspaces(self) -> list[str]:
        self.open()
        return list_workspaces(self._client)

    # -- documents -------------------------------------------------------
    def document(self, doc_key: str) -> DocumentRecord | None:
        self.open()
        got = self._documents.get(ids=[doc_key], include=["metadatas"])
        return _record(got["metadatas"][0]) if got["ids"] else None

    def documents(self) -> list[DocumentRecord]:
        self.open()
        got = self._documents.get(include=["metadatas"])
        return sorted((_record(m) for m in got["metadatas"]), key=lambda r: r.source.lower())

    def chunk_count(self) -> int:
        self.open()
        return self._chunks.count()

    def sentence_count(self) -> int:
        """Every stored sentence row, like `chunk_count` (committed or not)."""
        self.open()
        return self._sentences.count()

    def replace_document(self, record: DocumentRecord, chunks: Sequence[StoredChunk],
                         chunk_embeddings: np.ndarray, sentences: Sequence[StoredSentence],
                         sentence_embeddings: np.ndarray) -> None:
        """Write a whole document at once, replacing any older version.

        With `record.version` set (and the chunk ids made from it) the write is
        all or nothing (`write_documents`); without, it is the unversioned
        write of earlier versions: the old version is deleted first.
        """
        if record.version:
            self.write_documents([(record, chunks, chunk_embeddings, sentences, sentence_embeddings)])
            return
        self.begin_document(record.doc_key)
        self.add_records(chunks, chunk_embeddings, sentences, sentence_embeddings)
        self.commit_document(record)

    def write_documents(self, writes: Sequence[tuple[DocumentRecord, Sequence[StoredChunk], np.ndarray,
                                                     Sequence[StoredSentence], np.ndarray]]) -> None:
        """Write several whole documents (record, chunks, chunk vectors, sentences, sentence vectors),
        each all or nothing, in a handful of Chroma calls rather than a handful per document.

        Every record needs its own `version`, and its rows' ids must be made
        from it (`core.ingest.chunking.chunk_id`), so they never collide with the
        version they replace. A document becomes visible when its manifest
        record lands; if the write stops before, nothing of it shows.
        """
        if not writes:
            return
        if not all(w[0].version for w in writes):
            raise ValueError("write_documents needs a version on every record (core.ingest.store.new_version)")
        self.open()
        pairs = [(w[0].doc_key, w[0].version) for w in writes]
        with self._write_lock:
            self._stage(pairs)
            try:
                self._add_rows([c for w in writes for c in w[1]], _stack([w[2] for w in writes]),
                               [s for w in writes for s in w[3]], _stack([w[4] for w in writes]), dict(pairs))
                self._documents.upsert(ids=[w[0].doc_key for w in writes],
                                       embeddings=[_MANIFEST_VECTOR] * len(writes),
                                       metadatas=[_manifest_meta(w[0]) for w in writes])
            except BaseException:
                # Whatever committed stays; the rest is removed now (or by the next `recover`).
                try:
                    self._settle(pairs)
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    pass
                raise
            self._settle(pairs)

    def begin_document(self, doc_key: str, version: str = "") -> None:
        """Start writing a document that arrives in parts (`add_records`, then `commit_document`).

        With a version, the new rows are written beside the current version,
        which stays what users see until `commit_document`; `abandon_document`
        removes them instead. Without (the unversioned write of earlier
        versions), the document's manifest and rows are dropped first.
        """
        self.open()
        with self._write_lock:
            if version:
                self._stage([(doc_key, version)])
                return
            self._documents.delete(ids=[doc_key])
            self._known.pop(doc_key, None)
            self._delete_records(doc_key)

    def add_records(self, chunks: Sequence[StoredChunk], chunk_embeddings: np.ndarray,
                    sentences: Sequence[StoredSentence], sentence_embeddings: np.ndarray, *,
                    version: str = "") -> None:
        """Add part of a document (of the write `version`); large files are written in several parts."""
        self.open()
        with self._write_lock:
            self._add_rows(chunks, chunk_embeddings, sentences, sentence_embeddings, version)
            if version:
                docs = {c.id.split("-", 1)[0] for c in chunks} | {s.id.split("-", 1)[0] for s in sentences}
                self._heartbeat([_staging_id(d, version) for d in docs])

    def commit_document(self, record: DocumentRecord) -> None:
        """Write the manifest record: from now on the document (this version of it) counts as indexed."""
        self.open()
        with self._write_lock:
            if record.version and not self._staging.get(ids=[_staging_id(record.doc_key, record.version)],
                                                        include=[])["ids"]:
                # Another process took this write for dead and cleared it (its heartbeat
                # stopped: a write from another computer, silent for ten minutes).
                self._settle([(record.doc_key, record.version)])
                raise StoreError(f"{record.file_name} was cleared from the index while it was being added "
                                 "(the write looked abandoned). Add it again.")
            self._documents.upsert(ids=[record.doc_key], embeddings=[_MANIFEST_VECTOR],
                                   metadatas=[_manifest_meta(record)])
            if record.version:
                self._settle([(record.doc_key, record.version)])

    def abandon_document(self, doc_key: str, version: str, *, wait: bool = True) -> None:
        """Remove the rows of a write that will not be committed (cancelled, or the file failed half-way).

        The version users see, if any, is untouched (a write that did commit is kept).
        With `wait=False` the rows are deleted on a thread of their own and this
        returns at once: Chroma deletes about 4,000 rows a second, so the parts
        of a large file made Cancel take seconds. Nothing waits on it but the
        next write (the write lock) and `wait_for_cleanup`: the rows are already
        invisible (no manifest names their version), and if the process ends
        first, the next open deletes them (their write is staged, its process gone).
        """
        self.open()
        if wait:
            with self._write_lock:
                self._settle([(doc_key, version)])
            return

        def clean_up() -> None:
            try:
                with self._write_lock:
                    self._settle([(doc_key, version)])
            except Exception:  # noqa: BLE001 - best effort: the next open finishes it (see above)
                pass

        thread = threading.Thread(target=clean_up, name=f"abandon-{doc_key[:12]}", daemon=True)
        self._cleanups = [t for t in self._cleanups if t.is_alive()] + [thread]
        if not self._waits_at_exit:
            # A clean-up cut off mid-delete at exit would leave Chroma's writer locked under the
            # interpreter's shutdown; wait for it first (it is seconds at most).
            atexit.register(self.wait_for_cleanup)
            self._waits_at_exit = True
        thread.start()

    def wait_for_cleanup(self, timeout: float | None = None) -> bool:
        """Wait until the clean-ups of cancelled writes have finished; False if `timeout` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._cleanups):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._cleanups = [t for t in self._cleanups if t.is_alive()]
        return not self._cleanups

    def remove_document(self, doc_key: str) -> bool:
        """Remove a document and everything derived from it. True if it was there."""
        self.open()
        with self._write_lock:
            existed = bool(self._documents.get(ids=[doc_key])["ids"])
            self._documents.delete(ids=[doc_key])  # manifest first: a half-removed doc looks removed
            self._known.pop(doc_key, None)
            # Every row of it goes, except those of a write of it still running
            # (another window re-adding the file): that write decides for itself.
            live, dead = self._other_writes([doc_key], set())
            if live:
                self._delete_where({"$and": [{"doc": doc_key}, {"ver": {"$nin": live}}]})
            else:
                self._delete_records(doc_key)
            if dead:
                self._staging.delete(ids=dead)
            return existed

    # -- sources: added folders and remembered failures -------------------
    def remember_folders(self, folders: Sequence[str]) -> None:
        """Record folders the user added, so Refresh can sync them later."""
        folders = sorted(set(folders))
        if not folders:
            return
        self.open()
        with self._write_lock:
            self._sources.upsert(ids=[_source_id("folder", f) for f in folders],
                                 embeddings=[_MANIFEST_VECTOR] * len(folders),
                                 metadatas=[{"kind": "folder", "path": f} for f in folders])

    def folders(self) -> list[str]:
        """The folders the user added, sorted."""
        self.open()
        got = self._sources.get(where={"kind": "folder"}, include=["metadatas"])
        return sorted(str(m["path"]) for m in got["metadatas"])

    def forget_folders(self, folders: Sequence[str]) -> None:
        self.open()
        ids = [_source_id("folder", f) for f in folders]
        with self._write_lock:
            for batch in _batches(ids):
                self._sources.delete(ids=batch)

    def remember_failures(self, failures: Sequence[FailureRecord]) -> None:
        """Record files that failed (replacing what was recorded for them before)."""
        if not failures:
            return
        self.open()
        with self._write_lock:
            for lo in range(0, len(failures), self._max_batch):
                part = failures[lo:lo + self._max_batch]
                # mtime_ns as text: nanoseconds since 1970 overflow what some metadata stores keep exactly.
                self._sources.upsert(
                    ids=[_source_id("failed", f.source) for f in part], embeddings=[_MANIFEST_VECTOR] * len(part),
                    metadatas=[{"kind": "failed", "path": f.source, "size": f.size, "mtime_ns": str(f.mtime_ns),
                                "reader": f.reader, "code": f.code, "message": f.message} for f in part])

    def failures(self) -> dict[str, FailureRecord]:
        """Every remembered failure, by source path."""
        self.open()
        got = self._sources.get(where={"kind": "failed"}, include=["metadatas"])
        out: dict[str, FailureRecord] = {}
        for meta in got["metadatas"]:
            try:
                record = FailureRecord(str(meta["path"]), int(meta["size"]), int(meta["mtime_ns"]),
                                       str(meta.get("reader", "")), str(meta.get("code", "")),
                                       str(meta.get("message", "")))
            except (KeyError, TypeError, ValueError):
                continue  # a record this version cannot read is as good as none: the file is tried again
            out[record.source] = record
        return out

    def forget_failures(self, sources: Sequence[str]) -> None:
        """Drop remembered failures (the file was indexed, changed, or is gone)."""
        if not sources:
            return
        self.open()
        ids = [_source_id("failed", s) for s in sources]
        with self._write_lock:
            for batch in _batches(ids):
                self._sources.delete(ids=batch)

    def recover(self) -> int:
        """Delete what interrupted writes left behind; returns how many rows went.

        Writes whose process is gone (killed, crashed, its terminal closed) are
        found through the staging collection; writes still running elsewhere
        are left alone. Cheap when there is nothing to do (one small read).
        """
        self.open()
        with self._write_lock:
            return self._recover()

    # -- writing, under the write lock -----------------------------------
    def _stage(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Record writes as in progress, before any of their rows exist."""
        now = time.time()
        ids = [_staging_id(d, v) for d, v in pairs]
        self._staging.upsert(ids=ids, embeddings=[_MANIFEST_VECTOR] * len(ids),
                             metadatas=[{"doc": d, "ver": v, "host": _HOST, "pid": os.getpid(),
                                         "pstart": _OWN_START, "beat": now} for d, v in pairs])
        self._beats.update((i, now) for i in ids)

    def _heartbeat(self, staging_ids: Sequence[str]) -> None:
        now = time.time()
        due = [i for i in staging_ids if i in self._beats and now - self._beats[i] >= HEARTBEAT_S]
        if due:
            self._staging.update(ids=due, metadatas=[{"beat": now}] * len(due))
            self._beats.update((i, now) for i in due)

    def _settle(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Finish the bookkeeping of writes that ended (committed, abandoned or dead).

        A committed write's document keeps only its version (and the rows of
        writes of it still running elsewhere); an uncommitted write's rows go.
        Then the writes' staging records go.
        """
        docs = sorted({d for d, _v in pairs})
        committed = self._committed(docs)
        for doc in docs:
            if doc in committed:
                self._known[doc] = committed[doc]
            else:
                self._known.pop(doc, None)
        ending = {_staging_id(d, v) for d, v in pairs}
        live, dead = self._other_writes(docs, ending)
        done = [d for d, v in pairs if committed.get(d) == v]
        dropped = [(d, v) for d, v in pairs if committed.get(d) != v]
        if done:
            keep = sorted({committed[d] for d in done} | set(live))
            for batch in _batches(done):
                self._delete_where({"$and": [{"doc": {"$in": batch}}, {"ver": {"$nin": keep}}]})
        if dropped:
            for batch in _batches(dropped):
                self._delete_where({"$and": [{"doc": {"$in": sorted({d for d, _v in batch})}},
                                             {"ver": {"$in": sorted({v for _d, v in batch})}}]})
        # The $nin above also deleted the rows of dead writes of the `done` documents.
        gone = sorted(ending) + [sid for sid in dead if sid.split("-", 1)[0] in set(done)]
        for batch in _batches(gone):
            self._staging.delete(ids=batch)
        for sid in ending:
            self._beats.pop(sid, None)

    def _other_writes(self, docs: Sequence[str], exclude: set[str]) -> tuple[list[str], list[str]]:
        """(versions of these documents that other writes are storing right now, staging ids of
        writes of them whose process is gone), leaving out the staging ids in `exclude`."""
        now = time.time()
        live: list[str] = []
        dead: list[str] = []
        for batch in _batches(list(docs)):
            got = self._staging.get(where={"doc": {"$in": batch}}, include=["metadatas"])
            for sid, meta in zip(got["ids"], got["metadatas"]):
                if sid in exclude:
                    continue
                if _writer_alive(meta, now):
                    live.append(str(meta.get("ver", "")))
                else:
                    dead.append(sid)
        return live, dead

    def _recover(self) -> int:
        got = self._staging.get(include=["metadatas"])
        now = time.time()
        dead = [(str(m["doc"]), str(m["ver"])) for sid, m in zip(got["ids"], got["metadatas"])
                if sid != _SWEPT and not _writer_alive(m, now)]
        swept = _SWEPT in got["ids"]
        if not dead and swept:
            return 0
        before = self._chunks.count() + self._sentences.count()
        if dead:
            self._settle(dead)
        if not swept:
            staged_docs = {str(m["doc"]) for sid, m in zip(got["ids"], got["metadatas"]) if sid != _SWEPT}
            self._sweep_unlisted(staged_docs)
            self._staging.upsert(ids=[_SWEPT], embeddings=[_MANIFEST_VECTOR], metadatas=[{"at": now}])
        return before - (self._chunks.count() + self._sentences.count())

    def _recover_quietly(self) -> None:
        # Clean-up on open is best effort: rows it could not delete are invisible
        # anyway (no manifest names their version), and the next open tries again.
        try:
            self._recover()
        except Exception:  # noqa: BLE001 - chromadb raises many unrelated types
            pass

    def _sweep_unlisted(self, staged_docs: set[str]) -> None:
        """Once per index: delete rows of documents without a manifest, which earlier versions
        left when an ingest was killed (they deleted the manifest first and wrote it last)."""
        listed = set(self._documents.get(include=[])["ids"]) | staged_docs
        for collection in (self._chunks, self._sentences):
            if len(listed) < _MAX_IN:
                collection.delete(where={"doc": {"$nin": sorted(listed | {"-"})}})  # "-": never a key
                continue
            unlisted: set[str] = set()  # too many documents for one `$nin`: look at every row's document
            offset = 0
            while True:
                page = collection.get(include=["metadatas"], limit=5000, offset=offset)
                if not page["ids"]:
                    break
                unlisted.update(d for d in (_doc_of(i, m) for i, m in zip(page["ids"], page["metadatas"]))
                                if d not in listed)
                offset += len(page["ids"])
            for batch in _batches(sorted(unlisted)):
                collection.delete(where={"doc": {"$in": batch}})

    def _add_rows(self, chunks, chunk_embeddings, sentences, sentence_embeddings, version_of: dict | str) -> None:
        """Add rows, each tagged with its document's write version (`version_of`: one version for all,
        or doc key -> version; "" leaves rows unversioned, as earlier versions wrote them)."""
        def meta(row_id: str) -> dict:
            doc = row_id.split("-", 1)[0]
            version = version_of if isinstance(version_of, str) else version_of.get(doc, "")
            return {"doc": doc, "ver": version} if version else {"doc": doc}

        # Sentences first, chunks second, the manifest last (the caller): until the
        # manifest names their version, none of these rows is visible.
        self._add(self._sentences, [s.id for s in sentences], sentence_embeddings,
                  [{"chunk_id": s.chunk_id, "start": s.start, "end": s.end, **meta(s.id)} for s in sentences],
                  None)
        self._add(self._chunks, [c.id for c in chunks], chunk_embeddings,
                  [{"source": c.source, **meta(c.id), **_page_meta(c.page),
                    **({"pmap": c.char_map} if c.char_map else {})} for c in chunks],
                  [c.text for c in chunks])

    def _delete_records(self, doc_key: str) -> None:
        self._delete_where({"doc": doc_key})

    def _delete_where(self, where: dict) -> None:
        self._chunks.delete(where=where)
        self._sentences.delete(where=where)

    def _committed(self, docs) -> dict[str, str]:
        """doc key -> the version its manifest names ("" for unversioned), for those that have one."""
        out: dict[str, str] = {}
        for batch in _batches(sorted(set(docs))):
            got = self._documents.get(ids=batch, include=["metadatas"])
            out.update((i, str((m or {}).get("ver", ""))) for i, m in zip(got["ids"], got["metadatas"]))
        return out

    def _visible(self, rows: Sequence[tuple[str, dict | None]]) -> list[bool]:
        """Per row: does its document's manifest name the version it was written by?"""
        known = self._known
        if not self._known_all:
            self._known_all = True
            for doc, ver in self._all_committed().items():
                known.setdefault(doc, ver)
        unsure = {_doc_of(i, m) for i, m in rows if known.get(_doc_of(i, m)) != _ver_of(m)}
        if unsure:  # a row of a write not (yet, or no longer) committed, or a manifest not read yet
            fresh = self._committed(unsure)
            for doc in unsure:
                if doc in fresh:
                    known[doc] = fresh[doc]
                else:
                    known.pop(doc, None)
        return [known.get(_doc_of(i, m)) == _ver_of(m) for i, m in rows]

    def _all_committed(self) -> dict[str, str]:
        got = self._documents.get(include=["metadatas"])
        return {i: str((m or {}).get("ver", "")) for i, m in zip(got["ids"], got["metadatas"])}

    def _add(self, collection, ids, embeddings, metadatas, documents) -> None:
        for lo in range(0, len(ids), self._max_batch):
            hi = lo + self._max_batch
            collection.add(ids=ids[lo:hi], embeddings=np.asarray(embeddings[lo:hi], dtype=np.float32),
                           metadatas=metadatas[lo:hi], documents=None if documents is None else documents[lo:hi])

    # -- reading ---------------------------------------------------------
    def query(self, embedding: np.ndarray, n: int) -> list[tuple[StoredChunk, float]]:
        """Nearest visible chunks by cosine similarity (1 - cosine distance)."""
        self.open()
        want = fetch = n
        if want <= 0:
            return []
        vector = np.asarray(embedding, dtype=np.float32)
        while True:
            # No count() first (7 ms at 100k chunks, issue 19): Chroma returns fewer
            # rows than asked when the collection is smaller, which says the same.
            res = self._chunks.query(query_embeddings=[vector], n_results=fetch,
                                     include=["documents", "metadatas", "distances"])
            rows = list(zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]))
            visible = self._visible([(cid, meta) for cid, _d, meta, _x in rows])
            hits = [(_chunk(cid, doc, meta), 1.0 - float(dist))
                    for (cid, doc, meta, dist), shown in zip(rows, visible) if shown]
            if len(hits) >= want or len(rows) < fetch:
                return hits[:want]
            # Rows of unfinished writes crowded the nearest ones out (rare: an ingest
            # running right now, or one killed before the clean-up ran): look further.
            fetch = fetch * 4 + (want - len(hits))

    def get_chunks(self, ids: Sequence[str], with_embeddings: bool = False
                   ) -> tuple[list[StoredChunk], np.ndarray | None]:
        """Visible chunks by id, in the order asked (missing and uncommitted ids are dropped)."""
        self.open()
        if not ids:
            return [], (np.zeros((0, 384), np.float32) if with_embeddings else None)
        include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
        got = self._chunks.get(ids=list(ids), include=include)
        visible = self._visible(list(zip(got["ids"], got["metadatas"])))
        pos = {cid: i for i, cid in enumerate(got["ids"]) if visible[i]}
        order = [pos[c] for c in ids if c in pos]
        chunks = [_chunk(got["ids"][i], got["documents"][i], got["metadatas"][i]) for i in order]
        embeddings = None
        if with_embeddings:
            embeddings = np.asarray(got["embeddings"], dtype=np.float32)[order] if order else \
                np.zeros((0, 384), np.float32)
        return chunks, embeddings

    def sentences_for(self, chunks: Sequence[StoredChunk]) -> tuple[list[StoredSentence], np.ndarray]:
        """All stored sentences of these chunks (in chunk order, then text order) with their embeddings."""
        self.open()
        texts = {c.id: c.text for c in chunks}
        chunk_ids = list(texts)
        if not chunk_ids:
            return [], np.zeros((0, 384), np.float32)
        got = self._sentences.get(where={"chunk_id": {"$in": list(chunk_ids)}},
                                  include=["metadatas", "embeddings"])
        rank = {cid: i for i, cid in enumerate(chunk_ids)}
        rows = sorted(range(len(got["ids"])),
                      key=lambda i: (rank[got["metadatas"][i]["chunk_id"]], got["metadatas"][i]["start"]))
        sentences = []
        for i in rows:
            meta = got["metadatas"][i]
            start, end = int(meta["start"]), int(meta["end"])
            sentences.append(StoredSentence(got["ids"][i], meta["chunk_id"], start, end,
                                            texts[meta["chunk_id"]][start:end]))
        embeddings = np.asarray(got["embeddings"], dtype=np.float32)[rows] if rows else np.zeros((0, 384), np.float32)
        return sentences, embeddings

    def iter_chunk_texts(self, batch: int = 5000) -> Iterator[tuple[list[str], list[str]]]:
        """(ids, texts) of every visible chunk, in pages of up to `batch`."""
        for ids, texts, _vectors in self._iter_visible_chunks(batch, with_embeddings=False):
            yield ids, texts

    def iter_chunk_texts_and_vectors(self, batch: int = 5000
                                     ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
        """(ids, texts, (n, 384) float32 vectors) of every visible chunk, in pages (for the lexical index)."""
        yield from self._iter_visible_chunks(batch, with_embeddings=True)

    def _iter_visible_chunks(self, batch: int, with_embeddings: bool):
        self.open()
        committed = self._all_committed()
        self._known = dict(committed)
        self._known_all = True
        include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
        offset = 0
        while True:
            got = self._chunks.get(include=include, limit=batch, offset=offset)
            if not got["ids"]:
                return
            keep = [i for i, (cid, meta) in enumerate(zip(got["ids"], got["metadatas"]))
                    if committed.get(_doc_of(cid, meta)) == _ver_of(meta)]
            if keep:
                vectors = np.asarray(got["embeddings"], dtype=np.float32)[keep] if with_embeddings else None
                yield [got["ids"][i] for i in keep], [got["documents"][i] for i in keep], vectors
            offset += len(got["ids"])


def _source_id(kind: str, path: str) -> str:
    from core.ingest.chunking import document_key

    return f"{kind}-{document_key(path)}"


def _ver_of(meta: dict | None) -> str:
    return str((meta or {}).get("ver", ""))


def _stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    arrays = [np.asarray(a, dtype=np.float32).reshape(-1, 384) for a in arrays]
    return np.concatenate(arrays) if arrays else np.zeros((0, 384), np.float32)


def _manifest_meta(record: DocumentRecord) -> dict:
    return {"source": record.source, "hash": record.content_hash, "chunks": record.chunks,
            "sentences": record.sentences, "ingested_at": record.ingested_at,
            **({} if record.pages is None else {"pages": record.pages}),
            **({"chunking": record.chunking} if record.chunking else {}),
            **({"ver": record.version} if record.version else {}),
            **({"pagemap": 1} if record.page_map else {})}


def _chunk(cid: str, text: str, meta: dict) -> StoredChunk:
    return StoredChunk(cid, meta.get("source", ""), meta.get("page"), text or "", str(meta.get("pmap", "")))


def _record(meta: dict) -> DocumentRecord:
    from core.ingest.chunking import document_key

    source = meta["source"]
    return DocumentRecord(source=source, doc_key=document_key(source), content_hash=meta.get("hash", ""),
                          chunks=int(meta.get("chunks", 0)), sentences=int(meta.get("sentences", 0)),
                          pages=meta.get("pages"), ingested_at=float(meta.get("ingested_at", time.time())),
                          chunking=str(meta.get("chunking", "")), version=str(meta.get("ver", "")),
                          page_map=bool(meta.get("pagemap", 0)))

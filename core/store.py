"""The ChromaDB store: chunks, their sentences, and a manifest of documents.

Three collections per workspace, all in cosine space with our own embeddings
(Chroma's default embedding function would download an ONNX model):

- `<ws>-chunks`: one record per chunk, the unit of retrieval;
- `<ws>-sentences`: one record per source sentence, embedded once at ingest so
  live attribution only has to embed the answer sentence;
- `<ws>-documents`: one record per ingested file (path, content hash, counts).

The manifest record is written *last*, after every chunk and sentence of the
file: it is the commit marker. An ingest interrupted by Ctrl+C or kill leaves
either the old manifest or none, so the next run sees the file as changed or
new, deletes whatever partial records it finds, and writes it again.
"""
from __future__ import annotations

import re
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

    @property
    def file_name(self) -> str:
        return self.source.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class StoredChunk:
    id: str
    source: str
    page: int | None
    text: str


@dataclass(frozen=True)
class StoredSentence:
    id: str
    chunk_id: str
    start: int
    end: int
    text: str


def _page_meta(page: int | None) -> dict:
    return {} if page is None else {"page": page}


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

    Chroma's client is safe to share across threads, but a replace (delete
    then add) must not interleave with another replace of the same document,
    so writes take a lock.
    """

    def __init__(self, path: Path | None = None, workspace: str = "default", *, client=None,
                 server_url: str = ""):
        self._path = path
        self._workspace = valid_workspace(workspace)
        self._client = client
        self._server_url = server_url
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._chunks = self._sentences = self._documents = None

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
                self._max_batch = max(1, int(self._client.get_max_batch_size()))
            except Exception as exc:  # chromadb raises many unrelated types
                raise StoreError(f"Cannot open the document index at {self.location}: {exc}. "
                                 "Close other Sourcelight windows, or move the index folder aside and "
                                 "re-add your documents.") from exc

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

    def replace_document(self, record: DocumentRecord, chunks: Sequence[StoredChunk],
                         chunk_embeddings: np.ndarray, sentences: Sequence[StoredSentence],
                         sentence_embeddings: np.ndarray) -> None:
        """Write a whole document at once, replacing any older version."""
        self.begin_document(record.doc_key)
        self.add_records(chunks, chunk_embeddings, sentences, sentence_embeddings)
        self.commit_document(record)

    def begin_document(self, doc_key: str) -> None:
        """Drop the manifest and every record of a document before it is written again."""
        self.open()
        with self._write_lock:
            self._documents.delete(ids=[doc_key])
            self._delete_records(doc_key)

    def add_records(self, chunks: Sequence[StoredChunk], chunk_embeddings: np.ndarray,
                    sentences: Sequence[StoredSentence], sentence_embeddings: np.ndarray) -> None:
        """Add part of a document; large files are written in several parts."""
        self.open()
        with self._write_lock:
            self._add(self._sentences, [s.id for s in sentences], sentence_embeddings,
                      [{"chunk_id": s.chunk_id, "start": s.start, "end": s.end, "doc": s.id.split("-", 1)[0]}
                       for s in sentences], None)
            self._add(self._chunks, [c.id for c in chunks], chunk_embeddings,
                      [{"source": c.source, "doc": c.id.split("-", 1)[0], **_page_meta(c.page)} for c in chunks],
                      [c.text for c in chunks])

    def commit_document(self, record: DocumentRecord) -> None:
        """Write the manifest record: from now on the document counts as indexed."""
        self.open()
        meta = {"source": record.source, "hash": record.content_hash, "chunks": record.chunks,
                "sentences": record.sentences, "ingested_at": record.ingested_at,
                **({} if record.pages is None else {"pages": record.pages}),
                **({"chunking": record.chunking} if record.chunking else {})}
        with self._write_lock:
            self._documents.upsert(ids=[record.doc_key], embeddings=[_MANIFEST_VECTOR], metadatas=[meta])

    def remove_document(self, doc_key: str) -> bool:
        """Remove a document and everything derived from it. True if it was there."""
        self.open()
        with self._write_lock:
            existed = bool(self._documents.get(ids=[doc_key])["ids"])
            self._documents.delete(ids=[doc_key])  # manifest first: a half-removed doc looks removed
            self._delete_records(doc_key)
            return existed

    def _delete_records(self, doc_key: str) -> None:
        self._chunks.delete(where={"doc": doc_key})
        self._sentences.delete(where={"doc": doc_key})

    def _add(self, collection, ids, embeddings, metadatas, documents) -> None:
        for lo in range(0, len(ids), self._max_batch):
            hi = lo + self._max_batch
            collection.add(ids=ids[lo:hi], embeddings=np.asarray(embeddings[lo:hi], dtype=np.float32),
                           metadatas=metadatas[lo:hi], documents=None if documents is None else documents[lo:hi])

    # -- reading ---------------------------------------------------------
    def query(self, embedding: np.ndarray, n: int) -> list[tuple[StoredChunk, float]]:
        """Nearest chunks by cosine similarity (1 - cosine distance)."""
        self.open()
        n = min(n, self._chunks.count())
        if n <= 0:
            return []
        res = self._chunks.query(query_embeddings=[np.asarray(embedding, dtype=np.float32)], n_results=n,
                                 include=["documents", "metadatas", "distances"])
        return [(_chunk(cid, doc, meta), 1.0 - float(dist))
                for cid, doc, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                                res["distances"][0])]

    def get_chunks(self, ids: Sequence[str], with_embeddings: bool = False
                   ) -> tuple[list[StoredChunk], np.ndarray | None]:
        """Chunks by id, in the order asked (missing ids are dropped)."""
        self.open()
        if not ids:
            return [], (np.zeros((0, 384), np.float32) if with_embeddings else None)
        include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
        got = self._chunks.get(ids=list(ids), include=include)
        pos = {cid: i for i, cid in enumerate(got["ids"])}
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
        """(ids, texts) of every chunk, in pages of `batch` (for the lexical index)."""
        self.open()
        offset = 0
        while True:
            got = self._chunks.get(include=["documents"], limit=batch, offset=offset)
            if not got["ids"]:
                return
            yield got["ids"], got["documents"]
            offset += len(got["ids"])


def _chunk(cid: str, text: str, meta: dict) -> StoredChunk:
    return StoredChunk(cid, meta.get("source", ""), meta.get("page"), text or "")


def _record(meta: dict) -> DocumentRecord:
    from core.chunking import document_key

    source = meta["source"]
    return DocumentRecord(source=source, doc_key=document_key(source), content_hash=meta.get("hash", ""),
                          chunks=int(meta.get("chunks", 0)), sentences=int(meta.get("sentences", 0)),
                          pages=meta.get("pages"), ingested_at=float(meta.get("ingested_at", time.time())),
                          chunking=str(meta.get("chunking", "")))

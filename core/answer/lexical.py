"""Lexical search over every chunk of a workspace (BM25, via bm25s).

Vector similarity misses exact terms a user types (names, codes, numbers);
BM25 catches them. bm25s was chosen over rank-bm25 because it scores with
precomputed sparse matrices (milliseconds at 100k chunks) and saves/loads its
index with memory mapping, so the index costs little RAM at start-up.

The index is derived data: it is rebuilt from the store's visible chunk texts
whenever the store's signature (its committed documents and their versions) changes, and
kept on disk beside the store so a restart does not rebuild it.

Beside the BM25 arrays it keeps each indexed chunk's vector (float32, memory
mapped, in index order): retrieval fuses BM25 candidates the vector query did
not return with their cosine, and reading 20 rows from that file costs
microseconds where fetching them from Chroma cost 2-3 ms a question (issue 19).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from core.ingest.segment import readable
from core.ingest.store import ChunkStore

_TOKEN = re.compile(r"\w+", re.UNICODE)
VECTORS_FILE = "vectors.f32"


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str, stopwords: frozenset[str] | None = None) -> list[str]:
    """Lower-cased word tokens without English stopwords."""
    stop = stopwords if stopwords is not None else _stopwords()
    return [t for t in _TOKEN.findall(text.lower()) if t not in stop]


def store_signature(store: ChunkStore) -> str:
    """Changes whenever a document is added, changed or removed.

    Only committed documents count (their manifest records, each naming the
    version of its rows), so rows of a write still running or killed, which
    no search may see, neither change it nor get into the index. ("v2": the
    format before versions also counted every row, uncommitted ones included,
    so indexes built then are rebuilt once; "v3": chunk texts are indexed with
    line-end hyphenation joined, see `LexicalIndex`; "v4": the index keeps the
    chunk vectors too.)
    """
    digest = hashlib.sha256(b"v4\n")
    for record in store.documents():
        digest.update(f"{record.doc_key}:{record.content_hash}:{record.version}:{record.chunks}\n".encode())
    return digest.hexdigest()


class LexicalIndex:
    """A BM25 index over a store's chunks, rebuilt when the store changes."""

    def __init__(self, store: ChunkStore, directory: Path, *, recheck_seconds: float | None = None):
        self._store = store
        self._recheck = recheck_seconds
        self._checked_at = 0.0
        self._dir = directory
        self._lock = threading.Lock()
        # (chunk ids, BM25 index, (len(ids), dim) float32 vectors memory mapped), swapped
        # in as one value so a search on another thread never mixes two builds.
        self._view: tuple[list[str], object, np.ndarray | None] = ([], None, None)
        self._signature: str | None = None
        self._stop = None

    def invalidate(self) -> None:
        """Forget the in-memory index; the next search checks the store again."""
        with self._lock:
            self._signature = None

    def ensure_current(self) -> None:
        """Load or rebuild the index so it matches the store. Blocking."""
        with self._lock:
            stale = self._recheck is not None and time.monotonic() - self._checked_at > self._recheck
            if self._signature is not None and not stale:
                return
            import bm25s

            self._stop = _stopwords()
            signature = store_signature(self._store)
            self._checked_at = time.monotonic()
            if signature == self._signature:
                return
            meta_file = self._dir / "meta.json"
            try:
                meta = json.loads(meta_file.read_text())
                if meta.get("signature") == signature:
                    ids = meta["ids"]
                    bm25 = bm25s.BM25.load(str(self._dir / "bm25"), mmap=True) if ids else None
                    self._view = (ids, bm25, self._open_vectors(len(ids), int(meta["dim"])))
                    self._signature = signature
                    return
            except (OSError, ValueError, KeyError, TypeError):
                pass
            self._rebuild(signature)

    def _rebuild(self, signature: str) -> None:
        import bm25s

        ids: list[str] = []
        corpus: list[list[str]] = []
        dim = 0
        tmp = self._dir.with_name(self._dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        # Vectors go to disk page by page: at 100k chunks they are 150 MB.
        with open(tmp / VECTORS_FILE, "wb") as vectors_out:
            for batch_ids, texts, vectors in self._store.iter_chunk_texts_and_vectors():
                ids.extend(batch_ids)
                # "infor-\nmation" in a PDF chunk is the word a user types: index it joined.
                corpus.extend(tokenize(readable(t), self._stop) or ["\u2205"] for t in texts)
                dim = vectors.shape[1]
                vectors_out.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        bm25 = None
        if ids:
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
            bm25.save(str(tmp / "bm25"))
        (tmp / "meta.json").write_text(json.dumps({"signature": signature, "ids": ids, "dim": dim}))
        # Swap in the complete index in one step; a crash mid-build leaves the old one.
        old = self._dir.with_name(self._dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self._dir.exists():
            self._dir.rename(old)
        tmp.rename(self._dir)
        shutil.rmtree(old, ignore_errors=True)
        if bm25 is not None:  # reopen memory-mapped, like a restart would
            bm25 = bm25s.BM25.load(str(self._dir / "bm25"), mmap=True)
        self._view = (ids, bm25, self._open_vectors(len(ids), dim))
        self._signature = signature

    def _open_vectors(self, rows: int, dim: int) -> np.ndarray | None:
        if not rows:
            return None
        return np.memmap(self._dir / VECTORS_FILE, dtype=np.float32, mode="r", shape=(rows, dim))

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """Top-n chunk ids by BM25 score (only positive scores)."""
        return self.search_with_vectors(query, n)[0]

    def search_with_vectors(self, query: str, n: int) -> tuple[list[tuple[str, float]], np.ndarray]:
        """`search`'s hits and, row for row, the chunks' vectors ((hits, dim) float32)."""
        self.ensure_current()
        tokens = [t for t in tokenize(query, self._stop)]
        ids, bm25, vectors = self._view
        if bm25 is None or not tokens or not ids or vectors is None:
            return [], np.zeros((0, vectors.shape[1] if vectors is not None else 384), np.float32)
        n = min(n, len(ids))
        scores = bm25.get_scores(tokens)
        if n < len(scores):
            top = np.argpartition(scores, len(scores) - n)[len(scores) - n:]
        else:
            top = np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return [(ids[i], float(scores[i])) for i in top], np.asarray(vectors[top])

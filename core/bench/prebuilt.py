"""Cached, pre-built chunk collections for the retrieval benchmark.

Embedding 100k real chunks would take hours here and Chroma inserts only
~260 vectors/s at that size, so the collection is built once and kept under
the bench cache dir, keyed by size, seed and `RETRIEVAL_VERSION`:

- texts: 100k distinct chunk texts assembled from a pool of generated,
  topic-grouped sentences (`core.bench.corpus`), so BM25 sees real variety;
- vectors: the pool sentences are embedded for real with the bundled model
  (at most 6,000 of them); each chunk's vector is the normalised mean of its
  sentences' vectors plus small seeded Gaussian noise, normalised again. The
  vectors therefore cluster by topic like real chunk embeddings, and the
  collection costs minutes, not hours. The output says so.
- records go in through the product's own `ChunkStore.add_records` /
  `commit_document` (one manifest per 100 chunks), and the BM25 index is built
  by the product's `LexicalIndex`, so the on-disk layout is the product's.
  Sentence records are not written: retrieval never reads them.

The build runs in a child process (`python -m core.bench.prebuilt ...`) so the
benchmark's own peak RSS reflects opening and querying the collection, not
building it, and so Chroma's per-path client cache never sees a half-built
directory (it is built under a temporary name and renamed when complete).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.bench.corpus import CORPUS_VERSION, SentencePool, plan_chunks, pool_size_for

RETRIEVAL_VERSION = f"corpus{CORPUS_VERSION}-r1"
WORKSPACE = "bench"
CHUNKS_PER_DOCUMENT = 100
WRITE_BATCH_DOCUMENTS = 50  # 5,000 chunks per add: under Chroma's 5,461 limit, few round trips
NOISE_NORM = 0.25  # cosine to the clean mean ~0.97: near-duplicates stay distinct for HNSW
VECTOR_NOTE = ("chunk vectors are real all-MiniLM-L6-v2 embeddings of a pool of {pool} generated sentences, "
               "each chunk the normalised mean of its sentences' vectors plus seeded noise (norm "
               f"{NOISE_NORM}); chunk texts are distinct; sentence records are not written")


def collection_dir(cache: Path, n_chunks: int, seed: int) -> Path:
    return cache / f"retrieval-{n_chunks}-seed{seed}-{RETRIEVAL_VERSION}"


def pool_for(n_chunks: int, seed: int) -> SentencePool:
    return SentencePool.generate(pool_size_for(n_chunks), seed)


def pool_vectors_file(cache: Path, n_sentences: int, seed: int) -> Path:
    return cache / f"pool-{n_sentences}-seed{seed}-{RETRIEVAL_VERSION}.npy"


def ensure_pool_vectors(cache: Path, pool: SentencePool, seed: int, embedder, progress=None) -> Path:
    """Embed the sentence pool once (real embeddings) and keep it as .npy."""
    path = pool_vectors_file(cache, len(pool.sentences), seed)
    if path.exists():
        return path
    texts = list(pool.sentences)
    parts = []
    bar = progress(total=len(texts), desc="embedding sentence pool", unit="sent") if progress else None
    for lo in range(0, len(texts), 512):
        parts.append(embedder.encode(texts[lo:lo + 512]))
        if bar is not None:
            bar.update(len(texts[lo:lo + 512]))
    if bar is not None:
        bar.close()
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
    np.save(tmp, np.concatenate(parts).astype(np.float32))
    os.replace(tmp, path)
    return path


def chunk_vectors(plans, pool_vecs: np.ndarray, seed: int, offset: int) -> np.ndarray:
    """Vectors for `plans` (chunks offset.. of the collection); deterministic per chunk index."""
    out = np.empty((len(plans), pool_vecs.shape[1]), dtype=np.float32)
    rng = np.random.default_rng([seed, offset])
    noise = rng.standard_normal(out.shape).astype(np.float32)
    noise *= NOISE_NORM / np.linalg.norm(noise, axis=1, keepdims=True)
    for i, plan in enumerate(plans):
        mean = pool_vecs[list(plan.sentence_ids)].mean(axis=0)
        out[i] = mean / (np.linalg.norm(mean) or 1.0)
    out += noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def ensure_collection(cache: Path, n_chunks: int, seed: int, embedder, progress=None) -> tuple[Path, dict]:
    """The built collection's directory and its build info; builds it (in a child process) if missing."""
    final = collection_dir(cache, n_chunks, seed)
    marker = final / "complete.json"
    if marker.exists():
        return final, json.loads(marker.read_text())
    pool = pool_for(n_chunks, seed)
    vectors = ensure_pool_vectors(cache, pool, seed, embedder, progress)
    tmp = final.with_name(final.name + f".building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # The child inherits stderr, so its tqdm bar shows; stdout stays free for figures.
    cmd = [sys.executable, "-m", "core.bench.prebuilt", str(tmp), str(n_chunks), str(seed), str(vectors)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final, json.loads(marker.read_text())


def _build(target: Path, n_chunks: int, seed: int, vectors_file: Path) -> None:
    """Child process: write the collection through the product's store and lexical index."""
    from tqdm import tqdm

    from core.ingest.chunking import chunk_id, document_key
    from core.answer.lexical import LexicalIndex
    from core.ingest.store import ChunkStore, DocumentRecord, StoredChunk

    started = time.perf_counter()
    pool = pool_for(n_chunks, seed)
    pool_vecs = np.load(vectors_file)
    plans = plan_chunks(pool, n_chunks, seed)
    store = ChunkStore(target / "index", WORKSPACE)
    store.open()
    empty = np.zeros((0, pool_vecs.shape[1]), np.float32)
    per_write = CHUNKS_PER_DOCUMENT * WRITE_BATCH_DOCUMENTS
    with tqdm(total=n_chunks, desc=f"building {n_chunks:,}-chunk collection", unit="chunk", file=sys.stderr,
              mininterval=2.0) as bar:
        for lo in range(0, n_chunks, per_write):
            batch = plans[lo:lo + per_write]
            chunks, records = [], []
            for d0 in range(0, len(batch), CHUNKS_PER_DOCUMENT):
                doc_index = (lo + d0) // CHUNKS_PER_DOCUMENT
                source = f"/bench/retrieval/doc-{doc_index:05d}.txt"
                key = document_key(source)
                content_hash = hashlib.sha256(f"{seed}:{n_chunks}:{doc_index}".encode()).hexdigest()
                part = batch[d0:d0 + CHUNKS_PER_DOCUMENT]
                chunks.extend(StoredChunk(chunk_id(key, content_hash, j), source, None, plan.text)
                              for j, plan in enumerate(part))
                records.append(DocumentRecord(source, key, content_hash, len(part), 0, None, time.time()))
            store.add_records(chunks, chunk_vectors(batch, pool_vecs, seed, lo), [], empty)
            for record in records:
                store.commit_document(record)
            bar.update(len(batch))
    written = time.perf_counter() - started
    LexicalIndex(store, target / "lexical").ensure_current()
    info = {"chunks": store.chunk_count(), "seed": seed, "version": RETRIEVAL_VERSION,
            "pool_sentences": len(pool.sentences), "write_seconds": round(written, 1),
            "build_seconds": round(time.perf_counter() - started, 1),
            "vectors": VECTOR_NOTE.format(pool=len(pool.sentences))}
    (target / "complete.json").write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    _build(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))

"""Hybrid retrieval: vector similarity fused with BM25.

Candidates come from both the Chroma vector query and the BM25 index; each
candidate's score is `ALPHA * cosine + (1 - ALPHA) * bm25 / max_bm25`. A
convex combination (rather than reciprocal rank fusion) keeps the score
interpretable for the sources panel: it stays in [0, 1] and a weak match
looks weak. ALPHA = 0.75 is the common hybrid-search default (Weaviate's),
leaning on semantics while letting exact terms lift a chunk.

This score says how well a chunk matches the *question*. It is not evidence
that the answer is supported; that is attribution's job (`core.attribution`).
"""
from __future__ import annotations

import numpy as np

from core.embedding import Embedder
from core.events import RetrievedChunk
from core.answer.lexical import LexicalIndex
from core.ingest.store import ChunkStore

ALPHA = 0.75
# Each side proposes this many candidates per requested chunk.
CANDIDATES_PER_K = 4


class Retriever:
    def __init__(self, store: ChunkStore, embedder: Embedder, lexical: LexicalIndex):
        self._store = store
        self._embedder = embedder
        self._lexical = lexical

    def retrieve(self, question: str, k: int) -> list[RetrievedChunk]:
        """The top-k chunks for `question`, best first. Blocking: run it off the event loop."""
        query_vector = self._embedder.encode_one(question)
        n = max(k * CANDIDATES_PER_K, 20)
        vector_hits = self._store.query(query_vector, n)
        lexical_hits = dict(self._lexical.search(question, n))
        cosine = {c.id: sim for c, sim in vector_hits}
        chunks = {c.id: c for c, _ in vector_hits}
        missing = [cid for cid in lexical_hits if cid not in chunks]
        if missing:  # BM25-only candidates need their vector score too
            extra, vectors = self._store.get_chunks(missing, with_embeddings=True)
            for chunk, vector in zip(extra, vectors):
                chunks[chunk.id] = chunk
                cosine[chunk.id] = float(np.dot(vector, query_vector))
        top_lexical = max(lexical_hits.values(), default=0.0) or 1.0
        scored = []
        for cid, chunk in chunks.items():
            vec = max(0.0, min(1.0, cosine.get(cid, 0.0)))
            lex = lexical_hits.get(cid, 0.0) / top_lexical
            scored.append((ALPHA * vec + (1 - ALPHA) * lex, vec, lex, chunk))
        scored.sort(key=lambda row: -row[0])
        return [RetrievedChunk(id=c.id, source=c.source, page=c.page, text=c.text, score=round(s, 4),
                               vector_score=round(v, 4), lexical_score=round(lx, 4))
                for s, v, lx, c in scored[:k]]

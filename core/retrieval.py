"""Hybrid retrieval: vector similarity fused with BM25.

Candidates come from both the Chroma vector query and the BM25 index; each
candidate's score is `ALPHA * cosine + (1 - ALPHA) * bm25 / max_bm25`. A
convex combination (rather than reciprocal rank fusion) keeps the score
interpretable for the sources panel: it stays in [0, 1] and a weak match
looks weak. ALPHA = 0.75 is the common hybrid-search default (Weaviate's),
leaning on semantics while letting exact terms lift a chunk.

Cost (issue 19): retrieval should cost what its parts cost. BM25 does not
need the question's vector, so it runs on a helper thread while the question
is embedded (the model releases the GIL). A chunk found only by BM25 needs
its vector for the fused score, and fetching vectors from Chroma is the
costliest read here; but such a chunk was not among the `n` nearest, so its
cosine is at most the n-th nearest's. Only the BM25-only chunks that could
still reach the top k with that ceiling are fetched (usually none), which
gives the same top k as fetching them all.

This score says how well a chunk matches the *question*. It is not evidence
that the answer is supported; that is attribution's job (`core.attribution`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.embedding import Embedder
from core.events import RetrievedChunk
from core.lexical import LexicalIndex
from core.store import ChunkStore, StoredChunk

ALPHA = 0.75
# Each side proposes this many candidates per requested chunk.
CANDIDATES_PER_K = 4


def _fused(cosine: float, lexical: float) -> float:
    return ALPHA * max(0.0, min(1.0, cosine)) + (1 - ALPHA) * lexical


class Retriever:
    def __init__(self, store: ChunkStore, embedder: Embedder, lexical: LexicalIndex):
        self._store = store
        self._embedder = embedder
        self._lexical = lexical
        # One thread: BM25 for the question being asked, beside its embedding.
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bm25")

    def retrieve(self, question: str, k: int) -> list[RetrievedChunk]:
        """The top-k chunks for `question`, best first. Blocking: run it off the event loop."""
        n = max(k * CANDIDATES_PER_K, 20)
        lexical_search = self._beside.submit(self._lexical.search, question, n)
        try:
            query_vector = self._embedder.encode_one(question)
            vector_hits = self._store.query(query_vector, n)
        finally:
            lexical_hits = dict(lexical_search.result())
        top_lexical = max(lexical_hits.values(), default=0.0) or 1.0
        cosine = {c.id: sim for c, sim in vector_hits}
        chunks: dict[str, StoredChunk] = {c.id: c for c, _ in vector_hits}
        missing = [cid for cid in lexical_hits if cid not in chunks]
        if missing and len(vector_hits) >= n:
            missing = self._could_reach_top(missing, vector_hits, cosine, lexical_hits, top_lexical, k)
        elif missing:
            # Fewer than n rows came back: every visible chunk was among them, so
            # BM25's other ids are rows the index no longer shows (a stale lexical index).
            missing = []
        if missing:
            extra, vectors = self._store.get_chunks(missing, with_embeddings=True)
            for chunk, vector in zip(extra, vectors):
                chunks[chunk.id] = chunk
                cosine[chunk.id] = float(np.dot(vector, query_vector))
        scored = []
        for cid, chunk in chunks.items():
            vec = max(0.0, min(1.0, cosine.get(cid, 0.0)))
            lex = lexical_hits.get(cid, 0.0) / top_lexical
            scored.append((_fused(vec, lex), vec, lex, chunk))
        scored.sort(key=lambda row: -row[0])
        return [RetrievedChunk(id=c.id, source=c.source, page=c.page, text=c.text, score=round(s, 4),
                               vector_score=round(v, 4), lexical_score=round(lx, 4))
                for s, v, lx, c in scored[:k]]

    @staticmethod
    def _could_reach_top(missing: list[str], vector_hits, cosine: dict[str, float],
                         lexical_hits: dict[str, float], top_lexical: float, k: int) -> list[str]:
        """The BM25-only ids whose fused score could reach the top k, given the n-th nearest's cosine."""
        ceiling = min(sim for _c, sim in vector_hits)
        known = sorted((_fused(cosine[c.id], lexical_hits.get(c.id, 0.0) / top_lexical)
                        for c, _ in vector_hits), reverse=True)
        bar = known[k - 1] if len(known) >= k else -1.0
        return [cid for cid in missing if _fused(ceiling, lexical_hits[cid] / top_lexical) >= bar]

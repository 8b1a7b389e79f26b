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

from concurrent.futures import Future, ThreadPoolExecutor

from core.embedding import Embedder
from core.events import RetrievedChunk
from core.answer.lexical import LexicalIndex
from core.ingest.store import ChunkStore

ALPHA = 0.75


def fused_score(cosine: float, lexical: float) -> tuple[float, float]:
    """(fused score, cosine clamped to [0, 1]) for a chunk; `lexical` is its BM25 score / the best one's."""
    vec = max(0.0, min(1.0, float(cosine)))
    return ALPHA * vec + (1 - ALPHA) * lexical, vec


# BM25 proposes this many candidates per requested chunk (the vector side k: see `retrieve`).
CANDIDATES_PER_K = 4


class Retriever:
    def __init__(self, store: ChunkStore, embedder: Embedder, lexical: LexicalIndex):
        self._store = store
        self._embedder = embedder
        self._lexical = lexical
        # The lexical side runs on this thread, beside the embedding and the vector
        # query (issue 19): the model run releases the GIL, so BM25 costs little wall time.
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lexical-retrieval")

    def retrieve(self, question: str, k: int) -> list[RetrievedChunk]:
        """The top-k chunks for `question`, best first. Blocking: run it off the event loop."""
        n = max(k * CANDIDATES_PER_K, 20)
        query_vector_ready: Future = Future()
        lexical_side = self._beside.submit(self._lexical_side, question, n, k, query_vector_ready)
        try:
            query_vector = self._embedder.encode_one(question)
        except BaseException:
            query_vector_ready.cancel()  # the lexical side stops waiting for it
            raise
        query_vector_ready.set_result(query_vector)
        # Asking Chroma for k, as a plain vector search does, loses nothing: a chunk
        # below the vector top k that BM25 did not propose scores under all k above
        # it, and one BM25 did propose gets its cosine on the lexical side.
        vector_hits = self._store.query(query_vector, k)
        lexical, cosine, chunks = lexical_side.result()
        cosine.update((c.id, sim) for c, sim in vector_hits)
        chunks.update((c.id, c) for c, _ in vector_hits)
        top_lexical = max(lexical.values(), default=0.0) or 1.0
        scored = []
        for cid, cos in cosine.items():
            lex = lexical.get(cid, 0.0) / top_lexical
            score, vec = fused_score(cos, lex)
            scored.append((score, vec, lex, cid))
        scored.sort(key=lambda row: -row[0])
        winners = self._with_chunks(scored, chunks, k)
        return [RetrievedChunk(id=c.id, source=c.source, page=c.page, text=c.text, score=round(s, 4),
                               vector_score=round(v, 4), lexical_score=round(lx, 4))
                for s, v, lx, c in winners]

    def _lexical_side(self, question: str, n: int, k: int, query_vector_ready: Future
                      ) -> tuple[dict[str, float], dict[str, float], dict]:
        """BM25's top n with their cosines, and the chunks of the k of them that fuse best.

        BM25 runs while the question is embedded. Its candidates' cosines come
        from the vectors the lexical index keeps, so their fused scores are
        final here: only the best k of them can be in the answer's top k, and
        their texts are fetched now, while the vector query runs, not after it.
        """
        hits, vectors = self._lexical.search_with_vectors(question, n)
        if not hits:
            return {}, {}, {}
        cosines = vectors @ query_vector_ready.result()
        top_lexical = hits[0][1] or 1.0
        fused = [fused_score(cos, score / top_lexical)[0] for (_cid, score), cos in zip(hits, cosines)]
        best = sorted(range(len(hits)), key=lambda i: -fused[i])[:k]
        fetched, _ = self._store.get_chunks([hits[i][0] for i in best])
        return dict(hits), {cid: float(cos) for (cid, _score), cos in zip(hits, cosines)}, {c.id: c for c in fetched}

    def _with_chunks(self, scored: list, chunks: dict, k: int) -> list:
        """The best k rows that are still visible, with their chunks.

        Rows whose chunk is not at hand yet (a BM25 candidate whose text was not
        fetched, or one gone by now: deleted since the BM25 index was built) are
        fetched here; one that is gone gives its place to the next row.
        """
        out = []
        at = 0
        while len(out) < k and at < len(scored):
            window = scored[at:at + k - len(out)]
            at += len(window)
            missing = [row[3] for row in window if row[3] not in chunks]
            if missing:
                fetched, _ = self._store.get_chunks(missing)
                chunks.update((c.id, c) for c in fetched)
            out.extend((s, v, lx, chunks[cid]) for s, v, lx, cid in window if cid in chunks)
        return out

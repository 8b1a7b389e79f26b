"""Hybrid retrieval on a real ChromaDB and the real embedder."""
from __future__ import annotations

import pytest

from core.ingest.ingestor import Ingestor
from core.answer.lexical import LexicalIndex
from core.answer.retrieval import Retriever
from core.ingest.store import ChunkStore


@pytest.fixture
def retriever(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pumps.txt").write_text("The pump must be serviced every six months. Replace the seal when it leaks.")
    (docs / "parts.txt").write_text("Part ZX-4471 is the replacement gasket. Order it from the supplier catalogue.")
    (docs / "garden.txt").write_text("Tomatoes need sun and regular water. Prune the side shoots in July.")
    store = ChunkStore(tmp_path / "index")
    Ingestor(store, embedder).ingest([docs])
    return Retriever(store, embedder, LexicalIndex(store, tmp_path / "lexical")), store


def test_results_carry_source_page_and_scores(retriever):
    r, _ = retriever
    hits = r.retrieve("How often should the pump be serviced?", 2)
    assert hits[0].file_name == "pumps.txt" and hits[0].page is None
    assert 0 < hits[0].score <= 1 and hits[0].score >= hits[1].score
    assert hits[0].vector_score > 0 and hits[0].lexical_score > 0


def test_exact_term_is_found_by_the_lexical_side(retriever):
    r, _ = retriever
    hits = r.retrieve("ZX-4471", 1)
    assert hits[0].file_name == "parts.txt" and hits[0].lexical_score == 1.0


def test_index_follows_removals(retriever, tmp_path):
    r, store = retriever
    from core.ingest.chunking import document_key

    store.remove_document(document_key(str(tmp_path / "docs" / "parts.txt")))
    r._lexical.invalidate()
    assert all(h.file_name != "parts.txt" for h in r.retrieve("ZX-4471 gasket", 3))


def test_empty_index_returns_nothing(tmp_path, embedder):
    store = ChunkStore(tmp_path / "empty")
    assert Retriever(store, embedder, LexicalIndex(store, tmp_path / "lx")).retrieve("anything", 5) == []


def test_top_k_equals_the_fusion_of_both_candidate_lists_read_in_full(tmp_path, embedder):
    """With more chunks than candidates, skipping hopeless BM25-only chunks changes nothing a user sees.

    The reference reads the true vector of every candidate either side proposes
    (20 each for k=5), as retrieval did before it learned to skip them.
    """
    import numpy as np

    from core.answer.retrieval import ALPHA

    docs = tmp_path / "docs"
    docs.mkdir()
    topics = ["pump maintenance", "garden tomatoes", "tax returns", "bicycle brakes", "bread baking",
              "river fishing", "roof tiles", "piano tuning", "coffee roasting", "dog training"]
    for i in range(36):
        topic = topics[i % len(topics)]
        extra = " The torque wrench setting is 45 newton metres." if i % 7 == 3 else ""
        (docs / f"note{i:02d}.txt").write_text(
            f"Note {i} is about {topic}. Check the {topic} schedule every {i + 2} weeks.{extra}")
    store = ChunkStore(tmp_path / "index")
    Ingestor(store, embedder).ingest([docs])
    lexical = LexicalIndex(store, tmp_path / "lexical")
    retriever = Retriever(store, embedder, lexical)
    ids = [cid for batch, _texts in store.iter_chunk_texts() for cid in batch]
    assert len(ids) > 20  # more chunks than the 20 candidates each side proposes for k=5

    for question in ("torque wrench newton metres", "How often should I check the piano?", "weeks"):
        got = [(h.id, h.score) for h in retriever.retrieve(question, 5)]
        vector = embedder.encode_one(question)
        bm25 = dict(lexical.search(question, 20))
        candidates = {c.id for c, _ in store.query(vector, 20)} | set(bm25)
        chunks, vectors = store.get_chunks(sorted(candidates), with_embeddings=True)
        top = max(bm25.values(), default=0.0) or 1.0
        reference = sorted(((round(ALPHA * max(0.0, min(1.0, float(np.dot(v, vector))))
                                   + (1 - ALPHA) * bm25.get(c.id, 0.0) / top, 4), c.id)
                            for c, v in zip(chunks, vectors)), reverse=True)[:5]
        assert [s for _i, s in got] == [s for s, _i in reference], question


def test_a_chunk_deleted_behind_the_lexical_index_gives_its_place_to_the_next(retriever, tmp_path):
    """The BM25 index may still name a removed document's chunks until it is rebuilt: none is shown."""
    r, store = retriever
    from core.ingest.chunking import document_key

    store.remove_document(document_key(str(tmp_path / "docs" / "parts.txt")))  # no invalidate()
    hits = r.retrieve("ZX-4471 gasket", 3)
    assert [h.file_name for h in hits] and all(h.file_name != "parts.txt" for h in hits)
    assert len(hits) == 2  # the two other documents fill the places


def test_a_failing_embedder_fails_the_question_and_the_next_one_works(retriever, monkeypatch):
    r, _ = retriever

    def broken(text):
        raise RuntimeError("model went away")

    monkeypatch.setattr(r._embedder, "encode_one", broken)
    with pytest.raises(RuntimeError, match="model went away"):
        r.retrieve("pump", 2)
    monkeypatch.undo()
    assert r.retrieve("How often should the pump be serviced?", 1)[0].file_name == "pumps.txt"


def test_the_lexical_index_keeps_the_stores_chunk_vectors(retriever):
    """BM25 candidates are scored with these vectors, so they must be the store's own, row for row."""
    import numpy as np

    r, store = retriever
    hits, vectors = r._lexical.search_with_vectors("pump seal gasket tomatoes", 10)
    assert len(hits) == 3 and vectors.shape == (3, 384)
    _chunks, stored = store.get_chunks([cid for cid, _ in hits], with_embeddings=True)
    assert np.array_equal(vectors, stored)


def test_a_damaged_vector_file_is_rebuilt_not_trusted(retriever, tmp_path, embedder):
    r, store = retriever
    assert r.retrieve("ZX-4471", 1)[0].file_name == "parts.txt"  # builds the index on disk
    vectors = tmp_path / "lexical" / "vectors.f32"
    vectors.write_bytes(vectors.read_bytes()[:100])  # cut short, as by a full disk
    fresh = Retriever(store, embedder, LexicalIndex(store, tmp_path / "lexical"))
    hits = fresh.retrieve("ZX-4471", 1)
    assert hits[0].file_name == "parts.txt" and hits[0].vector_score > 0
    assert vectors.stat().st_size == 3 * 384 * 4

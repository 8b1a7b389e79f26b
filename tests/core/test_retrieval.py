"""Hybrid retrieval on a real ChromaDB and the real embedder."""
from __future__ import annotations

import pytest

from core.ingest import Ingestor
from core.lexical import LexicalIndex
from core.retrieval import Retriever
from core.store import ChunkStore


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
    from core.chunking import document_key

    store.remove_document(document_key(str(tmp_path / "docs" / "parts.txt")))
    r._lexical.invalidate()
    assert all(h.file_name != "parts.txt" for h in r.retrieve("ZX-4471 gasket", 3))


def test_empty_index_returns_nothing(tmp_path, embedder):
    store = ChunkStore(tmp_path / "empty")
    assert Retriever(store, embedder, LexicalIndex(store, tmp_path / "lx")).retrieve("anything", 5) == []

"""Chunk vectors pooled from sentence vectors: the arithmetic, and what ingest stores and retrieves."""
from __future__ import annotations

import numpy as np
import pytest

from core.ingest.chunk_vectors import pooled_chunk_vectors
from core.ingest.ingestor import Ingestor
from core.ingest.store import ChunkStore


def _stored_and_pooled(store: ChunkStore) -> tuple[np.ndarray, np.ndarray, int]:
    """Every stored chunk vector, the same chunks pooled from their stored sentences, and the sentence count."""
    ids = [i for batch, _ in store.iter_chunk_texts() for i in batch]
    chunks, chunk_vectors = store.get_chunks(ids, with_embeddings=True)
    sentences, sentence_vectors = store.sentences_for(chunks)
    row = {c.id: i for i, c in enumerate(chunks)}
    pooled = pooled_chunk_vectors(sentence_vectors, [row[s.chunk_id] for s in sentences],
                                  [len(s.text) for s in sentences], len(chunks))
    return chunk_vectors, pooled, len(sentences)


def test_longer_sentences_weigh_more_and_rows_are_unit_length():
    east, north = np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    vectors = np.vstack([east, north, north])
    pooled = pooled_chunk_vectors(vectors, [0, 0, 1], [300, 100, 50], n_chunks=2)
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0)
    assert pooled[0, 0] > 0.9 > pooled[0, 1] > 0  # mostly the 300-character sentence
    assert np.allclose(pooled[1], [0.0, 1.0])


def test_a_chunk_without_sentences_is_refused():
    with pytest.raises(ValueError, match="at least one sentence"):
        pooled_chunk_vectors(np.ones((1, 2), np.float32), [0], [10], n_chunks=2)


def test_ingest_stores_pooled_chunk_vectors_that_find_the_right_chunk(tmp_path, embedder):
    store = ChunkStore(tmp_path / "index")
    store.open()
    text = ("The lighthouse keeper lit the lamp at dusk. Ships passed safely through the narrow strait. "
            "The keeper logged every vessel in a leather book. Storms rarely closed the harbour. "
            "Bakers in the town rise at four to fire the ovens. Rye loaves are shaped by hand. "
            "The bakery sells out of bread before noon. Pastries are glazed with honey.")
    path = tmp_path / "town.txt"
    path.write_text(text, encoding="utf-8")
    Ingestor(store, embedder, chunk_chars=200, overlap=1).ingest([path])
    hits = store.query(embedder.encode_one("When does the bakery run out of bread?"), 1)
    assert "bakery sells out of bread" in hits[0][0].text

    stored, pooled, _ = _stored_and_pooled(store)
    assert len(stored) >= 2 and np.allclose(stored, pooled, atol=1e-5)


def test_a_big_file_written_in_parts_gets_pooled_vectors_and_counts(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr("core.ingest.ingestor.PART_TEXTS", 12)  # a file of more texts is embedded and written in parts
    store = ChunkStore(tmp_path / "index")
    store.open()
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"Station {i} records {i * 3} millimetres of rain in spring." for i in range(40)),
                    encoding="utf-8")
    report = Ingestor(store, embedder, chunk_chars=160, overlap=1).ingest([path])
    stored, pooled, n_sentences = _stored_and_pooled(store)
    assert report.indexed == [str(path)] and report.chunks == len(stored) > 3 and report.sentences == n_sentences
    assert np.allclose(stored, pooled, atol=1e-5)

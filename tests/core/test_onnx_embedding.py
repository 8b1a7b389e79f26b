"""The torch-free embedder: exported once from the bundled model, it gives the same vectors, and a bad file is not fatal.

A user's index was built with sentence-transformers; from the second launch on
the questions are embedded by onnxruntime. If the two disagreed, retrieval would
silently change, so the vectors are compared on real text: short, long (cut at
256 word pieces), non-Latin, batched out of order.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.embedding import Embedder

TEXTS = [
    "How do I add documents?",
    "At any given time each server is in one of three states: leader, follower, or candidate.",
    "東京は日本の首都です。",
    "word " * 600,  # longer than the model reads
    "",
    "Chunk size is 64 MB.",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the sentence-transformers embedder, the folder its export went to)."""
    cache = tmp_path_factory.mktemp("embedder-cache")
    reference = Embedder(cache_dir=cache)
    reference.load()
    assert reference.runtime == "sentence-transformers"  # nothing exported yet: the first launch
    assert reference.prepare_fast_start()
    return reference, cache


def test_the_next_launch_loads_without_torch_and_gives_the_same_vectors(exported):
    reference, cache = exported
    fast = Embedder(cache_dir=cache)
    fast.load()
    assert fast.runtime == "onnxruntime"
    expected = reference.encode(TEXTS)
    got = fast.encode(TEXTS, batch_size=2)  # batches regrouped by length: rows must come back in order
    assert got.shape == (len(TEXTS), 384)
    assert np.abs(got - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_a_damaged_export_falls_back_to_sentence_transformers_and_is_removed(exported, tmp_path):
    _, cache = exported
    damaged_dir = tmp_path / "cache"
    damaged_dir.mkdir()
    export = next(cache.glob("*.onnx"))
    (damaged_dir / export.name).write_bytes(export.read_bytes()[: 1 << 20])  # a crash mid-copy
    embedder = Embedder(cache_dir=damaged_dir)
    embedder.load()
    assert embedder.runtime == "sentence-transformers"
    assert embedder.encode(["How do I add documents?"]).shape == (1, 384)
    assert not (damaged_dir / export.name).exists()  # the next export writes a good one


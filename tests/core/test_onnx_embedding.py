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



def test_the_background_export_makes_both_files_a_start_loads(tmp_path):
    """What the window starts after its first start-up: `python -m core.fast_start` in the app's data folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from core.attribution.verifier import Verifier

    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path)}
    env.pop("SOURCELIGHT_NO_FAST_START", None)
    done = subprocess.run([sys.executable, "-m", "core.fast_start"], cwd=Path(__file__).resolve().parents[2],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    embedder = Embedder(cache_dir=tmp_path / "cache" / "embedder")
    verifier = Verifier(cache_dir=tmp_path / "cache" / "verifier")
    assert embedder.fast_start_ready() and verifier.fast_start_ready()
    verifier.load()
    assert verifier.runtime == "onnxruntime"

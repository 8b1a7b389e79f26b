"""The verifier from the second start on: its ONNX export scores pairs as the torch model does.

The calibrated threshold sits on the verifier's logits, so an export that
scored differently would move every "supported" flag; pairs of every length
(one word to past the 128-word-piece window) must agree, one at a time and
batched, and a damaged export must cost nothing but speed.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.attribution.verifier import Verifier

CLAIM = "GFS uses 64 MB chunks."
EVIDENCE = [
    "GFS uses a chunk size of 64 MB, much larger than typical file system block sizes.",
    "GFS uses a chunk size of 32 MB.",
    "Each chunk replica is stored as a plain Linux file on a chunkserver. " * 12,  # cut at 128 word pieces
    "Yes.",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(a torch verifier, the folder its export went to)."""
    cache = tmp_path_factory.mktemp("verifier-cache")
    reference = Verifier(cache_dir=cache)
    reference.load()
    assert reference.runtime == "torch"  # nothing exported yet: the first start
    assert reference.prepare_fast_start()
    return reference, cache


def test_the_export_gives_the_torch_logits_one_by_one_and_batched(exported):
    reference, cache = exported
    fast = Verifier(cache_dir=cache)
    fast.load()
    assert fast.runtime == "onnxruntime"
    expected = reference.score(CLAIM, EVIDENCE)
    assert np.abs(fast.score(CLAIM, EVIDENCE) - expected).max() < 1e-3
    fast.clear_cache()
    one_by_one = np.array([fast.score(CLAIM, [e])[0] for e in EVIDENCE])
    assert np.abs(one_by_one - expected).max() < 1e-3
    assert expected[0] > expected[1]  # the swapped number still reads as less supported


def test_a_damaged_export_falls_back_to_torch(exported, tmp_path):
    _, cache = exported
    export = next(cache.glob("*.onnx"))
    (tmp_path / export.name).write_bytes(b"not a model")
    verifier = Verifier(cache_dir=tmp_path)
    verifier.load()
    assert verifier.runtime == "torch" and verifier.error is None
    assert verifier.score(CLAIM, EVIDENCE[:1]).shape == (1,)
    assert not (tmp_path / export.name).exists()

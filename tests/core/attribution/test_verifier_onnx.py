"""The verifier on onnxruntime, its graph built from the shipped fp16 weights: it scores pairs as torch does.

The calibrated threshold sits on the verifier's logits, so a graph that scored
differently would move every "supported" flag; pairs of every length (one word
to past the 128-word-piece window) from real text must agree with the torch
model within 1e-3, one at a time and batched.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.attribution.verifier import Verifier
from tests.core.test_onnx_embedding import real_sentences

CLAIM = "GFS uses 64 MB chunks."
EVIDENCE = [
    "GFS uses a chunk size of 64 MB, much larger than typical file system block sizes.",
    "GFS uses a chunk size of 32 MB.",
    "Each chunk replica is stored as a plain Linux file on a chunkserver. " * 12,  # cut at 128 word pieces
    "Yes.",
]


@pytest.fixture(scope="module")
def reference():
    model = Verifier(onnx=False)
    model.load()
    assert model.runtime == "torch"
    return model


@pytest.fixture(scope="module")
def fast():
    model = Verifier()
    model.load()
    assert model.runtime == "onnxruntime"  # on the first start too: nothing is exported
    return model


def test_the_logits_match_torch_one_by_one_and_batched(reference, fast):
    expected = reference.score(CLAIM, EVIDENCE)
    assert np.abs(fast.score(CLAIM, EVIDENCE) - expected).max() < 1e-3
    fast.clear_cache()
    one_by_one = np.array([fast.score(CLAIM, [e])[0] for e in EVIDENCE])
    assert np.abs(one_by_one - expected).max() < 1e-3
    assert expected[0] > expected[1]  # the swapped number still reads as less supported


def test_the_logits_match_torch_on_real_claims_and_passages(reference, fast):
    """Each sentence of the guide and the docs against the passage it stands in (itself and its neighbours),
    and against a passage from elsewhere: supported and unsupported pairs, short and past the window."""
    sentences = real_sentences()[:60]
    differences = []
    for i, claim in enumerate(sentences):
        evidence = [" ".join(sentences[max(0, i - 2):i + 3]), " ".join(sentences[(i + 40) % len(sentences):][:2]),
                    " ".join(sentences[i:i + 12])]  # the last is past 128 word pieces for most claims
        differences.append(np.abs(fast.score(claim, evidence) - reference.score(claim, evidence)).max())
    assert max(differences) < 1e-3

"""Shared fixtures for the attribution tests: one real bundled embedder and a small hand-made pool.

The embedder loads MiniLM once per session (5-14 s); every test reuses it.
"""
from __future__ import annotations

import pytest

from core.attribution import Attributor, EvidencePool, SourceSentence
from core.segment import split_sentences

from attribution_cases import CHUNKS


@pytest.fixture(scope="session")
def embedder():
    from core.embedding import Embedder

    e = Embedder()
    e.load()
    return e


@pytest.fixture(scope="session")
def attributor(embedder):
    return Attributor(embedder)


@pytest.fixture(scope="session")
def pool(embedder):
    sentences = [SourceSentence(cid, sp.start, sp.end, sp.text)
                 for cid, text in CHUNKS.items() for sp in split_sentences(text)]
    return EvidencePool.build(sentences, embedder.encode([s.text for s in sentences]))

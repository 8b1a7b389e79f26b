"""Shared fixtures for the attribution tests: an attributor and a small hand-made pool.

Both use the session's real bundled embedder (`embedder`, tests/conftest.py),
which loads MiniLM once per session (5-14 s); every test reuses it.
"""
from __future__ import annotations

import pytest

from core.attribution import Attributor, EvidencePool, SourceSentence
from core.ingest.segment import split_sentences

from attribution_cases import CHUNKS


@pytest.fixture(scope="session")
def attributor(embedder):
    return Attributor(embedder)


@pytest.fixture(scope="session")
def pool(embedder):
    sentences = [SourceSentence(cid, sp.start, sp.end, sp.text)
                 for cid, text in CHUNKS.items() for sp in split_sentences(text)]
    return EvidencePool.build(sentences, embedder.encode([s.text for s in sentences]))

"""Chunk vectors pooled from the vectors of the chunk's own sentences.

Ingest must embed every source sentence anyway (attribution compares answer
sentences with them), and a chunk is exactly a run of those sentences
(`core.ingest.chunking`). Embedding the chunk text as well ran the model over the
same words a second time, about half of all ingest compute. Instead a chunk's
vector is the mean of its sentences' vectors weighted by their length in
characters (a long sentence carries more of the chunk's content, as its
tokens would in MiniLM's own mean pooling), L2-normalised like every vector.

Retrieval quality holds: `sourcelight eval chunk-vectors` measures question
(ExpertQA) and claim (WiCE) retrieval over chunks built both ways, on the
public dev data; the figures are in that command's module docstring
(`core.eval.chunk_vectors`). Vectors made either way live in the same space,
so an index built by an earlier version stays valid.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pooled_chunk_vectors(sentence_vectors: np.ndarray, sentence_chunks: Sequence[int],
                         sentence_lengths: Sequence[int], n_chunks: int) -> np.ndarray:
    """(n_chunks, dim) float32, row i the normalised length-weighted mean of chunk i's sentence vectors.

    `sentence_chunks[j]` is the chunk (0..n_chunks-1) that sentence j belongs
    to and `sentence_lengths[j]` its length in characters. Every chunk must
    have at least one sentence.
    """
    owners = np.asarray(sentence_chunks, dtype=np.intp)
    if n_chunks and np.bincount(owners, minlength=n_chunks).min() == 0:
        raise ValueError("every chunk needs at least one sentence to pool")
    weights = np.maximum(np.asarray(sentence_lengths, dtype=np.float32), 1.0)
    pooled = np.zeros((n_chunks, sentence_vectors.shape[1]), dtype=np.float32)
    np.add.at(pooled, owners, sentence_vectors * weights[:, None])
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    # Sentence vectors of one chunk never cancel out exactly; guard the division anyway.
    return pooled / np.maximum(norms, 1e-12)

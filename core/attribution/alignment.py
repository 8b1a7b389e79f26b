"""How well a claim's words are matched in its evidence, read from the embedder's own word-piece vectors.

The verifier (`verifier.py`) is fine-tuned on the public training data, which
holds almost no paraphrased support, and even with WiCE's gold evidence it
rejects claims that say the same thing in other words ("400 freshmen" for
"400 9th-grade students"). The embedder, all-MiniLM-L6-v2, was trained by its
authors on a billion sentence pairs, most of them paraphrases; its last-layer
word-piece vectors place "freshmen" near "9th-grade students" without any
training of ours. So the support model also reads a soft alignment in the
manner of BERTScore's recall (Zhang et al., 2020): each content word piece of
the claim is matched with the most similar word piece of the evidence (cosine
of last-layer vectors), and the mean of those best matches is the claim's
`align_recall`. A claim whose every word has a close counterpart scores near
1; one with a fact the evidence lacks keeps a few low matches.

Measured on the dev splits before anything was fitted (the coverage window
the attributor chooses; AUROC of the raw number, supported vs the rest):
WiCE 0.785 and ExpertQA 0.640, against 0.726 / 0.619 for the verifier's logit
and 0.766 / 0.581 for word-level coverage (`core/attribution/README.md`).
Stop words and punctuation are left out of the mean, as in content-word
recall (`text.STOPWORDS`); word-piece continuations ("##men") always count.
Each evidence sentence is encoded on its own and remembered, so the pool's
sentences cost one encoding per answer however many claims read them: the
pipeline encodes the whole pool in one batch as soon as it is loaded
(`prepare`, ~1.7 ms a sentence against ~7 ms for a lone sentence), and the
claim's word pieces come from the same pass of the model that embeds it
(`remember`), so a claim costs a matrix product beyond what it cost before.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from core.attribution.text import STOPWORDS

# Texts remembered: a pool of ~80-300 sentences fits with room for the next answer's. Stored as
# float16 (a sentence of ~40 pieces is 30 KB), so a full cache is ~30 MB, not ~60.
CACHE_SIZE = 1024
_HAS_WORD = re.compile(r"[^\W_]")
_SPECIAL = frozenset({"[CLS]", "[SEP]", "[PAD]"})


def is_content_piece(piece: str) -> bool:
    """A word piece that carries meaning: not [CLS]/[SEP], punctuation or a stop word."""
    if piece in _SPECIAL:
        return False
    if piece.startswith("##"):
        return True
    return bool(_HAS_WORD.search(piece)) and piece not in STOPWORDS


def aligned_recall(claim_pieces: Sequence[str], claim_vectors: np.ndarray, evidence: Sequence[np.ndarray]) -> float:
    """Mean over the claim's content pieces of the best cosine with any evidence piece (0 with no evidence).

    `claim_vectors` and each of `evidence` are unit rows (pieces, dims), the
    evidence without its [CLS]/[SEP] rows.
    """
    rows = [e for e in evidence if len(e)]
    if not rows or not len(claim_vectors):
        return 0.0
    keep = np.array([is_content_piece(p) for p in claim_pieces])
    if not keep.any():  # a claim of stop words only: every piece counts
        keep[:] = True
    best = (claim_vectors[keep] @ np.concatenate(rows).T).max(axis=1)
    return float(best.mean())


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _stored(v: np.ndarray) -> np.ndarray:
    """Unit rows as kept in the cache (float16: cosines change by under 1e-3)."""
    return _unit(np.asarray(v, dtype=np.float32)).astype(np.float16)


class TokenAligner:
    """`recall(claim, evidence_sentences)` over the embedder's word-piece vectors; thread-safe.

    `embedder` is anything with `token_vectors(texts)` (`core.embedding.Embedder`).
    Texts already encoded are remembered (`cache_size` of them, least recently
    used first out): a pool's sentences are read by many claims of one answer.
    """

    def __init__(self, embedder: Any, cache_size: int = CACHE_SIZE):
        self.embedder = embedder
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[tuple[str, ...], np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, text: str, pieces: Sequence[str], vectors: np.ndarray) -> None:
        """Keep word-piece vectors computed elsewhere (the claim's, from the pass that embedded it)."""
        self._store({text: (tuple(pieces), _stored(vectors))})

    def prepare(self, texts: Sequence[str]) -> None:
        """Encode the texts not yet known in one batch (an answer's evidence pool, before its claims). Blocking."""
        self._encoded(texts)

    def clear_cache(self) -> None:
        """Forget encoded texts (benchmarks time the model, not the cache)."""
        with self._lock:
            self._cache.clear()

    def _encoded(self, texts: Sequence[str]) -> list[tuple[tuple[str, ...], np.ndarray]]:
        """(word pieces, unit vectors) per text, [CLS] and [SEP] included."""
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo:  # encoded outside the lock: another claim may read the cache meanwhile
            known.update((t, (p, _stored(v))) for t, (p, v) in zip(todo, self.embedder.token_vectors(todo)))
        self._store({t: known[t] for t in texts})
        return [known[t] for t in texts]

    def _store(self, entries: dict[str, tuple[tuple[str, ...], np.ndarray]]) -> None:
        with self._lock:
            for t, entry in entries.items():
                self._cache[t] = entry
                self._cache.move_to_end(t)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def recall(self, claim: str, evidence: Sequence[str]) -> float:
        """`aligned_recall` of `claim` against the evidence sentences read together. Blocking."""
        if not evidence:
            return 0.0
        (pieces, vectors), *rest = self._encoded([claim, *evidence])
        return aligned_recall(pieces, vectors.astype(np.float32), [v[1:-1].astype(np.float32) for _, v in rest])

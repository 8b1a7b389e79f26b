"""Attribute one answer sentence to the source sentences that support it.

`Attributor.attribute` is called by the live pipeline each time an answer
sentence closes, with the claim already embedded by the caller; everything it
does beyond that embedding (features, ranking, span choice, calibrated support)
costs about a millisecond for a pool of ~100 sentences.

Steps, each measured on the dev splits (core/attribution/README.md):
1. strip citation markers ("[2]") so they neither add nor remove lexical evidence;
2. rank every pool sentence with the fitted logistic fusion of MiniLM cosine
   and lexical features (`features.sentence_features`), plus a passage term
   when the pool has several chunks (`features.passage_boost`: how well the
   sentence's chunk does by its two best sentences); a near-exact quote jumps
   to the top and is taken with full confidence;
3. pick the best sentence plus up to two more that cover claim words it misses
   (the highlighted spans);
4. score support with the calibrated model on a wider coverage set (the best
   sentence plus up to three of the next fifteen that add any uncovered claim
   word: does the top of the ranking, taken together, state the whole claim?),
   and flag the claim as unsupported below the threshold chosen on dev.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.attribution import features as F
from core.attribution.calibration import Calibration
from core.attribution.pool import EvidencePool
from core.attribution.text import strip_citations
from core.events import SupportSpan

# Added to a near-exact quote's fused score so it ranks first whatever the
# lexical features say (its support is then 1.0, not the model's estimate).
EXACT_BONUS = 100.0


@dataclass(frozen=True)
class Attribution:
    """Where and how well one claim is supported."""

    spans: tuple[SupportSpan, ...]  # best first; 2-3 when one sentence does not cover the claim
    support: float                  # calibrated probability-like support in [0, 1]
    supported: bool                 # support >= the calibrated threshold

    @property
    def chunk_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.chunk_id for s in self.spans))


@dataclass
class _Run:
    claim: F.Claim
    scored: F.Scored
    scores: np.ndarray
    exact: tuple[int, int, int] | None


class Attributor:
    """Ranks pool sentences for a claim and scores how well the best of them support it."""

    def __init__(self, embedder: Any, calibration: Calibration | str | Path | dict | None = None):
        self.embedder = embedder
        if calibration is None or isinstance(calibration, (str, Path)):
            calibration = Calibration.load(calibration)
        elif isinstance(calibration, dict):
            calibration = Calibration.from_json(calibration)
        self.calibration: Calibration = calibration

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def embed_claim(self, claim: str) -> np.ndarray:
        """The claim's embedding as `attribute` expects it (markers stripped first). Blocking."""
        return self.embedder.encode_one(strip_citations(claim))

    def _run(self, claim: str, pool: EvidencePool, claim_embedding: np.ndarray | None) -> _Run:
        prepared = F.Claim.of(claim)
        q = claim_embedding if claim_embedding is not None else self.embedder.encode_one(prepared.text)
        q = np.asarray(q, dtype=np.float32)
        scored = F.sentence_features(prepared, pool, q)
        scores = self.calibration.rank.logit(scored.features) if pool.n else np.zeros(0, dtype=np.float32)
        scores = F.passage_boost(scores, pool, self.calibration.passage_weight)
        exact = None
        if pool.n:
            order = np.argsort(-scores, kind="stable")
            exact = F.near_exact(prepared, pool, order)
            if exact is not None:
                scores = scores.copy()
                scores[exact[0]] = scores.max() + EXACT_BONUS
        return _Run(prepared, scored, scores, exact)

    def rank(self, claim: str, pool: EvidencePool, claim_embedding: np.ndarray | None = None) -> np.ndarray:
        """Fused score of every pool sentence for `claim` (higher is better); the ordering `attribute` uses."""
        return self._run(claim, pool, claim_embedding).scores

    def support_features(self, claim: str, pool: EvidencePool,
                         claim_embedding: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """The support model's input for `claim` and whether it is a near-exact quote (for fitting)."""
        run = self._run(claim, pool, claim_embedding)
        return F.support_features(run.scored, pool, run.scores, self._cover(run)), run.exact is not None

    def _cover(self, run: _Run) -> list[int]:
        """The coverage set the support model reads: wider than the highlighted spans."""
        return F.choose_spans(run.scored, run.scores, **(self.calibration.cover or self.calibration.spans))

    def attribute(self, claim: str, pool: EvidencePool, claim_embedding: np.ndarray | None = None) -> Attribution:
        """The supporting span(s) for `claim`, its calibrated support and the supported flag.

        `claim_embedding` is the unit vector of the claim with citation markers
        stripped (`embed_claim`); when None it is computed here.
        """
        if pool.n == 0:
            return Attribution((), 0.0, False)
        run = self._run(claim, pool, claim_embedding)
        if run.exact is not None:
            i, start, end = run.exact
            chunk = pool.sentences[i]
            text = chunk.text[start - chunk.start:end - chunk.start]
            return Attribution((SupportSpan(chunk.chunk_id, start, end, text, 1.0),), 1.0, True)
        chosen = F.choose_spans(run.scored, run.scores, **self.calibration.spans)
        model = self.calibration.support
        support = float(model.proba(F.support_features(run.scored, pool, run.scores, self._cover(run))))
        spans = []
        for i in chosen:
            # A lone span carries the claim's support; a span in a union carries
            # what it would support on its own.
            alone = support if len(chosen) == 1 else float(
                model.proba(F.support_features(run.scored, pool, run.scores, [i])))
            s = pool.sentences[i]
            spans.append(SupportSpan(s.chunk_id, s.start, s.end, s.text, round(alone, 4)))
        return Attribution(tuple(spans), support, support >= self.calibration.threshold)

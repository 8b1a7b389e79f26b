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
   and flag the claim as unsupported below the threshold chosen on dev;
5. with the verifier (`verifier.Verifier`, a cross-encoder that reads the
   sentence and the evidence together): score the ranker's top candidates one
   by one and the coverage set as one window, let those logits re-order the
   candidates (the highlighted span) and decide the support with the fused
   logit as one input (`calibration.VerifierCalibration`), beside how well
   the claim's word pieces are matched in the coverage set by the embedder's
   own vectors (`alignment.TokenAligner`: paraphrase the verifier misses); if
   the verifier cannot load, steps 1-4 stand alone and `verifier_error` says why;
6. say whether the sentence is a claim at all (`claims.claim_kind`): a
   sentence that asserts nothing checkable is `not_a_claim`, neither
   supported nor flagged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.attribution import features as F
from core.attribution.alignment import TokenAligner
from core.attribution.calibration import Calibration, VerifierCalibration
from core.attribution.claims import CLAIM, claim_body, claim_kind
from core.attribution.pool import EvidencePool
from core.attribution.text import strip_citations
from core.attribution.verifier import Verifier, VerifierUnavailable
from core.events import SupportSpan

log = logging.getLogger(__name__)

# Added to a near-exact quote's fused score so it ranks first whatever the
# lexical features say (its support is then 1.0, not the model's estimate).
EXACT_BONUS = 100.0


@dataclass(frozen=True)
class Attribution:
    """Where and how well one claim is supported."""

    spans: tuple[SupportSpan, ...]  # best first; 2-3 when one sentence does not cover the claim
    support: float                  # calibrated probability-like support in [0, 1]
    supported: bool                 # support >= the calibrated threshold
    kind: str = CLAIM               # "claim" or "not_a_claim" (claims.claim_kind): the latter is never flagged

    @property
    def flagged(self) -> bool:
        """Shown as unsupported: a claim below the threshold."""
        return self.kind == CLAIM and not self.supported

    @property
    def chunk_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.chunk_id for s in self.spans))


@dataclass
class _Run:
    claim: F.Claim
    scored: F.Scored
    scores: np.ndarray
    exact: tuple[int, int, int] | None
    verified: "Verified | None" = None


@dataclass(frozen=True)
class Verified:
    """The verifier's reading of one claim against its top candidates (for fitting and `--rows`)."""

    candidates: tuple[int, ...]  # pool indices, the ranker's top ones, in the ranker's order
    logits: tuple[float, ...]    # one per candidate, read alone
    cover: tuple[int, ...]       # the coverage set, read as one window
    cover_logit: float
    fused: tuple[float, ...]     # `features.SUPPORT_FEATURES` of the coverage set
    align: float                 # `alignment.aligned_recall` of the claim in the coverage set

    def features(self, candidates: int | None = None) -> np.ndarray:
        """`features.VERIFIER_FEATURES` for the support model (as if only the first `candidates` had been
        read alone, when given: the fit measures what fewer pairs would cost)."""
        best = max((*self.logits[:candidates], self.cover_logit))
        return np.array([*self.fused, best, self.cover_logit, self.align], dtype=np.float32)


class Attributor:
    """Ranks pool sentences for a claim and scores how well the best of them support it.

    `verifier`: a `Verifier` (default: the shipped one, loaded lazily on first
    use or by `prefetch`), or False to use the fused score alone.
    """

    def __init__(self, embedder: Any, calibration: Calibration | str | Path | dict | None = None,
                 verifier: Verifier | bool | None = None):
        self.embedder = embedder
        if calibration is None or isinstance(calibration, (str, Path)):
            calibration = Calibration.load(calibration)
        elif isinstance(calibration, dict):
            calibration = Calibration.from_json(calibration)
        self.calibration: Calibration = calibration
        vc = calibration.verifier
        if verifier is False or vc is None:
            self.verifier: Verifier | None = None
        elif isinstance(verifier, Verifier):
            self.verifier = verifier
        else:
            self.verifier = Verifier(int8=vc.int8, max_tokens=vc.max_tokens)
        # The support model reads the word-piece alignment beside the verifier; an embedder that gives
        # no word-piece vectors (a table of stored vectors) means the fused score alone, as without a verifier.
        self.aligner = TokenAligner(embedder) if hasattr(embedder, "token_vectors") else None
        if self.aligner is None and self.verifier is not None:
            # Said out loud: a wrapper that dropped the word pieces once hid the verifier from every window test.
            log.warning("the embedder %s gives no word-piece vectors: support uses the fused score alone",
                        type(embedder).__name__)

    @property
    def threshold(self) -> float:
        return self._vc.threshold if self._vc else self.calibration.threshold

    @property
    def _vc(self) -> VerifierCalibration | None:
        """The verifier's calibration when the verifier is in use and loadable."""
        if (self.verifier is None or self.verifier.error or self.calibration.verifier is None
                or self.aligner is None):
            return None
        return self.calibration.verifier

    @property
    def verifier_error(self) -> str | None:
        """Why support is estimated without the verifier (None when it is in use or was not asked for)."""
        return self.verifier.error if self.verifier is not None else None

    def prefetch(self) -> None:
        """Start loading the verifier in the background (the first answer then does not wait for it)."""
        if self.verifier is not None:
            self.verifier.prefetch()

    def embed_claim(self, claim: str) -> np.ndarray:
        """The claim's embedding as `attribute` expects it (markers stripped first). Blocking.

        With the verifier in use, the same pass of the model gives the claim's
        word pieces, which the alignment then reads without encoding it again.
        """
        text = strip_citations(claim)
        if self._vc is None or not hasattr(self.embedder, "encode_with_tokens"):
            return self.embedder.encode_one(text)
        vectors, pieces = self.embedder.encode_with_tokens([text])
        self.aligner.remember(text, *pieces[0])  # type: ignore[union-attr]
        return vectors[0]

    def prepare(self, pool: EvidencePool) -> None:
        """Encode the pool's word pieces for the alignment in one batch, before its claims arrive. Blocking."""
        if self._vc is not None and pool.n:
            self.aligner.prepare([s.text for s in pool.sentences])  # type: ignore[union-attr]

    def _run(self, claim: str, pool: EvidencePool, claim_embedding: np.ndarray | None) -> _Run:
        prepared = F.Claim.of(claim)
        q = claim_embedding if claim_embedding is not None else self.embed_claim(claim)
        q = np.asarray(q, dtype=np.float32)
        scored = F.sentence_features(prepared, pool, q)
        scores = self.calibration.rank.logit(scored.features) if pool.n else np.zeros(0, dtype=np.float32)
        scores = F.passage_boost(scores, pool, self.calibration.passage_weight)
        exact = None
        run = _Run(prepared, scored, scores, None)
        if pool.n:
            order = np.argsort(-scores, kind="stable")
            exact = F.near_exact(prepared, pool, order)
            if exact is not None:
                scores = scores.copy()
                scores[exact[0]] = scores.max() + EXACT_BONUS
                run = _Run(prepared, scored, scores, exact)
            elif self._vc is not None:
                run = self._verify(run, pool, order)
        return run

    def _verify(self, run: _Run, pool: EvidencePool, order: np.ndarray) -> _Run:
        """Score the top candidates and the coverage window with the verifier; re-order the candidates."""
        vc = self._vc
        assert vc is not None and self.verifier is not None
        top = [int(i) for i in order[:vc.candidates]]
        cover = sorted(self._cover(run), key=lambda i: (pool.chunk_index[i], pool.sentences[i].start))
        texts = [pool.sentences[i].text for i in top]
        window = " ".join(pool.sentences[i].text for i in cover)
        claim = claim_body(run.claim.text) or run.claim.text
        try:
            # The window is read on its own unless it is just the top candidate (already read).
            logits = self.verifier.score(claim, texts + ([window] if not top or cover != [top[0]] else []))
        except VerifierUnavailable:
            return run  # `verifier_error` says why; steps 1-4 stand
        singles = logits[:len(top)]
        cover_logit = float(logits[len(top)]) if len(logits) > len(top) else float(singles[0])
        fused = tuple(float(x) for x in F.support_features(run.scored, pool, run.scores, self._cover(run)))
        # The candidate set stays the ranker's; only its order changes, so a
        # sentence outside it can never jump ahead.
        new = run.scores[top] + vc.rank_weight * singles
        scores = run.scores.copy()
        scores[[top[k] for k in np.argsort(-new, kind="stable")]] = np.sort(run.scores[top])[::-1]
        align = self.aligner.recall(claim, [pool.sentences[i].text for i in cover])
        verified = Verified(tuple(top), tuple(float(x) for x in singles), tuple(cover), cover_logit, fused, align)
        return _Run(run.claim, run.scored, scores, None, verified)

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

    def verify(self, claim: str, pool: EvidencePool, claim_embedding: np.ndarray | None = None) -> Verified | None:
        """The verifier's inputs and logits for `claim` (None: near-exact quote, empty pool or no verifier)."""
        return self._run(claim, pool, claim_embedding).verified if pool.n else None

    def attribute(self, claim: str, pool: EvidencePool, claim_embedding: np.ndarray | None = None) -> Attribution:
        """The supporting span(s) for `claim`, its calibrated support, the supported flag and its kind.

        `claim_embedding` is the unit vector of the claim with citation markers
        stripped (`embed_claim`); when None it is computed here.
        """
        kind = claim_kind(claim)
        if pool.n == 0:
            return Attribution((), 0.0, False, kind)
        run = self._run(claim, pool, claim_embedding)
        if run.exact is not None:
            i, start, end = run.exact
            chunk = pool.sentences[i]
            text = chunk.text[start - chunk.start:end - chunk.start]
            return Attribution((SupportSpan(chunk.chunk_id, start, end, text, 1.0),), 1.0, True, kind)
        chosen = F.choose_spans(run.scored, run.scores, **self.calibration.spans)
        vc = self._vc if run.verified is not None else None
        if vc is not None:
            assert run.verified is not None
            support = float(vc.support.proba(run.verified.features()))
            threshold = vc.threshold
            alone_logit = dict(zip(run.verified.candidates, run.verified.logits))
            body = claim_body(run.claim.text) or run.claim.text
        else:
            model = self.calibration.support
            support = float(model.proba(F.support_features(run.scored, pool, run.scores, self._cover(run))))
            threshold = self.calibration.threshold
        spans = []
        for i in chosen:
            # A lone span carries the claim's support; a span in a union carries
            # what it would support on its own.
            if len(chosen) == 1:
                alone = support
            elif vc is not None and i in alone_logit:
                logit = alone_logit[i]
                alone = float(vc.support.proba(np.r_[
                    F.support_features(run.scored, pool, run.scores, [i]), logit, logit,
                    self.aligner.recall(body, [pool.sentences[i].text])].astype(np.float32)))
            else:  # not read alone by the verifier (it reads only the window): the fused reading of it
                alone = float(self.calibration.support.proba(
                    F.support_features(run.scored, pool, run.scores, [i])))
            s = pool.sentences[i]
            spans.append(SupportSpan(s.chunk_id, s.start, s.end, s.text, round(alone, 4)))
        return Attribution(tuple(spans), support, support >= threshold, kind)

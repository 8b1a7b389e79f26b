"""Features that fuse embedding similarity with lexical evidence.

Two levels, both cheap enough to run on every answer sentence as it closes:

- `sentence_features`: one row per pool sentence, used to *rank* candidate
  spans (MiniLM cosine, BM25 within the pool, IDF-weighted claim-word recall,
  the same with the neighbouring sentences as context, shared numbers and
  names, a number-mismatch flag, and how much of the sentence is about the
  claim). Pool-relative variants ("minus the pool's best") make the ranker
  indifferent to how on-topic the pool is as a whole.
- `support_features`: one row per claim, used by the calibrated support
  model: the best sentence's fused score and cosine, the share of claim words
  covered by the *union* of a coverage set (the best sentence plus up to three
  of the next fifteen that add claim words it misses: 62% of WiCE claims need
  two or more evidence sentences), the share found nowhere in the pool, and
  the claim's numbers and names left unmatched (negative evidence). These six
  were kept out of a dozen candidates by cross-validated AUROC on both dev sets
  (core/attribution/README.md); clause-level minima, margins and span counts
  added nothing out of sample. The coverage set is wider than the 1-3 spans
  that are highlighted: measuring coverage over the top of the ranking rather
  than over the highlight raised out-of-sample WiCE AUROC (supported vs
  partial+not 0.78 -> 0.81, vs not 0.91 -> 0.95).

Claim words are weighted by their BM25 idf in the pool for recall; shares are
unweighted, which transfers better between pools of 10 and 300 sentences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.attribution import text as T
from core.attribution.pool import EvidencePool, fold_with_offsets

SENTENCE_FEATURES = (
    "cos",            # MiniLM cosine of claim and sentence
    "cos_gap",        # cos minus the pool's best cos
    "bm25_rel",       # BM25 / the pool's best BM25
    "recall",         # idf-weighted share of claim words in the sentence
    "recall_gap",     # recall minus the pool's best recall
    "recall_ctx",     # recall of the sentence with its two neighbours
    "cos_ctx",        # best cosine of the two neighbours
    "numbers_hit",    # share of the claim's numbers in the sentence
    "numbers_clash",  # both have numbers and share none
    "names_hit",      # share of the claim's capitalised names in the sentence
    "focus",          # share of the sentence's words that are claim words
    "chunk_recall_gap",  # recall of the sentence's whole chunk minus the best chunk's
)

SUPPORT_FEATURES = (
    "top_score",       # the ranker's fused score of the best sentence
    "top_cos",         # its MiniLM cosine
    "union_share",     # share of claim words found in the coverage set
    "absent_share",    # share of claim words found nowhere in the pool
    "numbers_absent",  # share of the claim's numbers in no sentence of the coverage set
    "names_absent",    # share of the claim's capitalised names found nowhere in the pool
)

# Inputs of the verifier-based support model (`calibration.VerifierCalibration`): the
# fused model's own features, refitted together with the verifier's logits and the
# word-piece alignment of the claim with the coverage set (`alignment.py`).
VERIFIER_FEATURES = SUPPORT_FEATURES + (
    "verifier_best",   # the highest verifier logit over the candidates and the coverage window
    "verifier_cover",  # the verifier's logit for the coverage set read as one passage
    "align_recall",    # mean best cosine of the claim's content word pieces in the coverage set
)


@dataclass(frozen=True)
class Claim:
    """An answer sentence prepared for scoring (citation markers removed)."""

    text: str
    terms: tuple[str, ...]
    numbers: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, text: str) -> "Claim":
        clean = T.strip_citations(text)
        terms = tuple(dict.fromkeys(T.content_terms(clean)))
        names = frozenset(n for n in T.names(clean) if n in terms)
        return cls(clean, terms, frozenset(T.numbers(clean)), names)


@dataclass
class Scored:
    """Per-claim intermediate values shared by ranking, span choice and support."""

    claim: Claim
    features: np.ndarray      # (n, len(SENTENCE_FEATURES))
    cos: np.ndarray           # (n,)
    presence: np.ndarray      # (terms, n) bool: claim word k occurs in sentence i
    weights: np.ndarray       # (terms,) idf weight of each claim word
    number_sets: list         # the pool's number sets (shared, not copied)


def sentence_features(claim: Claim, pool: EvidencePool, q: np.ndarray) -> Scored:
    n = pool.n
    cos = pool.embeddings @ q if n else np.zeros(0, dtype=np.float32)
    k = len(claim.terms)
    presence = np.zeros((k, n + 1), dtype=bool)  # column n: padding for missing neighbours
    bm25 = np.zeros(n + 1, dtype=np.float32)
    weights = np.empty(k, dtype=np.float32)
    for j, t in enumerate(claim.terms):
        idf = pool.idf(t)
        weights[j] = idf
        hit = pool.postings.get(t)
        if hit is not None:
            presence[j, hit[0]] = True
            bm25[hit[0]] += idf * hit[1]
    total = float(weights.sum()) or 1.0
    own = presence[:, :n]
    recall = weights @ own / total if k else np.zeros(n, dtype=np.float32)
    ctx = own | presence[:, pool.prev] | presence[:, pool.next]
    recall_ctx = weights @ ctx / total if k else np.zeros(n, dtype=np.float32)
    cos_pad = np.append(cos, -1.0)
    cos_ctx = np.maximum(cos_pad[pool.prev], cos_pad[pool.next])
    cos_ctx = np.where(cos_ctx < -0.5, cos, cos_ctx)  # no neighbour: fall back to own

    numbers_hit = np.zeros(n, dtype=np.float32)
    numbers_clash = np.zeros(n, dtype=np.float32)
    if claim.numbers:
        for i in np.flatnonzero(pool.has_numbers):
            shared = len(claim.numbers & pool.numbers[i])
            numbers_hit[i] = shared / len(claim.numbers)
            numbers_clash[i] = 1.0 if shared == 0 else 0.0
    names_hit = np.zeros(n, dtype=np.float32)
    if claim.names:
        rows = [j for j, t in enumerate(claim.terms) if t in claim.names]
        names_hit = own[rows].mean(axis=0).astype(np.float32)
    sizes = np.array([len(s) for s in pool.term_sets], dtype=np.float32)
    focus = own.sum(axis=0) / np.maximum(sizes, 1.0)

    if pool.n_chunks > 1 and k:
        chunk_any = (own.astype(np.float32) @ pool.chunk_onehot) > 0  # (terms, chunks)
        chunk_recall = weights @ chunk_any / total
        chunk_gap = (chunk_recall - chunk_recall.max())[pool.chunk_index]
    else:
        chunk_gap = np.zeros(n, dtype=np.float32)

    best_bm25 = float(bm25[:n].max()) if n else 0.0
    feats = np.column_stack([
        cos,
        cos - (cos.max() if n else 0.0),
        bm25[:n] / best_bm25 if best_bm25 > 0 else np.zeros(n, dtype=np.float32),
        recall,
        recall - (recall.max() if n else 0.0),
        recall_ctx,
        cos_ctx,
        numbers_hit,
        numbers_clash,
        names_hit,
        focus,
        chunk_gap,
    ]).astype(np.float32)
    return Scored(claim, feats, cos, presence, weights, pool.numbers)


def passage_boost(scores: np.ndarray, pool: EvidencePool, weight: float) -> np.ndarray:
    """`scores` plus `weight` times (the sentence's chunk's passage score minus the best chunk's).

    A chunk's passage score is the mean of its two best sentence scores (its
    best alone when it has one sentence): a passage that states a claim
    usually has a second sentence about it, while a stray sentence that shares
    the claim's words rarely does. Pools of one chunk are left as they are.
    On ExpertQA passage choice this moved 2-fold accuracy 0.835 -> 0.843-0.845
    for weights 1-2 on both validation files (core/attribution/README.md).
    """
    if weight == 0.0 or pool.n_chunks < 2 or len(scores) == 0:
        return scores
    ci = pool.chunk_index
    order = np.lexsort((-scores, ci))           # by chunk, best sentence first
    c = ci[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    start = np.flatnonzero(first)
    second = np.minimum(start + 1, len(order) - 1)
    top1 = scores[order[start]]
    top2 = np.where(c[second] == c[start], scores[order[second]], top1)
    passage = np.empty(pool.n_chunks, dtype=np.float64)
    passage[c[start]] = (top1 + top2) / 2
    return scores + weight * (passage - passage.max())[ci]


def choose_spans(scored: Scored, scores: np.ndarray, max_spans: int = 3, candidates: int = 8,
                 min_gain: float = 0.1) -> list[int]:
    """Best sentence, then up to `max_spans - 1` more that cover claim words it misses.

    Greedy set cover over the `candidates` best-ranked sentences: the next span
    is the one adding the most idf mass of still-uncovered claim words, taken
    only if that adds at least `min_gain` of the claim's total mass (a sentence
    that adds one stray word is noise in the highlight, not support).
    """
    n = len(scores)
    if n == 0:
        return []
    order = np.argsort(-scores, kind="stable")[:candidates]
    chosen = [int(order[0])]
    k = len(scored.weights)
    if k == 0:
        return chosen
    total = float(scored.weights.sum()) or 1.0
    covered = scored.presence[:, chosen[0]].copy()
    while len(chosen) < max_spans:
        rest = [int(i) for i in order if int(i) not in chosen]
        if not rest:
            break
        new = scored.presence[:, rest] & ~covered[:, None]
        gains = scored.weights @ new / total
        j = int(np.argmax(gains))
        if gains[j] < min_gain:
            break
        chosen.append(rest[j])
        covered |= scored.presence[:, rest[j]]
    return chosen


def support_features(scored: Scored, pool: EvidencePool, scores: np.ndarray, chosen: list[int]) -> np.ndarray:
    """`SUPPORT_FEATURES` of the claim given its coverage set (`choose_spans` output, best first)."""
    claim = scored.claim
    if not chosen or pool.n == 0:
        return np.array([0.0, 0.0, 0.0, 1.0, float(bool(claim.numbers)), float(bool(claim.names))],
                        dtype=np.float32)
    top = chosen[0]
    own = scored.presence[:, :pool.n]
    k = len(claim.terms)
    union_share = float(own[:, chosen].any(axis=1).mean()) if k else 0.0
    absent_share = float((~own.any(axis=1)).mean()) if k else 0.0
    if claim.numbers:
        have = set().union(*(scored.number_sets[i] for i in chosen))
        numbers_absent = len(claim.numbers - have) / len(claim.numbers)
    else:
        numbers_absent = 0.0
    if claim.names:
        rows = [j for j, t in enumerate(claim.terms) if t in claim.names]
        names_absent = float((~own[rows].any(axis=1)).mean())
    else:
        names_absent = 0.0
    return np.array([scores[top], scored.cos[top], union_share, absent_share, numbers_absent, names_absent],
                    dtype=np.float32)


def near_exact(claim: Claim, pool: EvidencePool, order: np.ndarray, top: int = 5) -> tuple[int, int, int] | None:
    """(sentence index, start, end) when the claim appears almost verbatim in a top sentence.

    "Almost" means: after folding case, punctuation and spacing, the claim is a
    substring of the sentence, or the sentence is a substring of the claim and
    makes up at least 90% of it. Start/end are offsets into the chunk.
    """
    folded, _ = fold_with_offsets(claim.text)
    if len(folded) < 12:  # "Yes." matches everywhere; too short to count as a quote
        return None
    for i in order[:top]:
        i = int(i)
        sent, where = pool.folded(i)
        if not sent:
            continue
        s = pool.sentences[i]
        at = sent.find(folded)
        if at >= 0:
            start = s.start + where[at]
            end = s.start + where[at + len(folded) - 1] + 1
            # A quote that runs to the sentence's last word keeps its closing
            # punctuation ("...in Paris." not "...in Paris"); same at the start.
            if at + len(folded) == len(sent):
                end = s.end
            if at == 0:
                start = s.start
            return i, start, end
        if sent in folded and len(sent) >= 0.9 * len(folded):
            return i, s.start, s.end
    return None

"""Hand-made attribution cases with the real bundled embedder and the shipped calibration."""
from __future__ import annotations


import numpy as np
import pytest

from attribution_cases import CHUNKS
from core.attribution import Attribution, Attributor, Calibration, EvidencePool, SourceSentence


def attribute(attributor: Attributor, pool: EvidencePool, claim: str) -> Attribution:
    return attributor.attribute(claim, pool, attributor.embed_claim(claim))


def assert_spans_index_their_chunks(result: Attribution) -> None:
    for span in result.spans:
        assert CHUNKS[span.chunk_id][span.start:span.end] == span.text
        assert 0.0 <= span.score <= 1.0


def test_exact_quote_has_full_confidence_and_exact_offsets(attributor, pool):
    claim = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."
    result = attribute(attributor, pool, claim)
    assert result.support == 1.0 and result.supported
    (span,) = result.spans
    assert (span.chunk_id, span.start, span.end) == ("tower#0", 0, len(claim))
    assert span.score == 1.0
    assert_spans_index_their_chunks(result)


def test_quote_of_part_of_a_sentence_highlights_just_that_part(attributor, pool):
    result = attribute(attributor, pool, "Indexing runs entirely on your computer")
    (span,) = result.spans
    text = CHUNKS["guide#0"]
    assert (span.chunk_id, span.start, span.end) == ("guide#0", text.index("Indexing"),
                                                     text.index("Indexing") + len("Indexing runs entirely on your computer"))
    assert result.support == 1.0


def test_quote_ignores_case_spacing_and_punctuation(attributor, pool):
    result = attribute(attributor, pool, "arabica beans contain less caffeine than robusta beans")
    assert result.support == 1.0
    assert result.spans[0].text == "Arabica beans contain less caffeine than robusta beans."


def test_paraphrase_is_supported_by_the_right_span(attributor, pool):
    result = attribute(attributor, pool, "No document leaves your machine because indexing happens locally.")
    assert result.supported
    assert 0.5 < result.support < 1.0  # not a quote: never full confidence
    assert result.spans[0].chunk_id == "guide#0"
    assert result.spans[0].text.startswith("Indexing runs entirely on your computer")
    assert_spans_index_their_chunks(result)


def test_number_mismatch_lowers_support(attributor, pool):
    right = attribute(attributor, pool, "The Eiffel Tower was finished in 1889 for the Paris World's Fair.")
    wrong = attribute(attributor, pool, "The Eiffel Tower was finished in 1899 for the Paris World's Fair.")
    assert right.supported
    assert wrong.spans[0].text.startswith("The Eiffel Tower was completed in 1889")
    assert wrong.support < right.support - 0.1


def test_number_mismatch_is_never_taken_as_a_quote(attributor, pool):
    result = attribute(attributor, pool, "The Eiffel Tower was completed in 1899 for the World's Fair in Paris.")
    assert result.support < 1.0


def test_two_sentence_support_returns_two_spans(attributor, pool):
    result = attribute(attributor, pool, "The Eiffel Tower, completed in 1889, is 330 metres tall.")
    assert result.supported
    texts = [s.text for s in result.spans]
    assert len(texts) >= 2
    assert any(t.startswith("The Eiffel Tower was completed in 1889") for t in texts[:2])
    assert any(t.startswith("It is 330 metres tall") for t in texts[:2])
    assert_spans_index_their_chunks(result)


def test_union_supports_better_than_the_second_span_alone(attributor, pool):
    result = attribute(attributor, pool, "The Eiffel Tower, completed in 1889, is 330 metres tall.")
    assert result.support >= max(s.score for s in result.spans[1:])


def test_unsupported_claims_are_flagged(attributor, pool):
    for claim in ("Bananas are the most popular fruit in Germany.",
                  "The tower is painted bright green every spring by volunteers."):
        result = attribute(attributor, pool, claim)
        assert not result.supported, claim
        assert result.support < attributor.threshold
        assert result.spans  # still points at the closest candidate


def test_citation_markers_do_not_change_scoring(attributor, pool):
    plain = "Sourcelight was released in 2021 by four engineers."
    marked = "Sourcelight was released in 2021 by four engineers [1][2]."
    a = attribute(attributor, pool, plain)
    b = attribute(attributor, pool, marked)
    assert a == b
    # Even when the caller embeds the marked text, the lexical side ignores the marker:
    np.testing.assert_allclose(attributor.rank(marked, pool, attributor.embed_claim(plain)),
                               attributor.rank(plain, pool, attributor.embed_claim(plain)))


def test_rank_and_attribute_agree(attributor, pool):
    claim = "Arabica has less caffeine than robusta."
    q = attributor.embed_claim(claim)
    scores = attributor.rank(claim, pool, q)
    assert scores.shape == (len(pool),)
    top = pool.sentences[int(np.argmax(scores))]
    assert attributor.attribute(claim, pool, q).spans[0].start == top.start
    assert attributor.attribute(claim, pool, q).spans[0].chunk_id == top.chunk_id


def test_claim_embedding_is_optional(attributor, pool):
    claim = "Roasting develops the aroma of coffee beans."
    assert attributor.attribute(claim, pool) == attributor.attribute(claim, pool, attributor.embed_claim(claim))


def test_empty_pool(attributor):
    empty = EvidencePool.build([], np.zeros((0, 384), dtype=np.float32))
    assert attributor.attribute("Anything at all.", empty) == Attribution((), 0.0, False)
    assert attributor.rank("Anything at all.", empty).shape == (0,)


def test_pool_rejects_mismatched_embeddings():
    with pytest.raises(ValueError):
        EvidencePool.build([SourceSentence("c", 0, 3, "abc")], np.zeros((2, 384), dtype=np.float32))


def test_default_calibration_is_shipped_and_sane():
    cal = Calibration.load()
    assert 0.0 < cal.threshold < 1.0
    assert cal.meta["figures"]["in_sample"]["support"]["wice_supported_vs_not"] > 0.85


def test_attribute_costs_no_embedding_and_a_bounded_number_of_verifier_reads(attributor, pool):
    # The cost goal lives in `sourcelight bench attribution` (tests never time);
    # this guards what makes it: with the claim embedded, attributing it embeds
    # nothing more, and the verifier reads at most its candidates plus one window.
    claim = "The tower in Paris was finished in 1889 for the World's Fair."
    q = attributor.embed_claim(claim)
    calls = {"encode": 0, "pairs": 0}
    real_encode, verifier = attributor.embedder.encode, attributor.verifier
    real_score = verifier.score

    def encode(texts, *a, **k):
        calls["encode"] += 1
        return real_encode(texts, *a, **k)

    def score(c, evidence):
        calls["pairs"] += len(evidence)
        return real_score(c, evidence)
    attributor.embedder.encode, verifier.score = encode, score
    try:
        attributor.attribute(claim, pool, q)
    finally:
        attributor.embedder.encode, verifier.score = real_encode, real_score
    assert calls["encode"] == 0
    assert 1 <= calls["pairs"] <= attributor.calibration.verifier.candidates + 1


def _two_chunk_pool() -> EvidencePool:
    # Chunk "a": one strong sentence and a weak one; chunk "b": two good ones.
    sents = [SourceSentence(c, i * 10, i * 10 + 9, f"sentence {c}{i}") for c, i in
             (("a", 0), ("a", 1), ("b", 0), ("b", 1))]
    return EvidencePool.build(sents, np.zeros((4, 384), dtype=np.float32))


def test_passage_boost_prefers_a_passage_with_two_good_sentences():
    from core.attribution.features import passage_boost

    pool = _two_chunk_pool()
    scores = np.array([5.0, 0.0, 4.5, 4.0])
    assert int(np.argmax(passage_boost(scores, pool, 0.0))) == 0      # weight 0: untouched
    boosted = passage_boost(scores, pool, 1.0)                         # a: 2.5, b: 4.25
    assert int(np.argmax(boosted)) == 2
    assert boosted[2] == scores[2] and boosted[3] == scores[3]         # the best passage keeps its scores
    assert np.allclose(boosted[:2], scores[:2] - 1.75)


def test_passage_boost_leaves_one_chunk_pools_alone():
    from core.attribution.features import passage_boost

    sents = [SourceSentence("only", i * 10, i * 10 + 9, f"sentence {i}") for i in range(3)]
    pool = EvidencePool.build(sents, np.zeros((3, 384), dtype=np.float32))
    scores = np.array([1.0, 3.0, 2.0])
    assert passage_boost(scores, pool, 2.0) is scores


def test_calibration_round_trips_cover_and_passage_weight():
    cal = Calibration.load()
    again = Calibration.from_json(cal.to_json())
    assert again.cover == cal.cover and again.passage_weight == cal.passage_weight
    assert cal.cover and cal.passage_weight >= 0.0
    # Older files without the new keys still load (coverage = the spans, no passage term).
    old = {k: v for k, v in cal.to_json().items() if k not in ("cover", "passage_weight")}
    legacy = Calibration.from_json(old)
    assert legacy.cover == {} and legacy.passage_weight == 0.0

"""The claim-to-evidence word-piece alignment: paraphrase counts as matched, a fact the evidence lacks does not.

It runs on the real bundled embedder (`embedder`, tests/conftest.py). The
cases are what a reader would judge at a glance: the same fact in other words
must align better than the same words about something else, and a claim that
adds a fact must align worse than the faithful one.
"""
from __future__ import annotations

import pytest

from core.attribution.alignment import TokenAligner, is_content_piece

EVIDENCE = ["This autumn the school welcomed 400 9th-grade students, its largest intake so far."]


@pytest.fixture()
def aligner(embedder):
    return TokenAligner(embedder)


def test_a_paraphrase_aligns_far_better_than_an_unrelated_sentence(aligner):
    paraphrase = aligner.recall("The school admitted 400 freshmen.", EVIDENCE)
    unrelated = aligner.recall("The school admitted 400 freshmen.", ["Paris was sunny and warm on Tuesday."])
    assert paraphrase > unrelated + 0.3


def test_an_added_fact_lowers_the_alignment(aligner):
    faithful = aligner.recall("The school took in 400 ninth graders this autumn.", EVIDENCE)
    added = aligner.recall("The school took in 400 ninth graders this autumn and hired twelve new chemistry "
                           "teachers from Norway.", EVIDENCE)
    assert faithful > added + 0.05


def test_evidence_read_in_pieces_aligns_like_the_whole(aligner):
    claim = "The school welcomed 400 students, its largest intake."
    whole = aligner.recall(claim, EVIDENCE)
    split = aligner.recall(claim, ["This autumn the school welcomed 400 9th-grade students.",
                                   "It was its largest intake so far."])
    assert abs(whole - split) < 0.1
    assert aligner.recall(claim, []) == 0.0


def test_only_words_that_carry_meaning_are_counted():
    assert [p for p in ["[CLS]", "the", "school", ",", "##men", "400", "[SEP]"] if is_content_piece(p)] == \
        ["school", "##men", "400"]


def test_sentences_read_once_are_not_encoded_again(embedder):
    calls = []

    class Counting:
        def token_vectors(self, texts):
            calls.append(list(texts))
            return embedder.token_vectors(texts)

    aligner = TokenAligner(Counting())
    first = aligner.recall("The school admitted 400 freshmen.", EVIDENCE)
    again = aligner.recall("It was the largest intake.", EVIDENCE)
    assert calls[1] == ["It was the largest intake."]  # the evidence came from the cache
    assert first == aligner.recall("The school admitted 400 freshmen.", EVIDENCE) and 0 < again <= 1

"""The support verifier as shipped: hand-made cases it must get right, and the fallback when it is gone.

The cases use the hand-written chunks of `attribution_cases` (no benchmark
text). Each asserts what the reader sees: the flag on the sentence, and the
span the click would light.
"""
from __future__ import annotations

import shutil

import pytest

from core.attribution import Attributor
from core.attribution.verifier import Verifier, default_dir


@pytest.fixture(scope="module")
def shipped(embedder):
    attributor = Attributor(embedder)
    assert attributor.verifier is not None, "the shipped calibration has no verifier section"
    attributor.verifier.load()
    return attributor


def _verdict(attributor, pool, claim):
    return attributor.attribute(claim, pool)


def test_an_exact_quote_is_supported_with_its_span(shipped, pool):
    a = _verdict(shipped, pool, "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.")
    assert a.supported and not a.flagged
    assert a.spans[0].chunk_id == "tower#0" and a.spans[0].text.startswith("The Eiffel Tower was completed")


def test_a_paraphrase_is_supported(shipped, pool):
    a = _verdict(shipped, pool, "Documents are indexed locally, so none of them leaves your machine.")
    assert a.supported, a
    assert a.spans[0].chunk_id == "guide#0" and "entirely on your computer" in a.spans[0].text


def test_a_swapped_number_is_flagged(shipped, pool):
    a = _verdict(shipped, pool, "The Eiffel Tower was completed in 1925 for the World's Fair in Paris.")
    assert a.flagged, a
    assert a.spans[0].text.startswith("The Eiffel Tower was completed in 1889")  # where to check it


# The two cases below are pinned at the verifier, not at the flag: the shipped
# support model still leans on word overlap, which a negation or a swapped name
# barely changes, and it passes both sentences (core/attribution/README.md).
def test_the_verifier_reads_a_negation_as_unsupported(shipped):
    evidence = ["Indexing runs entirely on your computer, so no document ever leaves it."]
    assert shipped.verifier.score("Indexing does not run on your computer, so documents leave it.", evidence)[0] < 0
    assert shipped.verifier.score(evidence[0], evidence)[0] > 0


def test_the_verifier_scores_a_swapped_name_below_the_right_one(shipped):
    evidence = ["Gustave Eiffel's engineering company designed and built the tower."]
    right = shipped.verifier.score("Gustave Eiffel's company designed and built the tower.", evidence)[0]
    swapped = shipped.verifier.score("Gustave Flaubert's company designed and built the tower.", evidence)[0]
    assert swapped < right


def test_an_added_fact_makes_the_sentence_only_partly_supported(shipped, pool):
    a = _verdict(shipped, pool, "The Eiffel Tower is 330 metres tall and is painted gold every seven years.")
    assert a.flagged, a
    assert a.spans and a.spans[0].chunk_id == "tower#0"  # the part that is supported is still shown


def test_two_sentences_together_support_a_claim(shipped, pool):
    a = _verdict(shipped, pool, "The first version of Sourcelight came out in March 2021 and it indexes "
                                "PDF and Word files.")
    assert a.supported, a
    assert {s.chunk_id for s in a.spans} == {"guide#0"}
    assert len(a.spans) >= 2  # both sentences are lit


def test_a_meta_sentence_is_not_a_claim_and_never_flagged(shipped, pool):
    a = _verdict(shipped, pool, "Based on the provided passages, here is what I found:")
    assert a.kind == "not_a_claim" and not a.flagged


def _copy(tmp_path):
    target = tmp_path / "verifier"
    shutil.copytree(default_dir(), target)
    return target


def test_missing_weights_fall_back_to_the_fused_score_with_a_clear_message(embedder, pool, tmp_path):
    folder = _copy(tmp_path)
    (folder / "model.safetensors").unlink()
    attributor = Attributor(embedder, verifier=Verifier(folder))
    a = attributor.attribute("The Eiffel Tower was built in 1889 for the World's Fair.", pool)
    assert a.spans[0].chunk_id == "tower#0"  # still attributed, by the fused score
    assert attributor.verifier_error and "missing" in attributor.verifier_error
    assert "Reinstall" in attributor.verifier_error
    assert attributor.threshold == attributor.calibration.threshold  # the fused model's own threshold


def test_damaged_weights_fall_back_too(embedder, pool, tmp_path):
    folder = _copy(tmp_path)
    (folder / "model.safetensors").write_bytes(b"\0not a safetensors file" * 100)
    attributor = Attributor(embedder, verifier=Verifier(folder))
    a = attributor.attribute("Robusta beans have more caffeine in them than arabica beans do.", pool)
    assert a.spans and a.spans[0].chunk_id == "coffee#0"
    assert attributor.verifier_error and "could not be loaded" in attributor.verifier_error


def test_prefetch_loads_in_the_background_and_scores_match(embedder, pool, shipped):
    v = Verifier()
    v.prefetch()
    v.wait()
    assert v.available
    claim, evidence = "Arabica has less caffeine.", ["Arabica beans contain less caffeine than robusta beans."]
    assert v.score(claim, evidence)[0] == pytest.approx(shipped.verifier.score(claim, evidence)[0], abs=1e-4)


def test_a_score_does_not_depend_on_what_else_is_read_with_it(shipped):
    # Short candidates and the long coverage window are batched by length; a
    # sentence's support must not move because a longer window came along.
    claim = "The Eiffel Tower was completed in 1889."
    short = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."
    window = " ".join([short, "Gustave Eiffel's engineering company designed and built the tower."] * 3)
    together = shipped.verifier.score(claim, [short, "Paris is in France.", window])
    shipped.verifier.clear_cache()
    alone = [shipped.verifier.score(claim, [t])[0] for t in (short, "Paris is in France.", window)]
    assert together == pytest.approx(alone, abs=1e-4)

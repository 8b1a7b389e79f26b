"""Which answer sentences are claims: sentences that assert nothing are never flagged."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.attribution.claims import CLAIM, NOT_A_CLAIM, claim_body, claim_kind
from core.eval import claim_kinds

LABELLED = Path(__file__).resolve().parents[1] / "data" / "claim_kinds.jsonl"


@pytest.mark.parametrize("text", [
    "Based on the provided passages, here is what I found:",
    "I could not find this in the documents.",
    "The documents do not mention the price.",
    "Here is a summary:",
    "To add a file, follow these steps:",
    "What is Sourcelight?",
    "## Installation",
    "Key points",
    "Sure!",
    "I hope this helps.",
    "Let me know if you have any other questions.",
    "Unfortunately, the warranty terms are not mentioned in the passages.",
    "There is no information about pricing in the context.",
    "[2]",
    "The recycling process is not fully detailed in the provided passages.",
    "sudo apt install poppler-utils && sourcelight add ~/papers",
    "```bash# srb -c /path/to/.",
    "There are several effective ways to cater for students of different abilities in a class.",
    "However, there are a few possible scenarios that could have unfolded[2].",
    "The document itself is",
    # However long, a sentence that hands over to a list ("including:", "the following strategies:") is a lead-in.
    "In order to encourage densification of a city where regulations restrict construction of new buildings "
    "outside city limits, the government can implement a variety of measures, including:\n\n1[1].",
])
def test_sentences_that_claim_nothing_are_not_claims(text):
    assert claim_kind(text) == NOT_A_CLAIM


@pytest.mark.parametrize("text", [
    "Sourcelight indexes PDF, Markdown, HTML and Word files.",
    "Based on the provided passages, the tower is 330 metres tall [1].",
    "According to the documents, the warranty lasts two years.",
    "In summary, indexing runs entirely on your computer.",
    "- **Local**: no document ever leaves your computer.",
    "No, arabica beans contain less caffeine than robusta beans.",
    "Here, N is the yarn count and W the weight of the sample.",
    "Here is a summary: - Overfishing is a major threat to the world's oceans and its fisheries.",
    "Run pip install sourcelight to install it.",
    "Use the --api assistants option to choose the Assistants API.",
    "The price rose from $3 to $5 in 2020 (see table 2).",
    "The file lives at /usr/share/doc and anyone can read it.",
    # A statement that ends in a colon is still a statement; only a short pointer is a lead-in.
    "You will see two options for languages - one is set in your default settings to English; another option "
    "allows you to switch between multiple language versions:",
    # Cut off by the token limit after it had said something.
    "The feature is called Soule in HTML, but it was renamed by the team at Sintel after they decided to use an",
    "There are several reasons why the 2008 crisis hit Iceland hardest, chief among them its banks' foreign debts.",
])
def test_sentences_that_assert_something_are_claims(text):
    assert claim_kind(text) == CLAIM


def test_a_meta_opening_is_dropped_from_what_is_checked():
    assert claim_body("Based on the provided documents, the tower is 330 metres tall.") == "The tower is 330 metres tall."
    assert claim_body("According to the sources [2], coffee grows best at altitude.") == "Coffee grows best at altitude."


def test_the_labelled_set_is_large_enough_and_well_formed():
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 200
    assert {r["kind"] for r in rows} == {CLAIM, NOT_A_CLAIM}
    assert all(r["text"].strip() and r["source"] for r in rows)


def test_the_claim_kind_report_prints_precision_and_recall(capsys):
    assert claim_kinds.main([str(LABELLED)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["all"]["n"] >= 200 and out["all"]["precision"] is not None and out["all"]["recall"] is not None

"""Citation markers and the light text normalisation behind the lexical evidence."""
from __future__ import annotations

import pytest

from core.attribution import parse_citations, strip_citations
from core.attribution.pool import fold_with_offsets
from core.attribution.text import content_terms, names, numbers, stem


@pytest.mark.parametrize("text, cited", [
    ("Paris is the capital [2].", (2,)),
    ("Paris is the capital [1, 3].", (1, 3)),
    ("Paris is the capital [1][2].", (1, 2)),
    ("Paris [3] is the capital [1] of France [3].", (3, 1)),
    ("See sources [2-4].", (2, 3, 4)),
    ("Paris is the capital【2】.", (2,)),
    ("Paris is the capital [a].", ()),
    ("See [the guide](https://example.com/2) for details.", ()),
    ("A [citation needed] and a link [1](http://x).", ()),
    ("Plain sentence without markers.", ()),
    ("Edge [ 7 ] spacing.", (7,)),
])
def test_parse_citations(text, cited):
    assert parse_citations(text) == cited


@pytest.mark.parametrize("text, clean", [
    ("Paris is the capital [2].", "Paris is the capital."),
    ("Paris [1, 3] is the capital.", "Paris is the capital."),
    ("Paris is the capital [1][2]", "Paris is the capital"),
    ("Keep [a] and [links](http://x).", "Keep [a] and [links](http://x)."),
])
def test_strip_citations(text, clean):
    assert strip_citations(text) == clean


def test_stemming_merges_inflections_only():
    assert stem("founded") == stem("founding") == stem("founder") == stem("founders")
    assert stem("studies") == stem("studied")
    assert stem("organised") == stem("organized")
    assert stem("news") == "news"
    assert stem("national") != stem("nation")


def test_content_terms_drop_function_words():
    assert content_terms("The towers are in the city of Paris.") == [stem("tower"), "city", "paris"]


def test_numbers_are_canonical():
    assert numbers("In 1991, 5,669 incidents cost 12.50 dollars; twelve people") == {"1991", "5669", "12.5", "12"}
    assert numbers("one of the best") == set()


def test_names_skip_sentence_starts():
    assert names("The museum in Oceanside hosted Kingsmen fans.") == {"oceansid", "kingsmen"}


def test_fold_keeps_offsets():
    text = "  Hello,  World's  END!"
    folded, where = fold_with_offsets(text)
    assert folded == "hello world s end"
    assert [text[i] for i in where if text[i].isalnum()] == [c for c in text if c.isalnum()]

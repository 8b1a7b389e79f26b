"""Issue 18 on real documents: sentences, not wrapped lines; clean text; honest warnings.

Every test reads files of the committed corpus (tests/core/data/documents,
provenance in its README) through the product's own extraction and
segmentation, and checks what a user would see: a highlighted claim that is a
whole sentence, a word that is found whatever its ligatures or line-end
hyphen, a warning that names the pages a scan left without text.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from core.ingest.documents import IngestError, extract
from core.eval.documents_quality import CORPUS, QUESTIONS, load_questions, unit_kind
from core.ingest.segment import MAX_SENTENCE, Stopped, iter_sentences, readable, split_sentences

LIGATURES = "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
PAGEVIEW = Path(__file__).parent / "data" / "pageview" / "files"


def _sentences(relative: str) -> list[tuple[str, str]]:
    """(stored text, readable text) of every sentence of a corpus file, offsets checked on the way."""
    doc = extract(CORPUS / relative)
    out = []
    for page in doc.pages:
        for span in split_sentences(page.text):
            assert page.text[span.start:span.end] == span.text
            out.append((span.text, readable(span.text)))
    return out


@pytest.fixture(scope="module")
def ownership() -> list[tuple[str, str]]:
    return _sentences("md/ch04-01-what-is-ownership.md")


def test_markdown_lines_wrapped_inside_a_sentence_are_one_sentence(ownership):
    readable_texts = [r for _, r in ownership]
    whole = ("Rust uses a third approach: Memory is managed through a system of ownership with a set of "
             "rules that the compiler checks.")
    assert whole in readable_texts
    stored = next(s for s, r in ownership if r == whole)
    assert "\n" in stored  # the span runs across the line break in the file, offsets and all
    # Before issue 18 the file's line breaks cut this into "If" and "any of the rules ...".
    assert "If any of the rules are violated, the program won\u2019t compile." in readable_texts
    assert "If" not in readable_texts


def test_markdown_headings_and_list_items_stay_their_own_units(ownership):
    stored = [s for s, _ in ownership]
    assert "## What Is Ownership?" in stored
    assert "- Each value in Rust has an _owner_." in stored
    assert "- There can only be one owner at a time." in stored


def test_pdf_wrapped_lines_are_joined_and_line_end_hyphens_repaired():
    sentences = _sentences("pdf/026-latex-multicolumn_multicolumn.pdf")
    readable_texts = [r for _, r in sentences]
    # "adip-\niscing" and "con-\nsectetuer" are split across lines of a two-column page.
    assert "Lorem ipsum dolor sit amet, consectetuer adipiscing elit." in readable_texts
    assert any("nonummy eget, consectetuer id, vulputate a, magna." in r for r in readable_texts)
    assert not any("adip- iscing" in r or "adip-iscing" in r for r in readable_texts)


def test_pdf_list_items_and_labels_are_not_glued_to_the_next_paragraph():
    readable_texts = [r for _, r in _sentences("pdf/contrib_pr-00530-ml-lines.pdf")]
    assert "\u2022 Fax: 202\u2013493\u20132251." in readable_texts
    assert "AGENCY: Federal Aviation Administration (FAA), DOT." in readable_texts
    assert "DATES: The FAA must receive comments on this proposed AD by September 21, 2020." in readable_texts


def test_hard_wrapped_plain_text_and_html_read_as_sentences():
    intro = [r for _, r in _sentences("txt/rust-book-introduction.txt")]
    assert any(r.startswith("Rust is for people who crave speed and stability in a language.") for r in intro)
    match = [r for _, r in _sentences("html/rust-book-ch06-02-match.html")]
    assert any("compare a value against a series of patterns and then execute code based on which pattern "
               "matches." in r for r in match)


def test_verse_speakers_are_units_and_sentences_run_across_verse_lines():
    readable_texts = [r for _, r in _sentences("txt/tinyshakespeare-coriolanus-act1.txt")]
    assert "MENENIUS:" in readable_texts
    assert any(r.startswith("There was a time when all the body's members Rebell'd against the belly")
               for r in readable_texts)


@pytest.mark.parametrize("relative", ["md/ch09-02-recoverable-errors-with-result.md", "md/ch16-01-threads.md",
                                      "txt/rust-book-introduction.txt", "html/rust-book-ch13-01-closures.html"])
def test_most_units_are_sentences_headings_or_list_items(relative):
    """The issue's figure: 61% of Markdown sentences ended without punctuation before."""
    sentences = _sentences(relative)
    code_free = [s for s, _ in sentences if not s.startswith(("let ", "fn ", "use ", "}", "{{#", "$ ", "<"))]
    clean = sum(unit_kind(s) != "other" for s in code_free)
    assert clean >= 0.85 * len(code_free)
    assert max(len(s) for s, _ in sentences) <= MAX_SENTENCE


def test_ligatures_become_letters_in_the_stored_text():
    text = extract(CORPUS / "pdf/crazyones.pdf").text
    assert not any(ch in text for ch in LIGATURES)
    assert "The ones who see things differently." in text  # "di\ufb00erently" in the PDF's own text


def test_a_pdf_whose_later_pages_are_scans_says_which_pages_have_no_text():
    doc = extract(CORPUS / "pdf/text-then-scanned-pages.pdf")
    assert [p.page for p in doc.pages] == [1, 2, 3, 4]
    assert len(doc.warnings) == 1
    assert doc.warnings[0].startswith("Pages 5-7 (of 7) have no text, only images (scanned?)")
    assert "OCR" in doc.warnings[0]


def test_a_japanese_pdf_pypdf_read_as_mojibake_now_reads_as_japanese_without_a_warning():
    # pypdf gave mojibake here (flagged "looks garbled"); pdfium reads the poem's characters.
    doc = extract(CORPUS / "pdf/jo.pdf")
    assert "\u307f\u3093\u306a\u306e\u304a\u306e\u304a\u306e" in doc.text  # みんなのおのおの
    assert "\u5b87\u5b99\u5875\u3092\u305f\u3079" in doc.text  # 宇宙塵をたべ
    assert doc.warnings == ()


def test_formula_pages_whose_glyphs_have_no_usable_text_are_flagged_as_garbled():
    # The 117-page textbook's big brackets come out as private-use characters, and some formulas
    # as one letter per line: those pages (and only a few) are said to look garbled.
    doc = extract(PAGEVIEW / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf")
    garbled = [w for w in doc.warnings if "looks garbled" in w]
    assert any("unreadable characters" in w and "15" in w.split(" (of")[0] for w in garbled), garbled
    assert all(w.startswith("Page") for w in garbled)
    assert len(doc.pages) == 117


def test_pdfs_pypdf_called_damaged_are_read():
    # Hand-written minimal PDFs that poppler and pdfium read (their cross-reference table is off).
    assert "Hello World" in extract(CORPUS / "pdf/simple1.pdf").text
    simple3 = extract(CORPUS / "pdf/simple3.pdf")
    assert "Hello" in simple3.text and "World" in simple3.text
    assert "Hello world" in extract(CORPUS / "pdf/contrib_issue-1113-evil-xobjects.pdf").text


def test_a_pdf_whose_owner_password_is_empty_opens_and_one_needing_a_password_is_refused():
    # pypdf and poppler open it with the empty owner password; pdfium alone asks for the user one.
    assert "pdf encryption test" in extract(CORPUS / "pdf/encryption_r6-user-password.pdf").text
    with pytest.raises(IngestError) as info:
        extract(CORPUS / "pdf/crazyones-encrypted-256.pdf")
    assert "password-protected" in info.value.message


def test_stored_pdf_text_has_no_ligatures_line_end_markers_or_carriage_returns():
    # pdfium ends lines with "\r\n" and marks a hyphen at a line end as U+0002/U+FFFE; the stored
    # text (what offsets, highlights and the segmenter index into) has none of them.
    read = 0
    for path in sorted((CORPUS / "pdf").glob("*.pdf")):
        try:
            doc = extract(path)
        except IngestError:
            continue
        read += 1
        for page in doc.pages:
            assert not any(ch in page.text for ch in LIGATURES + "\r\x02\ufffe\x00"), path.name
            assert page.char_index is not None and len(page.char_index) == len(page.text), path.name
    assert read == 25  # of the 27 PDFs: one needs a password, one is a scan without text


def test_line_end_hyphens_pdfium_joins_are_stored_as_a_hyphen_and_a_line_break():
    doc = extract(CORPUS / "pdf/contrib_issue-1061-colour-space-stack.pdf")
    first = doc.pages[0].text
    assert "the dif-\nferentially private results" in first  # pdfium: "dif\x02ferentially", one line
    assert "the differentially private results" in readable(first)


def test_words_pypdf_glued_together_are_apart():
    # pypdf read "ModelName" (GeoBase, page 18) and "heißtzusammenhängend", "nichtleerenTeilmengen"
    # (the textbook); pdfium places spaces from the glyph positions, as poppler does.
    geobase = extract(CORPUS / "pdf/GeoBase_NHNC1_Data_Model_UML_EN.pdf").text
    assert "Model Name" in geobase and "ModelName" not in geobase
    textbook = extract(PAGEVIEW / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf").text
    assert "hei\u00dft zusammenh\u00e4ngend" in textbook and "hei\u00dftzusammenh\u00e4ngend" not in textbook
    assert "nichtleeren Teilmengen" in textbook and "nichtleerenTeilmengen" not in textbook


@pytest.mark.parametrize("relative", ["pdf/crazyones.pdf", "pdf/contrib_issue-625-identity-cmap.pdf",
                                      "pdf/multilang.pdf", "pdf/015-arabic_habibi.pdf"])
def test_clean_pdfs_in_any_script_get_no_quality_warning(relative):
    assert extract(CORPUS / relative).warnings == ()


def test_a_huge_paragraph_without_blank_lines_is_segmented_lazily():
    """Single-spaced lines for megabytes: the first sentences come before the rest is read, so Cancel works."""
    text = "A line of a very long log file that wraps and goes on without end.\n" * 100_000
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    produced = []
    with pytest.raises(Stopped):
        for span in iter_sentences(text, stop):
            produced.append(span)
    assert 0 < len(produced) < 1000


def test_every_question_names_a_corpus_document_that_holds_its_answer():
    from core.eval.documents_quality import comparable

    questions = load_questions(QUESTIONS)
    assert len(questions) >= 10
    for q in questions:
        path = CORPUS / q.document
        assert path.is_file(), q.document
        if path.suffix in (".md", ".txt"):
            assert comparable(q.answer) in comparable(Path(path).read_text(encoding="utf-8"))


@pytest.mark.parametrize("stored, shown", [
    ("the analytical utility of the dif-\nferentially private results", "the analytical utility of the differentially "
                                                                          "private results"),
    ("J. Soria-Comas, J. Domingo-\nFerrer and D. S\u00e1nchez", "J. Soria-Comas, J. Domingo-Ferrer and D. S\u00e1nchez"),
    ("Model 737\u20138 and 737\u2013\n9 (737 MAX) airplanes", "Model 737\u20138 and 737\u20139 (737 MAX) airplanes"),
    ("> the stack and the\n> heap very often.", "> the stack and the heap very often."),
])
def test_readable_text_repairs_line_end_hyphens_and_keeps_real_ones(stored, shown):
    assert readable(stored) == shown

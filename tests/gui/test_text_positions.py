"""Offsets between answer text, UTF-16 document positions and rendered Markdown.

The map is checked against what Qt really renders (QTextDocument.setMarkdown
with HTML off): for each sentence of a Markdown answer, the rendered range
must hold exactly the sentence's words, without the markup, with "\n" or
"\r\n" line ends alike.
"""
from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QTextDocument

from gui.text_positions import Utf16Index, display_safe, markdown_position_map, sentence_range

MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML


def render(source: str) -> str:
    doc = QTextDocument()
    doc.setMarkdown(source, MARKDOWN)
    return doc.toRawText()


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


CASES = {
    "emphasis": ("Press **Esc** or click *Stop*. The part already written is `kept`.",
                 ["Press **Esc** or click *Stop*.", "The part already written is `kept`."]),
    "list": ("Sourcelight reads:\n\n- text files\n- PDF files\n1. first step\n2. second step",
             ["Sourcelight reads:", "- text files", "2. second step"]),
    "code fence with a language that starts like the code": (
        "Run this:\n\n```c\ncode here\nmore code\n```\n\nThen stop.",
        ["Run this:", "code here", "Then stop."]),
    "heading and quote": ("# Adding documents\n\n> Click Add files.\n\nDone.", ["Adding documents", "Click Add files.", "Done."]),
    "link": ("See [the guide](https://example.com/guide) for more. Then ask.", ["See [the guide](https://example.com/guide) for more.", "Then ask."]),
    "entity and escape": ("Fish &amp; chips \\*cost\\* 3 [2]. Yes.", ["Fish &amp; chips \\*cost\\* 3 [2].", "Yes."]),
    "table": ("| a | b |\n|---|---|\n| one | two |\n\nAfter the table.", ["After the table."]),
    "soft and hard breaks": ("First line\nsoft break.  \nHard break here.", ["First line\nsoft break.", "Hard break here."]),
}


def rendered_words(sentence: str) -> list[str]:
    """The words of a CASES sentence that Qt renders (no link target, entity name or list number)."""
    expected = words(sentence.replace("https://example.com/guide", "").replace("amp", ""))
    if sentence.lstrip().startswith(("-", "2.")):
        expected = [w for w in expected if w != "2"]
    return expected


@pytest.mark.parametrize("name", list(CASES))
def test_every_sentence_maps_onto_its_rendered_words(qapp, name):
    source, sentences = CASES[name]
    rendered = render(source)
    mapping = markdown_position_map(source, rendered)
    assert mapping is not None, rendered
    for sentence in sentences:
        start = source.index(sentence)
        a, b = sentence_range(mapping, start, start + len(sentence))
        got = rendered[a:b]
        assert words(got) == rendered_words(sentence), (sentence, got)
        assert got == got.strip(), "no markup or separator at the ends"


def test_text_the_renderer_invents_means_no_map(qapp):
    # A named entity becomes a character the source never spells: the answer
    # must then stay plain text (exact offsets) rather than highlight the wrong words.
    source = "Copyright &copy; the authors. Second sentence."
    assert markdown_position_map(source, render(source)) is None
    assert markdown_position_map("abc", "xyz") is None


def test_an_image_is_an_object_mark_not_text(qapp):
    source = "An image ![alt](file:///etc/passwd) here. Next one."
    rendered = render(source)
    mapping = markdown_position_map(source, rendered)
    assert mapping is not None
    a, b = sentence_range(mapping, source.index("Next"), len(source))
    assert rendered[a:b] == "Next one."


def test_utf16_positions_count_surrogate_pairs():
    text = "a\U0001F600b\U0001F600c"
    index = Utf16Index(text)
    assert [index.to_utf16(i) for i in range(len(text) + 1)] == [0, 1, 3, 4, 6, 7]
    assert [index.from_utf16(p) for p in (0, 1, 3, 4, 6)] == [0, 1, 2, 3, 4]
    grown = Utf16Index("a\U0001F600")
    grown.extend("b\U0001F600c")
    assert [grown.to_utf16(i) for i in range(6)] == [index.to_utf16(i) for i in range(6)]


def test_display_safe_keeps_offsets_and_neutralises_frame_characters():
    text = "x\x00y\ufdd0z\n\tq"
    safe = display_safe(text)
    assert len(safe) == len(text)
    assert safe == "x\ufffdy\ufffdz\n\tq"


def test_display_safe_turns_carriage_returns_into_spaces_so_crlf_stays_two_positions(qapp):
    # Qt would merge "\r\n" into one paragraph break, one position short of
    # the engine's offsets for every line; a space keeps them one-for-one.
    assert display_safe("a.\r\nb.\rc.") == "a. \nb. c."
    doc = QTextDocument()
    doc.setPlainText(display_safe("a.\r\nb."))
    assert doc.characterCount() - 1 == len("a.\r\nb.")


@pytest.mark.parametrize("name", list(CASES))
def test_crlf_markdown_renders_and_maps_like_lf_markdown(qapp, name):
    # The spaces that stand for "\r" must not stop Markdown from seeing fences,
    # tables, lists and breaks as it does with plain "\n" line ends.
    source, sentences = CASES[name]
    crlf = display_safe(source.replace("\n", "\r\n"))
    rendered = render(crlf)
    assert rendered.replace(" \u2029", "\u2029").rstrip() == render(source).rstrip()
    mapping = markdown_position_map(crlf, rendered)
    assert mapping is not None, rendered
    for sentence in sentences:
        sentence = display_safe(sentence.replace("\n", "\r\n"))
        start = crlf.index(sentence)
        a, b = sentence_range(mapping, start, start + len(sentence))
        got = rendered[a:b]
        assert words(got) == rendered_words(sentence), (sentence, got)
        assert got == got.strip(), "no markup or separator at the ends"


@pytest.mark.parametrize("text", ["<b>Bold <font color=red size=7>notes.md", "a &lt;b&gt; c", "<u>x\nsecond",
                                  "/docs/<img src=x.png>.md\nreason"])
def test_plain_tooltips_are_never_guessed_as_rich_text(qapp, text):
    from PySide6.QtGui import Qt as QtText

    from gui.text_positions import plain_tooltip

    assert QtText.mightBeRichText(text)
    safe = plain_tooltip(text)
    assert not QtText.mightBeRichText(safe)
    assert safe.replace("\u2060", "") == text

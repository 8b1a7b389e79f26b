"""Segmentation and chunking keep exact offsets: highlights depend on it."""
from core.ingest.chunking import chunk_page
from core.ingest.segment import split_sentences
from core.answer.sentence_stream import SentenceStream

TEXT = ("Dr. Smith paid $3.50 on Jan. 5, 2024. He kept the receipt!  Was it enough?\n\n"
        "- First item of a list\n- Second item\n\n" + "A very long sentence " * 60 + "ends here.")


def test_sentences_are_exact_slices_with_abbreviations_and_numbers():
    spans = split_sentences(TEXT)
    assert [s.text for s in spans[:3]] == ["Dr. Smith paid $3.50 on Jan. 5, 2024.", "He kept the receipt!",
                                           "Was it enough?"]
    assert all(TEXT[s.start:s.end] == s.text for s in spans)
    assert "- Second item" in [s.text for s in spans]


def test_runaway_sentence_is_bounded():
    spans = split_sentences("word " * 5000)
    assert len(spans) > 5 and max(len(s.text) for s in spans) <= 600


def test_chunks_end_on_sentence_boundaries_and_overlap():
    text = " ".join(f"Sentence number {i} says something." for i in range(40))
    chunks = chunk_page(text, 3, target_chars=200, overlap_sentences=1)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.page == 3 and chunk.text in text
        assert all(chunk.text[s.start:s.end] == s.text for s in chunk.sentences)
        assert len(chunk.text) <= 200 or len(chunk.sentences) == 1
    # Consecutive chunks share one sentence, and together cover every sentence.
    assert chunks[0].sentences[-1].text == chunks[1].sentences[0].text
    covered = {s.text for c in chunks for s in c.sentences}
    assert covered == {s.text for s in split_sentences(text)}


def test_sentence_stream_closes_sentences_as_they_complete():
    stream = SentenceStream()
    closed = []
    for piece in ["The cat", " sat. It", " purred", "! Then it", " slept."]:
        closed += stream.feed(piece)
    assert [s.text for s in closed] == ["The cat sat.", "It purred!"]
    closed += stream.finish()
    assert [s.text for s in closed][-1] == "Then it slept."
    assert [s.index for s in closed] == [0, 1, 2]
    assert all(stream.text[s.start:s.end] == s.text for s in closed)


def test_chinese_and_japanese_sentences_close_while_streaming():
    """Full-width "。！？" end a sentence with no space after it; each closes when the next one starts."""
    answer = "原子炉は重水を減速材として使用する。建設は1962年です！運転は始まったか？「はい。」と言った。"
    stream = SentenceStream()
    closed_at = []
    for i, ch in enumerate(answer):  # one character per delta, as a tokenizer may send them
        closed_at += [(s.text, i) for s in stream.feed(ch)]
    assert [text for text, _ in closed_at] == [s.text for s in split_sentences(answer)][:-1]
    assert closed_at[0] == ("原子炉は重水を減速材として使用する。", answer.index("建"))
    assert [s.text for s in stream.finish()] == [s.text for s in split_sentences(answer)][-1:]


def test_streamed_sentences_match_the_whole_answer_segmented_at_once():
    """Token by token (abbreviations, quotes, lists, a long run-on) gives the sentences of the full text."""
    import re

    answer = ('He said "It is done." Then he left. See e.g. the report by Dr. Smith on p. 4; it is long.\n\n'
              "- First point\n- Second point\n\n" + TEXT)
    stream = SentenceStream()
    closed = []
    for piece in re.findall(r"\s*\S+", answer):  # word-sized pieces with their leading whitespace
        closed += stream.feed(piece)
    closed += stream.finish()
    assert [s.text for s in closed] == [s.text for s in split_sentences(answer)]
    assert [s.index for s in closed] == list(range(len(closed)))

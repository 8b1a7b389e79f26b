"""The Answer fold: an event stream -> the one state the window, the CLI, history and export read."""
from __future__ import annotations

import dataclasses

import pytest

from core.answer.state import Answer
from core.events import (AnswerSentence, AttributionReady, Cancelled, Completed, Failed, RetrievalDone,
                         RetrievedChunk, RunStarted, SentenceClosed, StatusChanged, SupportSpan, TextDelta, Usage)

CHUNKS = (RetrievedChunk("c1", "/docs/a.txt", None, "Cats purr. Cats sleep.", 0.9),
          RetrievedChunk("c2", "/docs/b.pdf", 3, "Dogs bark.", 0.7))
S0 = AnswerSentence(0, 0, 11, "Cats purr. ")
S1 = AnswerSentence(1, 11, 22, "Dogs bark. ")
S2 = AnswerSentence(2, 22, 33, "Fish sing. ")
S3 = AnswerSentence(3, 33, 41, "Hello?")


def _att(sentence, *chunk_ids, supported=True, kind="claim"):
    spans = tuple(SupportSpan(c, 0, 5, "Cats ", 0.8) for c in chunk_ids)
    return AttributionReady(sentence, spans, 0.8 if supported else 0.1, supported, kind=kind)


def _stream(end):
    return [RunStarted("r1", "What do pets do?"), RetrievalDone(CHUNKS), TextDelta("Cats purr. "),
            SentenceClosed(S0), _att(S0, "c1"), TextDelta("Dogs bark. "), SentenceClosed(S1), _att(S1, "c2", "c1"),
            TextDelta("Fish sing. "), SentenceClosed(S2), _att(S2, "c1", supported=False), TextDelta("Hello?"),
            SentenceClosed(S3), _att(S3, supported=False, kind="not_a_claim"), Usage(12, 34), end]


def test_a_completed_stream_folds_into_its_sentences_attributions_and_status():
    answer = Answer.from_events(_stream(Completed("Cats purr. Dogs bark. Fish sing. Hello?")))
    assert answer.status == "completed" and answer.done
    assert answer.question == "What do pets do?" and answer.run_id == "r1"
    assert answer.text == "Cats purr. Dogs bark. Fish sing. Hello?"
    assert answer.chunks == CHUNKS
    assert [s.index for s in answer.sentences] == [0, 1, 2, 3]
    assert [a.sentence.index for a in answer.attributions] == [0, 1, 2, 3]
    assert answer.usage == Usage(12, 34) and answer.finish_reason == "stop" and answer.error is None
    assert answer.attribution(2).supported is False and answer.attribution(9) is None


def test_the_chunk_to_sentences_map_holds_only_supported_sentences():
    answer = Answer.from_events(_stream(Completed("Cats purr. Dogs bark. Fish sing. Hello?")))
    # Sentence 2 has a span of c1 but is unsupported; sentence 3 claims nothing.
    assert answer.chunk_sentences == {"c1": (0, 1), "c2": (1,)}
    assert answer.sentences_supported_by("c1") == (0, 1)
    assert answer.sentences_supported_by("nowhere") == ()


def test_a_failure_keeps_the_partial_answer_and_the_error():
    failed = Failed("backend_error", "Cannot reach the server.", "BackendError", "Cats purr. ")
    events = _stream(failed)[:5] + [failed]
    answer = Answer.from_events(events)
    assert answer.status == "failed" and answer.error == failed
    assert answer.text == "Cats purr. " and answer.finish_reason is None
    assert answer.chunk_sentences == {"c1": (0,)}


def test_a_cancelled_stream_keeps_what_streamed_and_ignores_what_follows():
    answer = Answer.from_events(_stream(Cancelled(""))[:6] + [Cancelled(""), TextDelta("late"), Completed("x")])
    assert answer.status == "cancelled" and answer.done
    assert answer.text == "Cats purr. Dogs bark. "  # the cancel carried no partial text: what streamed is kept
    assert answer.error is None


def test_the_terminal_events_text_wins_over_what_streamed():
    answer = Answer.from_events([RunStarted("r", "q"), TextDelta("Cats"), Cancelled("Cats purr.")])
    assert answer.text == "Cats purr."


def test_the_status_follows_the_lifecycle_and_the_server_status_lasts_until_text():
    answer = Answer(question="q")
    assert answer.status == "pending" and not answer.done
    answer = answer.apply(RunStarted("r", "q"))
    assert answer.status == "retrieving"
    answer = answer.apply(RetrievalDone(CHUNKS))
    assert answer.status == "streaming"
    queued = StatusChanged("queued", "Queued on the server...")
    answer = answer.apply(queued)
    assert answer.server_status == queued
    answer = answer.apply(TextDelta("Hi"))
    assert answer.server_status is None and answer.text == "Hi"


def test_each_event_gives_a_new_state_and_leaves_the_old_one_as_it_was():
    before = Answer.from_events([RunStarted("r", "q"), RetrievalDone(CHUNKS)])
    after = before.apply(TextDelta("Cats purr. "))
    assert before.text == "" and after.text == "Cats purr. "
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.text = "changed"  # type: ignore[misc]


def test_a_sentence_closed_twice_is_kept_once_and_a_later_verdict_replaces_the_earlier():
    answer = Answer.from_events([RunStarted("r", "q"), SentenceClosed(S0), SentenceClosed(S0), _att(S0, "c1"),
                                 _att(S0, "c1", supported=False)])
    assert answer.sentences == (S0,)
    assert answer.attribution(0).supported is False
    assert answer.chunk_sentences == {}


def test_the_finish_note_says_why_a_completed_answer_stopped():
    cut = Answer.from_events([RunStarted("r", "q"), TextDelta("Cats"), Completed("Cats", "length")])
    assert cut.finish_note == "stopped at the answer length limit - raise it in Settings"
    assert Answer.from_events([RunStarted("r", "q"), Completed("Cats")]).finish_note == ""

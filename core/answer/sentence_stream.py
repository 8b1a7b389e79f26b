"""Finds answer sentences as they close while the answer streams in.

A sentence is closed once the text after its final punctuation has started
the next sentence (or the answer has ended). Re-segmenting the whole answer on
every token would cost O(answer) per token on the event loop, so only the
open tail is segmented, and only when a delta brings a new candidate boundary
(sentence-ending punctuation or a line break followed by more text). A
candidate the segmenter rejects (an abbreviation such as "e.g. the") is not
looked at again on every later token; the next candidate re-segments the whole
open tail, so a sentence is never lost, at worst it closes one boundary later.
"""
from __future__ import annotations

import re

from core.events import AnswerSentence
from core.ingest.segment import split_sentences

# Chinese and Japanese end a sentence with full-width punctuation and no space
# after it, so for those the next character itself is the start of a new sentence.
_BOUNDARY = re.compile(r"[.!?:;\n][\"')\]]*\s+\S|\n\S|[\u3002\uff01\uff1f\uff61][\u300d\u300f\uff09\"'\u201d\u2019]*\S")
# A boundary can straddle deltas ("end." + '"' + " Next"): look back this far.
_LOOKBACK = 16


class SentenceStream:
    """Feed it deltas; it returns the sentences that closed, with answer offsets."""

    def __init__(self) -> None:
        self._text = ""
        self._closed_until = 0  # everything before this offset is in closed sentences
        self._count = 0
        self._searched_until = 0  # boundaries before this offset were already looked at

    @property
    def text(self) -> str:
        return self._text

    def feed(self, delta: str) -> list[AnswerSentence]:
        tail = self.add(delta)
        return [] if tail is None else self.close(split_sentences(tail))

    def finish(self) -> list[AnswerSentence]:
        """The answer ended: every remaining sentence is closed."""
        return self.close(split_sentences(self.open_tail()), final=True)

    # `feed` in two steps: `add`, then `close` with `split_sentences` of the tail it
    # returned, before the next `add`.
    def add(self, delta: str) -> str | None:
        """Append `delta`; returns the open tail to segment when it may have closed a sentence, else None."""
        if not delta:
            return None
        self._text += delta
        search_from = max(self._closed_until, self._searched_until - _LOOKBACK)
        self._searched_until = len(self._text)
        if not _BOUNDARY.search(self._text, search_from):
            return None
        return self.open_tail()

    def open_tail(self) -> str:
        """The text after the last closed sentence."""
        return self._text[self._closed_until:]

    def close(self, spans, *, final: bool = False) -> list[AnswerSentence]:
        """The sentences that closed, given the open tail's `split_sentences` (all of them when `final`)."""
        return self._emit(self._text, spans if final else spans[:-1])  # the last one may still grow

    def _emit(self, text: str, spans) -> list[AnswerSentence]:
        base = self._closed_until
        out = []
        for span in spans:
            sentence = AnswerSentence(self._count, base + span.start, base + span.end, span.text)
            assert text[sentence.start:sentence.end] == sentence.text
            out.append(sentence)
            self._count += 1
            self._closed_until = base + span.end
        return out

"""Stops an answer that has started repeating itself, keeping the part before the loop.

Small local models (the bundled SmolLM2-135M above all) fall into loops: one
or two sentences written again and again until the length limit. A repetition
penalty alone did not stop it on the sample guide (issue 14: twelve of
thirteen sentences were two sentences repeated), so the pipeline watches the
streamed text itself.

`RepetitionGuard` is fed the deltas as they arrive and says which text may be
shown now. Words that could be the start of a repeat (the longest run of
trailing words that already occurs earlier in the answer) are held back until
they either stop matching (then they are released) or become a loop:

- a repeated sentence: the held run starts where a sentence starts, ends with
  sentence-ending punctuation and has at least `MIN_SENTENCE_WORDS` words; or
- a long repeated n-gram: the held run reaches `NGRAM_WORDS` words, which
  also catches loops inside one endless sentence or a list.

On a loop the held words are dropped and the answer ends with the text before
them. Words are compared case-folded, without punctuation and without "[n]"
citation markers, so "Click Add [1]." repeats "click add." The last word is
held too while it may still be growing (a token can end mid-word). Only
repeats inside the answer count; copying a sentence from a source is not a
loop, and neither are lines of a fenced code block, which repeat each other
legitimately.

The cost is a dozen set insertions and a few set lookups per word (runs of up
to `NGRAM_WORDS` words are remembered as strings), independent of the answer's
length: a 4,000-word answer at 5,000 tokens/s costs the event loop ~2%.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Five words of a sentence written again is already a loop for an answer of a
# few sentences; shorter ones ("See [2].") recur legitimately.
MIN_SENTENCE_WORDS = 5
# Twelve identical words in a row did not occur in any non-looping answer on
# the sample guide's questions; every loop seen there repeated far more.
NGRAM_WORDS = 12

_WORD = re.compile(r"\S+")
_CITATION = re.compile(r"\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]\u201d\u2019]*$")
_ELLIPSIS = re.compile(r"(\.\.\.|\u2026)[\"')\]\u201d\u2019]*$")


# The characters `_SENTENCE_END` can end on: most words end on none of them.
_END_CHARS = frozenset(".!?\u3002\uff01\uff1f\"')]\u201d\u2019")


def _ends_sentence(raw: str) -> bool:
    if raw[-1] not in _END_CHARS:  # the common case, without the two regex searches
        return False
    # An ellipsis is not an end: button labels ("Add files...") are quoted with one.
    return bool(_SENTENCE_END.search(raw)) and not _ELLIPSIS.search(raw)


def _norm(word: str) -> str:
    if word.isascii() and word.isalnum():  # most words: the same result, without the filter below
        return word.lower()
    return "".join(ch for ch in _CITATION.sub("", word).casefold() if ch.isalnum())


@dataclass(frozen=True)
class Loop:
    """Where a loop starts in the text (`start`, a character offset) and what kind it is."""

    start: int
    kind: str  # "sentence" | "ngram"
    words: int  # length of the repeated run, in words


class RepetitionGuard:
    """Feed it the streamed text; it releases what may be shown and notices a loop."""

    def __init__(self, *, min_sentence_words: int = MIN_SENTENCE_WORDS, ngram_words: int = NGRAM_WORDS):
        self._min_sentence = min_sentence_words
        self._ngram = ngram_words
        self._text = ""
        self._released = 0  # characters of `_text` handed out already
        self._words: list[str] = []  # normalised complete words (empty strings dropped)
        self._starts: list[int] = []  # character offset of each word
        self._sentence_start: list[bool] = []  # the word begins a sentence
        self._ends_sentence: list[bool] = []
        self._scanned = 0  # characters of `_text` already split into complete words
        self._run = 0  # trailing words that also occur earlier
        self._in_code = False  # inside a ``` fenced block
        # Every run of 1..`ngram_words` consecutive words among the first `_seen_words`
        # words, joined by spaces (words hold none, so a joined run matches only that
        # run): "does this tail occur earlier" is one set lookup per length. Strings,
        # not tuples, because the garbage collector does not track them.
        self._seen: set[str] = set()
        self._seen_words = 0
        self.loop: Loop | None = None

    @property
    def text(self) -> str:
        """Everything fed so far (including held text)."""
        return self._text

    @property
    def released_text(self) -> str:
        return self._text[:self._released]

    def feed(self, delta: str) -> str:
        """Add streamed text; returns the text that may be shown now ("" while held or after a loop)."""
        if self.loop is not None or not delta:
            return ""
        self._text += delta
        # Complete words: those followed by whitespace.
        for match in _WORD.finditer(self._text, self._scanned):
            if match.end() == len(self._text):
                break  # may still grow
            self._add_word(match.group(), match.start())
            self._scanned = match.end()
            if self.loop is not None:
                return self._release_before_loop()
        return self._release(self._hold_from())

    @property
    def holding(self) -> bool:
        """Some fed text is not shown yet."""
        return self.loop is None and self._released < len(self._text)

    def release_idle(self) -> str:
        """The stream paused: show the held tail, unless it may be the start of a loop.

        The last word is held while it may still grow, so a server that pauses
        mid-answer would leave it hidden for the whole pause. Words held because
        they repeat earlier ones stay held: they may yet become a loop.
        """
        if self.loop is not None or self._run:
            return ""
        return self._release(len(self._text))

    def finish(self) -> str:
        """The answer ended: the held text is released (unless a loop was found)."""
        if self.loop is not None:
            return ""
        tail = self._text[self._scanned:]
        match = _WORD.search(tail)
        if match:
            self._add_word(match.group(), self._scanned + match.start())
            self._scanned = len(self._text)
            if self.loop is not None:
                return self._release_before_loop()
        return self._release(len(self._text))

    # -- internals -------------------------------------------------------------

    def _release_before_loop(self) -> str:
        """The held words before the loop (they end the sentence before it), without trailing space."""
        until = self.loop.start
        while until > self._released and self._text[until - 1].isspace():
            until -= 1
        return self._release(until)

    def _release(self, until: int) -> str:
        if until <= self._released:
            return ""
        out = self._text[self._released:until]
        self._released = until
        return out

    def _hold_from(self) -> int:
        """The character offset from which text is held back."""
        hold = self._scanned  # the unfinished last word
        if self._run:
            hold = min(hold, self._starts[len(self._words) - self._run])
        # Whitespace just before a held word stays held too, so a loop leaves no trailing space.
        while hold > self._released and self._text[hold - 1].isspace():
            hold -= 1
        return max(hold, self._released)

    def _add_word(self, raw: str, start: int) -> None:
        fence = "```" in raw
        if fence or self._in_code:
            # Code repeats itself legitimately (similar lines, a variable used again):
            # words inside a fenced block get a unique stand-in that matches nothing.
            if fence:
                self._in_code = not self._in_code if raw.count("```") % 2 else self._in_code
            self._words.append(f"\x00{len(self._words)}")
            self._starts.append(start)
            self._sentence_start.append(False)
            self._ends_sentence.append(False)
            self._run = 0
            return
        word = _norm(raw)
        if not word:
            if self._words and _ends_sentence(raw):  # "folder [1]." ends the sentence too
                self._ends_sentence[-1] = True
            return
        # A capital (or digit, quote, ...) after sentence-ending punctuation starts a sentence;
        # 'click "Add file..." and choose' does not.
        begins = not self._words or (self._ends_sentence[-1] and not raw[0].islower())
        self._words.append(word)
        self._starts.append(start)
        self._sentence_start.append(begins)
        self._ends_sentence.append(_ends_sentence(raw))
        self._run = self._longest_repeated_run(self._run + 1)
        if not self._run:
            return
        first = len(self._words) - self._run
        if self._run >= self._ngram:
            # Cut where a sentence starts inside the run, if one does: the words
            # before it end a sentence that is not itself the loop.
            begins = next((i for i in range(first, len(self._words)) if self._sentence_start[i]), first)
            self.loop = Loop(self._starts[begins], "ngram", len(self._words) - begins)
        elif self._ends_sentence[-1] and self._run >= self._min_sentence:
            begins = self._repeated_sentence_start(first)
            if begins is not None:
                self.loop = Loop(self._starts[begins], "sentence", len(self._words) - begins)

    def _repeated_sentence_start(self, first: int) -> int | None:
        """The first word of a whole repeated sentence at the end of the run, if there is one.

        The run may begin before that sentence, with words the previous
        sentence shares with an earlier one; those stay (they are not the loop).
        """
        for i in range(first, len(self._words) - self._min_sentence + 1):
            if self._sentence_start[i]:
                return i
        return None

    def _longest_repeated_run(self, limit: int) -> int:
        """Length of the longest run of trailing words (at most `limit`) found earlier in the answer."""
        words = self._words
        n = len(words)
        # An earlier occurrence must end before the last word (overlap allowed). The
        # runs ending at each word are added once, when the next word arrives: a
        # substring search of the whole answer per word (the way before) cost a fifth
        # of the event loop at 5,000 tokens/s; this is a dozen set insertions per word.
        seen, longest = self._seen, self._ngram
        for end in range(self._seen_words, n - 1):
            run = words[end]
            seen.add(run)
            for start in range(end - 1, max(-1, end - longest), -1):
                run = words[start] + " " + run
                seen.add(run)
        self._seen_words = max(self._seen_words, n - 1)
        limit = min(limit, n - 1, longest)  # (a run longer than `longest` is a loop: feeding stops there)
        if limit <= 0:
            return 0
        tail = words[n - limit:]
        runs = [tail[-1]]
        for word in reversed(tail[:-1]):
            runs.append(word + " " + runs[-1])
        for length in range(limit, 0, -1):
            if runs[length - 1] in seen:
                return length
        return 0


def find_loop(text: str, **limits: int) -> Loop | None:
    """The first loop in a finished answer, or None (used by the evaluation to count looping answers)."""
    guard = RepetitionGuard(**limits)
    guard.feed(text)
    guard.finish()
    return guard.loop

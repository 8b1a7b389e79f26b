"""The answer as a stream of typed, immutable events.

Everything downstream (the GUI adapter, the CLI, the tests, the exporter)
consumes the same stream. The lifecycle mirrors streaming LLM APIs:
`RunStarted` -> `RetrievalDone` -> (`StatusChanged` | `TextDelta` |
`SentenceClosed` | `AttributionReady`)* -> `Usage`? -> exactly one of
`Completed`, `Failed`, `Cancelled`. `StatusChanged` only comes from backends
whose server reports its progress (the Assistants API's run lifecycle). Events hold plain values only (no Qt, no numpy) so they can be
sent across threads, stored and serialised.

Offsets: a sentence's `start`/`end` index the answer text (all deltas joined);
a support span's `start`/`end` index the `text` of the chunk it names, as the
`RetrievalDone` event gave it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RetrievedChunk:
    """One chunk retrieved for a question."""

    id: str
    source: str  # absolute path, or "sample:<name>" for the built-in corpus
    page: int | None  # 1-based page where the format has pages
    text: str
    score: float  # fused retrieval score in [0, 1]: similarity to the *question*, not support
    vector_score: float = 0.0
    lexical_score: float = 0.0

    @property
    def file_name(self) -> str:
        return self.source.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AnswerSentence:
    """A closed sentence of the answer, with offsets into the whole answer text."""

    index: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class SupportSpan:
    """A span inside a retrieved chunk that supports an answer sentence."""

    chunk_id: str
    start: int
    end: int
    text: str
    score: float  # support of this span for the sentence, in [0, 1]


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    question: str
    type: str = field(default="started", init=False)


@dataclass(frozen=True)
class RetrievalDone:
    chunks: tuple[RetrievedChunk, ...]
    type: str = field(default="retrieval", init=False)


@dataclass(frozen=True)
class StatusChanged:
    """What the model server says it is doing, before or between pieces of text.

    `status` is a stable code ("created", "queued", "in_progress",
    "tool_call", "writing", "cancelling"); `message` is the sentence to show
    ("Queued on the server...", "Calling a tool (get_weather)...").
    """

    status: str
    message: str
    type: str = field(default="status", init=False)


@dataclass(frozen=True)
class TextDelta:
    text: str
    type: str = field(default="delta", init=False)


@dataclass(frozen=True)
class SentenceClosed:
    sentence: AnswerSentence
    type: str = field(default="sentence", init=False)


# What the window and the CLI say about a sentence that is not a claim, in the same words.
NOT_A_CLAIM_NOTE = "Not a claim - nothing here to check against your documents."


@dataclass(frozen=True)
class AttributionReady:
    """Where (and how well) one answer sentence is supported.

    `support` is the calibrated support score of the best evidence (distinct
    from any chunk's retrieval score); `supported` applies the threshold
    chosen on the dev splits. `cited` are the source numbers (1-based, as in
    the prompt) the model wrote as markers like "[2]"; `citation_agrees` is
    None without markers, else whether the measured support points at one of
    the cited sources.

    `kind` is "claim", or "not_a_claim" for a sentence that asserts nothing
    the documents could back (a question, a heading, "Here is what I found:",
    "I could not find this in the documents."; the values are
    `core.attribution.claims.KINDS`). Such a sentence always comes with
    `supported=False`, as there is nothing to support, but it is not wrong
    either: consumers show it as neither supported nor flagged, which is what
    `flagged` answers. Events stored before kinds existed read as "claim".
    """

    sentence: AnswerSentence
    sources: tuple[SupportSpan, ...]
    support: float
    supported: bool
    cited: tuple[int, ...] = ()
    citation_agrees: bool | None = None
    kind: str = "claim"
    type: str = field(default="attribution", init=False)

    @property
    def is_claim(self) -> bool:
        """Whether the sentence asserts something the documents could support (or fail to)."""
        return self.kind == "claim"

    @property
    def flagged(self) -> bool:
        """Whether to warn the reader: a claim that no retrieved passage supports."""
        return self.is_claim and not self.supported

    @property
    def kind_note(self) -> str:
        """What the window and the CLI say about a sentence that claims nothing ("" for a claim)."""
        return "" if self.is_claim else NOT_A_CLAIM_NOTE


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None
    type: str = field(default="usage", init=False)


# Why an answer ended, when it did not simply end ("stop"), in the words the window, the CLI and
# the export use. "repetition": the pipeline stopped a model that began to repeat itself.
FINISH_NOTES = {
    "length": "stopped at the answer length limit - raise it in Settings",
    "repetition": "stopped because the model began repeating itself; the part before the repeat is kept",
}


@dataclass(frozen=True)
class Completed:
    answer: str
    finish_reason: str = "stop"  # "stop" | "length" | "repetition" | what a server reported
    type: str = field(default="completed", init=False)

    @property
    def finish_note(self) -> str:
        """Why the answer ended, in words ("" when it simply ended)."""
        return "" if self.finish_reason in ("stop", None) else FINISH_NOTES.get(self.finish_reason,
                                                                                 self.finish_reason)


@dataclass(frozen=True)
class Failed:
    """The run ended with an error; `partial_answer` keeps what had streamed."""

    code: str
    message: str
    error_type: str
    partial_answer: str = ""
    type: str = field(default="error", init=False)


@dataclass(frozen=True)
class Cancelled:
    partial_answer: str = ""
    type: str = field(default="cancelled", init=False)


Event = (RunStarted | RetrievalDone | StatusChanged | TextDelta | SentenceClosed | AttributionReady | Usage
         | Completed | Failed | Cancelled)
TERMINAL_EVENTS = (Completed, Failed, Cancelled)


def event_to_json(event: Event) -> dict[str, Any]:
    """The JSON-lines shape of `sourcelight ask --json` (and of stored history)."""
    data = asdict(event)
    data["type"] = event.type
    return data

"""What history holds: a stored turn, a conversation's summary, a source file's fingerprint, and its errors."""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import SourcelightError
from core.events import (AttributionReady, Cancelled, Completed, Event, Failed, RetrievalDone, RetrievedChunk,
                         RunStarted, SentenceClosed, TextDelta, Usage)
from core.history.sources import SourceFingerprint, SourceState, source_state

HISTORY_FILE = "history.sqlite3"
UNTITLED = "New conversation"
TITLE_CHARS = 60
STATUSES = ("completed", "failed", "cancelled")



class HistoryError(SourcelightError):
    """The history database cannot be opened, upgraded or written."""

    code = "history_error"


class ConversationNotFound(HistoryError):
    """No conversation has the given id (or it is in the trash, for export)."""

    code = "conversation_not_found"


@dataclass(frozen=True)
class StoredTurn:
    """One question and its answer with everything needed to show it again.

    `chunks` and `attributions` are the very `RetrievedChunk` and
    `AttributionReady` objects of the run (rebuilt field for field when read
    back). `id`, `conversation_id` and `position` are set once stored.
    """

    question: str
    answer: str
    status: str  # "completed" | "failed" | "cancelled"
    chunks: tuple[RetrievedChunk, ...] = ()
    attributions: tuple[AttributionReady, ...] = ()
    backend: str = ""  # the backend's description, e.g. "gpt-4o-mini at https://..."
    model: str = ""
    started_at: float | None = None  # Unix seconds; None for turns migrated from schema 1
    finished_at: float | None = None
    finish_reason: str | None = None
    error_code: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    run_id: str | None = None
    sources: tuple[SourceFingerprint, ...] = ()  # one per distinct chunk source, taken at save time
    id: int | None = None
    conversation_id: int | None = None
    position: int | None = None

    def chunk(self, chunk_id: str) -> RetrievedChunk | None:
        """The retrieved chunk a support span names."""
        return next((c for c in self.chunks if c.id == chunk_id), None)

    def fingerprint(self, source: str) -> SourceFingerprint | None:
        return next((f for f in self.sources if f.source == source), None)

    def source_state(self, chunk: RetrievedChunk) -> SourceState:
        """Whether `chunk`'s file still is as it was when this turn was saved (touches the disk)."""
        return source_state(self.fingerprint(chunk.source))

    def source_changed(self, chunk: RetrievedChunk) -> bool:
        """True when `chunk`'s file was modified or removed since this turn was saved."""
        return self.source_state(chunk) in ("changed", "removed")

    def answer_state(self):
        """The turn as the one answer state every reader shares (a core.answer.state.Answer), folded from `replay()`."""
        from core.answer.state import Answer

        return Answer.from_events(self.replay(), self.question)

    def replay(self) -> tuple[Event, ...]:
        """The turn as an event stream, so a reopened answer goes through the same code as a live one."""
        events: list[Event] = [RunStarted(self.run_id or "", self.question), RetrievalDone(self.chunks)]
        if self.answer:
            events.append(TextDelta(self.answer))
        for attribution in self.attributions:
            events += [SentenceClosed(attribution.sentence), attribution]
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            events.append(Usage(self.prompt_tokens, self.completion_tokens))
        if self.status == "completed":
            events.append(Completed(self.answer, self.finish_reason or "stop"))
        elif self.status == "failed":
            events.append(Failed(self.error_code or "", self.error_message or "", self.error_type or "",
                                 self.answer))
        else:
            events.append(Cancelled(self.answer))
        return tuple(events)


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the conversation list."""

    id: int
    title: str  # never empty: an untitled conversation shows UNTITLED
    created_at: float
    updated_at: float  # last turn added (renaming does not reorder the list)
    turn_count: int
    deleted_at: float | None = None


def title_from_question(question: str) -> str:
    """A conversation title from its first question: one line, at most TITLE_CHARS characters."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS - 1].rsplit(" ", 1)[0] or text[:TITLE_CHARS - 1]
    return cut + "\u2026"

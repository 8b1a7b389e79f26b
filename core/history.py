"""Conversation history: every turn saved as it happens, reopened exactly as it was.

A turn is one question and its answer together with everything the window
needs to show it again days later: the retrieved chunks *as they were* (their
text is what the sources panel shows, even after the file changed or left the
index), every attribution with its support spans, the backend and model, the
outcome (completed, failed, cancelled) and timestamps. `TurnRecorder` builds a
`StoredTurn` from the same event stream every consumer reads;
`HistoryStore.add_turn` writes it in one transaction.

Storage is one SQLite file (`data_dir()/history.sqlite3`), stdlib `sqlite3`:

- Durability: WAL journal with `synchronous=FULL`. In WAL mode a commit is one
  append to the -wal file; FULL adds an fsync of it before `add_turn` returns,
  so a finished turn survives a kill -9 *and* an OS crash or power cut, and an
  interrupted turn leaves nothing (its transaction never committed). NORMAL
  would survive kill -9 but may lose the last commits on power loss, and the
  fsync costs a few milliseconds once per answer, which nobody can notice.
- Threads: one connection opened with `check_same_thread=False`, every call
  serialised by a lock. History traffic is a handful of small statements per
  answer, so a per-thread connection pool would add complexity and nothing
  measurable; the lock also makes multi-statement reads consistent.
- Versions: the schema version lives in `PRAGMA user_version`. Opening an
  older file upgrades it step by step inside one transaction per step (a
  failed step leaves the file as it was), after copying it to
  `<name>.v<N>-backup`. A file from a newer Sourcelight is refused rather
  than damaged.

Schema version 1 (what the first release wrote) kept each turn's chunks and
attributions as JSON blobs in the `turns` row, recorded only the backend's
description (no separate model), one timestamp (`created_at`, when it was
saved) and deleted conversations for real. Version 2 stores chunks,
attributions and spans as rows (searchable, pageable, no JSON parsing to
reopen), records backend and model, start and finish times, the error type,
usage and the run id, fingerprints each source file when the turn is saved
(so the window can say the file changed since), and soft-deletes
conversations so a delete can be undone. Version 3 (below, `_SCHEMA`) records
each attribution's `kind`, so a sentence that claims nothing is shown again
as "not a claim" rather than as unsupported; attributions saved before it
were all judged as claims, so they read back as "claim".

Blocking: every method does disk I/O (`add_turn` also fsyncs and may hash
source files), so the GUI calls them from a worker thread, never the event loop.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Literal, Sequence

from core import paths
from core.errors import SourcelightError
from core.events import (AnswerSentence, AttributionReady, Cancelled, Completed, Event, Failed, RetrievalDone,
                         RetrievedChunk, RunStarted, SentenceClosed, SupportSpan, TextDelta, Usage)
from core.llm.base import ChatMessage

SCHEMA_VERSION = 3
HISTORY_FILE = "history.sqlite3"
UNTITLED = "New conversation"
TITLE_CHARS = 60
STATUSES = ("completed", "failed", "cancelled")

# Files up to this size are hashed when a turn is saved, so that a file that
# was only touched (same bytes, new mtime) is not reported as changed. Bigger
# files fall back to size + mtime: hashing 64 MB takes ~0.1 s, and add_turn
# must stay quick enough that the turn is on disk before the next question.
HASH_LIMIT_BYTES = 64 * 1024 * 1024

SourceState = Literal["unchanged", "changed", "removed", "unknown"]


class HistoryError(SourcelightError):
    """The history database cannot be opened, upgraded or written."""

    code = "history_error"


class ConversationNotFound(HistoryError):
    """No conversation has the given id (or it is in the trash, for export)."""

    code = "conversation_not_found"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SourceFingerprint:
    """What a source file looked like when a turn was saved.

    `size` is None when there was no readable file at that time (a sample
    source, a file already gone): its later state is "unknown".
    """

    source: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None = None


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


# ------------------------------------------------------------------ source files


def _is_file_source(source: str) -> bool:
    # "sample:<name>" and other non-path sources have no file to compare.
    return os.path.isabs(source)


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str | None:
    """Hash of a file version; (size, mtime_ns) in the key lets the cache notice a new version."""
    if size > HASH_LIMIT_BYTES:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def fingerprint_source(source: str) -> SourceFingerprint:
    """Size, mtime and (for files up to HASH_LIMIT_BYTES) sha256 of a source file, now."""
    if not _is_file_source(source):
        return SourceFingerprint(source, None, None)
    try:
        st = os.stat(source)
    except OSError:
        return SourceFingerprint(source, None, None)
    return SourceFingerprint(source, st.st_size, st.st_mtime_ns, _sha256(source, st.st_size, st.st_mtime_ns))


def source_state(fingerprint: SourceFingerprint | None) -> SourceState:
    """Compare a source file on disk now with its fingerprint from save time.

    Cheap in the common case (one stat); a file whose mtime moved but whose
    size did not is hashed (once per version, cached) so that a touch or a
    copy of identical bytes is not called a change.
    """
    if fingerprint is None or fingerprint.size is None:
        return "unknown"
    try:
        st = os.stat(fingerprint.source)
    except FileNotFoundError:
        return "removed"
    except OSError:
        return "unknown"
    if st.st_size != fingerprint.size:
        return "changed"
    if st.st_mtime_ns == fingerprint.mtime_ns:
        return "unchanged"
    if fingerprint.sha256 is None:
        return "changed"
    now = _sha256(fingerprint.source, st.st_size, st.st_mtime_ns)
    return "unchanged" if now == fingerprint.sha256 else "changed"


def source_note(state: SourceState, file_name: str) -> str | None:
    """The note the sources panel shows under a passage whose file moved on (None: no note)."""
    if state == "changed":
        return (f"{file_name} has changed since this answer was written; the passage shown is the text "
                "as it was then.")
    if state == "removed":
        return (f"{file_name} has been moved or deleted since this answer was written; the passage shown "
                "is the text as it was then.")
    return None


def title_from_question(question: str) -> str:
    """A conversation title from its first question: one line, at most TITLE_CHARS characters."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS - 1].rsplit(" ", 1)[0] or text[:TITLE_CHARS - 1]
    return cut + "\u2026"


# --------------------------------------------------------------------- recorder


class TurnRecorder:
    """Collects one run's events into a `StoredTurn`.

    Feed it every event of the run (`observe` is cheap and does no I/O, so it
    can sit in the event loop); once a terminal event arrived, `result()`
    returns the turn to hand to `HistoryStore.add_turn`. Failed and cancelled
    runs are recorded too, with the partial answer and the error, so the
    question is never lost; `history_messages` leaves them out of follow-ups.
    """

    def __init__(self, question: str, backend_description: str = "", model: str = "", *,
                 clock=time.time):
        self._clock = clock
        self._question = question
        self._backend = backend_description
        self._model = model
        self._started_at = clock()
        self._run_id: str | None = None
        self._chunks: tuple[RetrievedChunk, ...] = ()
        self._deltas: list[str] = []
        self._attributions: list[AttributionReady] = []
        self._usage: Usage | None = None
        self._terminal: Completed | Failed | Cancelled | None = None
        self._finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self._terminal is not None

    def observe(self, event: Event) -> None:
        if self._terminal is not None:
            return  # the stream ends at its terminal event; anything later is not part of this turn
        if isinstance(event, RunStarted):
            self._run_id = event.run_id
            self._question = event.question or self._question
        elif isinstance(event, RetrievalDone):
            self._chunks = tuple(event.chunks)
        elif isinstance(event, TextDelta):
            self._deltas.append(event.text)
        elif isinstance(event, AttributionReady):
            self._attributions.append(event)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, (Completed, Failed, Cancelled)):
            self._terminal = event
            self._finished_at = self._clock()

    def result(self) -> StoredTurn:
        """The finished turn; raises RuntimeError before the run's terminal event."""
        end = self._terminal
        if end is None:
            raise RuntimeError("The run has not finished yet: feed every event to observe() first.")
        streamed = "".join(self._deltas)
        common = dict(question=self._question, chunks=self._chunks, attributions=tuple(self._attributions),
                      backend=self._backend, model=self._model, started_at=self._started_at,
                      finished_at=self._finished_at, run_id=self._run_id,
                      prompt_tokens=self._usage.prompt_tokens if self._usage else None,
                      completion_tokens=self._usage.completion_tokens if self._usage else None)
        if isinstance(end, Completed):
            return StoredTurn(answer=end.answer or streamed, status="completed", finish_reason=end.finish_reason,
                              **common)
        if isinstance(end, Failed):
            return StoredTurn(answer=end.partial_answer or streamed, status="failed", error_code=end.code,
                              error_type=end.error_type, error_message=end.message, **common)
        return StoredTurn(answer=end.partial_answer or streamed, status="cancelled", **common)


# ----------------------------------------------------------------------- schema

# Today's tables. A fresh file gets them at once; so does a schema-1 file (its
# upgrade step copies rows with today's `_insert_details`), which is why later
# steps only add what a file lacks.
_SCHEMA = """
CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a purged id is never reused
    title       TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    deleted_at  REAL                                -- set by delete(), cleared by undo_delete()
);
CREATE INDEX conversations_by_update ON conversations (deleted_at, updated_at DESC);

CREATE TABLE turns (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id    INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position           INTEGER NOT NULL,
    run_id             TEXT,
    question           TEXT NOT NULL,
    answer             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    finish_reason      TEXT,
    error_code         TEXT,
    error_type         TEXT,
    error_message      TEXT,
    backend            TEXT NOT NULL DEFAULT '',
    model              TEXT NOT NULL DEFAULT '',
    prompt_tokens      INTEGER,
    completion_tokens  INTEGER,
    started_at         REAL,
    finished_at        REAL NOT NULL,
    UNIQUE (conversation_id, position)              -- also the index that pages a conversation
);

CREATE TABLE turn_chunks (
    turn_id        INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,                -- retrieval order: "[n]" in the answer is position n-1
    chunk_id       TEXT NOT NULL,
    source         TEXT NOT NULL,
    page           INTEGER,
    text           TEXT NOT NULL,
    score          REAL,                            -- nullable: SQLite stores NaN as NULL
    vector_score   REAL,
    lexical_score  REAL,
    PRIMARY KEY (turn_id, position)
);

CREATE TABLE turn_sources (
    turn_id   INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    source    TEXT NOT NULL,
    size      INTEGER,                              -- NULL: no readable file when the turn was saved
    mtime_ns  INTEGER,
    sha256    TEXT,
    PRIMARY KEY (turn_id, source)
);

CREATE TABLE attributions (
    turn_id          INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,              -- order of the AttributionReady events
    sentence_index   INTEGER NOT NULL,
    sentence_start   INTEGER NOT NULL,
    sentence_end     INTEGER NOT NULL,
    sentence_text    TEXT NOT NULL,
    support          REAL,
    supported        INTEGER NOT NULL,
    cited            TEXT NOT NULL DEFAULT '[]',    -- JSON list of source numbers
    citation_agrees  INTEGER,                       -- NULL: the sentence had no citation marker
    kind             TEXT NOT NULL DEFAULT 'claim', -- or 'not_a_claim' (AttributionReady.kind)
    PRIMARY KEY (turn_id, position)
);

CREATE TABLE attribution_spans (
    turn_id               INTEGER NOT NULL,
    attribution_position  INTEGER NOT NULL,
    position              INTEGER NOT NULL,
    chunk_id              TEXT NOT NULL,
    span_start            INTEGER NOT NULL,
    span_end              INTEGER NOT NULL,
    text                  TEXT NOT NULL,
    score                 REAL,
    PRIMARY KEY (turn_id, attribution_position, position),
    FOREIGN KEY (turn_id, attribution_position) REFERENCES attributions (turn_id, position) ON DELETE CASCADE
);
"""

_TURN_COLUMNS = ("id, conversation_id, position, run_id, question, answer, status, finish_reason, error_code, "
                 "error_type, error_message, backend, model, prompt_tokens, completion_tokens, started_at, "
                 "finished_at")


def _nan_if_null(value: float | None) -> float:
    return float("nan") if value is None else value


def _bool_or_none(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _contains(haystack: str | None, needle: str) -> int:
    """SQL function for search: case-insensitive beyond ASCII (SQLite's LIKE folds ASCII only)."""
    return int(haystack is not None and needle in haystack.casefold())


# ------------------------------------------------------------------------ store


class HistoryStore:
    """The conversation history database. Safe to call from any thread; every call blocks on disk I/O."""

    def __init__(self, path: Path | None = None, *, clock=time.time):
        self.path = Path(path) if path is not None else paths.data_dir() / HISTORY_FILE
        self._clock = clock
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot open the conversation history at {self.path} ({exc}). Check that the "
                               "folder exists and you may write to it.") from exc
        try:
            self._configure()
            self._upgrade()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _configure(self) -> None:
        conn = self._conn
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")  # the CLI may export while the window writes
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path} is not a readable history database ({exc}). Move it aside to "
                               "start a new history; the old file is left untouched.") from exc
        if mode.lower() != "wal" and str(self.path) != ":memory:":
            raise HistoryError(f"Cannot switch {self.path} to write-ahead logging (got '{mode}'). Keep the "
                               "history on a local disk, not a network share.")
        conn.create_function("sl_contains", 2, _contains, deterministic=True)

    def _upgrade(self) -> None:
        version = self._version()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{self.path} was written by a newer Sourcelight (history schema {version}; this "
                               f"version reads up to {SCHEMA_VERSION}). Update Sourcelight to open it.")
        if version == 0:
            with self._write() as conn:
                # Re-read under the write lock: another process (the window and
                # the CLI starting together) may have created the schema meanwhile.
                if self._version() == 0:
                    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                    if tables:
                        raise HistoryError(f"{self.path} is an SQLite file but not a Sourcelight history. Move "
                                           "it aside to start a new history.")
                    _run_script(conn, _SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        self._backup(version)
        while version < SCHEMA_VERSION:
            try:
                with self._write() as conn:
                    if self._version() == version:  # else another process did this step
                        _MIGRATIONS[version](conn)
                        conn.execute(f"PRAGMA user_version = {version + 1}")
            except (HistoryError, ValueError, KeyError, TypeError) as exc:
                raise HistoryError(f"Could not upgrade the history at {self.path} from schema {version} "
                                   f"({type(exc).__name__}: {exc}). Nothing was changed: the file still opens "
                                   "with the Sourcelight version that wrote it.") from exc
            version += 1

    def _version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _backup(self, version: int) -> None:
        """Copy the file before upgrading it: an upgrade is the one write that rewrites everything."""
        if str(self.path) == ":memory:":
            return
        target = self.path.with_name(f"{self.path.name}.v{version}-backup")
        with sqlite3.connect(target) as backup:
            self._conn.backup(backup)
        backup.close()

    # -- transactions --------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front, so no
        deadlock-prone upgrade from a read lock; a failure rolls everything back."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error("write to", exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error("write to", exc) from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one snapshot even while another process writes."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc

    def _error(self, verb: str, exc: sqlite3.Error) -> HistoryError:
        hint = ("Free some disk space and try again." if "full" in str(exc).lower() else
                "Another program may hold it locked; close other Sourcelight windows and try again.")
        return HistoryError(f"Cannot {verb} the conversation history at {self.path} ({exc}). {hint}")

    # -- conversations -------------------------------------------------------
    def create_conversation(self, title: str = "") -> int:
        """A new, empty conversation; an empty title is replaced by the first question's."""
        now = self._clock()
        with self._write() as conn:
            cur = conn.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)",
                               (" ".join(title.split()), now, now))
            return int(cur.lastrowid)

    def conversation(self, conversation_id: int) -> ConversationSummary:
        """One conversation, deleted or not; raises ConversationNotFound."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, "
                "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id), c.deleted_at "
                "FROM conversations c WHERE c.id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise ConversationNotFound(f"There is no conversation with id {conversation_id}. Check the id.")
        return _summary(row)

    def list_conversations(self, search: str | None = None) -> list[ConversationSummary]:
        """Conversations not in the trash, most recently active first.

        `search` keeps those where every word of it occurs (case-insensitive)
        in the title or in some question or answer.
        """
        sql = ["SELECT c.id, c.title, c.created_at, c.updated_at, "
               "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id), c.deleted_at "
               "FROM conversations c WHERE c.deleted_at IS NULL"]
        params: list[str] = []
        for term in (search or "").casefold().split():
            sql.append("AND (sl_contains(c.title, ?) OR EXISTS (SELECT 1 FROM turns t WHERE "
                       "t.conversation_id = c.id AND (sl_contains(t.question, ?) OR sl_contains(t.answer, ?))))")
            params += [term, term, term]
        sql.append("ORDER BY c.updated_at DESC, c.id DESC")
        with self._read() as conn:
            return [_summary(row) for row in conn.execute(" ".join(sql), params)]

    def rename(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise HistoryError("A conversation title cannot be empty. Type a title, or press Escape to keep "
                               "the old one.", code="invalid_title")
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete(self, conversation_id: int) -> None:
        """Move a conversation to the trash (undo with undo_delete; purge_deleted removes it for good)."""
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute("UPDATE conversations SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                         (self._clock(), conversation_id))

    def undo_delete(self, conversation_id: int) -> None:
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute("UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,))

    def purge_deleted(self, older_than: float | timedelta = 0.0) -> int:
        """Remove for good the conversations deleted at least `older_than` (seconds) ago; returns how many."""
        age = older_than.total_seconds() if isinstance(older_than, timedelta) else float(older_than)
        with self._write() as conn:
            cur = conn.execute("DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                               (self._clock() - age,))
            return cur.rowcount

    def _require(self, conn: sqlite3.Connection, conversation_id: int) -> str:
        row = conn.execute("SELECT title FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise ConversationNotFound(f"There is no conversation with id {conversation_id}. It may have been "
                                       "deleted for good; pick another one from the list.")
        return row[0]

    # -- turns -----------------------------------------------------------------
    def add_turn(self, conversation_id: int, turn: StoredTurn) -> StoredTurn:
        """Append `turn` to the conversation in one transaction; durable when this returns.

        Returns the turn as stored (with `id`, `position` and source
        fingerprints). A conversation in the trash still takes the turn (the
        run started before the delete), so an undo brings it back complete.
        """
        if turn.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {turn.status!r}")
        # Fingerprinting stats (and may hash) files: done before taking the
        # write lock so a slow disk never holds up other history calls.
        sources = turn.sources or tuple(fingerprint_source(s) for s in dict.fromkeys(c.source for c in turn.chunks))
        now = self._clock()
        finished = turn.finished_at if turn.finished_at is not None else now
        with self._write() as conn:
            title = self._require(conn, conversation_id)
            position = conn.execute("SELECT coalesce(max(position) + 1, 0) FROM turns WHERE conversation_id = ?",
                                    (conversation_id,)).fetchone()[0]
            cur = conn.execute(
                f"INSERT INTO turns ({_TURN_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (None, conversation_id, position, turn.run_id, turn.question, turn.answer, turn.status,
                 turn.finish_reason, turn.error_code, turn.error_type, turn.error_message, turn.backend or "",
                 turn.model or "", turn.prompt_tokens, turn.completion_tokens, turn.started_at, finished))
            turn_id = int(cur.lastrowid)
            self._insert_details(conn, turn_id, turn, sources)
            conn.execute("UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?",
                         (now, title or title_from_question(turn.question), conversation_id))
        return replace(turn, id=turn_id, conversation_id=conversation_id, position=position, sources=sources,
                       finished_at=finished)

    @staticmethod
    def _insert_details(conn: sqlite3.Connection, turn_id: int, turn: StoredTurn,
                        sources: Sequence[SourceFingerprint]) -> None:
        """Insert the turn's chunks, fingerprints, attributions and spans (inside the caller's transaction)."""
        conn.executemany(
            "INSERT INTO turn_chunks (turn_id, position, chunk_id, source, page, text, score, vector_score, "
            "lexical_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(turn_id, i, c.id, c.source, c.page, c.text, c.score, c.vector_score, c.lexical_score)
             for i, c in enumerate(turn.chunks)])
        conn.executemany(
            "INSERT INTO turn_sources (turn_id, source, size, mtime_ns, sha256) VALUES (?, ?, ?, ?, ?)",
            [(turn_id, f.source, f.size, f.mtime_ns, f.sha256) for f in sources])
        conn.executemany(
            "INSERT INTO attributions (turn_id, position, sentence_index, sentence_start, sentence_end, "
            "sentence_text, support, supported, cited, citation_agrees, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(turn_id, i, a.sentence.index, a.sentence.start, a.sentence.end, a.sentence.text, a.support,
              int(a.supported), json.dumps(list(a.cited)),
              None if a.citation_agrees is None else int(a.citation_agrees), a.kind)
             for i, a in enumerate(turn.attributions)])
        conn.executemany(
            "INSERT INTO attribution_spans (turn_id, attribution_position, position, chunk_id, span_start, "
            "span_end, text, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(turn_id, i, j, s.chunk_id, s.start, s.end, s.text, s.score)
             for i, a in enumerate(turn.attributions) for j, s in enumerate(a.sources)])

    def turn_count(self, conversation_id: int) -> int:
        with self._read() as conn:
            return conn.execute("SELECT count(*) FROM turns WHERE conversation_id = ?",
                                (conversation_id,)).fetchone()[0]

    def turns(self, conversation_id: int, offset: int = 0, limit: int | None = None) -> list[StoredTurn]:
        """The conversation's turns in order, rebuilt exactly as they were recorded.

        Page with `offset`/`limit`; a negative offset counts from the end
        (`offset=-20` gives the last 20 turns, the first screen of a long
        conversation). Raises ConversationNotFound for an unknown id.
        """
        with self._read() as conn:
            self._require(conn, conversation_id)
            if offset < 0:
                total = conn.execute("SELECT count(*) FROM turns WHERE conversation_id = ?",
                                     (conversation_id,)).fetchone()[0]
                offset = max(0, total + offset)
            rows = conn.execute(f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation_id = ? ORDER BY position "
                                "LIMIT ? OFFSET ?", (conversation_id, -1 if limit is None else limit,
                                                     offset)).fetchall()
            if not rows:
                return []
            # Positions are unique per conversation, so the page is exactly the
            # turns between its first and last position: the detail queries walk
            # the (conversation_id, position) index, with no list of ids to bind.
            window = (conversation_id, rows[0][2], rows[-1][2])
            join = ("JOIN turns t ON t.id = x.turn_id WHERE t.conversation_id = ? AND t.position BETWEEN ? AND ? "
                    "ORDER BY x.turn_id, x.position")
            chunks: dict[int, list[RetrievedChunk]] = {}
            for tid, cid, source, page, text, score, vs, ls in conn.execute(
                    "SELECT x.turn_id, x.chunk_id, x.source, x.page, x.text, x.score, x.vector_score, "
                    f"x.lexical_score FROM turn_chunks x {join}", window):
                chunks.setdefault(tid, []).append(RetrievedChunk(cid, source, page, text, _nan_if_null(score),
                                                                 _nan_if_null(vs), _nan_if_null(ls)))
            sources: dict[int, list[SourceFingerprint]] = {}
            for tid, source, size, mtime_ns, sha in conn.execute(
                    "SELECT x.turn_id, x.source, x.size, x.mtime_ns, x.sha256 FROM turn_sources x "
                    "JOIN turns t ON t.id = x.turn_id WHERE t.conversation_id = ? AND t.position BETWEEN ? AND ? "
                    "ORDER BY x.turn_id, x.rowid", window):
                sources.setdefault(tid, []).append(SourceFingerprint(source, size, mtime_ns, sha))
            spans: dict[tuple[int, int], list[SupportSpan]] = {}
            for tid, apos, cid, start, end, text, score in conn.execute(
                    "SELECT x.turn_id, x.attribution_position, x.chunk_id, x.span_start, x.span_end, x.text, "
                    "x.score FROM attribution_spans x JOIN turns t ON t.id = x.turn_id WHERE t.conversation_id = ? "
                    "AND t.position BETWEEN ? AND ? ORDER BY x.turn_id, x.attribution_position, x.position",
                    window):
                spans.setdefault((tid, apos), []).append(SupportSpan(cid, start, end, text, _nan_if_null(score)))
            attributions: dict[int, list[AttributionReady]] = {}
            for tid, apos, index, start, end, text, support, supported, cited, agrees, kind in conn.execute(
                    "SELECT x.turn_id, x.position, x.sentence_index, x.sentence_start, x.sentence_end, "
                    "x.sentence_text, x.support, x.supported, x.cited, x.citation_agrees, x.kind "
                    f"FROM attributions x {join}", window):
                attributions.setdefault(tid, []).append(AttributionReady(
                    sentence=AnswerSentence(index, start, end, text), sources=tuple(spans.get((tid, apos), ())),
                    support=_nan_if_null(support), supported=bool(supported), cited=tuple(json.loads(cited)),
                    citation_agrees=_bool_or_none(agrees), kind=kind))
        return [StoredTurn(
            id=r[0], conversation_id=r[1], position=r[2], run_id=r[3], question=r[4], answer=r[5], status=r[6],
            finish_reason=r[7], error_code=r[8], error_type=r[9], error_message=r[10], backend=r[11], model=r[12],
            prompt_tokens=r[13], completion_tokens=r[14], started_at=r[15], finished_at=r[16],
            chunks=tuple(chunks.get(r[0], ())), attributions=tuple(attributions.get(r[0], ())),
            sources=tuple(sources.get(r[0], ()))) for r in rows]

    def history_messages(self, conversation_id: int, limit_turns: int = 6) -> list[ChatMessage]:
        """The last `limit_turns` completed turns as user/assistant messages, oldest first, for a follow-up.

        Citation markers are taken out of the earlier answers: "[2]" there
        numbered *that* turn's sources, and a model shown them next to the new
        question's numbered sources tends to copy numbers that now point
        elsewhere. (The prompt builder also trims to a character budget.)
        """
        from core.attribution.text import strip_citations  # lazy: core.attribution pulls in numpy

        if limit_turns <= 0:
            return []
        with self._read() as conn:
            self._require(conn, conversation_id)
            rows = conn.execute("SELECT question, answer FROM turns WHERE conversation_id = ? AND status = "
                                "'completed' AND answer != '' ORDER BY position DESC LIMIT ?",
                                (conversation_id, limit_turns)).fetchall()
        messages: list[ChatMessage] = []
        for question, answer in reversed(rows):
            messages += [ChatMessage("user", question), ChatMessage("assistant", strip_citations(answer))]
        return messages


def _summary(row) -> ConversationSummary:
    return ConversationSummary(id=row[0], title=row[1] or UNTITLED, created_at=row[2], updated_at=row[3],
                               turn_count=row[4], deleted_at=row[5])


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run DDL statements inside the open transaction.

    `executescript` would COMMIT the transaction first, which would make a
    half-created schema or half-done migration possible.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement.strip()[:60]}")


# ------------------------------------------------------------------- migrations


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2, inside the caller's transaction (see the module docstring for what changed).

    It builds today's tables (`_SCHEMA`), not version 2's, because the rows
    are written with today's `_insert_details`; the later steps then find
    nothing to add.

    Schema 1 tables:
      conversations (id, title, created_at, updated_at)
      turns (id, conversation_id, position, question, answer, status, error_code, error_message,
             backend, created_at, chunks_json, attributions_json)
    where chunks_json held `asdict(RetrievedChunk)` objects and
    attributions_json held `event_to_json(AttributionReady)` objects. Ids and
    positions are kept, so links to a conversation stay valid.
    """
    conn.execute("ALTER TABLE turns RENAME TO turns_v1")
    conn.execute("ALTER TABLE conversations RENAME TO conversations_v1")
    _run_script(conn, _SCHEMA)
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at, deleted_at) "
                 "SELECT id, title, created_at, updated_at, NULL FROM conversations_v1")
    rows = conn.execute("SELECT id, conversation_id, position, question, answer, status, error_code, error_message, "
                        "backend, created_at, chunks_json, attributions_json FROM turns_v1 ORDER BY id").fetchall()
    for (tid, cid, position, question, answer, status, error_code, error_message, backend, created_at,
         chunks_json, attributions_json) in rows:
        # Schema 1 had only the saving time; it becomes the finish time, and
        # the start stays unknown rather than pretending the answer took 0 s.
        conn.execute(f"INSERT INTO turns ({_TURN_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                     (tid, cid, position, None, question, answer, status, None, error_code, None, error_message,
                      backend or "", "", None, None, None, created_at))
        chunks = tuple(RetrievedChunk(c["id"], c["source"], c["page"], c["text"], c["score"],
                                      c.get("vector_score", 0.0), c.get("lexical_score", 0.0))
                       for c in json.loads(chunks_json or "[]"))
        attributions = tuple(
            AttributionReady(sentence=AnswerSentence(**a["sentence"]),
                             sources=tuple(SupportSpan(**s) for s in a["sources"]), support=a["support"],
                             supported=a["supported"], cited=tuple(a.get("cited", ())),
                             citation_agrees=a.get("citation_agrees"), kind=a.get("kind", "claim"))
            for a in json.loads(attributions_json or "[]"))
        # No fingerprints: schema 1 did not record the files, so their state is "unknown".
        HistoryStore._insert_details(conn, tid, StoredTurn(question, answer, status, chunks, attributions), ())
    _carry_sequence(conn, "conversations_v1", "conversations")
    _carry_sequence(conn, "turns_v1", "turns")
    conn.execute("DROP TABLE turns_v1")
    conn.execute("DROP TABLE conversations_v1")


def _carry_sequence(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Keep AUTOINCREMENT's high-water mark across a table copy: ids purged before stay unused."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (old,)).fetchone()
    if row is None:
        return
    current = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (new,)).fetchone()
    if current is None:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (new, row[0]))
    elif current[0] < row[0]:
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (row[0], new))


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Schema 2 -> 3: attributions get `kind`; every earlier one was judged as a claim, hence the default.

    A file upgraded from schema 1 already has the column (see `_migrate_1_to_2`).
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(attributions)")}
    if "kind" not in columns:
        conn.execute("ALTER TABLE attributions ADD COLUMN kind TEXT NOT NULL DEFAULT 'claim'")


_MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}

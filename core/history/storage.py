"""`HistoryStore`: the SQLite file of conversations and turns (durability, threads, versions: the package docstring)."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from core import paths
from core.events import AnswerSentence, AttributionReady, RetrievedChunk, SupportSpan
from core.history.migrations import MIGRATIONS
from core.history.model import (HISTORY_FILE, STATUSES, UNTITLED, ConversationNotFound, ConversationSummary,
                                HistoryError, StoredTurn, title_from_question)
from core.history.schema import SCHEMA, TURN_COLUMNS, insert_details, run_script
from core.history.sources import SourceFingerprint, fingerprint_source
from core.llm.base import ChatMessage

SCHEMA_VERSION = 3


def _nan_if_null(value: float | None) -> float:
    return float("nan") if value is None else value


def _bool_or_none(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _contains(haystack: str | None, needle: str) -> int:
    """SQL function for search: case-insensitive beyond ASCII (SQLite's LIKE folds ASCII only)."""
    return int(haystack is not None and needle in haystack.casefold())


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
                    run_script(conn, SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        self._backup(version)
        while version < SCHEMA_VERSION:
            try:
                with self._write() as conn:
                    if self._version() == version:  # else another process did this step
                        MIGRATIONS[version](conn)
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
                f"INSERT INTO turns ({TURN_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (None, conversation_id, position, turn.run_id, turn.question, turn.answer, turn.status,
                 turn.finish_reason, turn.error_code, turn.error_type, turn.error_message, turn.backend or "",
                 turn.model or "", turn.prompt_tokens, turn.completion_tokens, turn.started_at, finished))
            turn_id = int(cur.lastrowid)
            self._insert_details(conn, turn_id, turn, sources)
            conn.execute("UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?",
                         (now, title or title_from_question(turn.question), conversation_id))
        return replace(turn, id=turn_id, conversation_id=conversation_id, position=position, sources=sources,
                       finished_at=finished)

    # The rows of a turn, as every schema version writes them (a method so a test can stall inside it).
    _insert_details = staticmethod(insert_details)

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
            rows = conn.execute(f"SELECT {TURN_COLUMNS} FROM turns WHERE conversation_id = ? ORDER BY position "
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

"""Upgrades of older history files, one step per schema version, each inside the caller's transaction."""
from __future__ import annotations

import json
import sqlite3

from core.events import AnswerSentence, AttributionReady, RetrievedChunk, SupportSpan
from core.history.model import StoredTurn
from core.history.schema import SCHEMA, TURN_COLUMNS, insert_details, run_script


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2, inside the caller's transaction (see the module docstring for what changed).

    It builds today's tables (`SCHEMA`), not version 2's, because the rows
    are written with today's `insert_details`; the later steps then find
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
    run_script(conn, SCHEMA)
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at, deleted_at) "
                 "SELECT id, title, created_at, updated_at, NULL FROM conversations_v1")
    rows = conn.execute("SELECT id, conversation_id, position, question, answer, status, error_code, error_message, "
                        "backend, created_at, chunks_json, attributions_json FROM turns_v1 ORDER BY id").fetchall()
    for (tid, cid, position, question, answer, status, error_code, error_message, backend, created_at,
         chunks_json, attributions_json) in rows:
        # Schema 1 had only the saving time; it becomes the finish time, and
        # the start stays unknown rather than pretending the answer took 0 s.
        conn.execute(f"INSERT INTO turns ({TURN_COLUMNS}) VALUES ({', '.join('?' * 17)})",
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
        insert_details(conn, tid, StoredTurn(question, answer, status, chunks, attributions), ())
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


MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}

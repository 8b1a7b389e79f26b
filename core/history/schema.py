"""Today's tables, and the statements every schema version shares (DDL in a transaction, a turn's rows)."""
from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from core.history.model import StoredTurn
from core.history.sources import SourceFingerprint

# Today's tables. A fresh file gets them at once; so does a schema-1 file (its
# upgrade step copies rows with today's `insert_details`), which is why later
# steps only add what a file lacks.
SCHEMA = """
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

TURN_COLUMNS = ("id, conversation_id, position, run_id, question, answer, status, finish_reason, error_code, "
                 "error_type, error_message, backend, model, prompt_tokens, completion_tokens, started_at, "
                 "finished_at")


def run_script(conn: sqlite3.Connection, script: str) -> None:
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


def insert_details(conn: sqlite3.Connection, turn_id: int, turn: StoredTurn,
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

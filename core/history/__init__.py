"""Conversation history: every turn saved as it happens, reopened exactly as it was.

A turn is one question and its answer together with everything the window
needs to show it again days later: the retrieved chunks *as they were* (their
text is what the sources panel shows, even after the file changed or left the
index), every attribution with its support spans, the backend and model, the
outcome (completed, failed, cancelled) and timestamps. `TurnRecorder` builds a
`StoredTurn` from the run's one `Answer` state (`core.answer.state`, folded from the
event stream every consumer reads); `HistoryStore.add_turn` writes it in one
transaction, and `StoredTurn.answer_state()` folds a stored turn back into it.

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
conversations so a delete can be undone. Version 3 (`schema.SCHEMA`) records
each attribution's `kind`, so a sentence that claims nothing is shown again
as "not a claim" rather than as unsupported; attributions saved before it
were all judged as claims, so they read back as "claim".

Blocking: every method does disk I/O (`add_turn` also fsyncs and may hash
source files), so the GUI calls them from a worker thread, never the event loop.

The package: `model` (StoredTurn, ConversationSummary, errors), `sources`
(file fingerprints and their state), `recorder` (TurnRecorder), `schema`
(today's tables and the rows of a turn), `migrations` (older files, step by
step) and `storage` (HistoryStore). Everything is importable from here.
"""
from core.history.model import (HISTORY_FILE, STATUSES, TITLE_CHARS, UNTITLED, ConversationNotFound,
                                ConversationSummary, HistoryError, StoredTurn, title_from_question)
from core.history.recorder import TurnRecorder
from core.history.sources import (HASH_LIMIT_BYTES, SourceFingerprint, SourceState, fingerprint_source, source_note,
                                  source_state)
from core.history.storage import SCHEMA_VERSION, HistoryStore

__all__ = ["HASH_LIMIT_BYTES", "HISTORY_FILE", "SCHEMA_VERSION", "STATUSES", "TITLE_CHARS", "UNTITLED",
           "ConversationNotFound", "ConversationSummary", "HistoryError", "HistoryStore", "SourceFingerprint",
           "SourceState", "StoredTurn", "TurnRecorder", "fingerprint_source", "source_note", "source_state",
           "title_from_question"]

"""A document is indexed all or nothing: what is not listed is never searched, stored or removable.

Real ChromaDB in a temporary folder, the real bundled embedder. The kill
cases (SIGKILL and SIGTERM of a child at several points of a large file and of
a folder) are fault cases: tests/faults runs them (`core.faults.cancellation`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import core.ingest.ingestor as ingest_module
from core.ingest.chunking import chunk_id
from core.ingest.ingestor import Ingestor, file_hash, prepare
from core.answer.lexical import LexicalIndex
from core.answer.retrieval import Retriever
from core.ingest.store import ChunkStore, DocumentRecord

ROOT = Path(__file__).resolve().parents[2]
OTTER = "The otter sanctuary at Wrexley feeds its otters smoked sprats at noon."
OTTER_QUESTION = "What do the otters at Wrexley eat?"


def _texts(store) -> str:
    return " ".join(t for _ids, texts in store.iter_chunk_texts() for t in texts)


def _search(store, embedder, lexical_dir: Path, question: str) -> list[str]:
    """The files whose chunks are retrieved for `question` (vector and BM25, as `ask` does)."""
    hits = Retriever(store, embedder, LexicalIndex(store, lexical_dir)).retrieve(question, 5)
    return sorted({h.file_name for h in hits})


def _stored_rows(store) -> tuple[int, int]:
    return store.chunk_count(), store.sentence_count()


def _listed_rows(store) -> tuple[int, int]:
    docs = store.documents()
    return sum(d.chunks for d in docs), sum(d.sentences for d in docs)


def _prepared_with_vectors(path: Path, embedder):
    """A file split as ingest splits it (with a fresh version), and its chunk and sentence vectors."""
    prepared = prepare(path, file_hash(path), chunk_chars=300, overlap=1)
    return prepared, embedder.encode([c.text for c in prepared.chunks]), embedder.encode(
        [s.text for s in prepared.sentences])


def test_a_document_is_not_visible_anywhere_until_it_is_complete(tmp_path, embedder):
    store = ChunkStore(tmp_path / "index")
    path = tmp_path / "otters.txt"
    path.write_text(OTTER + " Visitors may watch from the bridge. The sanctuary closes at dusk.")
    prepared, chunk_vectors, sentence_vectors = _prepared_with_vectors(path, embedder)
    version = prepared.record.version
    store.begin_document(prepared.record.doc_key, version)
    store.add_records(prepared.chunks, chunk_vectors, prepared.sentences, sentence_vectors, version=version)
    # Every chunk and sentence is stored, but the document is not complete yet:
    assert _stored_rows(store) == (prepared.record.chunks, prepared.record.sentences)
    assert store.documents() == []
    assert _search(store, embedder, tmp_path / "lexical", OTTER_QUESTION) == []
    assert _search(store, embedder, tmp_path / "lexical", "sprats Wrexley") == []
    assert store.get_chunks([c.id for c in prepared.chunks])[0] == []
    assert "sprats" not in _texts(store)
    assert not store.remove_document(prepared.record.doc_key)  # "not in the index", and it is not

    store.commit_document(prepared.record)
    assert [d.file_name for d in store.documents()] == ["otters.txt"]
    assert _search(store, embedder, tmp_path / "lexical2", OTTER_QUESTION) == ["otters.txt"]
    assert _stored_rows(store) == _listed_rows(store)


def test_cancelling_a_large_file_leaves_nothing_and_its_old_version_untouched(tmp_path, embedder, monkeypatch):
    """Re-adding a changed file: the old version stays searchable until the new one is complete."""
    monkeypatch.setattr(ingest_module, "PART_TEXTS", 16)  # a small file goes through the part-by-part write
    store = ChunkStore(tmp_path / "index")
    path = tmp_path / "sanctuary.txt"
    path.write_text(OTTER + " The otters sleep in a holt by the river. " * 2)
    assert Ingestor(store, embedder, chunk_chars=120).ingest([path]).indexed == [str(path)]
    old = store.documents()[0]

    path.write_text(" ".join(f"Keeper {i} now feeds the otters trout, not sprats, on day {i}." for i in range(60)))
    cancel = threading.Event()
    written = []

    def progress(p):
        written.append(p.chunks_written)
        if p.chunks_written > 0:
            cancel.set()  # part of the new version is stored

    report = Ingestor(store, embedder, chunk_chars=120).ingest([path], progress=progress, cancel=cancel)
    assert report.cancelled and report.indexed == [] and max(written) > 0
    assert store.documents() == [old]  # same hash, same version: the old one, whole
    assert "trout" not in _texts(store) and "sprats at noon" in _texts(store)
    assert _search(store, embedder, tmp_path / "lexical", "Which keeper feeds the otters trout?") == ["sanctuary.txt"]
    assert "trout" not in " ".join(c.text for c, _ in store.query(embedder.encode_one("otters trout keeper"), 10))
    # The cancelled write's rows are deleted in the background (Cancel returns at once); invisible meanwhile.
    assert store.wait_for_cleanup(timeout=60)
    assert _stored_rows(store) == (old.chunks, old.sentences)

    report = Ingestor(store, embedder, chunk_chars=120).ingest([path])
    assert report.indexed == [str(path)]
    new = store.documents()[0]
    assert new.content_hash != old.content_hash and "sprats at noon" not in _texts(store)
    assert _stored_rows(store) == (new.chunks, new.sentences)  # the old version's rows are gone


def test_cancelling_a_new_large_file_leaves_nothing_stored(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(ingest_module, "PART_TEXTS", 16)
    store = ChunkStore(tmp_path / "index")
    path = tmp_path / "log.txt"
    path.write_text(" ".join(f"Entry {i} logs {i * 3} otters at the weir." for i in range(80)))
    cancel = threading.Event()
    report = Ingestor(store, embedder, chunk_chars=120).ingest(
        [path], progress=lambda p: cancel.set() if p.chunks_written else None, cancel=cancel)
    assert report.cancelled and report.chunks == 0  # the summary counts nothing it did not keep
    assert store.documents() == []  # at once: nothing of the cancelled write is visible
    assert store.query(embedder.encode_one("otters at the weir"), 10) == []
    assert store.wait_for_cleanup(timeout=60)  # its rows are deleted in the background
    assert _stored_rows(store) == (0, 0)
    assert store.recover() == 0  # nothing was left for the clean-up


def test_a_write_that_fails_half_way_leaves_nothing_and_keeps_the_old_version(tmp_path, embedder):
    store = ChunkStore(tmp_path / "index")
    path = tmp_path / "otters.txt"
    path.write_text(OTTER)
    Ingestor(store, embedder).ingest([path])
    old = store.documents()[0]
    path.write_text("The sanctuary moved to Brill. Its otters now eat eels.")
    prepared, chunk_vectors, sentence_vectors = _prepared_with_vectors(path, embedder)
    store.open()
    real = store._chunks

    class FailingAdds:
        """The chunk collection, except that adding to it fails (the disk filled up)."""

        def add(self, **kwargs):
            raise RuntimeError("disk full")

        def __getattr__(self, name):
            return getattr(real, name)

    store._chunks = FailingAdds()  # the sentences are stored, then the chunks fail
    try:
        with pytest.raises(RuntimeError):
            store.write_documents([(prepared.record, prepared.chunks, chunk_vectors, prepared.sentences,
                                    sentence_vectors)])
    finally:
        store._chunks = real
    assert store.documents() == [old]
    assert "Brill" not in _texts(store) and _stored_rows(store) == (old.chunks, old.sentences)


def test_the_next_start_removes_what_a_killed_writer_left(tmp_path, embedder):
    """A child process stores half a document and is SIGKILLed; opening the store clears it."""
    index = tmp_path / "index"
    path = tmp_path / "otters.txt"
    path.write_text(OTTER + " The keepers count the otters every Sunday.")
    prepared, chunk_vectors, sentence_vectors = _prepared_with_vectors(path, embedder)
    np.save(tmp_path / "chunks.npy", chunk_vectors)
    np.save(tmp_path / "sentences.npy", sentence_vectors)
    script = f"""
import os, signal, sys, numpy as np
from pathlib import Path
from core.ingest.ingestor import file_hash, prepare
from core.ingest.store import ChunkStore
tmp = Path({str(tmp_path)!r})
prepared = prepare(tmp / "otters.txt", file_hash(tmp / "otters.txt"), chunk_chars=300, overlap=1)
store = ChunkStore(tmp / "index")
store.begin_document(prepared.record.doc_key, prepared.record.version)
store.add_records(prepared.chunks, np.load(tmp / "chunks.npy"), prepared.sentences, np.load(tmp / "sentences.npy"),
                  version=prepared.record.version)
print(store.chunk_count(), store.sentence_count(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert child.returncode == -9, child.stderr[-2000:]
    assert child.stdout.split() == [str(prepared.record.chunks), str(prepared.record.sentences)]

    store = ChunkStore(index)  # the next start
    assert store.documents() == [] and _stored_rows(store) == (0, 0)
    assert _search(store, embedder, tmp_path / "lexical", OTTER_QUESTION) == []


def test_rows_of_a_write_still_running_elsewhere_are_left_alone(tmp_path, embedder):
    """Another process opening the index while this one ingests must not delete its rows (only hide them)."""
    path = tmp_path / "otters.txt"
    path.write_text(OTTER)
    prepared, chunk_vectors, sentence_vectors = _prepared_with_vectors(path, embedder)
    writer = ChunkStore(tmp_path / "index")
    writer.begin_document(prepared.record.doc_key, prepared.record.version)
    writer.add_records(prepared.chunks, chunk_vectors, prepared.sentences, sentence_vectors,
                       version=prepared.record.version)
    other = ChunkStore(tmp_path / "index")  # its open runs the clean-up; the writer (this process) is alive
    assert other.recover() == 0 and other.documents() == []
    assert _search(other, embedder, tmp_path / "lexical", OTTER_QUESTION) == []
    assert not other.remove_document(prepared.record.doc_key)  # and removing it spares the running write
    writer.commit_document(prepared.record)
    assert [d.file_name for d in other.documents()] == ["otters.txt"]
    assert _search(other, embedder, tmp_path / "lexical2", OTTER_QUESTION) == ["otters.txt"]
    assert _stored_rows(other) == _listed_rows(other)
    # The writer replaces it; the other store follows (its memory of the old version is not trusted).
    path.write_text("The otters of Wrexley now eat eels, not sprats.")
    Ingestor(writer, embedder, chunk_chars=300).ingest([path])
    hits = other.query(embedder.encode_one(OTTER_QUESTION), 5)
    assert [c.text for c, _ in hits] == ["The otters of Wrexley now eat eels, not sprats."]


def test_a_write_cleared_as_abandoned_is_not_committed_half_empty(tmp_path, embedder):
    """A write from another computer that went silent is cleared by others; its commit must then fail."""
    from core.errors import StoreError

    path = tmp_path / "otters.txt"
    path.write_text(OTTER)
    prepared, chunk_vectors, sentence_vectors = _prepared_with_vectors(path, embedder)
    writer = ChunkStore(tmp_path / "index")
    writer.begin_document(prepared.record.doc_key, prepared.record.version)
    writer.add_records(prepared.chunks, chunk_vectors, prepared.sentences, sentence_vectors,
                       version=prepared.record.version)
    staging_id = f"{prepared.record.doc_key}-{prepared.record.version}"
    writer._staging.update(ids=[staging_id], metadatas=[{"host": "another-computer", "beat": 0.0}])
    ChunkStore(tmp_path / "index").open()  # another process starts and takes it for dead
    assert _stored_rows(writer) == (0, 0)
    with pytest.raises(StoreError, match="Add it again"):
        writer.commit_document(prepared.record)
    assert writer.documents() == [] and _stored_rows(writer) == (0, 0)


def test_writer_liveness():
    from core.ingest.store import STALE_WRITE_S, _HOST, _OWN_START, _writer_alive

    now = time.time()
    me = {"host": _HOST, "pid": os.getpid(), "pstart": _OWN_START, "beat": now}
    assert _writer_alive(me, now)
    assert _writer_alive({**me, "beat": now - STALE_WRITE_S - 1}, now)  # silent (suspended?) but running
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True)
    assert not _writer_alive({**me, "pid": int(finished.stdout)}, now)  # its process is gone
    if _OWN_START:  # Linux: a reused pid (another start time) is not the writer
        assert not _writer_alive({**me, "pstart": str(int(_OWN_START) - 1)}, now)
    # Another computer's process cannot be asked: its heartbeat decides.
    assert _writer_alive({**me, "host": "another-computer", "pid": 1}, now)
    assert not _writer_alive({**me, "host": "another-computer", "beat": now - STALE_WRITE_S - 1}, now)


def _write_legacy_index(index: Path, embedder, committed: Path, ghost: Path) -> DocumentRecord:
    """Collections exactly as Sourcelight wrote them before versions: no "ver", ids from the content hash,
    no staging collection; `ghost` is what an ingest killed mid-file left (rows, no manifest)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(index), settings=ChromaSettings(anonymized_telemetry=False))
    make = lambda name: client.get_or_create_collection(  # noqa: E731
        f"default-{name}", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    chunks, sentences, documents = make("chunks"), make("sentences"), make("documents")
    record = None
    for path, commit in ((committed, True), (ghost, False)):
        prepared = prepare(path, file_hash(path), chunk_chars=300, overlap=1)
        key, content_hash = prepared.record.doc_key, prepared.record.content_hash
        ids = {c.id: chunk_id(key, content_hash, i) for i, c in enumerate(prepared.chunks)}
        sentence_ids = [f"{ids[s.chunk_id]}-{s.id.rsplit('-', 1)[1]}" for s in prepared.sentences]
        sentences.add(ids=sentence_ids, embeddings=embedder.encode([s.text for s in prepared.sentences]),
                      metadatas=[{"chunk_id": ids[s.chunk_id], "start": s.start, "end": s.end, "doc": key}
                                 for s in prepared.sentences])
        chunks.add(ids=[ids[c.id] for c in prepared.chunks],
                   embeddings=embedder.encode([c.text for c in prepared.chunks]),
                   metadatas=[{"source": c.source, "doc": key} for c in prepared.chunks],
                   documents=[c.text for c in prepared.chunks])
        if commit:
            r = prepared.record
            documents.add(ids=[key], embeddings=[[1.0] + [0.0] * 383],
                          metadatas=[{"source": r.source, "hash": r.content_hash, "chunks": r.chunks,
                                      "sentences": r.sentences, "ingested_at": r.ingested_at, "chunking": "300/1"}])
            record = r
    return record


def test_an_index_from_an_earlier_version_keeps_working_and_loses_its_ghosts(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    committed, ghost = docs / "otters.txt", docs / "herons.txt"
    committed.write_text(OTTER + " The sanctuary closes at dusk.")
    ghost.write_text("The heronry at Wrexley counts forty grey herons. Their nests sit in the alders.")
    record = _write_legacy_index(tmp_path / "index", embedder, committed, ghost)

    store = ChunkStore(tmp_path / "index")  # the first start of this version
    assert [d.file_name for d in store.documents()] == ["otters.txt"]
    assert _stored_rows(store) == (record.chunks, record.sentences)  # the killed ingest's rows are gone
    assert _search(store, embedder, tmp_path / "lexical", OTTER_QUESTION) == ["otters.txt"]
    chunks, _ = store.get_chunks([c for ids, _t in store.iter_chunk_texts() for c in ids])
    sentences, _ = store.sentences_for(chunks)
    assert OTTER in [s.text for s in sentences]  # evidence for attribution is still there

    ingestor = Ingestor(store, embedder, chunk_chars=300, overlap=1)
    report = ingestor.ingest([docs])
    assert report.unchanged == [str(committed)] and report.indexed == [str(ghost)]  # no re-ingest of old files
    committed.write_text("The otters moved to Brill in spring.")
    assert ingestor.ingest([committed]).indexed == [str(committed)]
    assert "smoked sprats" not in _texts(store) and "Brill" in _texts(store)
    assert _stored_rows(store) == _listed_rows(store)


def test_small_files_before_a_large_one_are_committed_before_it_is_written(tmp_path, embedder, monkeypatch):
    """Otherwise a kill during the large file (which can take hours) loses the small ones too."""
    monkeypatch.setattr(ingest_module, "PART_TEXTS", 16)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-otters.txt").write_text(OTTER)
    (docs / "b-log.txt").write_text(" ".join(f"Entry {i} logs {i * 3} herons at the weir." for i in range(80)))
    seen = []
    cancel = threading.Event()

    def progress(p):
        seen.append(json.dumps([p.files_done, p.current, p.chunks_written]))
        if p.current == "b-log.txt" and p.chunks_written > 1:
            cancel.set()  # part of the large file is stored

    store = ChunkStore(tmp_path / "index")
    report = Ingestor(store, embedder, chunk_chars=120).ingest([docs], progress=progress, cancel=cancel)
    assert report.cancelled and report.indexed == [str(docs / "a-otters.txt")], seen
    assert [d.file_name for d in store.documents()] == ["a-otters.txt"]
    assert store.wait_for_cleanup(timeout=60)  # the large file's rows go in the background
    assert _stored_rows(store) == _listed_rows(store)


def test_the_message_after_an_interruption_says_what_was_kept():
    from core.ingest.ingestor import IngestProgress, interrupted_message

    one_file = interrupted_message(IngestProgress(0, 1, "export-one-line.txt", 5120))
    assert "export-one-line.txt was not finished" in one_file and "nothing of it was added" in one_file
    assert "Everything" not in one_file
    assert "nothing was added" in interrupted_message(IngestProgress(0, 12, "a.pdf", 40))
    folder = interrupted_message(IngestProgress(3, 12, "d.pdf", 400))
    assert folder.startswith("Interrupted. 3 of 12 files were finished (those indexed are saved)")
    assert "run the same command again" in interrupted_message(None).lower()

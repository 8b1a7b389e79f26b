"""Ingest into a real ChromaDB (temporary directory) with the real bundled embedder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.ingest.chunking import document_key
from core.ingest.ingestor import Ingestor
from core.ingest.store import ChunkStore


@pytest.fixture
def store(tmp_path):
    s = ChunkStore(tmp_path / "index")
    s.open()
    return s


@pytest.fixture
def ingestor(store, embedder):
    return Ingestor(store, embedder, chunk_chars=300, overlap=1)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_folder_is_indexed_with_failures_reported_per_file(tmp_path, ingestor, store):
    docs = tmp_path / "docs"
    good = write(docs, "notes.md", "# Notes\n\nThe reactor was commissioned in 1998. It produces 40 MW.")
    write(docs, "sub/more.txt", "Bananas are yellow. Apples can be red or green.")
    write(docs, "empty.txt", "")
    write(docs, "binary.txt", bytes(range(256)) * 20)
    write(docs, "broken.pdf", b"%PDF-1.4\n1 0 obj<<>>\nthis is not a pdf")
    write(docs, "latin1.txt", "Caf\xe9 cr\xe8me is sold in Montr\xe9al.".encode("latin-1"))
    progress = []
    report = ingestor.ingest([docs, tmp_path / "missing.txt"], progress=progress.append)
    assert sorted(Path(p).name for p in report.indexed) == ["latin1.txt", "more.txt", "notes.md"]
    failed = {Path(p).name: reason for p, reason in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt", "broken.pdf", "missing.txt"}
    assert all(len(reason) > 20 for reason in failed.values())  # each says what to do
    assert progress[-1].files_done == progress[-1].files_total == 7 - 1  # the missing path is not a file
    record = store.document(document_key(str(good)))
    assert record is not None and record.chunks >= 1
    # Latin-1 decoded, not mangled:
    chunks, _ = store.get_chunks([c for c in _chunk_ids(store) if "Montr" in _text(store, c)])
    assert "Montréal" in chunks[0].text


def _chunk_ids(store):
    return [i for ids, _ in store.iter_chunk_texts() for i in ids]


def _text(store, cid):
    return store.get_chunks([cid])[0][0].text


def test_reingest_unchanged_does_nothing_and_changed_replaces(tmp_path, ingestor, store):
    path = write(tmp_path, "a.txt", "First version. It has two sentences.")
    assert len(ingestor.ingest([path]).indexed) == 1
    before = _chunk_ids(store)
    again = ingestor.ingest([path])
    assert again.unchanged == [str(path)] and again.indexed == [] and _chunk_ids(store) == before
    write(tmp_path, "a.txt", "Second version. Entirely different words now. And a third sentence.")
    changed = ingestor.ingest([path])
    assert changed.indexed == [str(path)]
    texts = [t for _, ts in store.iter_chunk_texts() for t in ts]
    assert all("First version" not in t for t in texts) and any("Second version" in t for t in texts)


def test_re_adding_after_changing_the_chunk_size_splits_the_file_again(tmp_path, ingestor, store, embedder):
    path = write(tmp_path, "long.txt", " ".join(f"Sentence {i} says one small thing." for i in range(30)))
    ingestor.ingest([path])
    before = len(_chunk_ids(store))
    smaller = Ingestor(store, embedder, chunk_chars=120, overlap=1)
    assert smaller.ingest([path]).indexed == [str(path)]
    after = len(_chunk_ids(store))
    assert after > before and store.documents()[0].chunks == after
    assert smaller.ingest([path]).unchanged == [str(path)]  # same settings again: nothing to do


def test_sentences_are_stored_with_offsets_and_embeddings(tmp_path, ingestor, store, embedder):
    path = write(tmp_path, "s.txt", "Water boils at 100 degrees. Ice melts at zero. Steam is hot.")
    ingestor.ingest([path])
    chunks, _ = store.get_chunks(_chunk_ids(store))
    sentences, vectors = store.sentences_for(chunks)
    assert [s.text for s in sentences] == ["Water boils at 100 degrees.", "Ice melts at zero.", "Steam is hot."]
    for s in sentences:
        chunk = next(c for c in chunks if c.id == s.chunk_id)
        assert chunk.text[s.start:s.end] == s.text
    expected = embedder.encode([s.text for s in sentences])
    assert np.allclose(vectors, expected, atol=1e-4)


def test_partial_write_without_manifest_is_redone(tmp_path, ingestor, store, embedder):
    """What a kill mid-file leaves behind (records, no manifest) is replaced on the next run."""
    path = write(tmp_path, "k.txt", "Killed halfway. The manifest was never written.")
    from core.ingest.ingestor import file_hash, prepare

    prepared = prepare(path, file_hash(path), chunk_chars=300, overlap=1)
    store.begin_document(prepared.record.doc_key)
    store.add_records(prepared.chunks, embedder.encode([c.text for c in prepared.chunks]), [], np.zeros((0, 384)))
    assert store.document(prepared.record.doc_key) is None
    report = ingestor.ingest([path])
    assert report.indexed == [str(path)]
    assert len(_chunk_ids(store)) == prepared.record.chunks  # no duplicates left over


def test_remove_document(tmp_path, ingestor, store):
    path = write(tmp_path, "r.txt", "Remove me. Please.")
    ingestor.ingest([path])
    assert store.remove_document(document_key(str(path)))
    assert store.documents() == [] and _chunk_ids(store) == []
    assert not store.remove_document(document_key(str(path)))


def test_same_named_files_given_by_relative_path_stay_two_documents(tmp_path, ingestor, store, monkeypatch):
    """`sourcelight ingest notes.txt` run in two project folders: two documents, stored by absolute path."""
    a = write(tmp_path / "project-a", "notes.txt", "Project A deploys on bare metal every Monday.")
    b = write(tmp_path / "project-b", "notes.txt", "Project B deploys on Kubernetes every Friday.")
    for folder in (a.parent, b.parent):
        monkeypatch.chdir(folder)
        assert ingestor.ingest([Path("notes.txt")]).indexed == [str(folder / "notes.txt")]
    assert sorted(d.source for d in store.documents()) == [str(a), str(b)]
    texts = " ".join(t for _, ts in store.iter_chunk_texts() for t in ts)
    assert "Project A" in texts and "Project B" in texts
    monkeypatch.chdir(b.parent)
    assert ingestor.ingest([Path("../project-b/notes.txt")]).unchanged == [str(b)]  # the same file, not a third


def test_kill_during_ingest_then_rerun_completes(tmp_path):
    """kill -9 in the middle of a real `sourcelight ingest`, then run it again."""
    docs = tmp_path / "many"
    for i in range(24):
        write(docs, f"doc{i:03d}.txt", " ".join(f"File {i} sentence {j} talks about topic {j * i}." for j in range(20)))
    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "core.cli", "ingest", str(docs)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    seen = b""
    while b" 1/24" not in seen and b" 2/24" not in seen:  # tqdm shows files done
        block = proc.stderr.read1(256)
        if not block:
            break
        seen += block
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, seen.decode(errors="replace")[-500:]
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "0 failed" in rerun.stdout
    store = ChunkStore(tmp_path / "home" / "index")
    docs_indexed = store.documents()
    assert len(docs_indexed) == 24
    assert sum(d.chunks for d in docs_indexed) == store.chunk_count()  # nothing half-written remains


def test_ingest_finishes_when_embedding_a_batch_outlasts_the_readers_end(tmp_path, store, embedder, monkeypatch):
    """A slow embed (a loaded machine) while the read-ahead queue is full must not lose the end of the files.

    The reader used to give up its end marker after one second of a full
    queue; the ingest then waited forever. Now every file is reported.
    """
    import threading

    import core.ingest.ingestor as ingest_module

    monkeypatch.setattr(ingest_module, "READ_AHEAD_ITEMS", 2)
    monkeypatch.setattr(ingest_module, "EMBED_BATCH_TEXTS", 1)  # the first file's end starts a batch
    first_batch_held = threading.Event()

    class SlowFirstBatch:
        """The real embedder, except that the first batch waits until the reader has filled the queue and ended."""

        def load(self):
            embedder.load()

        def encode(self, texts, batch_size=None):
            if not first_batch_held.is_set():
                first_batch_held.set()
                reader = next(t for t in threading.enumerate() if t.name == "sourcelight-ingest-reader")
                # Meanwhile the second file's two items fill the queue and the
                # reader reaches its end marker with no room for it.
                reader.join(timeout=3)
            return embedder.encode(texts, batch_size)

        def __getattr__(self, name):
            return getattr(embedder, name)

    docs = tmp_path / "docs"
    for i in range(2):
        write(docs, f"note{i}.md", f"Note {i} says the pump number {i} runs at {i * 10} litres a minute. " * 3)
    done = threading.Event()
    result = {}

    def run():
        result["report"] = Ingestor(store, SlowFirstBatch(), chunk_chars=300, overlap=1).ingest([docs])
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "the ingest never finished"
    assert sorted(Path(p).name for p in result["report"].indexed) == ["note0.md", "note1.md"]

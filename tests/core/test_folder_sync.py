"""Folders stay in sync: gone files leave the index, unsupported files are counted, failures remembered.

Real ChromaDB in a temporary directory, the real bundled embedder, real files.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.ingest import documents
from core.ingest.chunking import document_key
from core.engine import Engine
from core.ingest.ingestor import Ingestor, describe_types
from core.settings import Settings
from core.ingest.store import ChunkStore

NOTE = "The heron nests by the north pond every spring. Volunteers count the nests in April."


@pytest.fixture
def store(tmp_path):
    s = ChunkStore(tmp_path / "index")
    s.open()
    return s


@pytest.fixture
def ingestor(store, embedder):
    return Ingestor(store, embedder, chunk_chars=300, overlap=1)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def sources(store) -> list[str]:
    return [d.source for d in store.documents()]


def test_re_adding_a_folder_removes_documents_whose_files_are_gone_and_says_so(tmp_path, ingestor, store):
    docs = tmp_path / "docs"
    keep = write(docs / "keep.md", NOTE)
    gone = write(docs / "sub" / "gone.txt", "The otters left the weir in May. Nobody saw them go.")
    elsewhere = write(tmp_path / "other" / "elsewhere.txt", "Sprats are smoked in Brill. They sell well.")
    assert len(ingestor.ingest([docs, elsewhere]).indexed) == 3
    gone.unlink()
    report = ingestor.ingest([docs])
    assert report.removed == [str(gone)]
    assert "1 removed (file gone)" in report.summary()
    assert sorted(sources(store)) == sorted([str(keep), str(elsewhere)])  # a file outside the folder stays
    assert all("otters" not in t for _ids, texts in store.iter_chunk_texts() for t in texts)
    # Nothing else is gone: adding the folder again removes nothing more.
    assert ingestor.ingest([docs]).removed == []


def test_a_file_that_cannot_be_looked_at_is_not_taken_for_gone(tmp_path, ingestor, store, monkeypatch):
    docs = tmp_path / "docs"
    write(docs / "a.md", NOTE)
    locked = write(docs / "b.txt", "The ferry runs twice a day in winter. It stops in storms.")
    ingestor.ingest([docs])
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    report = ingestor.ingest([docs])
    assert report.removed == []
    assert str(locked) in sources(store)


def test_unsupported_files_in_folders_are_counted_by_type(tmp_path, ingestor):
    docs = tmp_path / "docs"
    write(docs / "notes.md", NOTE)
    for i in range(3):
        write(docs / f"sheet{i}.xlsx", b"PK\x03\x04 not really")
    for i in range(12):
        write(docs / "pictures" / f"p{i:02d}.PNG", b"\x89PNG")
    write(docs / "Makefile", "all:\n")
    write(docs / ".hidden.xlsx", b"hidden files are not counted")
    report = ingestor.ingest([docs])
    assert report.skipped_types == {".png": 12, ".xlsx": 3, "": 1}
    assert describe_types(report.skipped_types) == ".png: 12, .xlsx: 3, no extension: 1"
    assert "16 of unsupported types skipped (.png: 12, .xlsx: 3, no extension: 1)" in report.summary()


def test_a_file_that_failed_is_not_parsed_again_until_it_changes(tmp_path, ingestor, store, monkeypatch):
    docs = tmp_path / "docs"
    write(docs / "good.md", NOTE)
    broken = write(docs / "broken.pdf", b"%PDF-1.4\n1 0 obj<<>>\nthis is not a pdf")
    first = ingestor.ingest([docs])
    assert str(broken) in dict(first.failed) and first.not_retried == []

    calls: list[Path] = []
    real_extract = documents.extract
    monkeypatch.setattr(documents, "extract", lambda path, **options: calls.append(path) or real_extract(path, **options))
    second = ingestor.ingest([docs])
    assert calls == []  # neither parsed again (good.md is unchanged by its hash, broken.pdf by its memory)
    assert second.not_retried == [str(broken)]
    reason = dict(second.failed)[str(broken)]
    assert "damaged" in reason and "not read again" in reason
    assert "1 failed (1 unchanged since they last failed)" in second.summary()

    # Changed: read again (and fails again, freshly).
    write(broken, b"%PDF-1.4\n1 0 obj<<>>\nstill not a pdf, but different")
    third = ingestor.ingest([docs])
    assert calls == [broken] and third.not_retried == []

    # Fixed: indexed, and the memory of its failure is gone.
    write(broken, "Now it is a plain text file with a .pdf name? No: replaced by a text file.".encode())
    broken.rename(broken.with_suffix(".txt"))
    fixed = ingestor.ingest([docs])
    assert str(broken.with_suffix(".txt")) in fixed.indexed
    assert str(broken) not in store.failures()  # gone from the folder: forgotten


def test_a_failure_is_tried_again_when_the_reader_changes(tmp_path, ingestor, monkeypatch):
    from core.ingest import ingestor as ingest_module

    empty = write(tmp_path / "empty.txt", b"")
    assert ingestor.ingest([empty]).not_retried == []
    assert ingestor.ingest([empty]).not_retried == [str(empty)]
    monkeypatch.setattr(ingest_module, "reader_fingerprint", lambda: "a-newer-reader")
    assert ingestor.ingest([empty]).not_retried == []


def test_passing_failures_such_as_a_missing_file_are_not_remembered(tmp_path, ingestor, store):
    missing = tmp_path / "missing.txt"
    report = ingestor.ingest([missing])
    assert report.failed and store.failures() == {}


def test_refresh_syncs_every_folder_added_before_and_keeps_a_missing_folders_documents(tmp_path, embedder):
    engine = Engine(Settings(), backend=_NoModel(), embedder=embedder, data_dir=tmp_path / "home",
                    index_sample_corpus=False)
    docs = tmp_path / "docs"
    usb = tmp_path / "usb"
    a = write(docs / "a.md", NOTE)
    b = write(docs / "b.txt", "The ferry runs twice a day in winter. It stops in storms.")
    on_usb = write(usb / "c.txt", "The lighthouse keeper logs every ship. The log is kept in the tower.")
    single = write(tmp_path / "single.txt", "A single file added on its own. It mentions kettles.")
    engine.ingest([docs, usb, single])
    assert sorted(engine.store.folders()) == sorted([str(docs), str(usb)])

    b.unlink()
    new = write(docs / "new.md", "A new note about the heron count. Forty nests this year.")
    single.unlink()
    usb.rename(tmp_path / "unplugged")  # the whole folder is missing: its documents stay
    report = engine.refresh()
    assert sorted(report.removed) == sorted([str(b), str(single)])
    assert report.indexed == [str(new)]
    assert str(a) in report.unchanged
    assert any(str(usb) in reason and "stay in the index" in reason for _p, reason in report.failed)
    listed = {d.source for d in engine.documents()}
    assert listed == {str(a), str(new), str(on_usb)}


def test_the_sample_guide_folder_is_not_remembered_as_added(tmp_path, embedder):
    engine = Engine(Settings(), backend=_NoModel(), embedder=embedder, data_dir=tmp_path / "home")
    engine.load()
    assert engine.documents() and engine.store.folders() == []


class _NoModel:
    description = "none"

    async def stream(self, messages, *, max_tokens, temperature):  # pragma: no cover - never called
        raise AssertionError("no generation in these tests")
        yield

    async def aclose(self) -> None:
        return None


def test_doc_key_of_removed_documents_is_gone_from_the_store(tmp_path, ingestor, store):
    docs = tmp_path / "docs"
    gone = write(docs / "gone.md", NOTE)
    ingestor.ingest([docs])
    gone.unlink()
    ingestor.ingest([docs])
    assert store.document(document_key(str(gone))) is None

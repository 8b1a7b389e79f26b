"""The smaller ingest items: byte progress with time left, library warnings attached to their file,
one path per failure line, binary units, and honest messages after an interruption."""
from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import pytest

from core.ingest import documents
from core.ingest import ingestor as ingest_module
from core.ingest.ingestor import IngestProgress, Ingestor, failure_line, interrupted_message, library_warning
from core.ingest.store import ChunkStore
from core.units import format_bytes, format_duration
from tests.core.test_documents import THREE_PAGES, make_pdf


@contextlib.contextmanager
def bare_logging():
    """The root logger as a plain script has it: no handlers (pytest adds its capture handlers when
    the test body starts), so Python's last-resort handler prints warnings raw to stderr."""
    root = logging.getLogger()
    saved = root.handlers
    root.handlers = []
    try:
        yield
    finally:
        root.handlers = saved


@pytest.fixture
def store(tmp_path):
    s = ChunkStore(tmp_path / "index")
    s.open()
    return s


def test_bytes_move_inside_one_large_file_with_an_estimate_of_the_time_left(tmp_path, store, embedder,
                                                                              monkeypatch):
    monkeypatch.setattr(ingest_module, "PART_TEXTS", 24)  # a "large" file: written in many parts
    monkeypatch.setattr(ingest_module, "_ETA_AFTER_S", 0.0)
    path = tmp_path / "log.txt"
    path.write_text(" ".join(f"Entry {i} logs {i * 3} herons at the weir." for i in range(120)), encoding="utf-8")
    size = path.stat().st_size
    seen: list[IngestProgress] = []
    report = Ingestor(store, embedder, chunk_chars=120).ingest([path], progress=seen.append)
    assert report.indexed == [str(path)]
    inside = [p.bytes_done for p in seen if p.files_done == 0 and p.current]
    # The bar moves while the file count still says 0 of 1.
    assert len({b for b in inside if 0 < b < size}) >= 3, inside
    assert inside == sorted(inside) and max(inside) <= size
    assert all(p.bytes_total == size for p in seen)
    assert seen[-1].bytes_done == size and seen[-1].fraction == 1.0
    estimates = [p.seconds_left for p in seen if p.files_done == 0 and p.current]
    assert any(e is not None and e > 0 for e in estimates)


def test_unchanged_files_leave_the_byte_total(tmp_path, store, embedder):
    path = tmp_path / "a.txt"
    path.write_text("The ferry runs twice a day in winter. It stops in storms.", encoding="utf-8")
    ingestor = Ingestor(store, embedder, chunk_chars=300)
    ingestor.ingest([path])
    seen: list[IngestProgress] = []
    ingestor.ingest([path], progress=seen.append)
    assert seen[-1].bytes_total == 0 and seen[-1].files_done == 1


def test_library_warnings_are_attached_to_their_file_not_printed(tmp_path, store, embedder, monkeypatch, capfd):
    noisy = tmp_path / "noisy.txt"
    noisy.write_text("The lighthouse keeper logs every ship. The log is kept in the tower.", encoding="utf-8")
    quiet = tmp_path / "quiet.txt"
    quiet.write_text("Sprats are smoked in Brill. They sell well.", encoding="utf-8")
    real_extract = documents.extract

    def extract(path, **options):
        if path.name == "noisy.txt":
            logging.getLogger("pypdf._reader").warning("Object 172 0 not defined.")
            warnings.warn("Multiple definitions in dictionary at byte 0x1f0", UserWarning)
        return real_extract(path, **options)

    monkeypatch.setattr(documents, "extract", extract)
    with bare_logging():
        report = Ingestor(store, embedder, chunk_chars=300).ingest([noisy, quiet])
    assert sorted(report.indexed) == sorted([str(noisy), str(quiet)])
    attached = dict(report.warnings)
    assert list(attached) == [str(noisy)]
    assert "pypdf" in attached[str(noisy)] and "Object 172 0 not defined." in attached[str(noisy)]
    assert "Multiple definitions in dictionary" in attached[str(noisy)]
    err = capfd.readouterr().err
    assert "Object 172" not in err and "Multiple definitions" not in err
    # The handler is gone afterwards: nothing of the ingest stays installed in the process.
    assert not any(isinstance(h, ingest_module._LibraryMessages) for h in logging.getLogger().handlers)


def test_other_threads_messages_still_reach_the_terminal_during_an_ingest(tmp_path, store, embedder, capfd):
    path = tmp_path / "a.txt"
    path.write_text("The ferry runs twice a day in winter. It stops in storms.", encoding="utf-8")

    def progress(p):  # runs on the caller's thread, not the reader's
        logging.getLogger("somelib").warning("a message from the main thread")

    with bare_logging():
        Ingestor(store, embedder, chunk_chars=300).ingest([path], progress=progress)
    assert "a message from the main thread" in capfd.readouterr().err


def test_a_pdf_with_a_wrong_cross_reference_offset_is_read_without_a_word(tmp_path, store, embedder, capfd):
    # pypdf's own test file with a wrong cross-reference offset (tests/core/data/pdf/README.md):
    # pypdf logged "Ignoring wrong pointing object 2 0" while opening it; pdfium, which reads
    # PDFs since, rebuilds the table without complaint, so there is nothing to tell the user.
    source = Path(__file__).parent / "data" / "pdf" / "toy.pdf"
    with bare_logging():
        report = Ingestor(store, embedder, chunk_chars=600).ingest([source])
    assert report.indexed == [str(source)], report.failed
    assert report.warnings == []
    assert capfd.readouterr().err == ""


def test_a_pdf_with_a_broken_page_gets_one_warning_line_and_nothing_raw(tmp_path, store, embedder, capfd):
    # pdfium reads the broken page as empty; pypdf, asked why, logs the zlib error on the reader
    # thread. The user gets the page warning once, with pypdf's reason, and no raw line.
    source = tmp_path / "damaged.pdf"
    source.write_bytes(make_pdf(THREE_PAGES, broken_pages=frozenset({3})))
    with bare_logging():
        report = Ingestor(store, embedder, chunk_chars=600).ingest([source])
    assert report.indexed == [str(source)], report.failed
    (path, warning), = report.warnings
    assert path == str(source)
    assert warning.startswith("The text of page(s) 3 could not be read (Error -3 while decompressing data")
    assert "Error -3" not in capfd.readouterr().err


def test_library_warning_dedupes_and_leaves_out_what_the_extractor_said():
    messages = [("pypdf", "Object 1 0 not defined."), ("pypdf", "Object 1 0 not defined."),
                ("pypdf", "broken stream"), ("pypdf", "xref one"), ("pypdf", "xref two"), ("pypdf", "xref three")]
    text = library_warning(messages, known=["x.pdf: page 2 could not be read (broken stream)"])
    assert text.startswith("pypdf reported 4 problems while reading it")
    assert "broken stream" not in text and "and 1 more" in text
    assert library_warning([], ()) is None


def test_failure_lines_name_the_path_once():
    path = "/home/ann/docs/empty.txt"
    assert failure_line(path, f"{path} is empty (0 bytes); add some text to it.") == \
        f"{path} is empty (0 bytes); add some text to it."
    assert failure_line(path, "Could not be removed.") == f"{path}: Could not be removed."


def test_sizes_are_labelled_in_binary_units():
    assert format_bytes(210 * 2**20) == "210 MiB"
    assert format_bytes(int(1.5 * 2**30)) == "1.5 GiB"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(10) == "10 bytes"
    assert format_duration(30) == "less than a minute"
    assert format_duration(170) == "about 3 min"
    assert format_duration(4800) == "about 1 h 20 min"


def test_the_message_after_ctrl_c_in_one_file_says_how_far_it_got_and_that_nothing_was_kept():
    message = interrupted_message(IngestProgress(0, 1, "dump.txt", 40, bytes_done=37 * 2**20,
                                                 bytes_total=100 * 2**20))
    assert message.startswith("Interrupted: dump.txt was not finished (37% of it had been read)")
    assert "nothing of it was added" in message and "Everything" not in message
    before_start = interrupted_message(None)
    assert "nothing was added" in before_start and "Everything" not in before_start


def test_the_bar_moves_while_a_long_pdf_is_still_being_read(tmp_path, store, embedder, monkeypatch):
    """Parsing a big PDF comes before its first chunk: the pages read move the bar, and a cancel ends it."""
    import shutil

    monkeypatch.setattr(ingest_module, "_ETA_AFTER_S", 0.0)
    corpus = Path(__file__).resolve().parent / "data" / "documents" / "files" / "pdf"
    path = tmp_path / "book.pdf"
    shutil.copy(corpus / "text-then-scanned-pages.pdf", path)  # 39 pages
    size = path.stat().st_size
    seen: list[IngestProgress] = []
    stored_at_report: list[int] = []
    report = Ingestor(store, embedder).ingest(
        [path], progress=lambda p: (seen.append(p), stored_at_report.append(store.chunk_count())))
    assert report.indexed == [str(path)]
    reading = [p.bytes_done for p, stored in zip(seen, stored_at_report)
               if p.files_done == 0 and p.current == "book.pdf" and stored == 0]
    assert len({b for b in reading if 0 < b < size}) >= 3, reading  # moved before anything was stored
    assert reading == sorted(reading)
    assert seen[-1].bytes_done == size


def test_a_cancel_is_honoured_between_pages_of_a_pdf(tmp_path):
    """The read of a long PDF stops at the next page once the user cancels."""
    from core.ingest.ingestor import iter_parts
    from core.ingest.segment import Stopped

    corpus = Path(__file__).resolve().parent / "data" / "documents" / "files" / "pdf"
    pages_seen = []
    asked = iter(range(1000))

    def should_stop():
        pages_seen.append(next(asked))
        return len(pages_seen) > 5

    with pytest.raises(Stopped):
        list(iter_parts(corpus / "text-then-scanned-pages.pdf", "hash", chunk_chars=900, overlap=1,
                        should_stop=should_stop))
    assert len(pages_seen) == 6  # stopped at the sixth page, not at the end of the book

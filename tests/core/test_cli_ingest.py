"""`sourcelight ingest | refresh | documents` as a user runs them: real processes, real files.

What is checked is what the terminal shows: one path per failure line, the
removed and skipped lines, library warnings attached to their file (never raw
on stderr), a progress bar that moves inside one large file with sizes in
binary units and the time left, an honest message after Ctrl+C, and a quiet
end when the reader of a pipe goes away.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.core.test_documents import THREE_PAGES, make_pdf

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOURCELIGHT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_ingest_then_refresh_report_what_happened_naming_each_path_once(tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    # Page 3's content stream is not the zlib data it claims: pdfium reads it as empty, and pypdf,
    # asked why, logs "Error -3 while decompressing data" on the reader thread.
    (docs / "damaged.pdf").write_bytes(make_pdf(THREE_PAGES, broken_pages=frozenset({3})))
    shutil.copy(DATA / "docx" / "footnotes.docx", docs / "footnotes.docx")
    (docs / "notes.md").write_text("The heron nests by the north pond. Volunteers count the nests in April.\n")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / "scan.PNG").write_bytes(b"\x89PNG")
    (docs / "budget.xlsx").write_bytes(b"PK")
    home = tmp_path / "home"

    first = cli(home, "ingest", str(docs))
    assert first.returncode == 0, first.stderr[-2000:]
    out = first.stdout
    assert "Indexed 3 file(s)" in out
    failed = [line for line in out.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 1 and failed[0].count(str(docs / "empty.txt")) == 1
    assert "Skipped 3 file(s) of types Sourcelight does not read: .png: 2, .xlsx: 1." in out
    warning, = [line for line in out.splitlines() if line.startswith("  warning: ")]
    assert warning.count(str(docs / "damaged.pdf")) == 1 and "page(s) 3 could not be read" in warning
    assert "Error -3 while decompressing data" in warning
    # pypdf's log line went into the file's warning line, not raw into the progress bar.
    assert "Error -3" not in first.stderr
    assert "MiB" in first.stderr or "KiB" in first.stderr

    # The rest runs in this process (the same `main`), which saves loading torch three more times.
    monkeypatch.setenv("SOURCELIGHT_HOME", str(home))
    from core.cli import main

    # The empty file failed for a reason of its own: the next run does not read it again.
    (docs / "notes.md").unlink()
    assert main(["ingest", "--quiet", str(docs)]) == 0
    second = capsys.readouterr().out
    assert f"  removed: {docs / 'notes.md'}" in second
    assert "Removed 1 document(s) whose files are gone from their folder" in second
    assert "1 of the failed files have not changed since they last failed" in second

    (docs / "footnotes.docx").unlink()
    assert main(["refresh", "--quiet"]) == 0
    assert f"  removed: {docs / 'footnotes.docx'}" in capsys.readouterr().out
    assert main(["documents"]) == 0
    listed = capsys.readouterr().out
    assert "damaged.pdf" in listed and "footnotes.docx" not in listed and "notes.md" not in listed


def test_documents_into_a_closed_pipe_ends_quietly(tmp_path):
    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    # `sourcelight documents | head -0`: the reader is gone before anything is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "core.cli", "documents"], env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=300, cwd=ROOT)
    finally:
        os.close(write_end)
    assert proc.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit
    assert proc.returncode == 141


_SMALL_PARTS_CLI = """
import sys
import core.cli, core.ingest.ingestor
core.ingest.ingestor.PART_TEXTS = 64
sys.exit(core.cli.main(sys.argv[1:]))
"""


def test_ctrl_c_inside_one_large_file_shows_how_far_it_got_and_keeps_nothing_of_it(tmp_path):
    big = tmp_path / "dump.txt"
    with open(big, "w", encoding="utf-8") as f:  # ~300 KiB of short sentences
        for i in range(4_000):
            f.write(f"Entry {i} records {i * 7 % 997} herons counted at the weir on day {i % 365}.\n")
    home = tmp_path / "home"
    env = {**os.environ, "SOURCELIGHT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    # Small parts, so the bar moves (and Ctrl+C lands) within seconds rather than after 1,024 texts.
    proc = subprocess.Popen([sys.executable, "-c", _SMALL_PARTS_CLI, "ingest", str(big)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 240
    # Wait until the bar has moved inside the file: a percentage above zero with bytes in binary units.
    while time.monotonic() < deadline:
        block = proc.stderr.read1(512)
        if not block:
            break
        seen += block
        tail = seen[-400:].decode(errors="replace")
        if " KiB of " in tail and " 0%|" not in tail.rsplit("Indexing", 1)[-1] and "0/1 files" in tail:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    text = (seen + err).decode(errors="replace")
    assert proc.returncode == 130, text[-2000:]
    assert "Interrupted: dump.txt was not finished (" in text and "% of it had been read)" in text
    assert "nothing of it was added" in text
    assert "Everything finished" not in text and "Traceback" not in text
    from core.ingest.store import ChunkStore

    assert ChunkStore(home / "index").documents() == []

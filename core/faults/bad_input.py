"""Bad input: files ingest cannot read, and questions that cannot be asked.

Every file case puts one bad file next to a good one and ingests both with
the real engine (real ChromaDB, real extraction, the bundled embedder). The
bad file must come back in `report.failed` with a message that names the
file and the next step; the good one must be indexed anyway (otherwise the
user lost it). Encodings that are merely unusual must index with the right
text. The 50 MB single-line file and the file that becomes unreadable run in
child processes (see `core.faults.children`).
"""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from core.faults.asking import ask, with_backend
from core.faults.base import GOOD_ANSWER, Checks, FaultContext, Result, case
from core.faults.scripted import ScriptedBackend

GOOD_DOC = ("# Field notes\n\nThe heron nests by the north pond every spring. "
            "Volunteers count the nests in April and write the numbers in the blue ledger.\n")


def _pair(ctx: FaultContext, name: str, bad_name: str, write_bad) -> tuple[Checks, object, Path, str]:
    """Ingest a bad file next to a good one; returns (checks, report, bad path, message for the bad file)."""
    folder = ctx.dir(name)
    good = folder / "good-notes.md"
    good.write_text(GOOD_DOC, encoding="utf-8")
    bad = folder / bad_name
    write_bad(bad)
    engine = ctx.shared_engine()
    report = engine.ingest([bad, good])
    c = Checks()
    failed = dict(report.failed)
    message = failed.get(str(bad), "")
    c.fact(f"report: {report.summary()}")
    c.expect(str(bad) in failed, f"{bad.name} was not reported as failed")
    c.expect(bad.name in message, "the message does not name the file")
    c.lose(str(good) not in report.indexed, "the good file ingested with the bad one was not indexed")
    c.expect(engine.store.document(_key(good)) is not None, "the good file is not in the index")
    return c, report, bad, message


def _key(path: Path) -> str:
    from core.ingest.chunking import document_key

    return document_key(str(path))


def _texts(engine) -> str:
    return "\n".join(t for _ids, texts in engine.store.iter_chunk_texts() for t in texts)


@case("empty_file", "bad_input", hint="add some text to it or remove it from the list")
def empty_file(ctx: FaultContext) -> Result:
    """A 0-byte .txt file."""
    c, _, _, message = _pair(ctx, "empty", "empty.txt", lambda p: p.write_bytes(b""))
    return c.result(message)


@case("binary_with_text_extension", "bad_input", hint="check that it is the file you meant")
def binary_with_text_extension(ctx: FaultContext) -> Result:
    """Random bytes (an image, an executable) saved as notes.md."""
    c, _, _, message = _pair(ctx, "binary", "photo-not-notes.md",
                             lambda p: p.write_bytes(bytes(range(256)) * 64 + os.urandom(4096)))
    return c.result(message)


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF with real text (Helvetica), xref offsets computed."""
    ops = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    stream = ops.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PDF_LINES = ["The quarterly budget grew by seven percent.", "Inflation stayed calm all year."]


@case("truncated_pdf", "bad_input", hint="fetch it again")
def truncated_pdf(ctx: FaultContext) -> Result:
    """A PDF cut off at 60% of its bytes (an interrupted download)."""
    data = make_pdf(PDF_LINES)
    c, _, _, message = _pair(ctx, "truncated-pdf", "budget.pdf", lambda p: p.write_bytes(data[: len(data) * 6 // 10]))
    return c.result(message)


@case("corrupt_pdf", "bad_input", hint="re-export it")
def corrupt_pdf(ctx: FaultContext) -> Result:
    """A file that starts like a PDF and continues as garbage."""
    c, _, _, message = _pair(ctx, "corrupt-pdf", "scan.pdf",
                             lambda p: p.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40))
    return c.result(message)


@case("encrypted_pdf", "bad_input", hint="open it with its password")
def encrypted_pdf(ctx: FaultContext) -> Result:
    """A PDF encrypted (AES-128) with a user password."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(make_pdf(PDF_LINES)))
    writer.encrypt(user_password="s3cret", owner_password="owner-s3cret", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    c, _, _, message = _pair(ctx, "encrypted-pdf", "salaries.pdf", lambda p: p.write_bytes(buffer.getvalue()))
    return c.result(message)


def _encoded(ctx: FaultContext, name: str, file_name: str, data: bytes, expect: str) -> Result:
    folder = ctx.dir(name)
    path = folder / file_name
    path.write_bytes(data)
    engine = ctx.shared_engine()
    report = engine.ingest([path])
    c = Checks()
    c.fact(f"report: {report.summary()}")
    c.lose(str(path) not in report.indexed, f"{file_name} was not indexed: {dict(report.failed).get(str(path))}")
    c.expect(expect in _texts(engine), f"the indexed text does not contain {expect!r} (wrong decoding)")
    return c.result(dict(report.failed).get(str(path), ""))


@case("latin1_text", "bad_input")
def latin1_text(ctx: FaultContext) -> Result:
    """Western European text saved as Latin-1 (not UTF-8): it must index with the right characters."""
    text = "Le café du théâtre ouvre à huit heures. La crème brûlée coûte trois euros.\n"
    return _encoded(ctx, "latin1", "menu-latin1.txt", text.encode("latin-1"), "café du théâtre")


@case("utf16_with_bom", "bad_input")
def utf16_with_bom(ctx: FaultContext) -> Result:
    """Text saved by Notepad as 'Unicode' (UTF-16 LE with a byte-order mark)."""
    text = "Die Brücke über den Fluß wird im März geschlossen. Umleitungen sind ausgeschildert.\r\n"
    return _encoded(ctx, "utf16", "strassen-utf16.txt", b"\xff\xfe" + text.encode("utf-16-le"),
                    "Brücke über den Fluß")


@case("non_ascii_path", "bad_input")
def non_ascii_path(ctx: FaultContext) -> Result:
    """A file in a folder whose names use accents, CJK and an emoji."""
    folder = ctx.dir("non-ascii") / "Dokumente – 日本語"
    folder.mkdir()
    path = folder / "Ünïcödé 📄 notes.md"
    path.write_text(GOOD_DOC, encoding="utf-8")
    engine = ctx.shared_engine()
    report = engine.ingest([folder])
    c = Checks()
    c.fact(f"report: {report.summary()}")
    c.lose(str(path) not in report.indexed, f"the file was not indexed: {report.failed}")
    record = engine.store.document(_key(path))
    c.expect(record is not None and record.source == str(path), "the stored source path differs from the file's")
    c.expect(record is not None and record.file_name == path.name, "the file name shown is not the file's name")
    return c.result(dict(report.failed).get(str(path), ""))


@case("symlink_loop", "bad_input", hint="or remove it, and add it again")
def symlink_loop(ctx: FaultContext) -> Result:
    """A folder containing a link to itself, a link that points at itself, and a dangling link."""
    folder = ctx.dir("symlinks") / "papers"
    folder.mkdir()
    good = folder / "notes.md"
    good.write_text(GOOD_DOC, encoding="utf-8")
    (folder / "again").symlink_to(folder, target_is_directory=True)  # papers/again -> papers
    (folder / "loop.md").symlink_to(folder / "loop.md")  # ELOOP
    (folder / "gone.md").symlink_to(folder / "never-existed.md")
    engine = ctx.shared_engine()
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("report", engine.ingest([folder])), daemon=True)
    worker.start()
    worker.join(120)  # a walk that loops forever must fail this case, not hang the suite
    c = Checks()
    if worker.is_alive():
        c.expect(False, "ingest did not finish within 120 s (the walk loops)")
        return c.result("")
    report = box["report"]
    failed = dict(report.failed)
    c.fact(f"report: {report.summary()}; failed: {sorted(Path(p).name for p in failed)}")
    c.lose(report.indexed.count(str(good)) != 1, "notes.md was not indexed exactly once")
    c.expect(str(folder / "loop.md") in failed, "the self-referencing link was not reported")
    c.expect(str(folder / "gone.md") in failed, "the dangling link was not reported")
    c.expect(len(engine.store.documents()) == len({d.doc_key for d in engine.store.documents()}),
             "a document is listed twice")
    c.expect(not any("again" in p for p in report.indexed), "a file was indexed again through the folder link")
    return c.result(failed.get(str(folder / "loop.md"), ""))


@case("file_vanishes_mid_ingest", "bad_input", hint="check that the file exists")
def file_vanishes_mid_ingest(ctx: FaultContext) -> Result:
    """A file deleted after the folder was listed but before it was read."""
    folder = ctx.dir("vanish") / "inbox"
    folder.mkdir()
    good = folder / "a-notes.md"
    good.write_text(GOOD_DOC, encoding="utf-8")
    doomed = folder / "b-draft.md"
    doomed.write_text("A draft that the editor deletes while Sourcelight is adding the folder.\n", encoding="utf-8")
    deleted: list[bool] = []

    def progress(p) -> None:
        # The first report comes after the folder was listed and before the
        # reader thread starts: exactly the window in which a file can vanish.
        if not deleted:
            doomed.unlink()
            deleted.append(True)

    engine = ctx.shared_engine()
    report = engine.ingest([folder], progress=progress)
    c = Checks()
    failed = dict(report.failed)
    c.fact(f"report: {report.summary()}")
    c.expect(deleted, "the progress callback never ran")
    c.expect(str(doomed) in failed, "the vanished file was not reported")
    c.lose(str(good) not in report.indexed, "the other file was not indexed")
    c.expect(engine.store.document(_key(doomed)) is None, "the vanished file is listed as indexed")
    return c.result(failed.get(str(doomed), ""))


@case("file_becomes_unreadable_mid_ingest", "bad_input", hint="check that the file exists and you may read it")
def file_becomes_unreadable_mid_ingest(ctx: FaultContext) -> Result:
    """A file whose permissions drop to 000 after the folder was listed (child process, DAC enforced)."""
    from core.faults.children import unreadable_file

    return unreadable_file(ctx)


@case("huge_single_line_file", "bad_input", hint="run it again")
def huge_single_line_file(ctx: FaultContext) -> Result:
    """A 50 MB text file on one line: memory stays bounded, progress keeps moving, Cancel is honoured."""
    from core.faults.children import huge_file

    return huge_file(ctx)


# -- questions -------------------------------------------------------------------------------


def _question(ctx: FaultContext, question: str, expect_code: str) -> Result:
    engine = ctx.shared_engine()
    backend = ScriptedBackend(GOOD_ANSWER)
    with_backend(engine, backend)
    asked = ask(engine, question, timeout_s=60)
    c = Checks()
    c.fact(f"{len(question):,}-character question: {asked.describe()}")
    end = asked.terminal
    c.expect(end is not None and end.type == "error" and end.code == expect_code,
             f"the run did not fail with {expect_code}")
    c.expect(not backend.calls, "the question was sent to the model anyway")
    following = ask(engine, "How do I stop an answer early?", timeout_s=60)
    c.fact(f"next question: {following.describe()}")
    c.expect(following.terminal is not None and following.terminal.type == "completed",
             "the next question did not complete")
    return c.result(asked.message)


@case("question_20000_chars", "bad_input", hint="shorten it")
def question_20000_chars(ctx: FaultContext) -> Result:
    """A 20,000-character question (a pasted document)."""
    return _question(ctx, ("What does this clause mean for the budget? " * 500)[:20_000], "invalid_question")


@case("empty_question", "bad_input", hint="type a question")
def empty_question(ctx: FaultContext) -> Result:
    """An empty question, and one of only whitespace."""
    first = _question(ctx, "", "invalid_question")
    second = _question(ctx, " \n\t ", "invalid_question")
    return Result(first.survived and second.survived, first.lost or second.lost, first.message,
                  f"empty: {first.detail} || whitespace: {second.detail}")

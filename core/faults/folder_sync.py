"""Folder sync: an added folder changes on disk, and the index must follow without losing anything.

Each case builds its own engine over a fresh data folder (the real ChromaDB,
the real embedder behind the suite's vector cache), adds a folder, changes
the folder the way users do (delete a file, unplug the drive, put a folder
where a file was, leave a broken file, drop in pictures and spreadsheets) and
adds it again or refreshes. It must survive with the right result:

- documents whose files are gone are removed and reported, nothing else is;
- a missing folder (an unplugged drive) keeps its documents and says how to
  get them back;
- nothing of a removed document stays stored (no ghost rows: every stored
  chunk belongs to a listed document), and nothing of it is searchable;
- a file that failed is not parsed again until it changes;
- unsupported files are counted by type.
"""
from __future__ import annotations

from pathlib import Path

from core.faults.base import GOOD_ANSWER, Checks, FaultContext, Result, case

CATEGORY = "folder_sync"

NOTES = {
    "herons.md": "# Herons\n\nThe heron nests by the north pond every spring. Volunteers count the nests in April.\n",
    "ferry.txt": "The ferry runs twice a day in winter. It stops when storms close the harbour.\n",
    "lighthouse.md": "# Lighthouse\n\nThe keeper logs every passing ship. The log book is kept in the tower.\n",
}


def _engine(ctx: FaultContext, name: str):
    from core.engine import Engine
    from core.faults.scripted import ScriptedBackend
    from core.settings import Settings

    home = ctx.dir(name)
    engine = Engine(Settings(top_k=3, max_tokens=64), backend=ScriptedBackend(GOOD_ANSWER),
                    embedder=ctx.embedder, data_dir=home / "home", index_sample_corpus=False)
    engine.load()
    folder = home / "papers"
    folder.mkdir()
    for file_name, text in NOTES.items():
        (folder / file_name).write_text(text, encoding="utf-8")
    return engine, folder


def _texts(engine) -> str:
    return "\n".join(t for _ids, texts in engine.store.iter_chunk_texts() for t in texts)


def _no_ghosts(engine, c: Checks) -> None:
    """Every stored chunk row belongs to a listed document: a removal left nothing behind."""
    listed = sum(d.chunks for d in engine.documents())
    stored = engine.store.chunk_count()
    c.fact(f"chunks listed {listed}, stored {stored}")
    c.expect(stored == listed, f"{stored - listed} chunk row(s) stored that no listed document owns (ghosts)")


def _sources(engine) -> set[str]:
    return {d.source for d in engine.documents()}


@case("folder_file_deleted", CATEGORY)
def folder_file_deleted(ctx: FaultContext) -> Result:
    """A file deleted from an added folder: adding the folder again removes its document and says so."""
    engine, folder = _engine(ctx, "sync-deleted")
    engine.ingest([folder])
    gone = folder / "ferry.txt"
    gone.unlink()
    report = engine.ingest([folder])
    c = Checks()
    c.fact(f"report: {report.summary()}")
    c.expect(report.removed == [str(gone)], f"removed {report.removed}, expected the deleted file only")
    c.expect("1 removed (file gone)" in report.summary(), "the summary does not say a document was removed")
    c.lose(_sources(engine) != {str(folder / "herons.md"), str(folder / "lighthouse.md")},
           f"the documents whose files are still there are not all listed: {sorted(_sources(engine))}")
    c.expect("harbour" not in _texts(engine), "the deleted file's text is still searchable")
    _no_ghosts(engine, c)
    return c.result(report.summary())


@case("folder_unplugged_on_refresh", CATEGORY, hint="try Refresh again")
def folder_unplugged_on_refresh(ctx: FaultContext) -> Result:
    """The whole added folder is missing at Refresh (an unplugged drive): its documents stay, and the
    message says how to get the folder back; a second folder is synced as usual."""
    engine, folder = _engine(ctx, "sync-unplugged")
    other = folder.parent / "letters"
    other.mkdir()
    (other / "letter.txt").write_text("Dear Ann, the heron count is on Saturday. Bring the blue ledger.\n")
    engine.ingest([folder, other])
    before = _sources(engine)
    folder.rename(folder.parent / "unplugged")
    (other / "letter.txt").unlink()
    report = engine.refresh()
    message = next((reason for path, reason in report.failed if path == str(folder)), "")
    c = Checks()
    c.fact(f"report: {report.summary()}")
    c.lose(any(s.startswith(str(folder)) and s not in _sources(engine) for s in before),
           "documents of the missing folder were removed")
    c.expect(report.removed == [str(other / "letter.txt")], f"removed {report.removed}")
    c.expect(str(folder) in message, "the missing folder is not named")
    _no_ghosts(engine, c)
    return c.result(message)


@case("folder_file_replaced_by_folder", CATEGORY)
def folder_file_replaced_by_folder(ctx: FaultContext) -> Result:
    """A file replaced by a folder of the same name (holding a new file): the old document goes,
    the new file is indexed."""
    engine, folder = _engine(ctx, "sync-replaced")
    engine.ingest([folder])
    old = folder / "herons.md"
    old.unlink()
    old.mkdir()
    new = old / "count.txt"
    new.write_text("This year the volunteers counted forty heron nests. Last year there were thirty.\n")
    report = engine.ingest([folder])
    c = Checks()
    c.fact(f"report: {report.summary()}")
    c.expect(report.removed == [str(old)], f"removed {report.removed}")
    c.lose(str(new) not in report.indexed, "the new file inside the new folder was not indexed")
    c.lose(not {str(folder / "ferry.txt"), str(folder / "lighthouse.md")} <= _sources(engine),
           "an untouched document is no longer listed")
    c.expect("north pond" not in _texts(engine), "the replaced file's text is still searchable")
    _no_ghosts(engine, c)
    return c.result(report.summary())


@case("failed_file_not_parsed_again", CATEGORY, hint="replace the file to retry")
def failed_file_not_parsed_again(ctx: FaultContext) -> Result:
    """A damaged PDF in an added folder: adding the folder again does not parse it again (it says
    so); once the file changes it is read again."""
    from core.ingest import documents

    engine, folder = _engine(ctx, "sync-failed")
    broken = folder / "scan.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    first = engine.ingest([folder])
    parsed: list[str] = []
    real_extract = documents.extract

    def counting(path, **options):
        parsed.append(Path(path).name)
        return real_extract(path, **options)

    documents.extract = counting
    try:
        second = engine.ingest([folder])
        broken.write_bytes(b"%PDF-1.7\n" + bytes(range(255, -1, -1)) * 40)
        third = engine.ingest([folder])
    finally:
        documents.extract = real_extract
    message = dict(second.failed).get(str(broken), "")
    c = Checks()
    c.fact(f"first: {first.summary()} | second: {second.summary()} | third: {third.summary()}; "
           f"parsed: {parsed}")
    c.expect(str(broken) in dict(first.failed), "the damaged file was not reported the first time")
    c.expect(second.not_retried == [str(broken)], "the unchanged damaged file was not recognised")
    c.expect(parsed.count("scan.pdf") == 1, "the damaged file was parsed again while unchanged, or not "
                                            "after it changed")
    c.lose(len(engine.documents()) != 3, "the good files are not all listed")
    return c.result(message)


@case("unsupported_files_counted", CATEGORY)
def unsupported_files_counted(ctx: FaultContext) -> Result:
    """Pictures and spreadsheets in an added folder are counted by type in the summary, not silently skipped."""
    engine, folder = _engine(ctx, "sync-unsupported")
    for name in ("a.png", "b.PNG", "budget.xlsx"):
        (folder / name).write_bytes(b"\x89PNG\r\n" if name.lower().endswith(".png") else b"PK\x03\x04")
    report = engine.ingest([folder])
    c = Checks()
    c.fact(f"report: {report.summary()}")
    c.expect(report.skipped_types == {".png": 2, ".xlsx": 1}, f"skipped {report.skipped_types}")
    c.expect("3 of unsupported types skipped (.png: 2, .xlsx: 1)" in report.summary(),
             "the summary does not count the skipped types")
    c.lose(len(report.indexed) != 3, "the supported files were not all indexed")
    return c.result(report.summary())

"""Adding and removing documents from the window, with the real ingest off the UI thread."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from tests.fakes import ScriptedBackend

TIMEOUT = 60_000


def test_ctrl_o_ingests_files_lists_failures_and_delete_removes_a_document(qtbot, make_app, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    good = docs / "kettles.md"
    good.write_text("# Kettles\n\nThe blue kettle boils a litre of water in ninety seconds. It switches itself "
                    "off when the water boils.\n", encoding="utf-8")
    empty = docs / "empty.txt"
    empty.write_bytes(b"")
    broken = docs / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a PDF at all")
    chosen = [str(good), str(empty), str(broken)]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: (chosen, "")))

    window, controller = make_app(ScriptedBackend(["Unused."]))
    sample_docs = window.documents_panel.document_names()
    assert sample_docs  # the built-in guide is indexed on first run
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window.composer, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    report = blocker.args[0]
    assert report.indexed == [str(good)]
    panel = window.documents_panel
    qtbot.waitUntil(lambda: "kettles.md" in panel.document_names())
    assert not panel.ingesting
    failed = panel.failed_entries()
    assert len(failed) == 2 and panel.failed_list.isVisible()
    # Each entry names its file once (the full path is in the tooltip).
    assert any(e.startswith("empty.txt ") and "empty" in e and str(empty) not in e for e in failed)
    assert any(e.startswith("broken.pdf ") and e.count("broken.pdf") == 1 for e in failed)
    assert "2 files could not be added" in panel.failed_label.text()

    # Delete (with the list focused) removes the selected document from the index.
    key = next(r.doc_key for r in controller.engine.documents() if r.file_name == "kettles.md")
    assert panel.select_document(key)
    panel.list.setFocus()
    with qtbot.waitSignal(controller.documents.documents_changed, timeout=TIMEOUT):
        qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert "kettles.md" not in panel.document_names()
    assert sorted(panel.document_names()) == sorted(sample_docs)
    assert "Removed kettles.md" in window.status_label.text()


def test_cancel_stops_an_ingest_and_the_window_stays_usable(qtbot, make_app, tmp_path):
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(60):
        (docs / f"note{i:02d}.txt").write_text(f"Note {i}. " + "A sentence about kettles and tea. " * 30,
                                                encoding="utf-8")
    window, controller = make_app(ScriptedBackend(["Unused."]))
    panel = window.documents_panel
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT) as blocker:
        window.paths_chosen.emit([str(docs)])
        qtbot.waitUntil(lambda: panel.ingesting)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    assert report.cancelled
    assert not panel.ingesting and panel.add_files_button.isEnabled()
    assert "cancelled" in window.status_label.text()


def test_a_pdf_with_scanned_pages_is_added_and_the_window_names_the_pages_without_text(qtbot, make_app, tmp_path):
    """Issue 18: pages 5-7 of this PDF are scans; the file is indexed and the panel says which pages are missing."""
    import shutil

    from core.eval.documents_quality import CORPUS

    pdf = tmp_path / "text-then-scanned-pages.pdf"
    shutil.copy(CORPUS / "pdf" / pdf.name, pdf)
    window, controller = make_app(ScriptedBackend(["Unused."]))
    panel = window.documents_panel
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT) as blocker:
        window.paths_chosen.emit([str(pdf)])
    assert blocker.args[0].indexed == [str(pdf)]
    qtbot.waitUntil(lambda: pdf.name in panel.document_names())
    entries = panel.warning_entries()
    assert len(entries) == 1 and panel.warnings_list.isVisible() and not panel.failed_entries()
    assert entries[0].startswith(f"{pdf.name}: Pages 5-7 (of 7) have no text, only images (scanned?)")
    assert "1 file was added with warnings:" in panel.notes_label.text()

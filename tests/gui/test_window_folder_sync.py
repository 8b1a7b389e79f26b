"""The Documents panel keeps folders in sync: Refresh, what an ingest changed, and byte progress.

The real window and controller over a real engine (real ChromaDB, the real
embedder); waits are on signals and conditions, never sleeps.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from core.ingest.ingestor import IngestProgress
from gui.widgets.documents_panel import DocumentsPanel
from tests.core.test_documents import THREE_PAGES, make_pdf
from tests.fakes import ScriptedBackend

TIMEOUT = 60_000


def test_refresh_removes_documents_whose_files_are_gone_and_says_so(qtbot, make_app, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kettles.md").write_text("# Kettles\n\nThe blue kettle boils a litre in ninety seconds.\n")
    (docs / "teapots.md").write_text("# Teapots\n\nThe brown teapot holds six cups of tea.\n")
    # Page 3's content stream is broken: the PDF is indexed, and the loss said on its warning line.
    (docs / "damaged.pdf").write_bytes(make_pdf(THREE_PAGES, broken_pages=frozenset({3})))
    (docs / "chart.png").write_bytes(b"\x89PNG")
    window, controller = make_app(ScriptedBackend(["Unused."]), index_sample_corpus=False)
    panel = window.documents_panel
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT) as added:
        window.paths_chosen.emit([str(docs)])
    assert sorted(Path(p).name for p in added.args[0].indexed) == ["damaged.pdf", "kettles.md", "teapots.md"]
    qtbot.waitUntil(lambda: "damaged.pdf" in panel.document_names())
    # What the ingest said besides adding: the skipped picture, and the unreadable page of the PDF.
    assert "Skipped files of types Sourcelight does not read (.png: 1)" in panel.notes_label.text()
    warning, = panel.warning_entries()
    assert warning.startswith("damaged.pdf: The text of page(s) 3 could not be read")
    assert panel.warnings_list.isVisible()

    (docs / "teapots.md").unlink()
    assert panel.refresh_button.isEnabled()
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT) as refreshed:
        qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
    report = refreshed.args[0]
    assert report.removed == [str(docs / "teapots.md")]
    qtbot.waitUntil(lambda: "teapots.md" not in panel.document_names())
    assert sorted(panel.document_names()) == ["damaged.pdf", "kettles.md"]
    assert "Removed 1 document whose file is gone: teapots.md." in panel.notes_label.text()
    assert panel.notes_label.isVisible()
    assert "1 removed (file gone)" in window.status_label.text()
    assert not panel.ingesting and panel.refresh_button.isEnabled()


def test_progress_moves_by_bytes_inside_one_file_with_binary_units_and_time_left(qtbot):
    panel = DocumentsPanel()
    qtbot.addWidget(panel)
    panel.ingest_started("Adding dump.txt...")
    panel.ingest_progressed(IngestProgress(0, 1, "/data/dump.txt", 120, bytes_done=52 * 2**20,
                                           bytes_total=210 * 2**20, seconds_left=170))
    assert panel.progress.value() == 247  # per mille of the bytes, though no file is finished yet
    assert panel.progress.format() == "%p% \u2013 52 MiB of 210 MiB, about 3 min left"
    assert panel.progress_label.text() == "Adding dump.txt (120 passages so far)"
    assert not panel.refresh_button.isEnabled()
    panel.ingest_finished("done", [("/data/empty.txt", "/data/empty.txt is empty (0 bytes); add some text.")])
    assert panel.failed_entries() == ["empty.txt is empty (0 bytes); add some text."]
    assert panel.refresh_button.isEnabled()

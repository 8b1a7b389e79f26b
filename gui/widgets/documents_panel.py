"""The Documents panel: what is indexed, adding files and folders, and what failed.

Ingest itself runs off the UI thread in the controller; this panel only shows
its progress (a bar by bytes, so it moves inside a large file, with the time
left, and a Cancel button), the resulting list of indexed documents, every
file that could not be added with the reason and the next step, files added
with warnings, and the documents removed because their files are gone.
Delete removes the selected document from the index (never from disk);
Refresh syncs the index with the folders added before.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from gui.text_positions import plain_tooltip

DOC_KEY_ROLE = Qt.ItemDataRole.UserRole


class DocumentsPanel(QWidget):
    """Indexed documents, the Add buttons, ingest progress and the failed-files list."""

    add_files_clicked = Signal()
    add_folder_clicked = Signal()
    refresh_clicked = Signal()
    removal_requested = Signal(str)  # doc_key
    ingest_cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("documentsPanel")
        self.setAccessibleName("Documents")
        title = QLabel("Documents")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        title.setFont(font)

        self.add_files_button = QPushButton("Add files...")
        self.add_files_button.setAccessibleName("Add files")
        self.add_files_button.setToolTip("Add documents to the index (Ctrl+O)")
        self.add_files_button.clicked.connect(self.add_files_clicked)
        self.add_folder_button = QPushButton("Add folder...")
        self.add_folder_button.setAccessibleName("Add folder")
        self.add_folder_button.setToolTip("Add a folder and all of its subfolders (Ctrl+Shift+O)")
        self.add_folder_button.clicked.connect(self.add_folder_clicked)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("refreshDocumentsButton")
        self.refresh_button.setAccessibleName("Refresh documents")
        self.refresh_button.setToolTip("Add new and changed files from the folders added before, and remove "
                                       "documents whose files are gone")
        self.refresh_button.clicked.connect(self.refresh_clicked)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.add_files_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.refresh_button)

        self.list = QListWidget()
        self.list.setObjectName("documentsList")
        self.list.setAccessibleName("Indexed documents")
        self.list.setAccessibleDescription("Press Delete to remove the selected document from the index.")
        self.list.setAlternatingRowColors(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.itemSelectionChanged.connect(self._on_list_item_selection_changed)
        self.remove_action = QAction("Remove from index", self.list)
        self.remove_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.remove_action.triggered.connect(self._on_remove_action_triggered)
        self.list.addAction(self.remove_action)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove the selected document")
        self.remove_button.setToolTip("Remove the selected document from the index (Delete). The file stays "
                                      "on disk.")
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(self._on_remove_action_triggered)
        self.count_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.count_label, 1)
        row.addWidget(self.remove_button)

        # Ingest progress: hidden unless an ingest runs.
        self.progress_label = QLabel()
        self.progress_label.setObjectName("ingestStatus")
        self.progress_label.setAccessibleName("Ingest status")
        self.progress_label.setWordWrap(True)
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Ingest progress")
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel adding documents")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self._progress_box = QWidget()
        box = QVBoxLayout(self._progress_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(3)
        box.addWidget(self.progress_label)
        box.addLayout(progress_row)
        self._progress_box.hide()

        self.failed_label = QLabel()
        self.failed_label.setObjectName("failedTitle")
        self.failed_label.setWordWrap(True)
        self.failed_list = QListWidget()
        self.failed_list.setObjectName("failedList")
        self.failed_list.setAccessibleName("Files that could not be added")
        self.failed_list.setWordWrap(True)
        self.failed_list.setMaximumHeight(160)
        self.failed_label.hide()
        self.failed_list.hide()
        # What an ingest changed besides adding: documents removed (files gone), files added with warnings.
        self.notes_label = QLabel()
        self.notes_label.setObjectName("ingestNotes")
        self.notes_label.setAccessibleName("What the last ingest changed")
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextFormat(Qt.TextFormat.PlainText)
        self.notes_label.hide()
        self.warnings_list = QListWidget()
        self.warnings_list.setObjectName("warningsList")
        self.warnings_list.setAccessibleName("Files added with warnings")
        self.warnings_list.setWordWrap(True)
        self.warnings_list.setMaximumHeight(120)
        self.warnings_list.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(title)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addWidget(self._progress_box)
        layout.addWidget(self.failed_label)
        layout.addWidget(self.failed_list)
        layout.addWidget(self.notes_label)
        layout.addWidget(self.warnings_list)
        self.set_documents([])

    # -- documents ---------------------------------------------------------
    def set_documents(self, records) -> None:
        """Show the indexed documents (core.ingest.store.DocumentRecord), keeping the selection."""
        selected = self.selected_doc_key()
        self.list.clear()
        for record in records:
            details = f"{record.chunks} passages" + (f", {record.pages} pages" if record.pages else "")
            item = QListWidgetItem(record.file_name)
            item.setData(DOC_KEY_ROLE, record.doc_key)
            item.setToolTip(plain_tooltip(f"{record.source}\n{details}"))
            self.list.addItem(item)
            if record.doc_key == selected:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        n = len(records)
        self.count_label.setText("No documents yet" if n == 0 else f"{n} document{'s' if n != 1 else ''}")
        self._on_list_item_selection_changed()

    def document_keys(self) -> list[str]:
        return [self.list.item(i).data(DOC_KEY_ROLE) for i in range(self.list.count())]

    def document_names(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def select_document(self, doc_key: str) -> bool:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(DOC_KEY_ROLE) == doc_key:
                self.list.setCurrentItem(item)
                item.setSelected(True)
                return True
        return False

    def selected_doc_key(self) -> str | None:
        items = self.list.selectedItems()
        return items[0].data(DOC_KEY_ROLE) if items else None

    def _on_list_item_selection_changed(self) -> None:
        self.remove_button.setEnabled(self.selected_doc_key() is not None)

    def _on_remove_action_triggered(self) -> None:
        key = self.selected_doc_key()
        if key is not None:
            self.removal_requested.emit(key)

    # -- ingest ------------------------------------------------------------
    @property
    def ingesting(self) -> bool:
        return not self._progress_box.isHidden()

    def ingest_started(self, description: str) -> None:
        self.progress_label.setText(description)
        self.progress.setRange(0, 0)  # busy until the first progress report counts the files
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self._progress_box.show()
        self.add_files_button.setEnabled(False)
        self.add_folder_button.setEnabled(False)
        self.refresh_button.setEnabled(False)

    def ingest_progressed(self, progress) -> None:
        """Show a progress report (a core.ingest.ingestor.IngestProgress: counts, bytes and their words)."""
        files_done, files_total = progress.files_done, progress.files_total
        if progress.bytes_total > 0:
            # Per mille of the bytes: moves inside one large file, where the file count would sit at 0/1.
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, progress.bytes_done * 1000 // progress.bytes_total))
            self.progress.setFormat(f"%p% \u2013 {progress.amount_text}")
        elif files_total > 0:
            self.progress.setRange(0, files_total)
            self.progress.setValue(files_done)
            self.progress.setFormat(f"{files_done} / {files_total} files")
        current, chunks = progress.current, progress.chunks_written
        name = current.replace("\\", "/").rsplit("/", 1)[-1] if current else ""
        files = f"file {min(files_done + 1, files_total)} of {files_total}" if files_total > 1 else ""
        details = ", ".join(x for x in (files, f"{chunks} passages so far" if chunks else "") if x)
        self.progress_label.setText(f"Adding {name}" + (f" ({details})" if details else ""))

    def ingest_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling...")
        self.progress_label.setText("Finishing the current batch, then stopping...")

    def ingest_finished(self, summary: str, failed: list[tuple[str, str]],
                        warnings: list[tuple[str, str]] = (), removed: list[str] = (),
                        skipped: str = "") -> None:
        """Show how an ingest ended: failures, warnings, removed documents and skipped types."""
        self._progress_box.hide()
        self.add_files_button.setEnabled(True)
        self.add_folder_button.setEnabled(True)
        self.refresh_button.setEnabled(True)
        self.count_label.setToolTip(plain_tooltip(summary))
        self.failed_list.clear()
        for path, reason in failed:
            self.failed_list.addItem(_entry(path, reason))
        if failed:
            n = len(failed)
            self.failed_label.setText(f"{n} file{'s' if n != 1 else ''} could not be added:")
        self.failed_label.setVisible(bool(failed))
        self.failed_list.setVisible(bool(failed))
        self.warnings_list.clear()
        for path, warning in warnings:
            self.warnings_list.addItem(_entry(path, warning))
        notes = []
        if removed:
            names = ", ".join(_name(p) for p in removed[:5]) + (f" and {len(removed) - 5} more" if len(removed) > 5
                                                                 else "")
            n = len(removed)
            notes.append(f"Removed {n} document{'s' if n != 1 else ''} whose file{'s are' if n != 1 else ' is'} "
                         f"gone: {names}.")
        if skipped:
            notes.append(f"Skipped files of types Sourcelight does not read ({skipped}).")
        if warnings:
            n = len(warnings)
            notes.append(f"{n} file{'s were' if n != 1 else ' was'} added with warnings:")
        self.notes_label.setText("\n".join(notes))
        self.notes_label.setVisible(bool(notes))
        self.warnings_list.setVisible(bool(warnings))

    def failed_entries(self) -> list[str]:
        return [self.failed_list.item(i).text() for i in range(self.failed_list.count())]

    def warning_entries(self) -> list[str]:
        return [self.warnings_list.item(i).text() for i in range(self.warnings_list.count())]

    def _on_cancel_button_clicked(self) -> None:
        self.ingest_cancel_clicked.emit()


def _name(path: str) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


def _entry(path: str, reason: str) -> QListWidgetItem:
    """The reason, naming the file once: most reasons name the full path themselves (shown as the
    file name here; the full path is in the tooltip); others get "name: " in front."""
    name = _name(path)
    text = reason.replace(str(path), name) if str(path) in reason else f"{name}: {reason}"
    item = QListWidgetItem(text)
    item.setToolTip(plain_tooltip(f"{path}\n{reason}"))
    return item

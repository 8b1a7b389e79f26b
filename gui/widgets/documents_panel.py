"""The Documents panel: what is indexed, adding files and folders, and what failed.

Ingest itself runs off the UI thread in the controller; this panel only shows
its progress (a bar and a Cancel button), the resulting list of indexed
documents, and every file that could not be added with the reason and the next
step. Delete removes the selected document from the index (never from disk).
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
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.add_files_button)
        buttons.addWidget(self.add_folder_button)

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
        self.set_documents([])

    # -- documents ---------------------------------------------------------
    def set_documents(self, records) -> None:
        """Show the indexed documents (core.store.DocumentRecord), keeping the selection."""
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

    def ingest_progressed(self, files_done: int, files_total: int, current: str, chunks: int) -> None:
        if files_total > 0:
            self.progress.setRange(0, files_total)
            self.progress.setValue(files_done)
            self.progress.setFormat(f"{files_done} / {files_total} files")
        name = current.replace("\\", "/").rsplit("/", 1)[-1] if current else ""
        self.progress_label.setText(f"Adding {name}" + (f" ({chunks} passages so far)" if chunks else ""))

    def ingest_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling...")
        self.progress_label.setText("Finishing the current batch, then stopping...")

    def ingest_finished(self, summary: str, failed: list[tuple[str, str]],
                        warnings: list[tuple[str, str]] = ()) -> None:
        """Show the outcome: files that failed, then warnings about files that were added
        (pages without text, garbled text, damaged pages), each with its file name."""
        self._progress_box.hide()
        self.add_files_button.setEnabled(True)
        self.add_folder_button.setEnabled(True)
        self.count_label.setToolTip(plain_tooltip(summary))
        self.failed_list.clear()
        for path, reason in list(failed) + list(warnings):
            name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
            item = QListWidgetItem(f"{name}: {reason}")
            item.setToolTip(plain_tooltip(f"{path}\n{reason}"))
            self.failed_list.addItem(item)
        parts = []
        if failed:
            n = len(failed)
            parts.append(f"{n} file{'s' if n != 1 else ''} could not be added")
        if warnings:
            n = len(warnings)
            parts.append(f"{n} warning{'s' if n != 1 else ''} about files that were added")
        self.failed_label.setText("; ".join(parts) + ":")
        shown = bool(failed or warnings)
        self.failed_label.setVisible(shown)
        self.failed_list.setVisible(shown)

    def failed_entries(self) -> list[str]:
        return [self.failed_list.item(i).text() for i in range(self.failed_list.count())]

    def _on_cancel_button_clicked(self) -> None:
        self.ingest_cancel_clicked.emit()

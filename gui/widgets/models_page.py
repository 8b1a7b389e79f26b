"""The Models page (Settings > Model): every model the app can use, and the recommended downloads.

The page shows what the controller found (`core.models.discovery`): the
bundled model, GGUF files of LM Studio, GPT4All, Jan, Ollama and the user's
folders, and the models of local servers, each with its size,
quantisation, context length and licence where the file or server says so.
"Use this model" (or a double-click) asks for that model to answer; the
controller applies it at once. Below, the curated downloads: "Download"
asks the controller to fetch one, and the page shows its progress (speed,
time left) with a Cancel button.

The page is view logic only: it emits what the user asked for and shows what
it is told (architecture rule 5). Looking for models and downloading run in
the controller's named tasks, off the UI thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

ENTRY_ROLE = Qt.ItemDataRole.UserRole


class ModelsPage(QWidget):
    """Lists models and downloads; see the module docstring."""

    refresh_requested = Signal()
    model_chosen = Signal(object)  # core.models.discovery.ModelEntry
    folder_added = Signal(str)
    download_requested = Signal(object)  # core.models.download.Recommended
    download_cancel_requested = Signal()
    models_listed = Signal(int)  # how many models are shown, after each listing

    def __init__(self, recommended=(), parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.setAccessibleName("Models")
        self._current_key: str | None = None

        self.models_tree = QTreeWidget()
        self.models_tree.setObjectName("modelsTree")
        self.models_tree.setAccessibleName("Models on this computer")
        self.models_tree.setHeaderLabels(["Model", "From", "Details"])
        self.models_tree.setRootIsDecorated(False)
        self.models_tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.models_tree.setUniformRowHeights(True)
        self.models_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.models_tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.models_tree.header().setStretchLastSection(True)
        self.models_tree.setMinimumHeight(180)
        self.models_tree.itemSelectionChanged.connect(self._on_models_tree_item_selection_changed)
        self.models_tree.itemActivated.connect(self._on_models_tree_item_activated)

        self.use_button = QPushButton("Use this model")
        self.use_button.setObjectName("useModelButton")
        self.use_button.setAccessibleName("Use the selected model to answer")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._on_use_button_clicked)
        self.refresh_button = QPushButton("Look again")
        self.refresh_button.setAccessibleName("Look for models again")
        self.refresh_button.setToolTip("Search the model folders and the local servers again")
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.add_folder_button = QPushButton("Add folder...")
        self.add_folder_button.setAccessibleName("Add a folder of GGUF models")
        self.add_folder_button.clicked.connect(self._on_add_folder_button_clicked)
        self.list_status = QLabel()
        self.list_status.setObjectName("modelsStatus")
        self.list_status.setWordWrap(True)
        self.list_status.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addStretch(1)

        self.recommended_tree = QTreeWidget()
        self.recommended_tree.setObjectName("recommendedTree")
        self.recommended_tree.setAccessibleName("Recommended models to download")
        self.recommended_tree.setHeaderLabels(["Model", "Details"])
        self.recommended_tree.setRootIsDecorated(False)
        self.recommended_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.recommended_tree.setMaximumHeight(170)
        self.recommended_tree.itemSelectionChanged.connect(self._on_recommended_tree_item_selection_changed)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("downloadModelButton")
        self.download_button.setAccessibleName("Download the selected recommended model")
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(self._on_download_button_clicked)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setAccessibleName("Cancel the download")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.download_cancel_requested)
        self.progress = QProgressBar()
        self.progress.setObjectName("downloadProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.download_status = QLabel("Downloads come from Hugging Face, only when you click Download. "
                                      "An interrupted download continues where it stopped.")
        self.download_status.setObjectName("downloadStatus")
        self.download_status.setWordWrap(True)
        self.download_status.setTextFormat(Qt.TextFormat.PlainText)
        download_row = QHBoxLayout()
        download_row.addWidget(self.download_button)
        download_row.addWidget(self.cancel_button)
        download_row.addWidget(self.progress, 1)
        download_box = QGroupBox("Download a recommended model")
        download_layout = QVBoxLayout(download_box)
        download_layout.addWidget(self.recommended_tree)
        download_layout.addLayout(download_row)
        download_layout.addWidget(self.download_status)
        self.set_recommended(recommended)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.models_tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.list_status)
        layout.addWidget(download_box)

    # -- what the controller tells the page -------------------------------------
    def set_searching(self) -> None:
        self.refresh_button.setEnabled(False)
        self.list_status.setText("Looking for models on this computer and its local servers...")

    def set_models(self, models, current_key: str | None, *, problems=(), servers=()) -> None:
        """Show `models` (ModelEntry list); `current_key` is the one that answers now."""
        self._current_key = current_key
        self.models_tree.clear()
        for entry in models:
            item = QTreeWidgetItem([entry.name, entry.source, entry.facts])
            item.setData(0, ENTRY_ROLE, entry)
            item.setToolTip(0, entry.location)
            item.setToolTip(2, entry.location)
            self.models_tree.addTopLevelItem(item)
        self._mark_current()
        self.refresh_button.setEnabled(True)
        text = f"{len(models)} model{'s' if len(models) != 1 else ''} found"
        text += (f"; servers answering: {', '.join(servers)}." if servers else
                 "; no local model server is running (Ollama, LM Studio, llama.cpp server, vLLM).")
        if problems:
            text += f" {len(problems)} file(s) could not be read: " + "; ".join(problems[:3])
        self.list_status.setText(text)
        self._on_models_tree_item_selection_changed()
        self.models_listed.emit(len(models))

    def set_current(self, key: str | None, message: str = "") -> None:
        """`key` answers now (after a choice was applied)."""
        self._current_key = key
        self._mark_current()
        self._on_models_tree_item_selection_changed()
        if message:
            self.list_status.setText(message)

    def set_recommended(self, recommended) -> None:
        self.recommended_tree.clear()
        for model in recommended:
            item = QTreeWidgetItem([model.name, f"{model.facts}. {model.notes}"])
            item.setData(0, ENTRY_ROLE, model)
            item.setToolTip(1, f"{model.repo_id}/{model.filename}")
            self.recommended_tree.addTopLevelItem(item)

    def download_started(self, model) -> None:
        self.download_button.setEnabled(False)
        self.cancel_button.show()
        self.progress.setValue(0)
        self.progress.show()
        self.download_status.setText(f"{model.name}: starting...")

    def download_progressed(self, name: str, text: str, fraction: float | None) -> None:
        if fraction is None:
            self.progress.setRange(0, 0)  # busy indicator while checking
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * fraction))
        self.download_status.setText(f"{name}: {text}")

    def download_ended(self, message: str) -> None:
        self.cancel_button.hide()
        self.progress.hide()
        self.download_status.setText(message)
        self._on_recommended_tree_item_selection_changed()

    def select(self, key: str) -> bool:
        """Select the model with `key` (tests and the download's end use it)."""
        for i in range(self.models_tree.topLevelItemCount()):
            item = self.models_tree.topLevelItem(i)
            if item.data(0, ENTRY_ROLE).key == key:
                self.models_tree.setCurrentItem(item)
                return True
        return False

    def entries(self) -> list:
        return [self.models_tree.topLevelItem(i).data(0, ENTRY_ROLE)
                for i in range(self.models_tree.topLevelItemCount())]

    # -- internals ----------------------------------------------------------------
    def _mark_current(self) -> None:
        for i in range(self.models_tree.topLevelItemCount()):
            item = self.models_tree.topLevelItem(i)
            entry = item.data(0, ENTRY_ROLE)
            current = entry.key == self._current_key
            font = QFont(item.font(0))
            font.setBold(current)
            item.setFont(0, font)
            item.setText(0, entry.name + ("  (answers now)" if current else ""))

    def _selected(self, tree: QTreeWidget):
        items = tree.selectedItems()
        return items[0].data(0, ENTRY_ROLE) if items else None

    def _on_models_tree_item_selection_changed(self) -> None:
        entry = self._selected(self.models_tree)
        self.use_button.setEnabled(entry is not None and entry.key != self._current_key)

    def _on_models_tree_item_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        self.model_chosen.emit(item.data(0, ENTRY_ROLE))

    def _on_use_button_clicked(self) -> None:
        entry = self._selected(self.models_tree)
        if entry is not None:
            self.model_chosen.emit(entry)

    def _on_add_folder_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of GGUF models")
        if folder:
            self.folder_added.emit(folder)

    def _on_recommended_tree_item_selection_changed(self) -> None:
        self.download_button.setEnabled(self._selected(self.recommended_tree) is not None
                                        and self.cancel_button.isHidden())

    def _on_download_button_clicked(self) -> None:
        model = self._selected(self.recommended_tree)
        if model is not None:
            self.download_requested.emit(model)

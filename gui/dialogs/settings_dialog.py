"""The Settings dialog, built from the typed settings schema (`Settings.describe()`).

Every field's title, description (as tooltip and help text) and limits come
from the schema in `core.settings`, so a new setting needs no dialog code.
The backend choice shows only the fields that apply to it, and the
OpenAI-compatible presets (Ollama, LM Studio, ...) fill in the server URL.
The Model tab also holds the Models page (`gui.widgets.models_page`): the
models found on this computer and its local servers, and the recommended
downloads; the controller drives it.

The API key field is write-only: it never shows the stored key, and the key
never goes into the settings object (the controller stores it in the system
keyring, or for this session only when there is none). "Test connection"
asks the controller to run `backend.check()` with the values as they are in
the dialog and shows the result or the exact problem.
"""
from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QTabWidget,
                               QVBoxLayout, QWidget)

from gui import theme

BACKEND_LABELS = {
    "local": "Bundled local model (offline)",
    "openai": "OpenAI",
    "openai_compatible": "OpenAI-compatible server (Ollama, LM Studio, vLLM, ...)",
}
API_MODE_LABELS = {"chat": "Chat Completions", "responses": "Responses API (OpenAI only)",
                   "assistants": "Assistants API (retired by OpenAI; self-hosted servers)"}
# Which backend each field applies to (fields not listed apply to all).
FIELD_BACKENDS = {
    "model": ("openai", "openai_compatible"),
    "base_url": ("openai", "openai_compatible"),
    # A compatible server may implement the Assistants API; there Responses falls back to Chat Completions.
    "api_mode": ("openai", "openai_compatible"),
    "request_timeout_s": ("openai", "openai_compatible"),
    "threads": ("local",),
    "local_model_path": ("local",),
}
MODEL_FIELDS = ("backend", "model", "base_url", "api_mode", "request_timeout_s", "local_model_path", "threads")
ANSWER_FIELDS = ("top_k", "max_tokens", "temperature")
INDEX_FIELDS = ("chunk_chars", "chunk_overlap_sentences")


class SettingsDialog(QDialog):
    """Edit the settings; `settings()` and `api_key()` read the result."""

    connection_test_requested = Signal(object, object)  # (Settings, api key or None)

    def __init__(self, settings, schema: list[dict], presets: dict[str, str], key_status: str,
                 parent: QWidget | None = None, recommended=()):
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.setMinimumWidth(760)
        self._initial = settings
        self._schema = {entry["name"]: entry for entry in schema}
        self._editors: dict[str, QWidget] = {}
        self._rows: dict[str, tuple[QFormLayout, QWidget]] = {}
        self._clear_key = False

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        answer_box = QGroupBox("Answers")
        answer_form = QFormLayout(answer_box)
        index_box = QGroupBox("Indexing (applies to documents added from now on, or added again)")
        index_form = QFormLayout(index_box)
        for name in MODEL_FIELDS:
            if name in self._schema:
                self._add_field(model_form, name, getattr(settings, name))
            if name == "backend":
                self.preset_combo = QComboBox()
                self.preset_combo.setAccessibleName("Server preset")
                self.preset_combo.addItem("Choose a preset...", "")
                for label, url in presets.items():
                    self.preset_combo.addItem(f"{label}  ({url})", url)
                self.preset_combo.activated.connect(self._on_preset_combo_activated)
                model_form.addRow("Preset", self.preset_combo)
                self._rows["preset"] = (model_form, self.preset_combo)

        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("apiKeyEdit")
        self.key_edit.setAccessibleName("API key")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Leave empty to keep the current key")
        self.clear_key_button = QPushButton("Forget key")
        self.clear_key_button.setAccessibleName("Forget the saved API key")
        self.clear_key_button.clicked.connect(self._on_clear_key_button_clicked)
        key_row = QWidget()
        key_layout = QHBoxLayout(key_row)
        key_layout.setContentsMargins(0, 0, 0, 0)
        key_layout.addWidget(self.key_edit, 1)
        key_layout.addWidget(self.clear_key_button)
        model_form.addRow("API key", key_row)
        self._rows["api_key"] = (model_form, key_row)
        self.key_status = QLabel(key_status)
        self.key_status.setObjectName("keyStatus")
        self.key_status.setWordWrap(True)
        self.key_status.setTextFormat(Qt.TextFormat.PlainText)
        self.key_status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        model_form.addRow("", self.key_status)
        self._rows["key_status"] = (model_form, self.key_status)

        for name in ANSWER_FIELDS:
            if name in self._schema:
                self._add_field(answer_form, name, getattr(settings, name))
        for name in INDEX_FIELDS:
            if name in self._schema:
                self._add_field(index_form, name, getattr(settings, name))

        self.test_button = QPushButton("Test connection")
        self.test_button.setObjectName("testConnectionButton")
        self.test_button.setAccessibleName("Test connection")
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.test_result = QLabel()
        self.test_result.setObjectName("testResult")
        self.test_result.setAccessibleName("Connection test result")
        self.test_result.setWordWrap(True)
        self.test_result.setTextFormat(Qt.TextFormat.PlainText)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_result, 1)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        from gui.widgets.models_page import ModelsPage

        self.models_page = ModelsPage(recommended)
        models_box = QGroupBox("Models")
        models_layout = QVBoxLayout(models_box)
        models_layout.addWidget(self.models_page)

        model_tab = QWidget()
        model_layout = QVBoxLayout(model_tab)
        model_layout.addWidget(models_box, 1)
        model_layout.addWidget(model_box)
        model_layout.addLayout(test_row)
        answers_tab = QWidget()
        answers_layout = QVBoxLayout(answers_tab)
        answers_layout.addWidget(answer_box)
        answers_layout.addWidget(index_box)
        answers_layout.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("settingsTabs")
        self.tabs.addTab(model_tab, "Model")
        self.tabs.addTab(answers_tab, "Answers and indexing")

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.buttons)
        self._on_backend_changed()

    # -- building ------------------------------------------------------------
    def _add_field(self, form: QFormLayout, name: str, value) -> None:
        meta = self._schema[name]
        title, description = meta.get("title", name), meta.get("description", "")
        if "choices" in meta:
            editor = QComboBox()
            labels = BACKEND_LABELS if name == "backend" else API_MODE_LABELS if name == "api_mode" else {}
            for choice in meta["choices"]:
                editor.addItem(labels.get(choice, choice), choice)
            editor.setCurrentIndex(max(0, editor.findData(value)))
            if name == "backend":
                editor.currentIndexChanged.connect(self._on_backend_changed)
        elif isinstance(meta.get("default"), bool):
            raise NotImplementedError("boolean settings need a check box")  # none exist yet
        elif isinstance(meta.get("default"), int):
            editor = QSpinBox()
            editor.setRange(int(meta.get("min", 0)), int(meta.get("max", 1_000_000)))
            editor.setValue(int(value))
        elif isinstance(meta.get("default"), float):
            editor = QDoubleSpinBox()
            editor.setDecimals(2)
            editor.setSingleStep(0.1)
            editor.setRange(float(meta.get("min", 0.0)), float(meta.get("max", 1e6)))
            editor.setValue(float(value))
        else:
            editor = QLineEdit(str(value))
            editor.setClearButtonEnabled(True)
        editor.setObjectName(f"{name}Edit")
        editor.setAccessibleName(title)
        editor.setAccessibleDescription(description)
        editor.setToolTip(description)
        self._editors[name] = editor
        row: QWidget = editor
        if name == "local_model_path":
            browse = QPushButton("Browse...")
            browse.setAccessibleName("Choose a GGUF model file")
            browse.clicked.connect(self._on_browse_button_clicked)
            row = QWidget()
            box = QHBoxLayout(row)
            box.setContentsMargins(0, 0, 0, 0)
            box.addWidget(editor, 1)
            box.addWidget(browse)
        label = QLabel(title)
        label.setToolTip(description)
        label.setBuddy(editor)
        form.addRow(label, row)
        self._rows[name] = (form, row)

    # -- values --------------------------------------------------------------
    def value(self, name: str):
        editor = self._editors[name]
        if isinstance(editor, QComboBox):
            return editor.currentData()
        if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
            return editor.value()
        return editor.text().strip()

    def set_value(self, name: str, value) -> None:
        editor = self._editors[name]
        if isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findData(value)))
        elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
            editor.setValue(value)
        else:
            editor.setText(str(value))

    def settings(self):
        """The settings as edited (a copy of the initial object with the dialog's values)."""
        return dataclasses.replace(self._initial, **{name: self.value(name) for name in self._editors})

    def adopt(self, settings) -> None:
        """Show `settings` (applied elsewhere: a model chosen on the Models page) as the dialog's own.

        Save must not undo the choice: the model fields show the new values,
        and settings the dialog has no editor for come from `settings` too.
        """
        self._initial = settings
        for name in MODEL_FIELDS:
            if name in self._editors:
                self.set_value(name, getattr(settings, name))

    def api_key(self) -> str | None:
        """The new key; "" to forget the stored one; None to leave it as it is."""
        typed = self.key_edit.text().strip()
        if typed:
            return typed
        return "" if self._clear_key else None

    # -- connection test (run by the controller) ---------------------------
    def test_started(self) -> None:
        self.test_button.setEnabled(False)
        self._show_result("Testing the connection...", None)

    def show_test_result(self, ok: bool, message: str) -> None:
        self.test_button.setEnabled(True)
        self._show_result(("Connected: " if ok else "Problem: ") + message, ok)

    def _show_result(self, text: str, ok: bool | None) -> None:
        self.test_result.setText(text)
        colors = theme.colors(self.palette())
        if ok is None:
            self.test_result.setStyleSheet("")
        else:
            color = colors.supported_text if ok else colors.unsupported_text
            self.test_result.setStyleSheet(f"color: {color.name()};")

    # -- slots ---------------------------------------------------------------
    def _on_test_button_clicked(self) -> None:
        self.connection_test_requested.emit(self.settings(), self.api_key() or None)

    def _on_backend_changed(self, *_args) -> None:
        backend = self.value("backend")
        for name, backends in FIELD_BACKENDS.items():
            if name in self._rows:
                self._set_row_visible(name, backend in backends)
        self._set_row_visible("preset", backend == "openai_compatible")
        needs_key = backend in ("openai", "openai_compatible")
        self._set_row_visible("api_key", needs_key)
        self._set_row_visible("key_status", needs_key)
        self.test_result.clear()
        self.adjustSize()

    def _set_row_visible(self, name: str, visible: bool) -> None:
        form, row = self._rows[name]
        form.setRowVisible(row, visible)

    def _on_preset_combo_activated(self, index: int) -> None:
        url = self.preset_combo.itemData(index)
        if url:
            self.set_value("base_url", url)

    def _on_clear_key_button_clicked(self) -> None:
        self._clear_key = True
        self.key_edit.clear()
        self.key_status.setText("The saved key will be forgotten when you click Save.")

    def _on_browse_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model file", "", "GGUF models (*.gguf)")
        if path:
            self.set_value("local_model_path", path)

"""The Settings dialog: schema-driven fields, presets, Test connection, and where the key goes."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.settings import COMPATIBLE_PRESETS, Settings

from tests import fakes
from tests.fakes import ScriptedBackend

TIMEOUT = 60_000


@pytest.fixture
def memory_keyring():
    with fakes.memory_keyring() as ring:
        yield ring


def open_dialog(qtbot, window, controller):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window.composer, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: controller.settings_dialog is not None and controller.settings_dialog.isVisible())
    return controller.settings_dialog


def test_the_dialog_is_built_from_the_schema_and_tests_the_connection(qtbot, make_app, memory_keyring):
    window, controller = make_app(ScriptedBackend(["Unused."]))
    dialog = open_dialog(qtbot, window, controller)
    for entry in Settings.describe():
        if entry["name"] in dialog._editors:
            editor = dialog._editors[entry["name"]]
            assert editor.accessibleName() == entry["title"] and editor.toolTip() == entry["description"]
    # The local backend hides the server fields; the compatible one shows them and its presets.
    assert dialog.value("backend") == "local" and dialog._editors["base_url"].isHidden()
    dialog.set_value("backend", "openai_compatible")
    assert not dialog._editors["base_url"].isHidden() and not dialog.preset_combo.isHidden()
    index = dialog.preset_combo.findData(COMPATIBLE_PRESETS["LM Studio"])
    dialog.preset_combo.setCurrentIndex(index)
    dialog.preset_combo.activated.emit(index)
    assert dialog.value("base_url") == COMPATIBLE_PRESETS["LM Studio"]

    # Nothing listens on port 9: the test reports the exact problem (from core.errors).
    dialog.set_value("base_url", "http://127.0.0.1:9/v1")
    dialog.set_value("model", "tiny")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("Problem:"), timeout=TIMEOUT)
    assert "127.0.0.1:9" in dialog.test_result.text()
    assert dialog.test_button.isEnabled()

    # Save: settings on disk, the key in the keyring only, the backend switched.
    dialog.key_edit.setText("sk-test-secret-123")
    with qtbot.waitSignal(controller.settings_controller.settings_applied, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    saved = (controller.settings_path).read_text(encoding="utf-8")
    assert json.loads(saved)["base_url"] == "http://127.0.0.1:9/v1"
    assert "sk-test-secret-123" not in saved
    assert memory_keyring.passwords == {("Sourcelight", "openai_api_key"): "sk-test-secret-123"}
    assert "127.0.0.1:9" in controller.engine.backend.description
    assert "sk-test" not in window.backend_label.text()
    qtbot.waitUntil(lambda: controller.settings_dialog is None)

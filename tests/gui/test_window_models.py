"""The Models page: pick a discovered model, and the next answer names it.

A real OpenAI-compatible HTTP server on 127.0.0.1 (the scripted server from
core.faults.fake_openai) lists one model at /v1/models and streams its
answers; it is found because its address is one of the user's model servers.
The home directory is a temporary one with an LM Studio folder holding a
(tiny, real) GGUF file. Set SOURCELIGHT_SCREENSHOT=path.png to save a
picture of the Models page as the test leaves it.
"""
from __future__ import annotations

import json
import os

import pytest
from PySide6.QtCore import Qt

from core.faults.fake_openai import FakeOpenAIServer
from core.settings import Settings
from tests.core.models.helpers import make_gguf
from tests.fakes import ScriptedBackend
from tests.gui.helpers import settle

TIMEOUT = 60_000
SERVED = "loopback-7b-instruct"


def _server_script(h, body):
    if h.method == "GET" and h.endpoint == "models":
        h.send_json(200, {"object": "list", "data": [{"id": SERVED, "object": "model", "owned_by": "me"}]})
    else:
        h.stream_text(["To add documents, click \"Add files...\" in the Documents panel [1]. ",
                       "Sourcelight reads PDF files too [1]."])


@pytest.fixture
def server():
    server = FakeOpenAIServer().start()
    server.scripts["lab"] = _server_script
    yield server
    server.stop()


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    home = tmp_path / "user"
    for var in ("XDG_DATA_HOME", "OLLAMA_MODELS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    make_gguf(home / ".lmstudio/models/lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF/"
                     "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf", "Qwen2.5 1.5B Instruct", arch="qwen2", context=32768)
    return home


def test_a_model_picked_on_the_models_page_answers_the_next_question(qtbot, make_app, server, fake_home):
    settings = Settings(top_k=4, max_tokens=200, model_servers=[server.url("lab")])
    window, controller = make_app(ScriptedBackend(["The bundled model answers this one."]),
                                  settings=settings)
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        controller.answers.ask("How do I add documents?")
    assert window.status_label.text() == "Answered by scripted test backend."

    with qtbot.waitSignal(controller.models.models_found, timeout=TIMEOUT) as listed:
        window.settings_action.trigger()
    dialog = controller.settings_dialog
    page = dialog.models_page
    assert page.isVisible() and dialog.tabs.currentIndex() == 0  # Settings > Model
    names = {m.name: m for m in listed.args[0]}
    assert {"SmolLM2-135M-Instruct", "Qwen2.5 1.5B Instruct", SERVED} <= set(names)
    rows = {page.models_tree.topLevelItem(i).text(0): page.models_tree.topLevelItem(i)
            for i in range(page.models_tree.topLevelItemCount())}
    assert rows[SERVED].text(1) == server.url("lab")
    assert "Q4_K_M, 32,768-token context, licence apache-2.0" in rows["Qwen2.5 1.5B Instruct"].text(2)
    assert "servers answering" in page.list_status.text()

    # One click on the row, one on "Use this model".
    page.models_tree.setCurrentItem(rows[SERVED])
    assert page.use_button.isEnabled()
    with qtbot.waitSignal(controller.settings_controller.settings_applied, timeout=TIMEOUT):
        qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)
    assert rows[SERVED].text(0) == f"{SERVED}  (answers now)" and not page.use_button.isEnabled()
    saved = json.loads(controller.settings_path.read_text(encoding="utf-8"))
    assert (saved["backend"], saved["model"], saved["base_url"]) == ("openai_compatible", SERVED,
                                                                     server.url("lab"))
    _save_screenshot(dialog)

    # Save afterwards keeps the choice (the dialog shows it as its own).
    with qtbot.waitSignal(controller.settings_controller.settings_applied, timeout=TIMEOUT):
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.settings_dialog is None)
    assert controller.settings.model == SERVED

    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT) as finished:
        controller.answers.ask("And PDFs?")
    card = finished.args[0]
    assert "reads PDF files too" in card.answer_text
    assert window.status_label.text() == f"Answered by {SERVED}."
    chats = [b for b in server.bodies("lab") if b.get("messages")]
    assert chats and chats[-1]["model"] == SERVED


def _save_screenshot(dialog) -> None:
    path = os.environ.get("SOURCELIGHT_SCREENSHOT")
    if not path:
        return
    dialog.resize(900, 760)
    settle()
    dialog.grab().save(path)


def test_a_recommended_model_downloads_with_progress_and_can_then_be_used(qtbot, make_app, fake_home, home,
                                                                          monkeypatch):
    from core.llm.local import bundled_model_path
    from core.models.download import RECOMMENDED
    from tests.core.models.hub_server import HostedFile, hub_server

    choice = RECOMMENDED[0]
    with hub_server() as hub:
        # The Hub, on loopback: the bundled GGUF stands in for the recommended file.
        hub.files[f"{choice.repo_id}/{choice.filename}"] = HostedFile(bundled_model_path())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        window, controller = make_app(ScriptedBackend(["Unused."]))
        with qtbot.waitSignal(controller.models.models_found, timeout=TIMEOUT):
            window.settings_action.trigger()
        page = controller.settings_dialog.models_page
        page.recommended_tree.setCurrentItem(page.recommended_tree.topLevelItem(0))
        shown = []  # what the page said while downloading
        original = page.download_progressed
        page.download_progressed = lambda name, text, fraction: (shown.append(text), original(name, text, fraction))
        ended, listed = [], []
        controller.models.model_download_ended.connect(ended.append)
        controller.models.models_found.connect(listed.append)
        qtbot.mouseClick(page.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(ended) and bool(listed), timeout=TIMEOUT)  # then the list is looked at again
        assert "downloaded and verified" in ended[0]
    assert any(" of " in text and "/s" in text for text in shown)  # "40 MiB of 93.8 MiB, 12 MiB/s, ..."
    downloaded = [m for m in listed[-1] if m.source == "Downloaded"]
    assert [m.path for m in downloaded] == [str(home / "models" / choice.filename)]
    selected = page.models_tree.selectedItems()
    assert selected and selected[0].text(1) == "Downloaded" and page.use_button.isEnabled()
    assert page.progress.isHidden() and "downloaded and verified" in page.download_status.text()
    assert "downloaded and verified" in window.status_label.text()

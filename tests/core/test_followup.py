"""A follow-up question retrieves with the conversation's context."""
from __future__ import annotations

import pytest

from core.engine import Engine
from core.events import RetrievalDone
from core.answer.followup import is_followup, retrieval_query
from core.llm.base import ChatMessage
from core.settings import Settings
from tests.fakes import ScriptedBackend

HISTORY = [ChatMessage("user", "How do I add documents?"), ChatMessage("assistant", "Click Add files [1].")]


@pytest.mark.parametrize("question", ["And PDFs?", "What about Word files?", "Can I remove it later?",
                                      "Folders too?"])
def test_follow_ups_are_searched_with_the_previous_question(question):
    assert is_followup(question)
    query = retrieval_query(question, HISTORY)
    assert query.startswith("How do I add documents?") and query != question


@pytest.mark.parametrize("question", ["What does the support score measure?",
                                      "Where does Sourcelight keep my conversations?"])
def test_questions_that_stand_alone_are_searched_as_asked(question):
    assert retrieval_query(question, HISTORY) == question


def test_the_first_question_is_searched_as_asked():
    assert retrieval_query("And PDFs?", []) == "And PDFs?"


async def test_and_pdfs_after_adding_documents_finds_the_passage_about_adding_pdfs(tmp_path, embedder):
    engine = Engine(Settings(top_k=3), backend=ScriptedBackend(["PDF files are read [1]."]), embedder=embedder,
                    data_dir=tmp_path)
    try:
        events = [e async for e in engine.ask("And PDFs?", HISTORY).events()]
    finally:
        engine.pipeline.close()
    top = next(e for e in events if isinstance(e, RetrievalDone)).chunks[0]
    assert "To add documents" in top.text and "PDF files" in top.text

"""The issue-14 evaluations: their committed sets, and what they count."""
from __future__ import annotations

import json

from core.engine import Engine
from core.eval.followups import evaluate, first_relevant_rank, load_pairs
from core.eval.loops import answer_all, load_questions, summary
from core.settings import Settings
from tests.fakes import ScriptedBackend

LOOP = "To add documents, click Add files [1]. You can add a folder too. " * 6


def test_the_committed_sets_are_large_enough_and_point_at_the_guide():
    from resources import SAMPLE_CORPUS

    guide = " ".join(" ".join(p.read_text(encoding="utf-8") for p in SAMPLE_CORPUS.glob("*.md")).split())
    pairs = load_pairs()
    assert len(pairs) >= 12 and all(p["expect"] in guide for p in pairs)
    assert len(load_questions()) >= 10


def test_follow_ups_rank_their_passage_higher_with_the_conversation(tmp_path, embedder, capsys):
    engine = Engine(Settings(), backend=ScriptedBackend(), embedder=embedder, data_dir=tmp_path)
    try:
        engine.load()
        result = evaluate(engine.retriever.retrieve, load_pairs(), k=5)
    finally:
        engine.pipeline.close()
    assert result["pairs"] == len(load_pairs())
    assert result["mrr_after"] >= result["mrr_before"]
    row = next(r for r in result["rows"] if r["followup"] == "And PDFs?")
    assert row["query"] == "How do I add documents? PDFs?" and row["rank_after"] == 1


def test_first_relevant_rank_ignores_line_breaks():
    from core.events import RetrievedChunk

    chunks = [RetrievedChunk("a", "x.md", None, "nothing here", 0.5),
              RetrievedChunk("b", "x.md", None, "Press Alt+Up for\nthe previous one.", 0.4)]
    assert first_relevant_rank(chunks, "Alt+Up for the previous one") == 2
    assert first_relevant_rank(chunks, "absent") is None


async def test_loops_are_counted_before_and_stopped_after(tmp_path, embedder):
    engine = Engine(Settings(top_k=3), backend=ScriptedBackend([LOOP]), embedder=embedder, data_dir=tmp_path)
    try:
        before = summary(await answer_all(engine, ["How do I add documents?"], stop_on_repetition=False))
        after = summary(await answer_all(engine, ["How do I add documents?"], stop_on_repetition=True))
    finally:
        engine.pipeline.close()
    assert (before["looping"], after["looping"], after["stopped_for_repetition"]) == (1, 0, 1)
    assert before["sentences"] == 12 and after["sentences"] == 2
    assert json.dumps(after)  # printable as --json

"""The prompt fits the model's context, with room left for the answer."""
from __future__ import annotations

from core.events import RetrievedChunk
from core.llm.base import ChatMessage
from core.answer.prompt import CHARS_PER_TOKEN, HISTORY_BUDGET_CHARS, SOURCE_BUDGET_CHARS, PromptBudget, build_messages


def chunk(n: int, chars: int = 900) -> RetrievedChunk:
    return RetrievedChunk(f"c{n}", f"/docs/file{n}.md", None, ("word " * (chars // 5)).strip(), 0.5)


def prompt_chars(messages) -> int:
    return sum(len(m.content) for m in messages)


def test_unknown_context_gets_the_default_budget():
    assert PromptBudget.for_model(None, 400) == PromptBudget(SOURCE_BUDGET_CHARS, HISTORY_BUDGET_CHARS)


def test_a_large_context_is_not_filled_beyond_the_defaults():
    assert PromptBudget.for_model(32768, 400) == PromptBudget(SOURCE_BUDGET_CHARS, HISTORY_BUDGET_CHARS)


def test_a_small_context_holds_the_prompt_and_the_answer():
    history = [ChatMessage("user" if i % 2 == 0 else "assistant", "x " * 400) for i in range(10)]
    for context, max_tokens in ((2048, 400), (1024, 256), (4096, 1024)):
        budget = PromptBudget.for_model(context, max_tokens, "How do I add documents?")
        messages = build_messages("How do I add documents?", [chunk(i) for i in range(8)], history, budget=budget)
        assert prompt_chars(messages) / CHARS_PER_TOKEN + max_tokens <= context
        assert "[1]" in messages[0].content  # at least the best source is always there


def test_sources_left_out_keep_their_numbers():
    budget = PromptBudget(sources=1000, history=0)
    system = build_messages("q", [chunk(i, 600) for i in range(5)], budget=budget)[0].content
    assert "[1]" in system and "[2]" in system and "[3]" not in system

"""The conversation service: earlier turns as context, one Answer folded from the run, the turn saved as it ends."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from core.answer.conversation import ConversationService
from core.events import (AnswerSentence, AttributionReady, Cancelled, Completed, RetrievalDone, RetrievedChunk,
                         RunStarted, SentenceClosed, SupportSpan, TextDelta)
from core.history import HistoryStore

CHUNK = RetrievedChunk("c1", "/docs/cats.txt", None, "Cats purr when content.", 0.9)
SENTENCE = AnswerSentence(0, 0, 11, "Cats purr. ")


class _Run:
    """A scripted engine run: replays its events; `cancel()` ends it with Cancelled and what streamed."""

    def __init__(self, question, events, *, stall=False):
        self.question, self._events, self._stall = question, events, stall
        self.answer = ""
        self._cancelled = asyncio.Event()

    def cancel(self):
        self._cancelled.set()

    async def events(self):
        for event in self._events:
            if isinstance(event, TextDelta):
                self.answer += event.text
            yield event
        if self._stall:
            await self._cancelled.wait()
            yield Cancelled(self.answer)


class _Engine:
    def __init__(self, *, stall=False):
        self.asked: list[tuple[str, list]] = []
        self.backend = SimpleNamespace(description="scripted model")
        self.settings = SimpleNamespace(model="tiny")
        self._stall = stall

    def ask(self, question, messages):
        self.asked.append((question, list(messages)))
        events = [RunStarted("r1", question), RetrievalDone((CHUNK,)), TextDelta("Cats purr. "),
                  SentenceClosed(SENTENCE),
                  AttributionReady(SENTENCE, (SupportSpan("c1", 0, 9, "Cats purr", 0.9),), 0.9, True)]
        return _Run(question, events if self._stall else events + [Completed("Cats purr. ")], stall=self._stall)


async def _drain(asking):
    return [event async for event in asking.events()]


def test_asking_folds_the_run_and_saves_the_turn_from_that_state(tmp_path):
    with HistoryStore(tmp_path / "h.sqlite3") as history:
        conversation = history.create_conversation("Cats")
        engine = _Engine()
        asking = ConversationService(engine, history).ask("Do cats purr?", conversation)
        events = asyncio.run(_drain(asking))
        assert isinstance(events[-1], Completed)
        answer = asking.answer
        assert answer.status == "completed" and answer.text == "Cats purr. "
        assert answer.chunk_sentences == {"c1": (0,)}
        [stored] = history.turns(conversation)
        assert (stored.question, stored.answer, stored.status) == ("Do cats purr?", "Cats purr. ", "completed")
        assert stored.attributions == answer.attributions and stored.chunks == (CHUNK,)
        assert (stored.backend, stored.model) == ("scripted model", "tiny")
        assert stored.answer_state().chunk_sentences == answer.chunk_sentences

        # The next question of the conversation is asked with the turn before it as context.
        follow_up = ConversationService(engine, history).ask("And dogs?", conversation)
        asyncio.run(_drain(follow_up))
        assert [m.content for m in engine.asked[1][1]] == ["Do cats purr?", "Cats purr."]
        assert history.turn_count(conversation) == 2


def test_a_stopped_answer_is_saved_with_what_streamed(tmp_path):
    with HistoryStore(tmp_path / "h.sqlite3") as history:
        conversation = history.create_conversation("Cats")
        asking = ConversationService(_Engine(stall=True), history).ask("Do cats purr?", conversation, messages=[])

        async def stop_after_the_first_sentence():
            seen = []
            async for event in asking.events():
                seen.append(event)
                if isinstance(event, AttributionReady):
                    asking.cancel()
            return seen

        events = asyncio.run(stop_after_the_first_sentence())
        assert isinstance(events[-1], Cancelled)
        assert asking.answer.status == "cancelled" and asking.answer.text == "Cats purr. "
        [stored] = history.turns(conversation)
        assert (stored.status, stored.answer) == ("cancelled", "Cats purr. ")


def test_a_stop_before_the_run_starts_ends_the_answer_without_asking_the_engine():
    engine = _Engine()
    asking = ConversationService(engine).ask("Do cats purr?", messages=[], save=False)
    asking.cancel()
    events = asyncio.run(_drain(asking))
    assert [type(e) for e in events] == [Cancelled] and engine.asked == []
    assert asking.turn().status == "cancelled" and asking.turn().question == "Do cats purr?"

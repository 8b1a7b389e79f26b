"""The answer stops when it starts repeating itself, and keeps what came before the loop."""
from __future__ import annotations

import re

import pytest

from core.engine import Engine
from core.events import Completed, SentenceClosed, TextDelta
from core.answer.repetition import RepetitionGuard, find_loop
from core.settings import Settings
from tests.fakes import ScriptedBackend

LOOPED = ('To add documents, click "Add files..." [1]. '
          'To add multiple documents, click "Add file..." and choose something from each folder. '
          'You can also add a folder. '
          'To add multiple documents, click "Add file..." and choose something from each folder. '
          'You can also add a folder. ')
BEFORE_LOOP = ('To add documents, click "Add files..." [1]. '
               'To add multiple documents, click "Add file..." and choose something from each folder. '
               'You can also add a folder.')


def tokens(text: str) -> list[str]:
    """Pieces the way a model streams them: words split in two, spaces attached."""
    out = []
    for word in re.findall(r"\S+\s*", text):
        out.extend([word[:3], word[3:]] if len(word) > 4 else [word])
    return [t for t in out if t]


def stream(text: str) -> tuple[str, RepetitionGuard]:
    guard = RepetitionGuard()
    shown = "".join(guard.feed(t) for t in tokens(text))
    return shown + guard.finish(), guard


def test_repeated_sentence_is_cut_before_the_second_copy():
    shown, guard = stream(LOOPED)
    assert shown == BEFORE_LOOP
    assert guard.loop is not None


def test_a_long_repeated_phrase_without_sentence_ends_is_a_loop():
    phrase = "click the button and choose a file from the folder you want "
    shown, guard = stream("Here is how: " + phrase * 4)
    assert guard.loop is not None and guard.loop.kind == "ngram"
    assert shown.startswith("Here is how: " + phrase.strip()) and shown.count("click the button") == 1


@pytest.mark.parametrize("answer", [
    "Click Add files [1]. Then choose the files [1]. The files are indexed on your computer [2].",
    "The retrieval score measures similarity. The support score measures support. Both are shown [2].",
    "Sourcelight reads PDF files. It also reads Word documents. It does not read images.",
])
def test_answers_that_do_not_loop_pass_through_whole(answer):
    shown, guard = stream(answer)
    assert shown == answer and guard.loop is None
    assert find_loop(answer) is None


def test_nothing_is_shown_twice_and_words_are_only_held_briefly():
    guard = RepetitionGuard()
    shown = guard.feed("Click Add files. ")
    assert shown == "Click Add files."  # the trailing space waits for the next word
    assert guard.feed("The") == ""  # may still grow ("Then")
    assert guard.feed("n wait.") == " Then"
    assert guard.finish() == " wait."


@pytest.fixture
def engine(tmp_path, embedder):
    engines = []

    def make(backend, **settings):
        engine = Engine(Settings(top_k=3, **settings), backend=backend, embedder=embedder, data_dir=tmp_path)
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.pipeline.close()


async def test_the_pipeline_stops_the_model_and_says_why(engine):
    # The scripted model would go on repeating for 40 more pieces.
    backend = ScriptedBackend(tokens(LOOPED) * 10)
    run = engine(backend).ask("How do I add documents?")
    events = [e async for e in run.events()]
    done = events[-1]
    assert isinstance(done, Completed) and done.finish_reason == "repetition"
    assert done.answer == BEFORE_LOOP == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert [e.sentence.text for e in events if isinstance(e, SentenceClosed)] == [
        'To add documents, click "Add files..." [1].',
        'To add multiple documents, click "Add file..." and choose something from each folder.',
        "You can also add a folder."]
    assert backend.outcomes.count("cancelled") == 1  # the stream was closed: no more tokens were computed


async def test_the_switch_off_keeps_the_old_behaviour(engine):
    backend = ScriptedBackend(tokens(LOOPED))
    e = engine(backend)
    e.pipeline.stop_on_repetition = False
    events = [ev async for ev in e.ask("How do I add documents?").events()]
    assert events[-1].finish_reason == "stop" and events[-1].answer == LOOPED


def test_repeated_lines_of_code_are_not_a_loop():
    line = 'print("Add the files to the index, then ask a question about them in the window")'
    body = f"if pdf:\n    {line}\nelse:\n    {line}\n"
    code = f"Run this:\n\n```python\n{body}```\n\nThen ask."
    shown, guard = stream(code)
    assert guard.loop is None and shown == code
    assert find_loop(f"Run this: {body} Then ask.") is not None  # the same words outside a code block loop


def test_a_pause_releases_a_growing_last_word_but_not_a_possible_loop():
    from core.answer.repetition import RepetitionGuard

    guard = RepetitionGuard()
    assert guard.feed("Click Add to add a file") == "Click Add to add a"
    assert guard.holding and guard.release_idle() == " file"
    assert not guard.holding
    assert guard.feed(". Click Add to ") == "."  # "Click Add to" repeats the start: held, it may be a loop
    assert guard.holding and guard.release_idle() == ""

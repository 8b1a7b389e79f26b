"""`sourcelight ask`: on a fresh data directory with the real local model, on Ctrl+C, and what it prints.

The first test is the issue's acceptance path: the sample corpus is indexed on
first run, the bundled SmolLM2 answers, every sentence is attributed with spans
that are real substrings of the retrieved chunks, and the stream completes.
The tests at the end run the command in-process over the real pipeline with a
scripted model and attributor, to check what it prints for each kind of sentence.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from core.events import RetrievedChunk, SupportSpan
from core.answer.pipeline import AnswerPipeline
from tests.fakes import ScriptedAttribution, ScriptedAttributor, ScriptedBackend


@pytest.mark.slow
def test_ask_json_on_fresh_install_answers_with_attributed_sentences(tmp_path):
    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "",
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "core.cli", "ask", "How do I add documents?", "--json",
                          "--threads", "1", "--max-tokens", "96"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    # The verifier loads beside the embedder on another thread; a race in
    # importing transformers once turned it off with a Note (core/model_loading.py).
    assert "support verifier" not in out.stderr, out.stderr[-3000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "retrieval" and types[-1] == "completed", types
    chunks = {c["id"]: c for c in events[0]["chunks"]}
    assert chunks and all({"id", "source", "page", "text", "score"} <= set(c) for c in chunks.values())
    answer = "".join(e["text"] for e in events if e["type"] == "delta")
    assert answer.strip()
    attributions = [e for e in events if e["type"] == "attribution"]
    assert len(attributions) == types.count("sentence") >= 1
    for a in attributions:
        s = a["sentence"]
        assert answer[s["start"]:s["end"]] == s["text"]
        assert isinstance(a["support"], float) and isinstance(a["supported"], bool)
        for src in a["sources"]:
            assert chunks[src["chunk_id"]]["text"][src["start"]:src["end"]] == src["text"]


_STALLING_CLI = """
import sys
import core.cli as cli
from tests.fakes import ScriptedBackend
real_engine = cli._engine
# The model writes one sentence and a half, then goes quiet: the user presses Ctrl+C.
cli._engine = lambda args, backend=None: real_engine(
    args, backend or ScriptedBackend(["Partial ", "answer. ", "More"], stall_after=3))
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ctrl_c_during_ask_keeps_the_turn_and_exits_quietly(tmp_path):
    import signal

    from core.history import HistoryStore

    question = "What does the guide say about installing on a machine without internet access and behind a proxy?"
    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-c", _STALLING_CLI, "ask", question], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = ""
    while not seen.endswith("More"):  # the streamed text reaches the terminal as it comes
        piece = child.stdout.read(1)
        assert piece, child.stderr.read()[-3000:]
        seen += piece
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "(stopped; saved as conversation 1)" in err
    with HistoryStore(tmp_path / "history.sqlite3") as history:
        (conversation,) = history.list_conversations()
        assert conversation.title.endswith("\u2026") and len(conversation.title) < len(question)
        (turn,) = history.turns(conversation.id)
    assert (turn.question, turn.answer, turn.status) == (question, "Partial answer. More", "cancelled")


# -- sentences that claim nothing --------------------------------------------------

GIFT_CARDS = RetrievedChunk("faq#0", "/docs/store/faq.md", None,
                            "Gift cards can be exchanged but not refunded. Shipping costs are refunded only when "
                            "the item arrived damaged.", 0.7)
GIFT_ANSWER = ["Do you mean a gift card? ", "Gift cards can be exchanged but not refunded [1]. ",
               "Shipping is always free. ", "I could not find anything about store credit."]


def _gift_span(text: str, score: float) -> SupportSpan:
    start = GIFT_CARDS.text.index(text)
    return SupportSpan(GIFT_CARDS.id, start, start + len(text), text, score)


class _ScriptedEngine:
    """What `sourcelight ask` needs of `core.engine.Engine`, over the real `AnswerPipeline`: the model and the
    attributor are scripted, retrieval returns the one FAQ passage."""

    def __init__(self):
        gift = "Gift cards can be exchanged but not refunded."
        attributor = ScriptedAttributor({
            # A question that happens to match a passage: the attributor may say "supported" here, but a
            # sentence that claims nothing is never reported as supported.
            "Do you mean a gift card?": ScriptedAttribution((_gift_span(gift, 0.93),), 0.93, True, "not_a_claim"),
            "Gift cards can be exchanged but not refunded [1].": ScriptedAttribution((_gift_span(gift, 1.0),),
                                                                                     1.0, True),
            "Shipping is always free.": ScriptedAttribution(
                (_gift_span("Shipping costs are refunded only when the item arrived damaged.", 0.22),), 0.22, False),
            "I could not find anything about store credit.": ScriptedAttribution((), 0.0, False, "not_a_claim"),
        })
        self.settings = SimpleNamespace(model="scripted")
        self.attributor = attributor
        self.pipeline = AnswerPipeline(retrieve=lambda _q, _k: [GIFT_CARDS], load_evidence=lambda _c: None,
                                       attributor=attributor, backend=ScriptedBackend(GIFT_ANSWER))

    @property
    def backend(self):
        return self.pipeline.backend

    def ask(self, question, history=()):
        return self.pipeline.ask(question, history)

    async def aclose(self) -> None:
        self.pipeline.close()


@pytest.fixture
def scripted_cli(home, monkeypatch):
    import core.cli as cli

    monkeypatch.setattr(cli, "_engine", lambda args, backend=None: _ScriptedEngine())
    return cli


def test_ask_json_says_which_sentences_are_not_claims(scripted_cli, capsys):
    assert scripted_cli.main(["ask", "Can I return a gift card?", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    verdicts = [(e["sentence"]["text"], e["kind"], e["supported"]) for e in events if e["type"] == "attribution"]
    assert verdicts == [("Do you mean a gift card?", "not_a_claim", False),
                        ("Gift cards can be exchanged but not refunded [1].", "claim", True),
                        ("Shipping is always free.", "claim", False),
                        ("I could not find anything about store credit.", "not_a_claim", False)]


def test_ask_prints_not_a_claim_instead_of_a_verdict(scripted_cli, capsys):
    assert scripted_cli.main(["ask", "Can I return a gift card?"]) == 0
    out = capsys.readouterr().out
    listing = out.split("Sources of each sentence:\n", 1)[1]
    assert listing == (
        "\n  (1) Do you mean a gift card?\n"
        "      Not a claim - nothing here to check against your documents.\n"
        "\n  (2) Gift cards can be exchanged but not refunded [1].\n"
        "      support 1.00 - supported\n"
        "      [1] faq.md: \"Gift cards can be exchanged but not refunded.\"\n"
        "\n  (3) Shipping is always free.\n"
        "      support 0.22 - UNSUPPORTED\n"
        "      [1] faq.md: \"Shipping costs are refunded only when the item arrived damaged.\"\n"
        "\n  (4) I could not find anything about store credit.\n"
        "      Not a claim - nothing here to check against your documents.\n")

"""`sourcelight ask --json` on a fresh data directory: the real local model, no key, no network.

This is the issue's acceptance path: the sample corpus is indexed on first
run, the bundled SmolLM2 answers, every sentence is attributed with spans that
are real substrings of the retrieved chunks, and the stream completes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_ask_json_on_fresh_install_answers_with_attributed_sentences(tmp_path):
    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "",
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "core.cli", "ask", "How do I add documents?", "--json",
                          "--threads", "1", "--max-tokens", "96"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
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

"""Secrets: a planted API key must never land in a file the app writes or in its output.

Two distinct keys are planted: one saved through `ApiKeyStore` (into an
in-memory keyring installed for the case, as a desktop keyring would hold
it), one in `OPENAI_API_KEY`. Then the app does everything that writes: saves
settings, ingests, asks (against a server that echoes the key back in its 401
error, as OpenAI and several compatible servers do), records the turn in the
history, exports the conversation, runs `sourcelight ask` from the command
line, and logs at DEBUG level from every logger (openai, httpx, chromadb
included) to a file inside the data folder. Finally every file under
SOURCELIGHT_HOME, the captured stdout/stderr and every message shown are
searched for either key.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
from pathlib import Path

from core.faults.asking import ask_async
from core.faults.base import Checks, FaultContext, Result, case, env
from core.faults.fake_openai import MODEL


@contextlib.contextmanager
def _debug_log(path: Path):
    """Everything every logger says, at DEBUG, into `path` (the worst an app's log could be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
        handler.close()


def _files_containing(root: Path, needles: dict[str, str]) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for label, needle in needles.items():
            if needle.encode() in data or needle.encode("utf-16-le") in data:
                hits.append(f"{path.relative_to(root)} ({label})")
    return hits


@case("api_key_never_written", "secrets", hint="enter a valid key in settings > model")
def api_key_never_written(ctx: FaultContext) -> Result:
    """Plant a key in the keyring and one in OPENAI_API_KEY; use the app; grep everything it wrote."""
    import asyncio

    from core import cli
    from core.engine import Engine
    from core.export import export_conversation
    from core.faults.memory_keyring import memory_keyring
    from core.history import HistoryStore, TurnRecorder
    from core.secrets import ApiKeyStore
    from core.settings import Settings

    stored_key = "sk-proj-STORED" + secrets.token_hex(20)
    env_key = "sk-proj-ENVVAR" + secrets.token_hex(20)
    needles = {"keyring key": stored_key, "OPENAI_API_KEY": env_key}
    work = ctx.dir("secrets")
    home = work / "home"
    docs = work / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("The last ferry leaves at ten. Bicycles travel free.\n", encoding="utf-8")
    url = ctx.server.url("echo-key-401")
    c = Checks()
    shown: list[str] = []
    with env(SOURCELIGHT_HOME=str(home), OPENAI_API_KEY=env_key, OPENAI_BASE_URL=None, SOURCELIGHT_CHROMA_URL=None), \
            memory_keyring(), _debug_log(home / "logs" / "sourcelight.log"), ctx.captured_output() as output:
        store = ApiKeyStore()
        status = store.set(stored_key)
        c.fact(f"key stored in: {status.source}")
        c.expect(status.source == "keyring", "the key did not go to the keyring")
        settings = Settings(backend="openai_compatible", base_url=url, model=MODEL, request_timeout_s=5.0,
                            top_k=2, max_tokens=32)
        settings.save()
        history = HistoryStore()
        conversation = history.create_conversation()

        async def converse(engine: Engine, question: str):
            recorder = TurnRecorder(question, engine.backend.description)
            asked = await ask_async(engine, question, timeout_s=60)
            for event in asked.events:
                recorder.observe(event)
            await engine.aclose()
            return asked, recorder

        # 1. The key from the keyring, as the window builds its engine (backend from settings + key store).
        engine = Engine(Settings.load(), embedder=ctx.embedder, index_sample_corpus=False)
        engine.ingest([docs])
        asked, recorder = asyncio.run(converse(engine, "When does the last ferry leave?"))
        shown.append(asked.message)
        history.add_turn(conversation, recorder.result())
        # 2. The key from OPENAI_API_KEY (OpenAI itself, URL overridden to the local server).
        store.delete()
        Settings(backend="openai", base_url=url, model=MODEL, request_timeout_s=5.0, top_k=2,
                 max_tokens=32).save()
        engine = Engine(Settings.load(), embedder=ctx.embedder, index_sample_corpus=False)
        env_asked, recorder = asyncio.run(converse(engine, "Do bicycles cost extra?"))
        shown.append(env_asked.message)
        history.add_turn(conversation, recorder.result())
        exports = home / "exports"
        exports.mkdir()
        for fmt in ("md", "json"):
            (exports / f"conversation.{fmt}").write_text(export_conversation(history, conversation, fmt),
                                                         encoding="utf-8")
        history.close()
        # 3. The command line, with the key in the environment (its output is captured with the rest).
        cli_code = cli.main(["ask", "When does the last ferry leave?", "--backend", "openai", "--base-url", url,
                             "--model", MODEL])
        logging.getLogger("sourcelight.faults").debug("api key store: %r, status: %r", store, store.status())
    written = _files_containing(home, needles)
    printed = [label for label, needle in needles.items() if needle in output.text()]
    in_messages = [label for label, needle in needles.items() if any(needle in m for m in shown)]
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    c.fact(f"asks: {asked.describe()} / {env_asked.describe()}; cli exit {cli_code}; searched {len(files)} file(s) "
           f"({', '.join(f for f in files if '/' not in f or f.startswith(('logs', 'exports')))} and the index), "
           f"{len(output.text())} chars of output")
    c.expect(asked.terminal is not None and getattr(asked.terminal, "code", "") == "authentication",
             "the echoing server's 401 was not reported as an authentication failure")
    c.expect(env_asked.terminal is not None and getattr(env_asked.terminal, "code", "") == "authentication",
             "the OPENAI_API_KEY run did not reach the server")
    c.expect(ctx.server.calls("echo-key-401") >= 3, "the key was not sent to the server (the case proves nothing)")
    c.expect((home / "settings.json").exists() and (home / "history.sqlite3").exists(), "nothing was written")
    c.lose(bool(written), f"a key was written to: {written}")
    c.lose(bool(printed), f"a key was printed: {printed}")
    c.lose(bool(in_messages), f"a key was shown in an error message: {in_messages}")
    return c.result(asked.message)

"""Workspaces on a real Chroma server (`chroma run` on loopback)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from core.engine import Engine
from core.errors import StoreError
from core.events import AttributionReady, Completed, RetrievalDone
from core.settings import Settings
from core.ingest.store import ChunkStore
from tests.fakes import ScriptedBackend, free_port


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    exe = shutil.which("chroma")
    if exe is None:
        pytest.fail("the `chroma` command (from the chromadb package) is not on PATH")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path_factory.mktemp("chroma")), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("chroma run did not start")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


async def test_ingest_ask_and_attribute_through_the_server(chroma_url, tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "boiler.txt").write_text("The boiler pressure must stay between 1.0 and 1.5 bar. "
                                     "Bleed the radiators every autumn.")
    settings = Settings(chroma_url=chroma_url, workspace="team-a", top_k=2)
    engine = Engine(settings, backend=ScriptedBackend(["The pressure must stay between 1.0 and 1.5 bar."]),
                    embedder=embedder, data_dir=tmp_path / "home", index_sample_corpus=False)
    report = engine.ingest([docs])
    assert len(report.indexed) == 1
    events = [e async for e in engine.ask("What pressure should the boiler have?").events()]
    assert isinstance(events[-1], Completed)
    chunk = next(e for e in events if isinstance(e, RetrievalDone)).chunks[0]
    attribution = next(e for e in events if isinstance(e, AttributionReady))
    assert attribution.supported and attribution.sources[0].chunk_id == chunk.id
    assert "1.0 and 1.5 bar" in attribution.sources[0].text
    assert "team-a" in engine.store.workspaces()
    engine.pipeline.close()


def test_two_instances_share_one_server_collection(chroma_url, tmp_path, embedder):
    """Another process (a second app instance) ingests; this one sees and retrieves it."""
    docs = tmp_path / "shared"
    docs.mkdir()
    (docs / "policy.md").write_text("Travel claims must be filed within 30 days of the trip.")
    env = {**os.environ, "SOURCELIGHT_HOME": str(tmp_path / "other-home"), "SOURCELIGHT_CHROMA_URL": chroma_url}
    out = subprocess.run([sys.executable, "-m", "core.cli", "--collection", "shared", "ingest", str(docs)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    engine = Engine(Settings(chroma_url=chroma_url, workspace="shared"), backend=ScriptedBackend(),
                    embedder=embedder, data_dir=tmp_path / "my-home", index_sample_corpus=False)
    assert [d.file_name for d in engine.documents()] == ["policy.md"]
    hits = engine.retriever.retrieve("How long do I have to file a travel claim?", 1)
    assert "30 days" in hits[0].text
    engine.pipeline.close()


def test_server_down_gives_a_clear_error(tmp_path):
    store = ChunkStore(tmp_path, server_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreError, match="Is `chroma run` running"):
        store.open()


@pytest.mark.parametrize("url", ["http://127.0.0.1:80000", "http://127.0.0.1:8OOO", "ftp://127.0.0.1:8000"])
def test_a_mistyped_server_url_says_how_to_write_it(tmp_path, url):
    with pytest.raises(StoreError, match="Use the form http://HOST:PORT"):
        ChunkStore(tmp_path, server_url=url).open()

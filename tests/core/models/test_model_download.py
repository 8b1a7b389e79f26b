"""Downloading a model: the real download code against a loopback server that acts like the Hub.

The server serves the bundled SmolLM2 GGUF under a made-up repository name,
reached through HF_ENDPOINT as a mirror would be. A download is cancelled
half-way, resumed with a Range request for the rest only, verified against
the Hub's SHA-256, and then answers a question. A corrupted transfer, a
missing file, a full disk and no network each end with a message that says
what happened.
"""
from __future__ import annotations

import threading

import pytest

from core.engine import Engine
from core.events import Completed, TextDelta
from core.llm.local import LocalBackend, bundled_model_path
from core.models.download import DownloadError, download_model, part_path
from core.settings import Settings
from tests.core.models.hub_server import HostedFile, hub_server

REPO = "sourcelight-tests/Tiny-Instruct-GGUF"
FILE = "tiny-instruct-q4_1.gguf"


@pytest.fixture
def hub(monkeypatch):
    with hub_server() as server:
        server.files[f"{REPO}/{FILE}"] = HostedFile(bundled_model_path())
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


async def test_cancel_resume_verify_then_answer(hub, tmp_path, embedder):
    dest = tmp_path / "models"
    size = bundled_model_path().stat().st_size
    cancel = threading.Event()
    seen = []

    # The user clicks Cancel a third of the way in (the server clicks it when it has sent that much).
    hosted = HostedFile(bundled_model_path(), pause_after=size // 3, at_pause=cancel.set)
    hub.files[f"{REPO}/{FILE}"] = hosted
    progress = seen.append

    with pytest.raises(DownloadError) as stopped:
        download_model(REPO, FILE, dest_dir=dest, progress=progress, cancel=cancel)
    assert stopped.value.code == "cancelled" and "continues from there" in stopped.value.message
    part = part_path(dest / FILE)
    kept = part.stat().st_size
    # What had arrived when the click was noticed (socket buffers hold some of what the server sent).
    assert 0 < kept < size and not (dest / FILE).exists()  # nothing unverified is offered
    downloading = [p for p in seen if p.stage == "downloading"]
    assert downloading and downloading[-1].total == size and downloading[-1].bytes_per_s > 0
    assert downloading[-1].seconds_left is not None

    seen.clear()
    hub.requests.clear()
    path = download_model(REPO, FILE, dest_dir=dest, progress=seen.append)
    assert path == dest / FILE and path.read_bytes() == bundled_model_path().read_bytes()
    assert not part.exists()
    ranges = [r for method, p, r in hub.requests if method == "GET" and p.startswith("/cdn/")]
    assert ranges == [f"bytes={kept}-"]  # only the rest was asked for
    stages = [p.stage for p in seen]
    assert stages[0] == "checking" and "verifying" in stages and stages[-1] == "done"

    # The downloaded file answers a question.
    backend = LocalBackend(str(path), threads=1)
    engine = Engine(Settings(top_k=2, max_tokens=24), backend=backend, embedder=embedder, data_dir=tmp_path / "data")
    try:
        events = [e async for e in engine.ask("How do I add documents?").events()]
    finally:
        await engine.aclose()
    assert isinstance(events[-1], Completed) and events[-1].answer.strip()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == events[-1].answer
    assert backend.model_path == path


def test_a_corrupt_download_is_refused_and_deleted(hub, tmp_path):
    hub.files[f"{REPO}/{FILE}"].corrupt = True
    with pytest.raises(DownloadError) as refused:
        download_model(REPO, FILE, dest_dir=tmp_path)
    assert refused.value.code == "checksum_mismatch"
    assert "does not match the Hub's checksum" in refused.value.message
    assert not (tmp_path / FILE).exists() and not part_path(tmp_path / FILE).exists()


def test_a_missing_model_says_not_found(hub, tmp_path):
    with pytest.raises(DownloadError) as missing:
        download_model("sourcelight-tests/No-Such-Model", FILE, dest_dir=tmp_path)
    assert missing.value.code == "not_found" and "was not found" in missing.value.message


def test_a_model_larger_than_the_free_space_is_not_started(hub, tmp_path):
    hub.files[f"{REPO}/{FILE}"].advertised_size = 1 << 60  # an exbibyte
    with pytest.raises(DownloadError) as full:
        download_model(REPO, FILE, dest_dir=tmp_path)
    assert full.value.code == "disk_full" and "Not enough free disk space" in full.value.message
    assert not any(r[1].startswith("/cdn/") for r in hub.requests)  # no byte was fetched


def test_no_network_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DownloadError) as offline:
        download_model(REPO, FILE, dest_dir=tmp_path)
    assert offline.value.code == "no_network" and "Cannot reach" in offline.value.message

"""The torch-free embedder: built from the bundled weights, it gives sentence-transformers' vectors on every start.

A user's index may have been built with sentence-transformers (earlier
versions on their first start, or this one where onnxruntime is missing);
questions are now embedded by onnxruntime from a graph built over the same
weights. If the two disagreed, retrieval would silently change, so the vectors
are compared on a few hundred real sentences (the built-in guide and the
project's own documentation) and on the hard cases: empty, non-Latin, longer
than the model reads, batched out of order. The start-up path must not import
torch at all, and a machine without onnxruntime must still get the same vectors.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.embedding import Embedder, bundled_model_path
from core.ingest.segment import split_sentences

ROOT = Path(__file__).resolve().parents[2]
EDGE_TEXTS = [
    "How do I add documents?",
    "東京は日本の首都です。",
    "word " * 600,  # longer than the model reads (256 word pieces)
    "",
    "Chunk size is 64 MB.",
]


def real_sentences() -> list[str]:
    """The sentences of the built-in guide and of the project's READMEs, each once (over 400)."""
    files = (sorted((ROOT / "resources" / "sample_corpus").glob("*.md")) + [ROOT / "README.md"]
             + sorted((ROOT / "core").rglob("README.md")))
    sentences = [s.text for f in files for s in split_sentences(f.read_text(encoding="utf-8"))]
    return list(dict.fromkeys(s for s in sentences if s.strip()))


@pytest.fixture(scope="module")
def reference():
    """sentence-transformers on torch: what earlier versions stored in users' indexes."""
    model = Embedder(onnx=False)
    model.load()
    assert model.runtime == "sentence-transformers"
    return model


@pytest.fixture(scope="module")
def index(reference):
    """(the real sentences, their vectors from sentence-transformers: an index an earlier version built)."""
    texts = real_sentences()
    return texts, reference.encode(texts)


@pytest.fixture(scope="module")
def fast():
    model = Embedder()
    model.load()
    assert model.runtime == "onnxruntime"  # no export, no earlier start: the graph is built from the weights
    return model


def test_the_vectors_match_sentence_transformers_on_real_sentences(index, fast):
    texts, expected = index
    assert len(texts) >= 300
    got = fast.encode(texts)
    assert np.abs(got - expected).max() < 1e-4
    assert (np.sum(got * expected, axis=1) >= 0.9999).all()  # the same cosine ranking for every sentence


def test_edge_cases_and_regrouped_batches_give_the_same_rows(reference, fast):
    expected = reference.encode(EDGE_TEXTS)
    got = fast.encode(EDGE_TEXTS, batch_size=2)  # batches regrouped by length: rows must come back in order
    assert got.shape == (len(EDGE_TEXTS), 384)
    assert np.abs(got - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_the_word_piece_vectors_match_sentence_transformers(reference, fast):
    """The attributor's claim-to-evidence alignment reads these; either runtime must give the same support."""
    texts = EDGE_TEXTS + real_sentences()[:40]
    expected, got = reference.token_vectors(texts), fast.token_vectors(texts)
    for (pieces_e, e), (pieces_g, g) in zip(expected, got):
        assert pieces_g == pieces_e and pieces_g[0] == "[CLS]" and pieces_g[-1] == "[SEP]"
        assert g.shape == (len(pieces_g), 384) and np.abs(g - e).max() < 1e-3


def test_a_question_finds_the_same_sentences_either_way(reference, index, fast):
    _, vectors = index
    question = "How do I see where an answer sentence comes from?"
    ranked = lambda q: list(np.argsort(-(vectors @ q))[:5])  # noqa: E731
    assert ranked(fast.encode_one(question)) == ranked(reference.encode_one(question))


def _run(code: str, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_starting_and_answering_from_the_index_imports_no_torch(tmp_path):
    """A first start (fresh data folder: the guide is indexed), a question retrieved and attributed, in a fresh
    process: neither torch nor transformers nor sentence-transformers is imported. Exports an earlier version
    left in the data folder are removed."""
    old = tmp_path / "cache" / "embedder" / "all-MiniLM-L6-v2.90868376.1764000000000000000.v1.onnx"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an export made with torch by an earlier version")
    code = """
import asyncio, json, sys
from core.engine import Engine
from core.events import AttributionReady, Completed, RetrievalDone
from core.settings import Settings
from tests.fakes import ScriptedBackend

async def first_answer(engine):
    return [e async for e in engine.ask("How do I add documents?").events()]

engine = Engine(Settings(), backend=ScriptedBackend(["You add documents from the Documents panel."]))
engine.load()
events = asyncio.run(first_answer(engine))
engine.pipeline.close()
print(json.dumps({"completed": isinstance(events[-1], Completed),
                  "hits": len(next(e for e in events if isinstance(e, RetrievalDone)).chunks),
                  "attributed": sum(isinstance(e, AttributionReady) for e in events),
                  "embedder": engine.embedder.runtime, "verifier": engine.attributor.verifier.runtime,
                  "imported": sorted(m for m in ("torch", "transformers", "sentence_transformers", "onnx")
                                     if m in sys.modules)}))
"""
    out = _run(code, {"SOURCELIGHT_HOME": str(tmp_path)})
    assert out["completed"] and out["hits"] > 0 and out["attributed"] == 1
    assert out["embedder"] == "onnxruntime" and out["verifier"] == "onnxruntime"
    assert out["imported"] == []
    assert not old.exists() and not old.parent.exists()


def test_without_onnxruntime_both_models_fall_back_to_torch_with_the_same_results(tmp_path, fast):
    code = """
import json, sys
sys.modules["onnxruntime"] = None  # as on a build that does not ship it: importing it raises ImportError
from core.embedding import Embedder
from core.attribution.verifier import Verifier
embedder, verifier = Embedder(), Verifier()
embedder.load()
verifier.load()
print(json.dumps({"embedder": embedder.runtime, "verifier": verifier.runtime, "error": verifier.error,
                  "vector": embedder.encode_one("How do I add documents?").tolist()}))
"""
    out = _run(code, {"SOURCELIGHT_HOME": str(tmp_path)})
    assert out["embedder"] == "sentence-transformers" and out["verifier"] == "torch" and out["error"] is None
    assert np.abs(np.array(out["vector"]) - fast.encode_one("How do I add documents?")).max() < 1e-4


def test_a_model_the_graph_does_not_express_runs_on_sentence_transformers(tmp_path, caplog):
    """A different activation than BERT's exact GELU: the graph refuses it rather than compute something else."""
    folder = tmp_path / "model"
    shutil.copytree(bundled_model_path(), folder, symlinks=True,
                    ignore=lambda _d, names: [n for n in names if n == "model.safetensors"])
    (folder / "model.safetensors").symlink_to(Path(bundled_model_path()) / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu_new"}))
    embedder = Embedder(str(folder))
    embedder.load()
    assert embedder.runtime == "sentence-transformers"
    assert "could not be built for onnxruntime" in caplog.text
    assert embedder.encode(["How do I add documents?"]).shape == (1, 384)

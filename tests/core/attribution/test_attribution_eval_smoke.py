"""Smoke test of `sourcelight eval attribution` on the first lines of the real dev files."""
from __future__ import annotations

import json

import pytest

from attribution_cases import DATA
from core.eval import attribution_eval, chunk_vectors
from core.eval.attribution_data import load_expertqa, load_wice, passage_body

WICE = DATA / "wice" / "claim_dev.jsonl"
EXPERTQA = DATA / "expertqa" / "rand_val.jsonl"

pytestmark = pytest.mark.skipif(not (WICE.exists() and EXPERTQA.exists()),
                                reason="shared/data (WiCE, ExpertQA dev files) is not beside the repository")


def _small_lines(src, dst, n, size):
    """The n lines of `src` with the smallest `size(row)` (keeps the embedding cost to seconds)."""
    with open(src, encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip()]
    lines.sort(key=lambda line: size(json.loads(line)))
    dst.write_text("".join(lines[:n]), encoding="utf-8")
    return dst


def _wice(dst, n):
    return _small_lines(WICE, dst, n, lambda r: len(r["evidence"]) + 1000 * (r["label"] == "not_supported"))


def _expertqa(dst, n):
    def size(r):
        claims = [c for a in r["answers"].values() for c in a["claims"]]
        passages = {passage_body(e) for c in claims for e in c.get("evidence") or []} - {""}
        complete = any(c["support"] == "Complete" and len(c.get("evidence") or []) == 1
                       and passage_body(c["evidence"][0]) for c in claims)
        return sum(len(p) for p in passages) + (0 if len(passages) >= 2 and complete else 10**9)
    return _small_lines(EXPERTQA, dst, n, size)


def test_wice_offsets_index_the_joined_page():
    claim = load_wice(WICE)[0]
    for s in claim.sentences:
        assert claim.chunk_text[s.start:s.end] == s.text


def test_expertqa_passages_drop_the_url_header():
    answers = load_expertqa(EXPERTQA)
    assert answers and all(not p.startswith("[") or "http" not in p.split("\n", 1)[0]
                           for a in answers for p in a.passages)


def test_eval_prints_the_metrics_as_json(tmp_path, capsys, embedder, monkeypatch):
    # The smallest pools keep the embedding cost to seconds: 3 short WiCE
    # pages and 2 short ExpertQA answers.
    monkeypatch.setattr("core.embedding.Embedder", lambda *a, **k: embedder)
    wice = _wice(tmp_path / "wice.jsonl", 3)
    eqa = _expertqa(tmp_path / "eqa.jsonl", 2)
    assert attribution_eval.main(["--wice", str(wice), "--expertqa", str(eqa), "--json", "--quiet", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    w, e = out["wice"], out["expertqa"]
    for key in ("n", "hit@1", "hit@3", "mrr", "auroc_supported_vs_not", "auroc_supported_vs_rest"):
        assert key in w
    for key in ("n", "passage_accuracy", "auroc_complete_vs_partial"):
        assert key in e
    assert w["n"] >= 1 and 0.0 <= w["hit@1"] <= w["hit@3"] <= 1.0
    assert e["n"] >= 1 and 0.0 <= e["passage_accuracy"] <= 1.0


def test_eval_single_task_json_is_flat(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("core.embedding.Embedder", lambda *a, **k: embedder)
    wice = _wice(tmp_path / "wice.jsonl", 1)
    assert attribution_eval.main(["--wice", str(wice), "--json", "--quiet", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "wice" and "mrr" in out


def test_eval_needs_a_file(capsys):
    assert attribution_eval.main([]) == 2
    assert attribution_eval.main(["--wice", "/nonexistent.jsonl"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_chunk_vector_eval_compares_both_ways_on_the_same_chunks(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("core.embedding.Embedder", lambda *a, **k: embedder)
    wice = _wice(tmp_path / "wice.jsonl", 3)
    eqa = _expertqa(tmp_path / "eqa.jsonl", 2)
    assert chunk_vectors.main(["--wice", str(wice), "--expertqa", str(eqa), "--json", "--quiet", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["wice"]["queries"] == 3 and out["wice"]["passages"] == 3
    for task in out.values():
        assert task["chunks"] >= task["passages"] >= 1
        for way in ("embedded", "pooled", "hybrid_embedded", "hybrid_pooled"):
            m = task[way]
            assert 0.0 <= m["hit@1"] <= m["hit@5"] <= 1.0 and m["hit@1"] <= m["mrr"] <= 1.0

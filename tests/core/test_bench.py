"""The benchmarks run in their tiny configuration and print the fields issue 5 names.

Benchmarks are not tests: nothing here looks at a time. Each bench runs
in-process with `--quick --json` against a temporary cache, and the test
checks that exactly one JSON object with the required fields comes out.
"""
from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from core import bench
from core.bench.base import Bench, BenchResult, Goal, percentile


@pytest.fixture
def bench_cache(tmp_path, monkeypatch):
    path = tmp_path / "bench-cache"
    monkeypatch.setenv("SOURCELIGHT_BENCH_CACHE", str(path))
    return path


def run_json(capsys, *argv: str) -> dict:
    code = bench.main([*argv, "--quick", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out  # exactly one JSON object, nothing else on stdout
    data = json.loads(lines[0])
    assert data["bench"] == argv[0]
    assert isinstance(data["goals"], list) and data["goals"] and "goals_met" in data
    return data


def test_main_lists_every_benchmark_including_the_gui_ones(capsys):
    assert bench.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("retrieval", "ingest", "attribution", "local_llm", "stream", "startup"):
        assert name in out


def test_unknown_and_unregistered_gui_benchmarks_are_refused(capsys):
    assert bench.main(["nonsense"]) == 2
    assert bench.main(["stream"]) == 2
    err = capsys.readouterr().err
    assert "Unknown benchmark" in err and "GUI package" in err


def test_a_benchmark_defined_outside_core_can_be_passed_in(capsys):
    seen = {}

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tokens", type=int, default=7)

    def run(args: argparse.Namespace) -> BenchResult:
        seen["tokens"] = args.tokens
        return BenchResult("stream", {"delivered_tps": 2000.0, "painted_tps": 1999.0},
                           goals=[Goal("painted/delivered", 0.9995, ">=", 0.99)])

    fake = Bench("stream", "the window under a token flood", add_arguments, run)
    assert bench.main(["stream", "--tokens", "3", "--json"], benches=[*bench.core_benches(), fake]) == 0
    data = json.loads(capsys.readouterr().out)
    assert seen == {"tokens": 3}
    assert data["painted_tps"] == 1999.0 and data["goals_met"] is True

    assert bench.main(["stream"], benches=[fake]) == 0
    text = capsys.readouterr().out
    assert "goal >= 0.99" in text and "met" in text


def test_missed_goals_are_said_plainly(capsys):
    fake = Bench("slow", "misses its goal", lambda p: None,
                 lambda a: BenchResult("slow", {"ratio": 2.0}, goals=[Goal("ratio", 2.0, "<=", 1.2)]))
    assert bench.main(["slow"], benches=[fake]) == 0
    assert "MISSED" in capsys.readouterr().out


def test_generated_text_is_deterministic():
    from core.bench.corpus import SentencePool, plan_chunks, queries

    a, b = SentencePool.generate(200, seed=3), SentencePool.generate(200, seed=3)
    assert a == b and a != SentencePool.generate(200, seed=4)
    assert [p.text for p in plan_chunks(a, 20, 3)] == [p.text for p in plan_chunks(b, 20, 3)]
    assert queries(a, 5, 3) == queries(b, 5, 3)
    assert all(s.endswith(".") and s[0].isupper() for s in a.sentences)


def test_paced_backend_replays_every_piece_in_order():
    from core.bench.scripted import PacedBackend, split_tokens

    text = "One sentence here. Another one follows!  "
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    backend = PacedBackend(pieces, tokens_per_s=10_000)

    async def collect():
        return [c async for c in backend.stream([], max_tokens=10, temperature=0)]

    chunks = asyncio.run(collect())
    assert "".join(c.text for c in chunks) == text
    assert chunks[-1].finish_reason == "stop" and backend.last_piece_at is not None


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 95) == 5


def test_retrieval_bench_prints_its_fields(capsys, bench_cache):
    data = run_json(capsys, "retrieval")
    idle, busy = data["sizes"]  # one 300-chunk collection, measured idle and with one core kept busy
    assert (idle["condition"], busy["condition"]) == ("idle", "busy_core")
    for size in (idle, busy):
        for key in ("p50_ms", "p95_ms", "bare_p50_ms", "ratio", "peak_rss_mb"):
            assert isinstance(size[key], (int, float)), key
        assert size["chunks"] == 300
    assert data["ratio"] == idle["ratio"] and data["ratio_busy_core"] == busy["ratio"] and data["peak_rss_mb"] > 0
    # The collection is cached: a second run reuses it.
    assert len(list(bench_cache.glob("retrieval-300-*"))) == 1


@pytest.mark.slow
def test_ingest_bench_prints_its_fields(capsys, bench_cache):
    data = run_json(capsys, "ingest")
    for key in ("chunks_per_s", "naive_chunks_per_s", "ratio", "peak_rss_mb"):
        assert isinstance(data[key], (int, float)), key
    assert data["chunks"] > 0
    assert not list(bench_cache.glob("ingest-run-*"))  # the temporary stores are removed


@pytest.mark.slow
def test_attribution_bench_prints_its_fields(capsys, bench_cache):
    data = run_json(capsys, "attribution")
    for key in ("attribution_ms_per_sentence", "embed_only_ms_per_sentence", "ratio", "after_last_token_ms"):
        assert isinstance(data[key], (int, float)), key
    assert data["chunks"] == 10 and data["embed_calls_per_sentence"] >= 1


@pytest.mark.slow
def test_local_llm_bench_prints_its_fields(capsys, bench_cache):
    data = run_json(capsys, "local_llm")
    for key in ("pipeline_tps", "raw_tps", "ratio"):
        assert isinstance(data[key], (int, float)), key

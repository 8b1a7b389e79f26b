"""Latency of live attribution: `python3 -m core.eval.attribution_bench`.

The live pipeline builds one `EvidencePool` per answer and calls
`Attributor.attribute` once per answer sentence with the sentence already
embedded. This prints what both cost beyond embedding, on real pools: ExpertQA
answers that cite 8-10 passages (about the ~10 retrieved chunks of a live
answer) and, as a larger case, WiCE pages (~120 sentences). Figures, not
assertions (timing goals live in benchmarks).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


from core.attribution import Attributor, EvidencePool
from core.attribution.text import strip_citations
from core.eval.attribution_data import (EmbeddingCache, default_cache_dir, expertqa_sentences, load_expertqa,
                                        load_wice)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _measure(attributor: Attributor, cases, repeats: int) -> dict:
    build, per_claim, cpu, sizes = [], [], [], []
    for sents, vecs, claims in cases:
        t0 = time.perf_counter()
        pool = EvidencePool.build(sents, vecs)
        build.append(time.perf_counter() - t0)
        sizes.append(pool.n)
        for claim, q in claims:
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.thread_time()
                attributor.attribute(claim, pool, q)
                cpu.append(time.thread_time() - c0)
                per_claim.append(time.perf_counter() - t0)
    ms = sorted(x * 1000 for x in per_claim)
    cpu_ms = sorted(x * 1000 for x in cpu)
    return {"pools": len(cases), "mean_sentences": round(statistics.mean(sizes), 1),
            "pool_build_ms_mean": round(statistics.mean(build) * 1000, 2),
            "attribute_ms_median": round(ms[len(ms) // 2], 3),
            "attribute_ms_p95": round(ms[int(len(ms) * 0.95)], 3),
            # Thread CPU time: the wall-clock tail on a shared machine is mostly preemption.
            "attribute_cpu_ms_median": round(cpu_ms[len(cpu_ms) // 2], 3),
            "attribute_cpu_ms_p95": round(cpu_ms[int(len(cpu_ms) * 0.95)], 3), "claims_timed": len(ms)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m core.eval.attribution_bench", description=__doc__.split("\n")[0])
    p.add_argument("--wice", default=str(DATA / "wice" / "claim_dev.jsonl"))
    p.add_argument("--expertqa", default=str(DATA / "expertqa" / "rand_val.jsonl"))
    p.add_argument("--cache", metavar="DIR", help="embedding cache (default: the eval's, under the data directory)")
    p.add_argument("--pools", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from core.embedding import Embedder

    embedder = Embedder()
    attributor = Attributor(embedder)
    cache = EmbeddingCache(embedder, args.cache or default_cache_dir(), name="eval")

    answers = sorted((a for a in load_expertqa(args.expertqa) if len(a.passages) >= 8),
                     key=lambda a: -len(a.passages))[: args.pools]
    eqa = []
    for a in answers:
        sents = expertqa_sentences(a)
        claims = [strip_citations(c.claim) for c in a.claims if c.claim]
        cache.ensure([s.text for s in sents] + claims)
        eqa.append((sents, cache.get([s.text for s in sents]), list(zip(claims, cache.get(claims)))))
    wice = []
    for c in load_wice(args.wice)[: args.pools]:
        claim = strip_citations(c.claim)
        cache.ensure([s.text for s in c.sentences] + [claim])
        wice.append((c.sentences, cache.get([s.text for s in c.sentences]), [(claim, cache.get([claim])[0])]))

    t0 = time.perf_counter()
    embedder.encode_one("Warm-up sentence for the timer.")
    one = []
    for text in ("Sourcelight shows the source of every answer sentence.",
                 "The museum estimates that it has had over half a million visitors since its opening."):
        t0 = time.perf_counter()
        embedder.encode_one(text)
        one.append((time.perf_counter() - t0) * 1000)
    out = {"expertqa_answers_8_to_10_passages": _measure(attributor, eqa, args.repeats),
           "wice_pages": _measure(attributor, wice, args.repeats),
           "encode_one_ms (for scale)": round(statistics.mean(one), 1)}
    import json

    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""`bench retrieval`: the product's `Retriever.retrieve` vs bare query embedding + Chroma query.

At each collection size (10k and 100k chunks by default) the same generated
questions go through both paths, alternating which goes first:

- product: `Retriever.retrieve(question, k)` on the product's `ChunkStore` and
  `LexicalIndex`: embedding and a Chroma query for k chunks, and beside them on
  a second thread BM25 over every chunk (k*4 candidates, their vectors read
  from the lexical index) and fetching those candidates' texts; then fusion;
- reference: `Embedder.encode_one(question)` + `collection.query(n_results=k)`
  with Chroma's default include, what a plain vector-search RAG does.

Goal (issues 5 and 19): p50 / bare p50 <= 1.2 at both sizes on an idle
machine; the same is measured and printed with a second process keeping one
core busy (`core.bench.load`). A per-stage breakdown
(the same store/lexical calls `retrieve` makes, timed one by one) shows where
the difference goes. Collections are pre-built and cached (`core.bench.prebuilt`).
"""
from __future__ import annotations

import argparse
import math

from core.bench.base import (Bench, BenchResult, Goal, Stopwatch, cache_dir, current_rss_mb, goal_text, interleaved,
                             machine_line, median, peak_rss_mb, percentile, profile_calls, progress, ratio, row,
                             say)
from core.bench.load import BUSY_CORE, IDLE, add_conditions_argument, condition, conditions

GOAL_RATIO = 1.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated collection sizes in chunks (default 10000,100000)")
    parser.add_argument("--queries", type=int, default=100, help="questions per size (default 100)")
    parser.add_argument("-k", type=int, default=None, help="chunks per answer (default: the settings' top_k)")
    add_conditions_argument(parser)


def _measure_size(n: int, args: argparse.Namespace, embedder, k: int, result: BenchResult, where: str) -> dict:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from core.bench import prebuilt
    from core.bench.corpus import queries as make_queries
    from core.answer.lexical import LexicalIndex
    from core.answer.retrieval import CANDIDATES_PER_K, Retriever, fused_score
    from core.ingest.store import ChunkStore

    folder, info = prebuilt.ensure_collection(cache_dir(), n, args.seed, embedder, progress)
    questions = make_queries(prebuilt.pool_for(n, args.seed), args.queries, args.seed + n)

    # One client for both paths, as the product holds one per data folder.
    with Stopwatch() as opened:
        client = chromadb.PersistentClient(path=str(folder / "index"),
                                           settings=ChromaSettings(anonymized_telemetry=False))
        store = ChunkStore(folder / "index", prebuilt.WORKSPACE, client=client)
        store.open()
        lexical = LexicalIndex(store, folder / "lexical")
        lexical.ensure_current()
    retriever = Retriever(store, embedder, lexical)
    collection = client.get_collection(f"{prebuilt.WORKSPACE}-chunks")
    count = collection.count()

    def product(q: str):
        return retriever.retrieve(q, k)

    def bare(q: str):
        vector = embedder.encode_one(q)
        return collection.query(query_embeddings=[vector], n_results=k)

    # The first query loads the HNSW index and maps the BM25 arrays: report it, keep it out of the medians.
    with Stopwatch() as first:
        product(questions[0])
    for q in questions[:3]:
        bare(q)
        product(q)

    times_p, times_b, paired = [], [], []
    for i, product_first in progress(interleaved(len(questions)), total=len(questions),
                                     desc=f"retrieval @ {n:,}", unit="q"):
        q = questions[i]
        order = (product, bare) if product_first else (bare, product)
        spent = {}
        for fn in order:
            with Stopwatch() as w:
                fn(q)
            spent[fn] = w.ms
        times_p.append(spent[product])
        times_b.append(spent[bare])
        paired.append(spent[product] / spent[bare])

    # Stage breakdown: the calls retrieve() makes, timed one by one on the same questions.
    n_candidates = max(k * CANDIDATES_PER_K, 20)
    stages: dict[str, list[float]] = {"embed": [], "vector_query": [], "bm25": [], "fetch_bm25_best_k": [],
                                      "bare_chroma_query": []}
    bm25_only = []
    staged = questions[: min(40, len(questions))]
    for q in progress(staged, desc=f"stages @ {n:,}", unit="q"):
        with Stopwatch() as w:
            vector = embedder.encode_one(q)
        stages["embed"].append(w.ms)
        with Stopwatch() as w:
            hits = store.query(vector, k)
        stages["vector_query"].append(w.ms)
        with Stopwatch() as w:
            lex, lex_vectors = lexical.search_with_vectors(q, n_candidates)
        stages["bm25"].append(w.ms)
        seen = {c.id for c, _ in hits}
        bm25_only.append(sum(cid not in seen for cid, _ in lex))
        # What the lexical side fetches: the texts of its k best candidates by fused score.
        top_lexical = lex[0][1] if lex else 1.0
        fused = [fused_score(cos, score / (top_lexical or 1.0))[0]
                 for (_cid, score), cos in zip(lex, lex_vectors @ vector)]
        best = [lex[i][0] for i in sorted(range(len(lex)), key=lambda i: -fused[i])[:k]]
        with Stopwatch() as w:
            if best:
                store.get_chunks(best)
        stages["fetch_bm25_best_k"].append(w.ms)
        with Stopwatch() as w:
            collection.query(query_embeddings=[vector], n_results=k)
        stages["bare_chroma_query"].append(w.ms)
    stage_p50 = {name: median(v) for name, v in stages.items()}
    # Where the product's extra time goes: the path to the answer is embed + vector query
    # (the lexical side runs beside it); what is left over is the lexical side's share of
    # the two cores, the thread hand-off and fusion.
    on_path = stage_p50["embed"] + stage_p50["vector_query"]
    beside = stage_p50["bm25"] + stage_p50["fetch_bm25_best_k"]

    if args.profile:
        say(profile_calls(f"Retriever.retrieve at {n:,} chunks", lambda it=iter(questions * 2): product(next(it)),
                          repeat=min(30, len(questions))))

    out = {
        "chunks": count, "condition": where,
        "p50_ms": median(times_p), "p95_ms": percentile(times_p, 95),
        "bare_p50_ms": median(times_b), "bare_p95_ms": percentile(times_b, 95),
        "ratio": ratio(median(times_p), median(times_b)),
        "paired_ratio_p50": median(paired),
        "first_query_ms": first.ms, "open_ms": opened.ms,
        "stages_p50_ms": stage_p50, "on_path_stages_ms": on_path, "beside_stages_ms": beside,
        "bm25_only_candidates_p50": median(bm25_only),
        "peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb(),
        "build": info,
    }
    result.lines += [
        f"at {count:,} chunks, {where} ({len(questions)} questions, k={k}, product and reference alternating):",
        row("product retrieve() p50", out["p50_ms"], "ms"),
        row("product retrieve() p95", out["p95_ms"], "ms"),
        row("bare embed + Chroma query p50", out["bare_p50_ms"], "ms"),
        row("bare embed + Chroma query p95", out["bare_p95_ms"], "ms"),
        row("ratio p50 / bare p50", out["ratio"], "", goal_text(out["ratio"], "<=", GOAL_RATIO)),
        row("median of paired ratios", out["paired_ratio_p50"]),
        row("first query (loads HNSW + BM25 map)", out["first_query_ms"], "ms"),
        row("open store + lexical index", out["open_ms"], "ms"),
        "  stage p50 (same calls as retrieve(), timed alone):",
        *(row(f"  {name}", v, "ms") for name, v in out["stages_p50_ms"].items()),
        row("  BM25 candidates the vector query did not return", out["bm25_only_candidates_p50"]),
        row("  on the answer's path: embed + vector query", on_path, "ms"),
        row("  beside it, on a second thread: BM25 + fetch", beside, "ms"),
        row("  product p50 beyond the path's stages (contention, hand-off, fusion)", out["p50_ms"] - on_path, "ms"),
        row("peak RSS so far", out["peak_rss_mb"], "MB"),
    ]
    if where == IDLE:  # the goal; the loaded figures are printed beside it
        result.goals.append(Goal(f"retrieval ratio at {count:,} chunks", out["ratio"], "<=", GOAL_RATIO))
    if where == IDLE:
        result.notes.append(f"{count:,}-chunk collection: {info.get('vectors')}; built in "
                            f"{info.get('build_seconds')} s (cached)")
    # Let go of the index (the closures above hold it) before the next size opens its own.
    collection = retriever = lexical = store = None
    return out


def run(args: argparse.Namespace) -> BenchResult:
    from core.embedding import Embedder
    from core.settings import Settings

    sizes = [300] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.quick:
        args.queries = min(args.queries, 6)
    k = args.k or Settings().top_k
    result = BenchResult("retrieval")
    result.lines.append(machine_line())
    say("loading the embedding model...")
    embedder = Embedder()
    embedder.load()
    # onnxruntime once the app has made its export in this data directory, else sentence-transformers;
    # the product and the reference share the embedder, so the ratio is the product's own overhead.
    result.lines.append(f"  embedder runtime: {embedder.runtime}")
    per_size = []
    for where in conditions(args):
        with condition(where):
            per_size += [_measure_size(n, args, embedder, k, result, where) for n in sorted(sizes)]

    def worst(where: str) -> float:
        return max((s["ratio"] for s in per_size if s["condition"] == where and not math.isnan(s["ratio"])),
                   default=float("nan"))

    result.fields = {"sizes": per_size, "ratio": worst(IDLE), "ratio_busy_core": worst(BUSY_CORE), "k": k,
                     "queries": args.queries, "peak_rss_mb": peak_rss_mb()}
    result.lines.append(row(f"peak RSS (model + {max(sizes):,}-chunk collection open)", peak_rss_mb(), "MB"))
    return result


BENCH = Bench("retrieval", "retrieve() vs bare query embedding + Chroma query at 10k and 100k chunks",
              add_arguments, run)

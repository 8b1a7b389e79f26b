"""`sourcelight eval chunk-vectors`: do pooled chunk vectors retrieve as well as embedded ones?

Ingest builds a chunk's vector from its sentences' vectors
(`core.ingest.chunk_vectors`) instead of running the model over the chunk text
again. This command measures what that does to retrieval, on public data,
with the product's own chunker (`core.ingest.chunking`, the default chunk size and
overlap) and embedder:

- ExpertQA: each question retrieves from the chunks of every passage cited
  anywhere in the files given; gold = the passages cited in the answers to
  that question (rand_val and domain_val are de-duplicated as in
  `eval attribution`);
- WiCE: each claim retrieves from the chunks of every evidence page of the
  file; gold = its own page.

For both ways of making chunk vectors ("embedded": the model run on the
chunk text; "pooled": the product's) it prints hit@1 and hit@5 (a gold
passage's chunk first / in the top 5) and MRR of the first gold chunk,
ranked by cosine alone and by the product's fused score (`hybrid_*`:
`core.answer.retrieval`'s ALPHA * cosine + (1 - ALPHA) * BM25 / best BM25, here
scored over all chunks rather than the two sides' candidates). Vectors are
cached with the attribution eval's cache; a warm run takes ~25 s.

Measured on 2026-11-24 (WiCE claim_dev; ExpertQA rand_val + domain_val):

| data | ranking | chunk vectors | hit@1 | hit@5 | MRR |
|---|---|---|---|---|---|
| ExpertQA: 179 questions, 1,211 chunks | cosine | embedded | .911 | .967 | .936 |
| | cosine | pooled | .905 | .978 | .934 |
| | product (fused) | embedded | .933 | .989 | .956 |
| | product (fused) | pooled | .944 | .989 | .961 |
| WiCE: 349 claims, 4,145 chunks | cosine | embedded | .811 | .900 | .849 |
| | cosine | pooled | .797 | .888 | .839 |
| | product (fused) | embedded | .888 | .957 | .919 |
| | product (fused) | pooled | .882 | .943 | .910 |

So with the product's fused ranking pooling is a little better on ExpertQA
and about one point worse on WiCE, whose pages are long runs of short menu
lines. Weighting by characters was chosen over a plain mean (WiCE cosine
hit@1 .742) and token counts (.791; ExpertQA .899); nothing else was tuned.

Re-run: `sourcelight eval chunk-vectors --wice ../shared/data/wice/claim_dev.jsonl
--expertqa ../shared/data/expertqa/rand_val.jsonl ../shared/data/expertqa/domain_val.jsonl [--json]`
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.ingest.chunk_vectors import pooled_chunk_vectors
from core.ingest.chunking import Chunk, chunk_page
from core.eval.arguments import add_data_arguments, check_data_files, open_cache
from core.eval.attribution_data import EmbeddingCache, load_expertqa, load_wice
from core.answer.retrieval import ALPHA

TOP_K = 5


@dataclass
class RetrievalTask:
    """Queries, the passages they retrieve from, and which passages each query should find."""

    name: str
    queries: list[str]
    passages: list[str]
    gold: list[frozenset[int]]  # per query: indices into passages


def expertqa_task(paths: Sequence[str | Path]) -> RetrievalTask:
    passages: dict[str, int] = {}
    gold: dict[str, set[int]] = {}
    for answer in load_expertqa(paths):
        for claim in answer.claims:
            for i in claim.cited:
                text = answer.passages[i]
                gold.setdefault(answer.question, set()).add(passages.setdefault(text, len(passages)))
    questions = [q for q, g in gold.items() if g]
    return RetrievalTask("expertqa", questions, list(passages), [frozenset(gold[q]) for q in questions])


def wice_task(path: str | Path) -> RetrievalTask:
    passages: dict[str, int] = {}
    queries, gold = [], []
    for claim in load_wice(path):
        queries.append(claim.claim)
        gold.append(frozenset({passages.setdefault(claim.chunk_text, len(passages))}))
    return RetrievalTask("wice", queries, list(passages), gold)


def chunk_passages(passages: Sequence[str], chunk_chars: int, overlap: int) -> tuple[list[Chunk], np.ndarray]:
    """The product's chunks of every passage, and the passage each chunk came from."""
    chunks, owners = [], []
    for i, text in enumerate(passages):
        for chunk in chunk_page(text, None, target_chars=chunk_chars, overlap_sentences=overlap):
            chunks.append(chunk)
            owners.append(i)
    return chunks, np.asarray(owners, dtype=np.intp)


def bm25_scores(queries: Sequence[str], chunks: Sequence[Chunk]) -> np.ndarray:
    """(queries, chunks) BM25 scores, each row divided by its best: the lexical half of `core.answer.retrieval`."""
    import bm25s

    from core.answer.lexical import tokenize

    bm25 = bm25s.BM25()
    bm25.index([tokenize(c.text) or ["\u2205"] for c in chunks], show_progress=False)
    rows = np.zeros((len(queries), len(chunks)), dtype=np.float32)
    for q, text in enumerate(queries):
        tokens = tokenize(text)
        if tokens:
            scores = bm25.get_scores(tokens)
            rows[q] = scores / (scores.max() or 1.0)
    return rows


def retrieval_metrics(query_vectors: np.ndarray, chunk_vectors: np.ndarray, owners: np.ndarray,
                      gold: Sequence[frozenset[int]], lexical: np.ndarray | None = None) -> dict:
    """hit@1, hit@5 and MRR by passage; with `lexical`, ranked by the product's fused retrieval score."""
    sims = query_vectors @ chunk_vectors.T
    if lexical is not None:
        sims = ALPHA * np.clip(sims, 0.0, 1.0) + (1 - ALPHA) * lexical
    hit1 = hit5 = rr = 0.0
    for q, wanted in enumerate(gold):
        ranked = owners[np.argsort(-sims[q], kind="stable")]
        found = np.flatnonzero(np.isin(ranked, list(wanted)))
        first = int(found[0]) if len(found) else len(ranked)
        hit1 += first == 0
        hit5 += first < TOP_K
        rr += 1.0 / (first + 1) if len(found) else 0.0
    n = max(len(gold), 1)
    return {"hit@1": round(hit1 / n, 4), f"hit@{TOP_K}": round(hit5 / n, 4), "mrr": round(rr / n, 4)}


def evaluate(task: RetrievalTask, cache: EmbeddingCache, chunk_chars: int, overlap: int, quiet: bool) -> dict:
    from tqdm import tqdm

    chunks, owners = chunk_passages(task.passages, chunk_chars, overlap)
    sentences = [s.text for c in chunks for s in c.sentences]
    with tqdm(desc=f"{task.name}: embedding", file=sys.stderr, disable=quiet, leave=False, unit="text") as bar:
        cache.ensure(task.queries + [c.text for c in chunks] + sentences, progress=bar)
    queries = cache.get(task.queries)
    embedded = cache.get([c.text for c in chunks])
    pooled = pooled_chunk_vectors(cache.get(sentences), [i for i, c in enumerate(chunks) for _ in c.sentences],
                                  [len(s.text) for c in chunks for s in c.sentences], len(chunks))
    lexical = bm25_scores(task.queries, chunks)
    return {"queries": len(task.queries), "passages": len(task.passages), "chunks": len(chunks),
            "embedded": retrieval_metrics(queries, embedded, owners, task.gold),
            "pooled": retrieval_metrics(queries, pooled, owners, task.gold),
            "hybrid_embedded": retrieval_metrics(queries, embedded, owners, task.gold, lexical),
            "hybrid_pooled": retrieval_metrics(queries, pooled, owners, task.gold, lexical)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sourcelight eval chunk-vectors",
                                description="Retrieval with chunk vectors pooled from sentence vectors (what ingest "
                                            "stores) vs the model run on each chunk's text.")
    add_data_arguments(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if (code := check_data_files(args)) is not None:
        return code
    from core.embedding import Embedder
    from core.settings import Settings

    settings = Settings()
    cache = open_cache(args, Embedder())
    tasks = ([expertqa_task(args.expertqa)] if args.expertqa else []) + ([wice_task(args.wice)] if args.wice else [])
    results = {t.name: evaluate(t, cache, settings.chunk_chars, settings.chunk_overlap_sentences, args.quiet)
               for t in tasks}
    if args.json:
        print(json.dumps(results))
        return 0
    for name, r in results.items():
        print(f"{name}: {r['queries']} queries, {r['passages']} passages, {r['chunks']} chunks")
        for way in ("embedded", "pooled", "hybrid_embedded", "hybrid_pooled"):
            m = r[way]
            print(f"  {way:16s} hit@1 {m['hit@1']:.3f}  hit@{TOP_K} {m[f'hit@{TOP_K}']:.3f}  MRR {m['mrr']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

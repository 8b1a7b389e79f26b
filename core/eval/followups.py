"""`sourcelight eval followups`: does the conversation help a follow-up question find its passage?

For each committed pair (resources/eval/followups.json) the sample guide's
passages are ranked twice by the product's own retriever: for the follow-up
asked alone ("And PDFs?"), as retrieval worked before issue 14, and for the
query `core.answer.followup.retrieval_query` forms from the conversation. A
passage is relevant when it contains the pair's expected phrase; the score is
the mean reciprocal rank (MRR) of the first relevant passage within the top
k, and hit@1. It also checks that the guide's stand-alone questions
(resources/eval/guide_questions.json) are searched exactly as asked.

The sample guide alone is small (its passages rarely compete), so
`--add FOLDER` indexes more documents beside it, as a user's own library
would: for example the repository's real-documents corpus
(tests/core/data/documents/files, 52 files, many of them about PDFs, HTML
and documents in general), which competes for the same words.

Runs offline in a temporary data directory with the bundled embedder; no
language model is involved (none is needed to form the query).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Sequence


def load_pairs(path: Path | None = None) -> list[dict]:
    from resources import ROOT

    data = json.loads((path or ROOT / "eval" / "followups.json").read_text(encoding="utf-8"))
    return data["pairs"]


def first_relevant_rank(chunks, phrase: str) -> int | None:
    """1-based rank of the first chunk containing `phrase` (whitespace-insensitive), or None."""
    wanted = " ".join(phrase.split())
    for rank, chunk in enumerate(chunks, start=1):
        if wanted in " ".join(chunk.text.split()):
            return rank
    return None


def evaluate(retrieve, pairs: Sequence[dict], k: int = 5) -> dict:
    """Ranks and MRR for the follow-up alone ("before") and with the conversation ("after")."""
    from core.answer.followup import retrieval_query
    from core.llm.base import ChatMessage

    rows = []
    for pair in pairs:
        history = [ChatMessage("user", pair["first"]), ChatMessage("assistant", "")]
        query = retrieval_query(pair["followup"], history)
        before = first_relevant_rank(retrieve(pair["followup"], k), pair["expect"])
        after = first_relevant_rank(retrieve(query, k), pair["expect"])
        rows.append({"first": pair["first"], "followup": pair["followup"], "query": query,
                     "rank_before": before, "rank_after": after})

    def mrr(key: str) -> float:
        return sum(1 / r[key] for r in rows if r[key]) / len(rows) if rows else 0.0

    def hit1(key: str) -> int:
        return sum(1 for r in rows if r[key] == 1)

    return {"pairs": len(rows), "k": k, "mrr_before": round(mrr("rank_before"), 3),
            "mrr_after": round(mrr("rank_after"), 3), "hit1_before": hit1("rank_before"),
            "hit1_after": hit1("rank_after"), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sourcelight eval followups", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, help="a JSON file shaped like resources/eval/followups.json")
    parser.add_argument("--top-k", type=int, default=5, help="passages ranked per query (default 5)")
    parser.add_argument("--add", type=Path, action="append", default=[], metavar="FOLDER",
                        help="index these documents beside the sample guide (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    for folder in args.add:
        if not folder.exists():
            print(f"No such folder: {folder}", file=sys.stderr)
            return 2

    from core.engine import Engine
    from core.answer.followup import is_followup
    from core.settings import Settings

    from core.eval.loops import load_questions

    pairs = load_pairs(args.pairs)
    with tempfile.TemporaryDirectory(prefix="sourcelight-eval-") as tmp:
        from core.cli import _NoBackend

        engine = Engine(Settings(), backend=_NoBackend(), data_dir=Path(tmp))
        try:
            engine.load()
            if args.add:
                report = engine.ingest(args.add)
                if not args.json:
                    print(f"Indexed {len(report.indexed)} more file(s) beside the sample guide "
                          f"({report.chunks} chunks).", file=sys.stderr)
            result = evaluate(engine.retriever.retrieve, pairs, args.top_k)
            result["documents"] = len(engine.documents())
        finally:
            engine.pipeline.close()
    standalone = load_questions()
    result["standalone_kept"] = sum(1 for q in standalone if not is_followup(q))
    result["standalone_total"] = len(standalone)
    if args.json:
        print(json.dumps(result))
        return 0
    for row in result["rows"]:
        print(f"{row['rank_before'] or '-':>2} -> {row['rank_after'] or '-':>2}  {row['first']} / {row['followup']}")
    print(f"\nFollow-up retrieval on {result['pairs']} pairs of the sample guide, {result['documents']} documents "
          f"indexed (top {result['k']}):")
    print(f"  MRR    before {result['mrr_before']:.3f}  after {result['mrr_after']:.3f}")
    print(f"  hit@1  before {result['hit1_before']}/{result['pairs']}  after {result['hit1_after']}/{result['pairs']}")
    print(f"  stand-alone questions searched as asked: {result['standalone_kept']}/{result['standalone_total']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python3 -m core.eval.claim_kinds`: how well `claims.claim_kind` tells claims from sentences that claim nothing.

Reads a hand-labelled JSONL file (default: `tests/core/data/claim_kinds.jsonl`;
one object per line: `text`, `kind` = claim | not_a_claim, `source`) and
prints precision and recall of `not_a_claim` (a false "not a claim" hides a
real claim from the check, so precision matters most), overall and per
source. `--errors` lists the sentences it gets wrong.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.attribution.claims import NOT_A_CLAIM, claim_kind

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "tests" / "core" / "data" / "claim_kinds.jsonl"


def scores(rows: list[dict]) -> dict:
    """Precision/recall/F1 of the not-a-claim class, and how many of each label."""
    tp = sum(1 for r in rows if r["kind"] == NOT_A_CLAIM and claim_kind(r["text"]) == NOT_A_CLAIM)
    fp = sum(1 for r in rows if r["kind"] != NOT_A_CLAIM and claim_kind(r["text"]) == NOT_A_CLAIM)
    fn = sum(1 for r in rows if r["kind"] == NOT_A_CLAIM and claim_kind(r["text"]) != NOT_A_CLAIM)
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p and r else None
    rnd = lambda x: None if x is None else round(x, 3)  # noqa: E731
    return {"n": len(rows), "not_a_claim": tp + fn, "claims": len(rows) - tp - fn,
            "precision": rnd(p), "recall": rnd(r), "f1": rnd(f1), "claims_taken_as_not_a_claim": fp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m core.eval.claim_kinds", description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    parser.add_argument("--errors", action="store_true", help="list the sentences it gets wrong")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in open(args.file, encoding="utf-8") if line.strip()]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["source"].split(":", 1)[0], []).append(r)
    out = {"all": scores(rows), **{name: scores(g) for name, g in sorted(groups.items())}}
    print(json.dumps(out, indent=1))
    if args.errors:
        for r in rows:
            got = claim_kind(r["text"])
            if got != r["kind"]:
                print(f"[labelled {r['kind']}, got {got}] {r['text']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

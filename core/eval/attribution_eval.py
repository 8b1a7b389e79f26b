"""`sourcelight eval attribution`: the product's attributor on WiCE and ExpertQA.

Runs `core.attribution.Attributor` / `EvidencePool` exactly as the live
pipeline does (pool built once per item, claim embedded once, markers
stripped) and prints the metrics defined in shared/docs/attribution.md and
issue 4:

WiCE (one pool per claim: the cited web page as one chunk, one candidate per
evidence sentence)
- hit@1, hit@3, MRR over claims labelled supported or partially_supported:
  a hit is a ranked sentence that belongs to any gold supporting set;
- auroc_supported_vs_not, auroc_supported_vs_rest: each claim scored by its
  calibrated support;
- at the shipped threshold: the share of not_supported claims flagged and of
  supported claims wrongly flagged.

ExpertQA (each distinct cited passage is a chunk, split with the app's splitter)
- passage_accuracy: claims judged Complete that cite exactly one passage; the
  pool is every passage cited anywhere in the same answer (answers citing a
  single passage are skipped: the choice is trivial); the chosen passage is
  the chunk of the top-ranked span. `random` is the expected accuracy of a
  uniform pick;
- auroc_complete_vs_partial: claims judged Complete or Partial, scored by
  support against the passages they cite (what the judges read);
  auroc_complete_vs_rest adds Incomplete to the negatives.

Citation markers in ExpertQA claims name the gold passage: they are stripped
before scoring (as the app does), so they cannot leak the answer.

`--baselines` adds the single-signal baselines of attribution.md measured on the
same items (MiniLM cosine, BM25, content-word recall), and the support model's
two read inputs alone: the verifier's logit and the word-piece alignment
(`core.attribution.alignment`) of the claim's coverage set (support AUROCs only).

The shipped attributor uses the verifier (`core.attribution.verifier`); every
table also gets a `fused` row: the same items scored by the fused model alone
(the previous release's support and ranking). `cross` holds the cross-data-set
rows: the verifier's calibration (rank weight, support model, threshold)
fitted on ExpertQA and measured on WiCE, and the other way round
(`core.eval.verifier_fit.cross_figures`). `--int8` runs the verifier with int8
linear layers.

`--plain FILE` measures on the user's own labelled data: one JSON object per
line with `claim`, `evidence` (a list of sentences, one source), `label`
(`supported` | `partial` | `not_supported`, or true/false) and optionally
`supporting` (indices of the evidence sentences that support the claim, for
hit@1). `--rows FILE` writes one JSON line per scored item of any format: its
support, flag, kind and the chosen span.

Cost: embedding the ~44k benchmark sentences is most of a first run (the app
does this at ingest); the vectors are kept under the data directory
(`--cache DIR` to move, `--no-cache` to skip), so later runs take ~20 s.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from core.attribution import Attributor, EvidencePool
from core.attribution import features as F
from core.attribution.attributor import Attribution
from core.attribution.text import strip_citations
from core.eval.arguments import add_data_arguments, check_data_files, open_cache
from core.eval.metrics import auroc
from core.eval.attribution_data import (EmbeddingCache, ExpertQAAnswer, WiceClaim, expertqa_sentences, load_expertqa,
                                        load_plain, load_wice)

BASELINE_COLUMNS = {"cosine": "cos", "bm25": "bm25_rel", "recall": "recall"}


def _bar(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=quiet, leave=False, unit="item")


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def _row(dataset: str, item_id: str, claim: str, label: str, att: Attribution) -> dict:
    """One `--rows` line: what the app would show for this item."""
    span = att.spans[0] if att.spans else None
    return {"dataset": dataset, "id": item_id, "claim": claim, "label": label, "support": round(att.support, 4),
            "supported": att.supported, "flagged": att.flagged, "kind": att.kind,
            "span": None if span is None else {"chunk": span.chunk_id, "start": span.start, "end": span.end,
                                               "text": span.text}}


def _parts(attributor: Attributor, claim: str, pool: EvidencePool, q: np.ndarray) -> dict[str, float]:
    """The verifier's logit and the word-piece alignment for the claim's coverage set, each alone
    (a near-exact quote counts as the highest value: its support is 1 by rule); empty without a verifier."""
    if attributor.verifier is None or not pool.n:
        return {}
    v = attributor.verify(claim, pool, q)
    if v is None:
        return {"verifier_logit": float("inf"), "alignment": float("inf")}
    return {"verifier_logit": v.cover_logit, "alignment": v.align}


def _rank_metrics(scores: np.ndarray, gold: frozenset[int]) -> tuple[bool, bool, float]:
    order = np.argsort(-scores, kind="stable")
    ranks = [r for r, i in enumerate(order) if int(i) in gold]
    first = ranks[0] if ranks else len(order)
    return first == 0, first < 3, 1.0 / (first + 1) if ranks else 0.0


def eval_wice(claims: list[WiceClaim], attributor: Attributor, cache: EmbeddingCache, *,
              baselines: bool = False, quiet: bool = False, rows: list | None = None, task: str = "wice") -> dict:
    with _bar(0, "embedding WiCE", quiet) as bar:
        cache.ensure([strip_citations(c.claim) for c in claims] + [s.text for c in claims for s in c.sentences], bar)
    hits1, hits3, rr, support = [], [], [], {}
    covers, covers_top1, n_spans = [], [], []
    base = {k: {"hit1": [], "hit3": [], "rr": [], "max": {}} for k in BASELINE_COLUMNS} if baselines else {}
    flags, kinds = {}, {}
    parts: dict[str, dict] = {"verifier_logit": {}, "alignment": {}}  # the support model's two read inputs
    with _bar(len(claims), task, quiet) as bar:
        for c in claims:
            pool = EvidencePool.build(c.sentences, cache.get([s.text for s in c.sentences]))
            q = cache.get([strip_citations(c.claim)])[0]
            att = attributor.attribute(c.claim, pool, q)
            support[c.id] = (c.label, att.support)
            flags[c.id] = att.supported
            kinds[c.id] = att.kind
            if rows is not None:
                rows.append(_row(task, c.id, c.claim, c.label, att))
            ranked = c.label in ("supported", "partially_supported") and c.gold_any
            if ranked:
                h1, h3, r = _rank_metrics(attributor.rank(c.claim, pool, q), c.gold_any)
                hits1.append(h1), hits3.append(h3), rr.append(r)
                # Multi-sentence support: do the returned spans hold a whole gold set?
                index = {(s.chunk_id, s.start): i for i, s in enumerate(c.sentences)}
                got = {index.get((sp.chunk_id, sp.start)) for sp in att.spans}
                covers.append(any(g <= got for g in c.gold_sets))
                top = {index.get((att.spans[0].chunk_id, att.spans[0].start))} if att.spans else set()
                covers_top1.append(any(g <= top for g in c.gold_sets))
                n_spans.append(len(att.spans))
            if baselines:
                for name, value in _parts(attributor, c.claim, pool, q).items():
                    parts[name][c.id] = value
                sf = F.sentence_features(F.Claim.of(c.claim), pool, q)
                for name, col in BASELINE_COLUMNS.items():
                    s = sf.features[:, F.SENTENCE_FEATURES.index(col)]
                    base[name]["max"][c.id] = float(s.max()) if len(s) else 0.0
                    if ranked:
                        h1, h3, r = _rank_metrics(s, c.gold_any)
                        base[name]["hit1"].append(h1), base[name]["hit3"].append(h3), base[name]["rr"].append(r)
            bar.update(1)

    def aurocs(score_of) -> tuple[float | None, float | None]:
        pos = [score_of(k) for k, (lab, _) in support.items() if lab == "supported"]
        neg = [score_of(k) for k, (lab, _) in support.items() if lab == "not_supported"]
        rest = [score_of(k) for k, (lab, _) in support.items() if lab != "supported"]
        return auroc(pos, neg), auroc(pos, rest)

    vs_not, vs_rest = aurocs(lambda k: support[k][1])
    by_label = {lab: [flags[k] for k, (l2, _) in support.items() if l2 == lab]
                for lab in ("supported", "partially_supported", "not_supported")}
    out = {
        "task": task, "n": len(hits1), "claims": len(claims),
        "hit@1": _r(np.mean(hits1)) if hits1 else None, "hit@3": _r(np.mean(hits3)) if hits3 else None,
        "mrr": _r(np.mean(rr)) if rr else None,
        "auroc_supported_vs_not": _r(vs_not), "auroc_supported_vs_rest": _r(vs_rest),
        "spans_hold_a_gold_set": _r(np.mean(covers)) if covers else None,
        "top_span_holds_a_gold_set": _r(np.mean(covers_top1)) if covers_top1 else None,
        "mean_spans": _r(np.mean(n_spans)) if n_spans else None,
        "threshold": attributor.threshold,
        "flagged_unsupported": {lab: _r(1 - np.mean(v)) if v else None for lab, v in by_label.items()},
        # Every benchmark claim is a claim: this is the share the claim filter would wrongly exempt.
        "not_a_claim": _r(np.mean([k != "claim" for k in kinds.values()])) if kinds else None,
    }
    if baselines:
        out["baselines"] = {}
        for name, b in base.items():
            # Pool-relative columns (BM25 / best) are 1 for every claim's best
            # sentence, so only cosine and recall give a support baseline.
            a_not, a_rest = aurocs(lambda k: b["max"][k]) if name != "bm25" else (None, None)
            out["baselines"][name] = {"hit@1": _r(np.mean(b["hit1"])), "hit@3": _r(np.mean(b["hit3"])),
                                      "mrr": _r(np.mean(b["rr"])), "auroc_supported_vs_not": _r(a_not),
                                      "auroc_supported_vs_rest": _r(a_rest)}
        for name, values in parts.items():
            if values:
                a_not, a_rest = aurocs(lambda k: values[k])
                out["baselines"][name] = {"auroc_supported_vs_not": _r(a_not), "auroc_supported_vs_rest": _r(a_rest)}
    return out


def eval_expertqa(answers: list[ExpertQAAnswer], attributor: Attributor, cache: EmbeddingCache, *,
                  baselines: bool = False, quiet: bool = False, rows: list | None = None) -> dict:
    pools = {id(a): expertqa_sentences(a) for a in answers}
    texts = [s.text for a in answers for s in pools[id(a)]] + [strip_citations(c.claim) for a in answers for c in a.claims]
    with _bar(0, "embedding ExpertQA", quiet) as bar:
        cache.ensure(texts, bar)
    correct, chance, scores, kinds = [], [], [], []
    base = {k: [] for k in BASELINE_COLUMNS} if baselines else {}
    base_scores: dict[str, list] = ({"cosine": [], "recall": [], "verifier_logit": [], "alignment": []}
                                    if baselines else {})
    with _bar(len(answers), "ExpertQA", quiet) as bar:
        for a in answers:
            sents = pools[id(a)]
            pool = EvidencePool.build(sents, cache.get([s.text for s in sents]))
            chunk_of = [int(s.chunk_id[1:]) for s in sents]
            for c in a.claims:
                if not c.cited:
                    continue
                q = cache.get([strip_citations(c.claim)])[0]
                if c.support == "Complete" and c.cited_raw == 1 and len(a.passages) >= 2:
                    ranked = attributor.rank(c.claim, pool, q)
                    correct.append(chunk_of[int(np.argmax(ranked))] == c.cited[0])
                    chance.append(1.0 / len(a.passages))
                    if baselines:
                        sf = F.sentence_features(F.Claim.of(c.claim), pool, q)
                        for name, col in BASELINE_COLUMNS.items():
                            s = sf.features[:, F.SENTENCE_FEATURES.index(col)]
                            base[name].append(chunk_of[int(np.argmax(s))] == c.cited[0])
                if c.support in ("Complete", "Partial", "Incomplete"):
                    own = [s for s in sents if int(s.chunk_id[1:]) in c.cited]
                    cpool = EvidencePool.build(own, cache.get([s.text for s in own]))
                    att = attributor.attribute(c.claim, cpool, q)
                    scores.append((c.support, att.support, att.supported))
                    kinds.append(att.kind)
                    if rows is not None:
                        rows.append(_row("expertqa", f"{a.system}:{a.question[:60]}:{a.claims.index(c)}", c.claim,
                                         c.support, att))
                    if baselines and cpool.n:
                        sf = F.sentence_features(F.Claim.of(c.claim), cpool, q)
                        base_scores["cosine"].append((c.support, float(sf.cos.max())))
                        base_scores["recall"].append((c.support, float(sf.features[:, F.SENTENCE_FEATURES.index("recall")].max())))
                        for name, value in _parts(attributor, c.claim, cpool, q).items():
                            base_scores[name].append((c.support, value))
            bar.update(1)

    def split(rows):
        comp = [s for lab, s, *_ in rows if lab == "Complete"]
        part = [s for lab, s, *_ in rows if lab == "Partial"]
        inc = [s for lab, s, *_ in rows if lab == "Incomplete"]
        return auroc(comp, part), auroc(comp, part + inc)

    vs_partial, vs_rest = split(scores)
    flagged = {lab: _r(np.mean([not f for l2, _, f in scores if l2 == lab]))
               for lab in ("Complete", "Partial", "Incomplete") if any(l2 == lab for l2, *_ in scores)}
    out = {
        "task": "expertqa", "n": len(correct), "answers": len(answers),
        "passage_accuracy": _r(np.mean(correct)) if correct else None,
        "random": _r(np.mean(chance)) if chance else None,
        "auroc_complete_vs_partial": _r(vs_partial), "auroc_complete_vs_rest": _r(vs_rest),
        "n_support": {lab: sum(1 for l2, *_ in scores if l2 == lab) for lab in ("Complete", "Partial", "Incomplete")},
        "threshold": attributor.threshold, "flagged_unsupported": flagged,
        "not_a_claim": _r(np.mean([k != "claim" for k in kinds])) if kinds else None,
    }
    if baselines:
        out["baselines"] = {name: {"passage_accuracy": _r(np.mean(v))} for name, v in base.items()}
        for name, rows in base_scores.items():
            if rows:
                a_p, a_r = split(rows)
                out["baselines"].setdefault(name, {}).update(auroc_complete_vs_partial=_r(a_p),
                                                             auroc_complete_vs_rest=_r(a_r))
    return out


def _print_text(res: dict, indent: str = "") -> None:
    if res["task"] in ("wice", "plain"):
        print(f"{indent}{'WiCE' if res['task'] == 'wice' else 'Plain'}  claims={res['claims']}  ranked n={res['n']}")
        print(f"  hit@1 {res['hit@1']}  hit@3 {res['hit@3']}  MRR {res['mrr']}")
        print(f"  AUROC supported vs not {res['auroc_supported_vs_not']}  "
              f"supported vs partial+not {res['auroc_supported_vs_rest']}")
        print(f"  returned spans hold a whole gold set: {res['spans_hold_a_gold_set']} "
              f"(mean {res['mean_spans']} spans per claim; top span alone {res['top_span_holds_a_gold_set']})")
    else:
        print(f"ExpertQA  answers={res['answers']}  passage-choice n={res['n']}")
        print(f"  passage accuracy {res['passage_accuracy']}  (random {res['random']})")
        print(f"  AUROC complete vs partial {res['auroc_complete_vs_partial']}  "
              f"complete vs partial+incomplete {res['auroc_complete_vs_rest']}  {res['n_support']}")
    print(f"  threshold {res['threshold']}: flagged unsupported {res['flagged_unsupported']}  "
          f"taken as not a claim {res.get('not_a_claim')}")
    for name, b in (res.get("baselines") or {}).items():
        print(f"  baseline {name}: " + "  ".join(f"{k} {v}" for k, v in b.items()))
    if res.get("fused"):
        print("  fused score alone (previous release):")
        _print_text(res["fused"], "  ")


def _print_cross(cross: dict) -> None:
    print("Cross-data-set (verifier calibration fitted on one dev set, measured on the other)")
    for name, fig in cross.items():
        print(f"  {name}: " + "  ".join(f"{k} {v}" for k, v in fig.items() if k != "n"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sourcelight eval attribution",
                                description="Measure attribution on WiCE and/or ExpertQA files.")
    add_data_arguments(p)
    p.add_argument("--baselines", action="store_true",
                   help="also measure cosine, BM25, word-recall, the verifier's logit and the alignment alone")
    p.add_argument("--calibration", metavar="FILE", help="calibration JSON (default: the shipped one)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N claims / answers (smoke tests)")
    p.add_argument("--plain", metavar="FILE", help="your own labelled JSONL: claim, evidence (sentences), label")
    p.add_argument("--rows", metavar="FILE", help="write one JSON line per scored item (support, flag, kind, span)")
    p.add_argument("--int8", action="store_true", help="run the verifier with int8 linear layers")
    p.add_argument("--no-verifier", action="store_true", help="the fused score alone (as if the verifier were missing)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if (code := check_data_files(args)) is not None:
        return code
    from core.embedding import Embedder

    from core.attribution.verifier import Verifier
    from core.eval.verifier_fit import collect, cross_figures

    embedder = Embedder()
    from core.attribution.calibration import Calibration

    calibration = Calibration.load(args.calibration)
    max_tokens = calibration.verifier.max_tokens if calibration.verifier else 128
    verifier = False if args.no_verifier else Verifier(int8=args.int8, cache_size=200_000, max_tokens=max_tokens)
    attributor = Attributor(embedder, calibration, verifier)
    fused = Attributor(embedder, calibration, False)
    if attributor.verifier is not None:
        try:
            attributor.verifier.load()
        except Exception:  # noqa: BLE001 - VerifierUnavailable: said below, the fused score stands in
            pass
    if attributor.verifier_error:
        print(attributor.verifier_error, file=sys.stderr)
    cache = open_cache(args, embedder)
    rows: list | None = [] if args.rows else None
    results = {}
    wice = load_wice(args.wice)[: args.limit] if args.wice else []
    answers = load_expertqa(args.expertqa)[: args.limit] if args.expertqa else []
    if wice:
        started = time.perf_counter()
        results["wice"] = eval_wice(wice, attributor, cache, baselines=args.baselines, quiet=args.quiet, rows=rows)
        if attributor.verifier is not None and not attributor.verifier_error:
            results["wice"]["fused"] = eval_wice(wice, fused, cache, quiet=args.quiet)
        results["wice"]["seconds"] = round(time.perf_counter() - started, 1)
    if answers:
        started = time.perf_counter()
        results["expertqa"] = eval_expertqa(answers, attributor, cache, baselines=args.baselines, quiet=args.quiet,
                                            rows=rows)
        if attributor.verifier is not None and not attributor.verifier_error:
            results["expertqa"]["fused"] = eval_expertqa(answers, fused, cache, quiet=args.quiet)
        results["expertqa"]["seconds"] = round(time.perf_counter() - started, 1)
    if args.plain:
        started = time.perf_counter()
        plain = load_plain(args.plain)[: args.limit]
        results["plain"] = eval_wice(plain, attributor, cache, baselines=args.baselines, quiet=args.quiet,
                                     rows=rows, task="plain")
        results["plain"]["seconds"] = round(time.perf_counter() - started, 1)
    if wice and answers and attributor.verifier is not None and not attributor.verifier_error:
        # The verifier's logits are cached by the verifier: this re-reads them, it does not recompute.
        results["cross"] = cross_figures(collect(attributor, cache, wice, answers, fused=fused, quiet=args.quiet))
    if rows is not None:
        with open(args.rows, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.json:
        # One task: its metrics at the top level; several: {"wice": {...}, "expertqa": {...}, ...}.
        print(json.dumps(next(iter(results.values())) if len(results) == 1 else results))
    else:
        for name, r in results.items():
            if name == "cross":
                _print_cross(r)
            else:
                _print_text(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

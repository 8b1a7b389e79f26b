"""Training pairs for the support verifier: public labelled pairs plus perturbations we make ourselves.

The verifier (`core.attribution.verifier`) reads an answer sentence and its
candidate evidence together and scores "does this evidence fully support this
sentence". This module builds what it is trained on, deterministically from a
seed, from two sources only:

1. `shared/data/train/*.jsonl` (9,145 human-labelled claim/evidence pairs from
   dialogue and Wikipedia fact-checking; provenance and licences in its
   README). Labels: `supported` -> 1, `partial` and `not_supported` -> 0 (the
   question is *full* support).
2. Pairs made here from those same rows, none from the dev splits:
   - **swapped number / name / negation** of a supported claim -> 0: the
     cases that shared-word counting cannot see (a claim that differs from its
     evidence by one number looks fully covered);
   - **an added fact** (a supported claim joined with a clause from another
     claim) -> 0: "partially supported" as answers produce it;
   - **quotes and clauses** of an evidence sentence with the rest of the
     evidence around it -> 1, and the same claim against the evidence with its
     source sentence taken out -> 0: exact and near-exact support, and the
     "right topic, missing sentence" negative that retrieval hands us.
   - (recipe 2) **joined claims**: clauses of two evidence sentences of one
     row joined into one claim -> 1 against both, and the same claim -> 0
     against the evidence with one of the two taken out. The same claim with
     both labels makes the model read the evidence; the negative is the
     partially supported answer sentence that retrieval produces (every fact
     on topic, one missing), which `add_fact` (an unrelated clause) is not.
   - (recipe 2) **support removed**: a supported public claim against its
     evidence without the sentence that covers most of it -> 0, kept only when
     what is left covers under half of the claim's content words.

Evidence is cut to what the live verifier sees: when a row's evidence is
longer than `EVIDENCE_WORDS`, its sentences that share the most content words
with the claim are kept, in reading order (the live path feeds the ranker's
top sentences the same way).

`python3 -m core.eval.verifier_data --stats` prints the counts per source and
label without training anything.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from core.attribution import text as T

TRAIN_FILES = ("begin.jsonl", "fm2.jsonl", "faithdial_audit.jsonl", "wice_nst_train.jsonl")
# About 128 word pieces with a 20-word claim: the length the live verifier reads.
EVIDENCE_WORDS = 90
DEFAULT_TRAIN_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train"


@dataclass(frozen=True)
class Pair:
    """One training example: does `evidence` fully support `claim`?"""

    claim: str
    evidence: str
    label: int  # 1 fully supported, 0 not (partial or unsupported)
    source: str  # where it came from: the train file, or "<file>+<perturbation>"


def select_evidence(claim: str, sentences: Sequence[str], budget: int = EVIDENCE_WORDS) -> str:
    """The evidence sentences that best cover `claim`, in reading order, within `budget` words."""
    sentences = [s.strip() for s in sentences if s and s.strip()]
    total = sum(len(s.split()) for s in sentences)
    if total <= budget:
        return " ".join(sentences)
    claim_terms = set(T.content_terms(claim))
    ranked = sorted(range(len(sentences)),
                    key=lambda i: (-len(claim_terms & set(T.content_terms(sentences[i]))), i))
    keep, used = [], 0
    for i in ranked:
        n = len(sentences[i].split())
        if used + n > budget and keep:
            continue
        keep.append(i)
        used += n
        if used >= budget:
            break
    return " ".join(sentences[i] for i in sorted(keep))


def read_rows(train_dir: str | Path) -> list[dict]:
    """Every row of the public training files, with its file name as `file`."""
    rows = []
    for name in TRAIN_FILES:
        path = Path(train_dir) / name
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    row["file"] = name.removesuffix(".jsonl")
                    rows.append(row)
    return rows


# --- perturbations ------------------------------------------------------------------------------

_NUMBER_TOKEN = re.compile(r"(?<![\w.])(\d{1,4}(?:,\d{3})*(?:\.\d+)?)(?![\w.]|\.\d)")
_NEGATABLE = re.compile(r"\b(is|are|was|were|has|have|had|can|could|will|would|does|did|do|should|may)\b(?! not\b)")
_NEGATED = re.compile(r"\b(is|are|was|were|has|have|had|can|could|will|would|does|did|do|should|may) not\b")
_CONTRACTED = {"isn't": "is", "aren't": "are", "wasn't": "was", "weren't": "were", "hasn't": "has",
               "haven't": "have", "doesn't": "does", "didn't": "did", "don't": "do", "can't": "can",
               "won't": "will", "couldn't": "could", "wouldn't": "would", "shouldn't": "should"}
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}(?:\s[A-Z][a-z]{2,})*\b")


def swap_number(claim: str, evidence: str, rng: random.Random) -> str | None:
    """`claim` with one number that the evidence states changed to another value."""
    found = [m for m in _NUMBER_TOKEN.finditer(claim) if m.group(1) in evidence]
    if not found:
        return None
    m = rng.choice(found)
    raw = m.group(1).replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    if "." in raw:
        new = f"{value * rng.choice((0.5, 1.5, 2.0, 0.8)):.{len(raw.split('.')[1])}f}"
    elif 1800 <= value <= 2100:  # a year: a nearby different year
        new = str(int(value) + rng.choice((-11, -3, -2, -1, 1, 2, 5, 10)))
    else:
        new = str(max(0, int(value) + rng.choice((-1, 1)) * max(1, int(value * rng.choice((0.2, 0.5, 1.0))))))
    if new == raw:
        return None
    return claim[:m.start(1)] + new + claim[m.end(1):]


def swap_name(claim: str, evidence: str, names: Sequence[str], rng: random.Random) -> str | None:
    """`claim` with one name the evidence states replaced by a name from another row."""
    found = [m for m in _NAME.finditer(claim) if m.group(0) in evidence and m.start() > 0]
    if not found or not names:
        return None
    m = rng.choice(found)
    for _ in range(10):
        other = rng.choice(names)
        if other.lower() not in evidence.lower() and other.lower() not in claim.lower():
            return claim[:m.start()] + other + claim[m.end():]
    return None


def flip_negation(claim: str, rng: random.Random) -> str | None:
    """`claim` with its polarity reversed: "was" <-> "was not", "didn't" -> "did"."""
    for short, full in _CONTRACTED.items():
        if re.search(rf"\b{re.escape(short)}\b", claim, re.I):
            return re.sub(rf"\b{re.escape(short)}\b", full, claim, count=1, flags=re.I)
    neg = _NEGATED.search(claim)
    if neg:
        return claim[:neg.start()] + neg.group(1) + claim[neg.end():]
    found = list(_NEGATABLE.finditer(claim))
    if not found:
        return None
    m = found[0] if rng.random() < 0.7 else rng.choice(found)
    return claim[:m.end()] + " not" + claim[m.end():]


def add_fact(claim: str, other: str) -> str | None:
    """`claim` joined with a clause taken from another claim: only part of it is supported."""
    base = claim.rstrip().rstrip(".!?")
    extra = other.strip().rstrip(".!?")
    if len(extra.split()) < 4 or len(base.split()) < 3:
        return None
    extra = extra[0].lower() + extra[1:] if not extra[:2].isupper() else extra
    return f"{base}, and {extra}."


# A first clause opening with these is not a statement on its own ("While the diplomats were in Europe.").
_SUBORDINATE = frozenset("while when after before although though if unless because since as in on at by "
                         "for with during from to until whereas despite".split())


def clause_of(sentence: str, rng: random.Random) -> str | None:
    """A quote or the first clause of an evidence sentence, as an answer restating it would write."""
    words = sentence.split()
    if len(words) < 6:
        return None
    parts = [p.strip() for p in re.split(r"[,;:]\s+", sentence) if len(p.split()) >= 6]
    if parts and parts[0].split()[0].lower() not in _SUBORDINATE and rng.random() < 0.5:
        part = parts[0]
        return part[0].upper() + part[1:].rstrip(".") + "."
    return sentence


_OPENERS = frozenset("the a an it its he she his her they their this that these those there in on at "
                     "after before during from for with as by".split())


def _lower_first(text: str) -> str:
    """Lower-case the first word when it is a common opener ("The", "It"), never a name."""
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first.lower() in _OPENERS else text


def joined_claims(rows: Sequence[dict], rng: random.Random, limit: int) -> list[Pair]:
    """Two evidence clauses joined into one claim: supported by both sentences, partial without one."""
    seen, out = set(), []
    def statement(s: str) -> bool:  # a full sentence, not a title line or a fragment
        return len(s.split()) >= 8 and s.rstrip().endswith((".", "!", "?", '"', "'", ")"))

    usable = [r for r in rows if len([s for s in r["evidence"] if statement(s)]) >= 2]
    rng.shuffle(usable)
    for row in usable:
        sents = [s.strip() for s in row["evidence"] if s.strip()]
        key = " ".join(sents)[:300]
        if key in seen:
            continue
        seen.add(key)
        long_ones = [i for i, s in enumerate(sents) if statement(s)]
        if len(long_ones) < 2:
            continue
        i, j = sorted(rng.sample(long_ones, 2))
        first, second = clause_of(sents[i], rng), clause_of(sents[j], rng)
        if not first or not second:
            continue
        claim = f"{first.rstrip().rstrip('.!?,;:')}, and {_lower_first(second.strip().rstrip('.!?,;:'))}."
        if len(claim.split()) > 50:
            continue
        both = select_evidence(claim, sents, budget=EVIDENCE_WORDS + 30)
        if sents[i] not in both or sents[j] not in both:
            continue
        dropped = j if rng.random() < 0.5 else i
        partial = select_evidence(claim, [s for k, s in enumerate(sents) if k != dropped])
        out.append(Pair(claim, both, 1, f"{row['file']}+joined"))
        out.append(Pair(claim, partial, 0, f"{row['file']}+joined_partial"))
        if len(out) >= 2 * limit:
            break
    return out


def support_removed(rows: Sequence[dict], rng: random.Random, limit: int) -> list[Pair]:
    """A supported claim against its evidence minus the sentence that covers it most -> not supported."""
    out = []
    candidates = [r for r in rows if r["label"] == "supported" and len([s for s in r["evidence"] if s.strip()]) >= 2]
    rng.shuffle(candidates)
    for row in candidates:
        claim_terms = set(T.content_terms(row["claim"]))
        if len(claim_terms) < 3:
            continue
        sents = [s for s in row["evidence"] if s.strip()]
        best = max(range(len(sents)), key=lambda k: len(claim_terms & set(T.content_terms(sents[k]))))
        rest = [s for k, s in enumerate(sents) if k != best]
        left = claim_terms & {t for s in rest for t in T.content_terms(s)}
        if len(left) >= 0.5 * len(claim_terms):
            continue
        out.append(Pair(row["claim"], select_evidence(row["claim"], rest), 0, f"{row['file']}+support_removed"))
        if len(out) >= limit:
            break
    return out


RECIPES = (1, 2)
# The sources of the pairs recipe 2 adds ("<file>+joined", ...).
NEW_IN_RECIPE_2 = ("+joined", "+joined_partial", "+support_removed")
DEFAULT_RECIPE = 1  # what built the shipped weights; recipe 2 is measured in core/attribution/README.md


def build_pairs(rows: Sequence[dict], seed: int = 0, synthetic: bool = True,
                recipe: int = DEFAULT_RECIPE) -> list[Pair]:
    """The training pairs: every public row, plus the perturbations above (deterministic for a seed).

    Recipe 1 is the first shipped verifier's data; recipe 2 adds joined claims
    and removed support (drawn from a separate random stream, so recipe 2's
    other pairs are exactly recipe 1's).
    """
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for row in rows:
        label = 1 if row["label"] == "supported" else 0
        pairs.append(Pair(row["claim"], select_evidence(row["claim"], row["evidence"]), label, row["file"]))
    if not synthetic:
        return pairs
    names = sorted({m.group(0) for row in rows for s in row["evidence"] for m in _NAME.finditer(s)
                    if m.start() > 0 and len(m.group(0)) > 3})
    supported = [r for r in rows if r["label"] == "supported"]
    claims = [r["claim"] for r in rows]
    made: list[Pair] = []
    for row in supported:
        evidence = select_evidence(row["claim"], row["evidence"])
        claim = row["claim"]
        tag = row["file"]
        for kind, new in (("number", swap_number(claim, evidence, rng)),
                          ("name", swap_name(claim, evidence, names, rng) if rng.random() < 0.5 else None),
                          ("negation", flip_negation(claim, rng) if rng.random() < 0.45 else None),
                          ("added_fact", add_fact(claim, rng.choice(claims)) if rng.random() < 0.3 else None)):
            if new and new != claim:
                made.append(Pair(new, evidence, 0, f"{tag}+{kind}"))
    # Quotes/clauses of evidence sentences: supported with their sentence, not without it.
    multi = [r for r in rows if len([s for s in r["evidence"] if len(s.split()) >= 8]) >= 2]
    rng.shuffle(multi)
    for row in multi[:1800]:
        sents = [s for s in row["evidence"] if s.strip()]
        long_ones = [i for i, s in enumerate(sents) if len(s.split()) >= 8]
        i = rng.choice(long_ones)
        claim = clause_of(sents[i], rng)
        if not claim:
            continue
        if rng.random() < 0.5:
            made.append(Pair(claim, select_evidence(claim, sents), 1, f"{row['file']}+quote"))
        else:
            rest = [s for k, s in enumerate(sents) if k != i]
            if rest:
                made.append(Pair(claim, select_evidence(claim, rest), 0, f"{row['file']}+quote_removed"))
    if recipe >= 2:
        extra = random.Random(seed + 7919)
        made += joined_claims(rows, extra, limit=1200)
        made += support_removed(rows, extra, limit=800)
    return pairs + made


def split_pairs(pairs: Sequence[Pair], holdout: float = 0.05, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """A small held-out slice of the training pairs (by claim, so a perturbation never sits across the split)."""
    import hashlib

    train, held = [], []
    for p in pairs:
        base = p.source.split("+", 1)[0]
        key = hashlib.sha1(f"{seed}:{base}:{p.evidence[:200]}".encode()).digest()[0] / 255.0
        (held if key < holdout else train).append(p)
    return train, held


def label_counts(pairs: Iterable[Pair]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for p in pairs:
        c = out.setdefault(p.source, {"supported": 0, "not": 0})
        c["supported" if p.label else "not"] += 1
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m core.eval.verifier_data",
                                     description="Build (and count) the verifier's training pairs.")
    parser.add_argument("--train-dir", default=str(DEFAULT_TRAIN_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stats", action="store_true", help="print counts per source and label")
    parser.add_argument("--sample", type=int, default=0, help="print N random pairs")
    parser.add_argument("--recipe", type=int, choices=RECIPES, default=DEFAULT_RECIPE)
    parser.add_argument("--kind", default="", help="with --sample: only pairs whose source contains this")
    args = parser.parse_args(argv)
    pairs = build_pairs(read_rows(args.train_dir), seed=args.seed, recipe=args.recipe)
    if args.stats or not args.sample:
        print(json.dumps({"pairs": len(pairs), "by_source": label_counts(pairs)}, indent=1))
    rng = random.Random(1)
    shown = [p for p in pairs if args.kind in p.source]
    for p in rng.sample(shown, min(args.sample, len(shown))):
        print(f"[{p.label}] {p.source}\n  C: {p.claim}\n  E: {p.evidence[:300]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

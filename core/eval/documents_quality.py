"""`python3 -m core.eval.documents_quality`: how well real documents are read, split and found.

Issue 18 asks for figures a user would notice, before and after a change to
extraction or segmentation, on the committed corpus of real public documents
(`tests/core/data/documents/files/`, provenance and licences in its README). This
command ingests that corpus with the product's own `Engine` (real extraction,
chunking, segmentation, bundled embedder, a ChromaDB in a temporary folder,
the BM25 index) and prints, per format and in total:

- files read / refused (refused = the ingest report's failures), and the
  warnings the ingest report carries (damaged pages, pages without text, ...);
- sentences: how many, their mean length in characters, and the share that
  are "clean units": ending in terminal punctuation (. ! ? : ... and the
  full-width CJK ones, optionally followed by closing quotes or brackets), or
  being a heading, a list item or a table row (`unit_kind`). A hard-wrapped
  line cut out of a paragraph is none of these, which is what the figure is
  meant to expose;
- ligature characters (U+FB00-U+FB06: ff, fi, fl, ffi, ffl, long st, st)
  left in the stored chunk text;
- retrieval: for each committed question (`../questions.jsonl`: question,
  document, a phrase of the answer), whether one of the top 5 chunks the
  product's `Retriever` returns comes from that document and contains the
  phrase (hit@1, hit@5, and the mean reciprocal rank of that chunk within
  the top 5). Chunk text and phrase are compared after NFKC, joining
  line-end hyphenation and collapsing whitespace, so the figure measures
  retrieval, not how the chunk happens to be spelled.

`--json` prints one JSON object instead of the table. It takes a few minutes
on two idle cores (PDF parsing and embedding dominate); the figures before and
after issue 18 items 2-3 are in the corpus README.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[2] / "tests" / "core" / "data" / "documents"
CORPUS = HERE / "files"  # the documents; README.md, the licences and questions.jsonl sit beside it
QUESTIONS = HERE / "questions.jsonl"
TOP_K = 5
LIGATURES = re.compile("[\ufb00-\ufb06]")

# What closes a sentence; closing quotes, brackets and Markdown emphasis may follow.
# A colon counts: "Running this code prints the following:" is a whole sentence that
# introduces a list or a listing (a line cut mid-sentence rarely ends in one).
_TERMINAL = re.compile(r"[.!?:\u2026\u3002\uff01\uff1f\uff61][\"'\u201d\u2019)\]\u300d\u300f\uff09*_`]*$")
_BULLET = re.compile(r"^\s*(?:>\s*)*(?:[-*+\u2022\u25e6\u25aa\u2023\u2013\u2014\u00b7]|\d{1,3}[.)]|\(\d{1,3}\)|"
                     r"[a-z][.)]|\([a-z]\)|[ivx]{1,4}[.)])\s+\S")
_MD_HEADING = re.compile(r"^\s*(?:>\s*)*#{1,6}\s+\S")
_NUMBERED_HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,5}\.|[A-Z]\.)\s+[A-Z\u00c0-\u024f]")


def unit_kind(text: str) -> str:
    """"sentence" | "heading" | "list" | "table" | "other" for one segmented unit.

    Judged from the unit's own text, the same way before and after a change,
    so the share of clean units compares segmentations fairly. A heading is a
    Markdown heading, or one short line without closing punctuation that is
    numbered ("3.1 Design") or in title case or capitals.
    """
    stripped = text.strip()
    if not stripped:
        return "other"
    if "\t" in stripped or stripped.startswith("|"):
        return "table"
    if _BULLET.match(stripped):
        return "list"
    if _MD_HEADING.match(stripped):
        return "heading"
    if _TERMINAL.search(stripped):
        return "sentence"
    if "\n" not in stripped and _looks_like_heading(stripped):
        return "heading"
    return "other"


def _looks_like_heading(line: str) -> bool:
    words = line.split()
    if not words or len(words) > 10 or line[-1] in ",;-:":
        return False
    if _NUMBERED_HEADING.match(line):
        return True
    letters = [c for c in line if c.isalpha()]
    if letters and all(not c.islower() for c in letters):
        return True  # ALL CAPS, or a script without case (CJK): a short line on its own
    long_words = [w for w in words if sum(c.isalpha() for c in w) >= 4]
    if not long_words:
        return words[0][:1].isupper()
    return sum(w[0].isupper() for w in long_words) / len(long_words) >= 0.6


def comparable(text: str) -> str:
    """Text folded for phrase matching: NFKC, line-end hyphens joined, whitespace collapsed, case folded."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


@dataclass(frozen=True)
class Question:
    question: str
    document: str  # path relative to the corpus folder
    answer: str  # a phrase of the answer, as the document says it


def load_questions(path: Path) -> list[Question]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out.append(Question(row["question"], row["document"], row["answer"]))
    return out


def _format(source: str) -> str:
    suffix = Path(source).suffix.lower().lstrip(".")
    return {"markdown": "md", "htm": "html"}.get(suffix, suffix)


def measure(corpus: Path, questions: list[Question], *, quiet: bool = False) -> dict:
    """Ingest `corpus` into a fresh temporary index and return the figures (see the module docstring)."""
    from core.engine import Engine
    from core.faults.scripted import ScriptedBackend
    from core.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="sourcelight-docs-quality-"))
    try:
        engine = Engine(Settings(), backend=ScriptedBackend(), data_dir=work, index_sample_corpus=False)
        engine.store.open()
        engine.embedder.load()
        started = time.perf_counter()
        report = engine.ingest([corpus])
        ingest_seconds = time.perf_counter() - started
        figures = _text_figures(engine, report, corpus)
        figures["ingest_seconds"] = round(ingest_seconds, 1)
        figures["retrieval"] = _retrieval(engine, corpus, questions, quiet)
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _text_figures(engine, report, corpus: Path) -> dict:
    store = engine.store
    per: dict[str, dict] = defaultdict(lambda: {"read": 0, "refused": 0, "warnings": 0, "sentences": 0,
                                                "clean": 0, "chars": 0, "ligatures": 0,
                                                "kinds": defaultdict(int)})
    for source in report.indexed + report.unchanged:
        per[_format(source)]["read"] += 1
    for source, _reason in report.failed:
        per[_format(source)]["refused"] += 1
    for source, _warning in report.warnings:
        per[_format(source)]["warnings"] += 1
    for ids, _texts in store.iter_chunk_texts():
        chunks, _ = store.get_chunks(ids)
        for chunk in chunks:
            per[_format(chunk.source)]["ligatures"] += len(LIGATURES.findall(chunk.text))
        sentences, _vectors = store.sentences_for(chunks)
        source_of = {c.id: c.source for c in chunks}
        # Overlapping chunks repeat a sentence; count each (chunk text position) once per document.
        seen = set()
        for s in sentences:
            source = source_of[s.chunk_id]
            text = s.text
            key = (source, text, _chunk_index(s.chunk_id), s.start)
            if key in seen:
                continue
            seen.add(key)
            row = per[_format(source)]
            kind = unit_kind(text)
            row["kinds"][kind] += 1
            row["sentences"] += 1
            row["chars"] += len(text)
            row["clean"] += kind != "other"
    total = {"read": 0, "refused": 0, "warnings": 0, "sentences": 0, "clean": 0, "chars": 0, "ligatures": 0,
             "kinds": defaultdict(int)}
    for row in per.values():
        for k in ("read", "refused", "warnings", "sentences", "clean", "chars", "ligatures"):
            total[k] += row[k]
        for k, v in row["kinds"].items():
            total["kinds"][k] += v
    out = {"formats": {fmt: _finish(row) for fmt, row in sorted(per.items())}, "total": _finish(total),
           "failed": [[os.path.relpath(p, corpus), r] for p, r in report.failed],
           "warnings": [[os.path.relpath(p, corpus), w] for p, w in report.warnings]}
    return out


def _chunk_index(chunk_id: str) -> int:
    return int(chunk_id.rsplit("-", 1)[-1])


def _finish(row: dict) -> dict:
    n = row["sentences"]
    return {"read": row["read"], "refused": row["refused"], "warnings": row["warnings"], "sentences": n,
            "clean_share": round(row["clean"] / n, 3) if n else None,
            "mean_chars": round(row["chars"] / n, 1) if n else None,
            "ligatures": row["ligatures"], "kinds": dict(sorted(row["kinds"].items()))}


def _retrieval(engine, corpus: Path, questions: list[Question], quiet: bool) -> dict:
    engine.lexical.ensure_current()
    rows = []
    for q in questions:
        want = os.path.abspath(corpus / q.document)
        phrase = comparable(q.answer)
        hits = engine.retriever.retrieve(q.question, TOP_K)
        rank = next((i + 1 for i, h in enumerate(hits)
                     if os.path.abspath(h.source) == want and phrase in comparable(h.text)), None)
        doc_rank = next((i + 1 for i, h in enumerate(hits) if os.path.abspath(h.source) == want), None)
        rows.append({"question": q.question, "document": q.document, "rank": rank, "document_rank": doc_rank})
        if not quiet:
            print(f"  {'hit ' if rank else 'MISS'} @{rank or '-'} {q.document}: {q.question}", file=sys.stderr)
    return {"questions": len(rows), **rank_figures(rows), "rows": rows}


def rank_figures(rows: list[dict]) -> dict:
    """hit@1, hit@5 and MRR of the answer chunk (a miss beyond the top 5 counts 0), and document hit@5."""
    ranks = [r["rank"] for r in rows]
    return {"hit@1": sum(r == 1 for r in ranks), f"hit@{TOP_K}": sum(r is not None for r in ranks),
            "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3) if ranks else None,
            "document_hit@5": sum(r["document_rank"] is not None for r in rows)}


def render(figures: dict) -> str:
    lines = ["format  read  refused  warnings  sentences  clean units  mean chars  ligatures"]
    rows = list(figures["formats"].items()) + [("total", figures["total"])]
    for fmt, r in rows:
        share = f"{r['clean_share'] * 100:5.1f} %" if r["clean_share"] is not None else "    -  "
        mean = f"{r['mean_chars']:7.1f}" if r["mean_chars"] is not None else "      -"
        lines.append(f"{fmt:6s} {r['read']:5d} {r['refused']:8d} {r['warnings']:9d} {r['sentences']:10d}"
                     f"  {share:>11s}  {mean:>10s}  {r['ligatures']:9d}")
    ret = figures["retrieval"]
    ranks = rank_figures(ret["rows"])
    lines.append(f"retrieval of {ret['questions']} questions (a hit: a chunk of the right document that holds the "
                 f"answer): hit@1 {ranks['hit@1']}, hit@{TOP_K} {ranks[f'hit@{TOP_K}']}, MRR {ranks['mrr']}; "
                 f"right document in the top {TOP_K}: {ranks['document_hit@5']}")
    for r in ret["rows"]:
        if r["rank"] is None:
            lines.append(f"  missed: {r['document']}: {r['question']}")
    lines.append(f"ingest: {figures['ingest_seconds']} s")
    for path, reason in figures["failed"]:
        lines.append(f"  refused: {path}: {reason}")
    for path, warning in figures["warnings"]:
        lines.append(f"  warning: {path}: {warning}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m core.eval.documents_quality", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(CORPUS), help="folder of documents (default: the committed corpus)")
    parser.add_argument("--questions", default=str(QUESTIONS), help="JSONL of questions, paths relative to the "
                        "corpus folder (default: the committed questions)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no per-question lines on stderr")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    corpus = Path(args.corpus)
    questions_path = Path(args.questions)
    if not corpus.is_dir() or not questions_path.is_file():
        print(f"No corpus at {corpus} or no questions at {questions_path}.", file=sys.stderr)
        return 2
    figures = measure(corpus, load_questions(questions_path), quiet=args.quiet or args.json)
    print(json.dumps(figures) if args.json else render(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

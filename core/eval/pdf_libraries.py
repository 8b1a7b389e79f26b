"""`python3 -m core.eval.pdf_libraries [FOLDER...]`: pypdf against pypdfium2, with poppler as the reference.

Issue 18 asks to choose the PDF library by measurement on real PDFs (and the
page-view issue needs character boxes and page rendering from the same
library, which pypdfium2 has and pypdf lacks). For every PDF under the folders
given (default: the committed corpus) this reads the text of every page with

- pypdf (the extractor until issue 18: `PdfReader(...).pages[i].extract_text()`),
- pypdfium2 (`PdfDocument(...)[i].get_textpage().get_text_range()`),
- "stored": the text Sourcelight's ingest stores (`core.ingest.documents.pdf`: pdfium's
  characters one index at a time, mapped),

and compares each with poppler's `pdftotext` (Debian `poppler-utils`, used here
only as a reference, never by the app) by word-bag F1: the words (NFKC,
case-folded, `\\w+`) both agree on, over the words either has. Glued words
("throughthemaster"), mojibake and lost text all lower it. Per library it
prints: files read (no exception and some text), files refused, mean and
median F1 over the files poppler reads with at least 50 words, how many of
those files score below 0.8, ligature characters left in the text, and total
time. An encrypted file is opened with an empty password, as ingest does.

pypdfium2 is a dependency of the app since issue 16 (page rendering and
character boxes for the page view, `core.pdf_pages`) and, on this
measurement, the text extractor since issue 18 (`core.ingest.documents.pdf`, which
builds the text from pdfium's characters one index at a time, not with
`get_text_range`). The decision and figures are in
tests/core/data/documents/README.md.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

from core.eval.documents_quality import CORPUS, LIGATURES

_WORD = re.compile(r"\w+")
MIN_REFERENCE_WORDS = 50


def words(text: str) -> Counter:
    return Counter(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def f1(ours: Counter, reference: Counter) -> float:
    common = sum((ours & reference).values())
    total = sum(ours.values()) + sum(reference.values())
    return 2 * common / total if total else 1.0


def with_poppler(path: Path) -> str | None:
    try:
        done = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def with_pypdf(data: bytes) -> str:
    import io
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
        raise PermissionError("password")
    pages = []
    for page in reader.pages:
        try:
            pages.append(page.extract_text())
        except Exception:  # noqa: BLE001 - ingest also skips a broken page and keeps the rest
            pages.append("")
    return "\n\n".join(pages)


def with_pdfium(data: bytes) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data, password="")
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n\n".join(pages)
    finally:
        pdf.close()


def with_sourcelight(data: bytes) -> str:
    """The text ingest stores: pdfium's characters mapped by `core.ingest.documents.pdf` (line breaks,
    line-end hyphens, ligatures), pages without text left out."""
    from core.ingest.documents.pdf import pdf_pages

    pages, _warnings = pdf_pages(Path("measured.pdf"), data)
    return "\n\n".join(p.text for p in pages)


LIBRARIES = {"pypdf": with_pypdf, "pypdfium2": with_pdfium, "stored": with_sourcelight}


def measure(paths: list[Path]) -> dict:
    results: dict[str, dict] = {name: {"read": 0, "refused": 0, "seconds": 0.0, "ligatures": 0, "f1": {}}
                                for name in LIBRARIES}
    reference_files = 0
    for path in paths:
        data = path.read_bytes()
        reference = with_poppler(path)
        ref_words = words(reference) if reference else Counter()
        compare = sum(ref_words.values()) >= MIN_REFERENCE_WORDS
        reference_files += compare
        for name, extract in LIBRARIES.items():
            row = results[name]
            started = time.perf_counter()
            try:
                text = extract(data)
            except Exception:  # noqa: BLE001 - counted as refused, like ingest does
                text = None
            row["seconds"] += time.perf_counter() - started
            if text is None or not text.strip():
                row["refused"] += 1
                text = ""
            else:
                row["read"] += 1
                row["ligatures"] += len(LIGATURES.findall(text))
            if compare:
                row["f1"][str(path)] = round(f1(words(text), ref_words), 3)
    out = {"files": len(paths), "compared_with_poppler": reference_files, "libraries": {}}
    for name, row in results.items():
        scores = list(row["f1"].values())
        out["libraries"][name] = {
            "read": row["read"], "refused": row["refused"], "seconds": round(row["seconds"], 2),
            "ligatures": row["ligatures"],
            "mean_f1": round(statistics.mean(scores), 3) if scores else None,
            "median_f1": round(statistics.median(scores), 3) if scores else None,
            "below_0.8": sorted(Path(p).name for p, s in row["f1"].items() if s < 0.8),
            "per_file_f1": row["f1"],
        }
    return out


def render(result: dict) -> str:
    lines = [f"{result['files']} PDFs; {result['compared_with_poppler']} with >= {MIN_REFERENCE_WORDS} words "
             "from pdftotext are compared with it",
             "library     read  refused  mean F1  median F1  F1 < 0.8  ligatures  seconds"]
    for name, r in result["libraries"].items():
        lines.append(f"{name:10s} {r['read']:5d} {r['refused']:8d}  {r['mean_f1']!s:>7s}  {r['median_f1']!s:>9s}"
                     f"  {len(r['below_0.8']):8d}  {r['ligatures']:9d}  {r['seconds']:7.1f}")
    for name, r in result["libraries"].items():
        if r["below_0.8"]:
            lines.append(f"  {name} below 0.8: " + ", ".join(r["below_0.8"]))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m core.eval.pdf_libraries", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", default=[str(CORPUS)], help="folders searched for *.pdf")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("pdftotext") is None:
        print("pdftotext not found: install poppler-utils (apt-get install poppler-utils) for the reference.",
              file=sys.stderr)
        return 2
    try:
        import pypdfium2  # noqa: F401
    except ImportError:
        print("pypdfium2 is not installed: pip install pypdfium2", file=sys.stderr)
        return 2
    paths = sorted(p for folder in args.folders for p in Path(folder).rglob("*.pdf"))
    result = measure(paths)
    print(json.dumps(result) if args.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""`python3 -m core.eval.page_spans [--per-file N] [--json]`: do highlighted rectangles hold the span's text?

Issue 16 asks that the rectangles the page view lights for a support span
cover exactly that span's text, on the right page. For each PDF of
`PDFS` (real public files: the committed corpus plus `tests/core/data/pageview/`,
provenance in their READMEs) this runs the product's own ingest path
(`core.ingest.ingestor.iter_parts`: pdfium text, sentences, chunks, page maps) without
embedding, draws up to `--per-file` source sentences spread evenly over the
document (the spans attribution lights), and for each one:

- asks the page view for its rectangles (`PageViews.rects`);
- reads back, independently of the map, the characters whose pdfium box has
  its centre inside one of the rectangles, in page order;
- counts the span as matching when that text equals the span's text with
  whitespace removed (both cleaned as ingest cleans text), and its page as
  right when the span's text occurs on that page as pdfium reads it (the
  chunk's page is the page extraction read it from). pdfium's U+0002 (a
  line-end hyphen, or a glyph it cannot name) and U+FFFD match any one
  character of the span: the rectangle covers that glyph, pdfium only lacks
  its name.

It prints per file: spans drawn, spans matching, pages right; and the share
over all spans. Spans with no rectangles at all count as not matching.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from core.ingest.documents import clean_text
from core.eval.documents_quality import CORPUS

PAGEVIEW = Path(__file__).resolve().parents[2] / "tests" / "core" / "data" / "pageview" / "files"

# Reports, multi-column layouts, a form, a long document, non-Latin scripts: see the READMEs.
PDFS = (
    CORPUS / "pdf" / "contrib_issue-1061-colour-space-stack.pdf",  # 12-page IEEE paper, two columns
    CORPUS / "pdf" / "026-latex-multicolumn_multicolumn.pdf",  # two columns
    CORPUS / "pdf" / "contrib_pr-00530-ml-lines.pdf",  # Federal Register, three columns
    CORPUS / "pdf" / "GeoBase_NHNC1_Data_Model_UML_EN.pdf",  # 19-page report, English/French
    CORPUS / "pdf" / "Seige_of_Vicksburg_Sample_OCR.pdf",  # scanned book with an OCR layer
    CORPUS / "pdf" / "004-pdflatex-4-pages_pdflatex-4-pages.pdf",  # hyphenated LaTeX
    CORPUS / "pdf" / "011-google-doc-document_google-doc-document.pdf",  # Google Docs
    CORPUS / "pdf" / "contrib_issue-00352-hash-twos-complement.pdf",  # web article printed to PDF
    CORPUS / "pdf" / "contrib_issue-00352-asw-oct96-p41.pdf",  # table
    CORPUS / "pdf" / "contrib_issue-625-identity-cmap.pdf",  # Polish invoice
    CORPUS / "pdf" / "multilang.pdf",  # Arabic, Russian, Chinese, Thai, Japanese
    CORPUS / "pdf" / "crazyones.pdf",  # prose with a ligature
    PAGEVIEW / "SF424_page2.pdf",  # a US federal grant form
    PAGEVIEW / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf",  # 117-page German textbook
)


@dataclass(frozen=True)
class SpanCheck:
    file: str
    page: int
    span: str  # the span's text as stored
    under: str  # the text under its rectangles
    rects: int
    matches: bool
    page_right: bool


def _squash(text: str) -> str:
    return "".join(clean_text(text).split())


# pdfium's characters for a line-end hyphen and for a glyph it cannot name: they stand for one
# character of the span (stored as "-" or U+FFFD, or named by pypdf in an older index), so they match any one.
_UNNAMED = "\x02\ufffd"


def _same(under: str, want: str) -> bool:
    return len(under) == len(want) and all(a == b or a in _UNNAMED for a, b in zip(under, want))


def _on_page(want: str, page_text: str) -> bool:
    if want in page_text:
        return True
    masked = page_text.translate({ord(c): "\x00" for c in _UNNAMED})
    return any(_same(page_text[i:i + len(want)], want) for i in range(len(masked) - len(want) + 1)
               if masked[i] in (want[:1], "\x00"))


def spans_of(path: Path, per_file: int) -> list:
    """Up to `per_file` (chunk, sentence) pairs of `path`, spread evenly over the document."""
    from core.ingest.ingestor import file_hash, iter_parts

    chunks, sentences = {}, []
    for kind, first, second in iter_parts(path, file_hash(path), chunk_chars=900, overlap=1):
        if kind == "part":
            chunks.update((c.id, c) for c in first)
            sentences.extend(s for s in second if len(s.text.strip()) >= 3)
    if len(sentences) <= per_file:
        chosen = sentences
    else:
        step = len(sentences) / per_file
        chosen = [sentences[int(i * step)] for i in range(per_file)]
    return [(chunks[s.chunk_id], s) for s in chosen]


def under_rects(boxes, rects) -> str:
    """The characters whose box centre lies inside one of `rects` (all as page fractions), in page order."""
    out = []
    for ch, box in boxes:
        if box is None:
            continue
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in rects):
            out.append(ch)
    return "".join(out)


def check(paths=PDFS, per_file: int = 10) -> list[SpanCheck]:
    from core import pdf_pages
    from core.page_view import PageViews

    views = PageViews()
    results = []
    try:
        for path in paths:
            doc = pdf_pages.open_document(path)
            boxes_of: dict[int, list] = {}
            text_of: dict[int, str] = {}
            try:
                for chunk, sentence in spans_of(path, per_file):
                    page, rects = views.rects(chunk, sentence.start, sentence.end)
                    if page not in boxes_of:
                        boxes_of[page] = pdf_pages.char_boxes(doc, page)
                        text_of[page] = _squash("".join(ch for ch, _ in boxes_of[page]))
                    under = under_rects(boxes_of[page], rects)
                    want = _squash(sentence.text)
                    results.append(SpanCheck(path.name, page, sentence.text, under, len(rects),
                                             bool(rects) and _same(_squash(under), want),
                                             _on_page(want, text_of[page])))
            finally:
                pdf_pages.close_document(doc)
    finally:
        views.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-file", type=int, default=10, help="spans drawn per PDF (default 10)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    parser.add_argument("--show-misses", action="store_true", help="print every span that does not match")
    args = parser.parse_args(argv)
    results = check(per_file=args.per_file)
    files: dict[str, list[SpanCheck]] = {}
    for r in results:
        files.setdefault(r.file, []).append(r)
    total = len(results)
    matching = sum(r.matches for r in results)
    pages = sum(r.page_right for r in results)
    if args.json:
        print(json.dumps({"spans": total, "matching": matching, "pages_right": pages,
                          "files": {f: {"spans": len(rs), "matching": sum(r.matches for r in rs),
                                        "pages_right": sum(r.page_right for r in rs)} for f, rs in files.items()}}))
        return 0
    print(f"{'file':58s} {'spans':>5s} {'match':>5s} {'page':>5s}")
    for name, rs in files.items():
        print(f"{name[:58]:58s} {len(rs):5d} {sum(r.matches for r in rs):5d} {sum(r.page_right for r in rs):5d}")
    print(f"{'all ' + str(len(files)) + ' PDFs':58s} {total:5d} {matching:5d} {pages:5d}")
    print(f"text under the rectangles equals the span: {matching / max(1, total):.1%}; "
          f"right page: {pages / max(1, total):.1%}")
    if args.show_misses:
        for r in results:
            if not r.matches:
                print(f"\n{r.file} p.{r.page} ({r.rects} rects)\n  span:  {r.span!r}\n  under: {r.under!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

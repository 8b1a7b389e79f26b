"""Tests for core.ingest.documents: real files of every supported kind, built in tmp_path.

The PDFs are written by hand (a few objects and a computed xref table) so the
tests prove pypdf really extracts text and page numbers, with no fixture files
checked in and nothing downloaded.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from core.ingest import documents
from core.ingest.documents import (
    CODE_BAD_NAME,
    CODE_BINARY,
    CODE_CORRUPT,
    CODE_ENCRYPTED,
    CODE_NO_TEXT,
    CODE_NOT_A_FILE,
    CODE_NOT_FOUND,
    CODE_CHANGED,
    CODE_PERMISSION,
    CODE_READ_FAILED,
    CODE_TOO_LARGE,
    CODE_UNSUPPORTED,
    SUPPORTED_SUFFIXES,
    ExtractedDocument,
    PageText,
    extract,
    iter_files,
)
from core.errors import IngestError

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- fixture builders -------------------------------------------------------


def _pdf_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], *, broken_pages: frozenset[int] = frozenset()) -> bytes:
    """A valid PDF with one page per entry; each string is one line of Helvetica text.

    An empty list makes a page with no text (like a scanned image page); a
    1-based number in `broken_pages` gets a content stream that claims to be
    Flate-compressed but is not.
    """
    n = len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        (f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>").encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops += [f"({_pdf_literal(line)}) Tj", "T*"]
        ops.append("ET")
        content = "\n".join(ops).encode("cp1252")
        objects.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>"
            ).encode()
        )
        if i + 1 in broken_pages:
            content = b"this is not zlib data" * 4
            objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream")
        else:
            objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


THREE_PAGES = [
    ["Photosynthesis turns light into chemical energy.", "Chlorophyll absorbs red and blue light."],
    [],  # an image-only page: skipped, but numbering continues
    ["The Calvin cycle fixes carbon dioxide (CO2)."],
]


@pytest.fixture
def pdf_path(tmp_path: Path) -> Path:
    path = tmp_path / "biology.pdf"
    path.write_bytes(make_pdf(THREE_PAGES))
    return path


def encrypt_pdf(source: Path, target: Path, *, user_password: str, algorithm: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    with open(target, "wb") as f:
        writer.write(f)
    return target


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew by 12% this quarter.")
    document.add_paragraph("")  # empty paragraphs leave no extra blank lines
    document.add_paragraph("Costs stayed flat.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Region"
    table.cell(0, 1).text = "Sales"
    table.cell(1, 0).text = "North"
    table.cell(1, 1).text = "42"
    document.add_paragraph("Outlook: stable.")
    document.save(path)
    return path


def codes(results) -> list[tuple[str, str | None]]:
    return [(p.name, e.code if e else None) for p, e in results]


# -- plain text and Markdown ------------------------------------------------


def test_txt_is_returned_as_is_with_hash_and_no_page(tmp_path: Path):
    path = tmp_path / "notes.txt"
    raw = "First line.\r\nSecond line.\rThird line.\n\n  Indented paragraph.\n".encode()
    path.write_bytes(raw)

    doc = extract(path)

    assert isinstance(doc, ExtractedDocument)
    assert doc.path == path
    assert doc.pages == (PageText(None, "First line.\nSecond line.\nThird line.\n\n  Indented paragraph.\n"),)
    assert doc.text == doc.pages[0].text
    assert doc.content_hash == hashlib.sha256(raw).hexdigest()
    assert doc.warnings == ()


def test_markdown_keeps_its_markup(tmp_path: Path):
    source = "# Title\n\nSome **bold** text and a [link](https://example.org).\n\n- item one\n- item two\n"
    for name in ("readme.md", "guide.MARKDOWN"):
        path = tmp_path / name
        path.write_text(source, encoding="utf-8")
        assert extract(path).text == source


def test_same_bytes_same_hash_and_different_bytes_different_hash(tmp_path: Path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.md", tmp_path / "c.txt"
    a.write_text("same text")
    b.write_text("same text")
    c.write_text("other text")
    assert extract(a).content_hash == extract(b).content_hash != extract(c).content_hash


def test_latin1_and_cp1252_text_is_decoded(tmp_path: Path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Café crème, naïve façade – 50 °C".replace("–", "-").encode("latin-1"))
    assert extract(latin1).text == "Café crème, naïve façade - 50 °C"

    cp1252 = tmp_path / "quotes.txt"
    cp1252.write_bytes("\u201cSmart quotes\u201d cost \u20ac5".encode("cp1252"))
    assert extract(cp1252).text == "\u201cSmart quotes\u201d cost \u20ac5"

    # 0x81 is undefined in cp1252: latin-1 is the last resort and never fails.
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"caf\xe9 \x81 end")
    assert extract(odd).text == "caf\xe9 \x81 end"


@pytest.mark.parametrize("text", ["Le café est ouvert à neuf heures. Les élèves déjeunent à midi.\n",
                                  "原子炉は重水を減速材として使用する。建設は1962年です。\n"])
def test_utf8_with_a_broken_last_character_stays_utf8(tmp_path: Path, text: str):
    """A part cut by `split -b` ends mid-character: that character is lost, not every accent in the file."""
    part = tmp_path / "part.txt"
    part.write_bytes((text * 3).encode("utf-8") + "é".encode("utf-8")[:1])
    doc = extract(part)
    assert doc.text == text * 3 + "\ufffd"
    assert len(doc.warnings) == 1 and "not valid UTF-8" in doc.warnings[0]


def test_cp1252_with_one_utf8_lookalike_stays_cp1252(tmp_path: Path):
    """A cp1252 file whose bytes happen to form one valid UTF-8 pair is still read as cp1252."""
    path = tmp_path / "old.txt"
    path.write_bytes("Crème brûlée, café, naïve, déjà vu, Ã©".encode("cp1252"))
    assert extract(path).text == "Crème brûlée, café, naïve, déjà vu, Ã©"


def test_a_file_name_that_is_not_utf8_is_refused_with_a_rename_hint(tmp_path: Path):
    """Latin-1 names from old archives: not a damaged file, a name to change."""
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    with open(raw, "wb") as fh:
        fh.write(b"The cafe opens at nine.")
    good = tmp_path / "good.txt"
    good.write_text("Fine name.")
    for given in ([tmp_path], [Path(os.fsdecode(raw)), good]):  # found in a folder, and named directly
        results = list(iter_files(given))
        assert [(p.name, e is None) for p, e in results] == [("caf\udce9.txt", False), ("good.txt", True)]
        error = results[0][1]
        assert error.code == CODE_BAD_NAME and "Rename the file" in error.message
        error.message.encode("utf-8")  # the message itself can be shown anywhere


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_text_with_bom_is_decoded_and_bom_dropped(tmp_path: Path, encoding: str):
    text = "Grüße aus Köln\r\n日本語のテキスト\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":  # the codec writes no BOM for explicit endianness
        data = b"\xfe\xff" + data
    path = tmp_path / "bom.txt"
    path.write_bytes(data)
    assert extract(path).text == "Grüße aus Köln\n日本語のテキスト\n"


def test_utf16_le_bom_is_detected(tmp_path: Path):
    path = tmp_path / "le.md"
    path.write_bytes(b"\xff\xfe" + "# Überschrift\n".encode("utf-16-le"))
    assert extract(path).text == "# Überschrift\n"


def test_invalid_utf16_after_bom_is_reported(tmp_path: Path):
    path = tmp_path / "bad16.txt"
    path.write_bytes(b"\xff\xfe" + b"\x00\xd8" + b"A\x00")  # a lone high surrogate
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_BINARY
    assert "re-save it as UTF-8" in info.value.message


def test_large_single_line_text_is_read_once(tmp_path: Path):
    # 50 MB on one line: must go through linear passes only (no per-line work).
    path = tmp_path / "big.txt"
    line = b"lorem ipsum dolor sit amet " * (50 * 2**20 // 27)
    path.write_bytes(line)
    doc = extract(path)
    assert len(doc.text) == len(line)
    assert doc.text is doc.pages[0].text  # `text` adds no 50 MB copy


# -- failures common to every format ---------------------------------------


@pytest.mark.parametrize("name", ["empty.txt", "empty.pdf", "empty.docx", "empty.html"])
def test_empty_file_has_no_text(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_NO_TEXT
    assert "empty" in info.value.message and str(path) in info.value.message


def test_whitespace_only_file_has_no_text(tmp_path: Path):
    path = tmp_path / "blank.md"
    path.write_text(" \n\t\n\n")
    with pytest.raises(IngestError, match="contains no text") as info:
        extract(path)
    assert info.value.code == CODE_NO_TEXT


def test_binary_content_with_text_extension_is_refused(tmp_path: Path):
    png_named_txt = tmp_path / "image.txt"
    png_named_txt.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(IngestError, match="binary data") as info:
        extract(png_named_txt)
    assert info.value.code == CODE_BINARY

    # No NUL byte at all, but mostly control characters.
    controls = tmp_path / "controls.md"
    controls.write_bytes(bytes(range(1, 9)) * 200 + b"some text")
    with pytest.raises(IngestError) as info:
        extract(controls)
    assert info.value.code == CODE_BINARY


def test_text_with_a_few_control_characters_is_accepted(tmp_path: Path):
    path = tmp_path / "log.txt"
    path.write_text("\x1b[31mERROR\x1b[0m disk full\n" + "plain log line\n" * 20)
    assert "disk full" in extract(path).text


def test_missing_path(tmp_path: Path):
    path = tmp_path / "nope.txt"
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_NOT_FOUND
    assert str(path) in info.value.message and "does not exist" in info.value.message


def test_unsupported_suffix(tmp_path: Path):
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04whatever")
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_UNSUPPORTED
    assert "'.xlsx' files are not supported" in info.value.message
    assert ".pdf" in info.value.message  # tells the user what would work


def test_folder_given_to_extract(tmp_path: Path):
    with pytest.raises(IngestError, match="is a folder") as info:
        extract(tmp_path)
    assert info.value.code == CODE_NOT_A_FILE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(IngestError) as info:
        extract(fifo)
    assert info.value.code == CODE_NOT_A_FILE
    assert codes(iter_files([fifo])) == [("pipe.txt", CODE_NOT_A_FILE)]


def test_file_over_the_size_cap_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:  # sparse: costs no disk space or read time
        f.truncate(documents.MAX_FILE_BYTES + 1)
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_TOO_LARGE
    # Binary units, labelled as such: the cap is 200 * 2**20 bytes.
    assert "more than the 200 MiB limit" in info.value.message


@pytest.mark.skipif(IS_ROOT or sys.platform == "win32", reason="root (as in CI containers) can read mode-000 files")
def test_permission_denied(tmp_path: Path):
    path = tmp_path / "secret.txt"
    path.write_text("classified")
    path.chmod(0)
    try:
        with pytest.raises(IngestError) as info:
            extract(path)
        assert info.value.code == CODE_PERMISSION
        assert "permission denied" in info.value.message
    finally:
        path.chmod(0o600)


@pytest.mark.skipif(IS_ROOT or sys.platform == "win32", reason="root (as in CI containers) can list mode-000 folders")
def test_unlistable_folder_is_reported(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("a")
    locked.chmod(0)
    try:
        assert codes(iter_files([tmp_path])) == [("locked", CODE_PERMISSION)]
    finally:
        locked.chmod(0o700)


def test_file_deleted_between_listing_and_extract(tmp_path: Path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    found = [p for p, err in iter_files([tmp_path]) if err is None]
    found[0].unlink()
    with pytest.raises(IngestError) as info:
        extract(found[0])
    assert info.value.code == CODE_NOT_FOUND
    assert extract(found[1]).text == "beta"


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux procfs")
def test_size_changing_under_the_reader_is_reported(tmp_path: Path):
    # procfs files claim 0 bytes yet read back text: the same mismatch as a
    # file truncated or appended to while it is read, without racing a writer.
    link = tmp_path / "status.txt"
    link.symlink_to("/proc/self/status")
    with pytest.raises(IngestError) as info:
        extract(link)
    assert info.value.code == CODE_CHANGED
    assert "changed while it was being read" in info.value.message


def test_non_ascii_path(tmp_path: Path):
    folder = tmp_path / "Ünïcødé 文档"
    folder.mkdir()
    path = folder / "résumé ✓.txt"
    path.write_text("Ingénieure logicielle", encoding="utf-8")
    assert extract(path).text == "Ingénieure logicielle"
    assert list(iter_files([tmp_path])) == [(path, None)]


# -- HTML -------------------------------------------------------------------


HTML_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="windows-1252"><title>Caf\xe9 guide</title>
<style>p { color: red; }</style>
<script>var secret = "do not index";</script>
</head>
<body>
<!-- a comment nobody sees -->
<noscript>Enable JavaScript</noscript>
<template><p>template text</p></template>
<h1>Brewing   coffee</h1>
<p>Grind the beans
   just before brewing.</p>
<p>Use water at 93&nbsp;&deg;C &amp; pour <b>slowly</b>.<br>Wait four minutes.</p>
<ul><li>Beans</li><li>Water</li></ul>
<table><tr><th>Method</th><th>Time</th></tr><tr><td>French press</td><td>4 min</td></tr></table>
<pre>def brew():
    return "coffee"</pre>
<div>Last<span> line</span></div>
</body></html>
"""


def test_html_text_drops_scripts_and_keeps_paragraphs(tmp_path: Path):
    path = tmp_path / "coffee.html"
    path.write_bytes(HTML_PAGE)
    text = extract(path).text

    for hidden in ("secret", "color: red", "Enable JavaScript", "template text", "comment"):
        assert hidden not in text
    assert text == (
        "Caf\u00e9 guide\n\n"  # title first, decoded by its <meta charset>
        "Brewing coffee\n\n"
        "Grind the beans just before brewing.\n\n"
        "Use water at 93\u00a0\u00b0C & pour slowly.\n"
        "Wait four minutes.\n\n"
        "Beans\n\nWater\n\n"
        "Method\tTime\n\nFrench press\t4 min\n\n"
        'def brew():\n    return "coffee"\n\n'
        "Last line"
    )


def test_htm_without_head_or_body_and_unclosed_tags(tmp_path: Path):
    path = tmp_path / "fragment.HTM"
    path.write_text("<html><head><title>T</title><body><p>One<p>Two</body>", encoding="utf-8")
    assert extract(path).text == "T\n\nOne\n\nTwo"


def test_short_undeclared_utf8_html_is_read_as_utf8_and_declared_charsets_win(tmp_path: Path):
    short = tmp_path / "short.html"
    short.write_bytes("<p>Ünïcödé ok</p>".encode("utf-8"))  # the guesser alone reads this as EUC-KR
    assert extract(short).text == "Ünïcödé ok"
    declared = tmp_path / "declared.html"
    declared.write_bytes('<meta charset="windows-1252"><p>Caf\u00e9 cr\u00e8me</p>'.encode("cp1252"))
    assert extract(declared).text == "Café crème"


def test_html_with_only_script_has_no_text(tmp_path: Path):
    path = tmp_path / "app.html"
    path.write_text("<html><body><script>render()</script></body></html>")
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_NO_TEXT


# -- DOCX -------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path):
    path = make_docx(tmp_path / "report.docx")
    doc = extract(path)
    assert doc.pages[0].page is None
    assert doc.text == (
        "Quarterly report\n\n"
        "Revenue grew by 12% this quarter.\n\n"
        "Costs stayed flat.\n\n"
        "Region\tSales\n\n"
        "North\t42\n\n"
        "Outlook: stable."
    )


def test_docx_that_is_not_a_zip_is_corrupt(tmp_path: Path):
    path = tmp_path / "old.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"legacy word binary" * 10)
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_CORRUPT
    assert "save it as .docx" in info.value.message


# -- PDF --------------------------------------------------------------------


def test_pdf_pages_are_extracted_with_page_numbers(pdf_path: Path):
    doc = extract(pdf_path)
    assert [p.page for p in doc.pages] == [1, 3]  # page 2 has no text
    assert "Photosynthesis turns light into chemical energy." in doc.pages[0].text
    assert "Chlorophyll absorbs red and blue light." in doc.pages[0].text
    assert "The Calvin cycle fixes carbon dioxide (CO2)." in doc.pages[1].text
    assert doc.text == doc.pages[0].text + "\n\n" + doc.pages[1].text
    assert doc.content_hash == hashlib.sha256(pdf_path.read_bytes()).hexdigest()
    assert doc.warnings == ()


def test_pdf_with_a_broken_page_keeps_the_rest_and_says_so(tmp_path: Path):
    path = tmp_path / "damaged.pdf"
    path.write_bytes(make_pdf(THREE_PAGES, broken_pages=frozenset({3})))
    doc = extract(path)
    assert [p.page for p in doc.pages] == [1]
    assert len(doc.warnings) == 1
    assert "page(s) 3 could not be read" in doc.warnings[0]
    assert "page(s) 2" not in doc.warnings[0]  # an image-only page is not damage


def test_pdf_whose_only_text_page_is_broken_is_corrupt(tmp_path: Path):
    path = tmp_path / "damaged.pdf"
    path.write_bytes(make_pdf([["only page"]], broken_pages=frozenset({1})))
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_CORRUPT


def test_pdf_with_junk_after_the_end_marker_still_reads(tmp_path: Path, pdf_path: Path):
    # Some mail gateways and download tools pad files; pypdf copes, so must we.
    path = tmp_path / "padded.pdf"
    path.write_bytes(pdf_path.read_bytes() + b"\x00" * 4096)
    assert [p.page for p in extract(path).pages] == [1, 3]


def test_pdf_without_text_asks_for_ocr(tmp_path: Path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[], []]))
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_NO_TEXT
    assert "contains no text; if it is a scanned PDF, run OCR first" in info.value.message


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_pdf_is_corrupt(tmp_path: Path, pdf_path: Path, keep: float):
    data = pdf_path.read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_CORRUPT
    assert "damaged or incomplete" in info.value.message


def test_garbage_named_pdf_is_corrupt(tmp_path: Path):
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"<html>this is a web page saved as .pdf</html>\n%%EOF\n")
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_CORRUPT


def test_encrypted_pdf_with_empty_user_password_opens(tmp_path: Path, pdf_path: Path):
    path = encrypt_pdf(pdf_path, tmp_path / "locked-for-printing.pdf", user_password="", algorithm="RC4-128")
    from pypdf import PdfReader

    assert PdfReader(path).is_encrypted
    doc = extract(path)
    assert [p.page for p in doc.pages] == [1, 3]
    assert "Calvin cycle" in doc.pages[1].text


def test_encrypted_pdf_needing_a_password_is_refused(tmp_path: Path, pdf_path: Path):
    path = encrypt_pdf(pdf_path, tmp_path / "secret.pdf", user_password="hunter2", algorithm="AES-256")
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_ENCRYPTED
    assert "password-protected" in info.value.message


# -- iter_files -------------------------------------------------------------


def test_iter_files_walks_folders_sorted_and_skips_hidden_and_unsupported(tmp_path: Path):
    root = tmp_path / "corpus"
    (root / "b-sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b-sub" / "deep.pdf").write_bytes(b"%PDF")
    (root / "c.HTML").write_text("<p>c</p>")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / "Makefile").write_text("all:")
    (root / ".hidden.txt").write_text("hidden")
    (root / ".git").mkdir()
    (root / ".git" / "notes.md").write_text("hidden")

    assert list(iter_files([root])) == [
        (root / "a.txt", None),
        (root / "b-sub" / "deep.pdf", None),
        (root / "c.HTML", None),
    ]


def test_iter_files_reports_explicit_problems_and_continues(tmp_path: Path):
    good = tmp_path / "good.md"
    good.write_text("ok")
    unsupported = tmp_path / "movie.mp4"
    unsupported.write_bytes(b"\x00")
    hidden = tmp_path / ".explicitly-chosen.txt"
    hidden.write_text("chosen")
    missing = tmp_path / "gone.txt"

    results = list(iter_files([missing, unsupported, good, hidden, good]))

    assert codes(results) == [
        ("gone.txt", CODE_NOT_FOUND),
        ("movie.mp4", CODE_UNSUPPORTED),
        ("good.md", None),
        (".explicitly-chosen.txt", None),  # hidden files are only skipped inside folders
    ]
    assert all(isinstance(e, IngestError) for _, e in results[:2])


def test_iter_files_accepts_a_generator_of_strings(tmp_path: Path):
    (tmp_path / "x.txt").write_text("x")
    assert list(iter_files(str(p) for p in [tmp_path])) == [(tmp_path / "x.txt", None)]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_iter_files_survives_symlink_loops_and_yields_each_file_once(tmp_path: Path):
    root = tmp_path / "root"
    sub = root / "sub"
    sub.mkdir(parents=True)
    (root / "top.txt").write_text("top")
    (sub / "inner.md").write_text("inner")
    (sub / "loop").symlink_to(root, target_is_directory=True)  # cycle back to the root
    (sub / "self").symlink_to(sub, target_is_directory=True)  # cycle to itself
    (root / "alias.txt").symlink_to(root / "top.txt")  # same file, second name
    (root / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    (root / "selfloop.txt").symlink_to(root / "selfloop.txt")  # ELOOP
    (root / "dangling.png").symlink_to(tmp_path / "missing.png")  # unsupported: silent

    results = list(iter_files([root, sub, root / "top.txt"]))

    assert codes(results) == [
        ("alias.txt", None),
        ("dangling.txt", CODE_NOT_FOUND),
        ("selfloop.txt", CODE_READ_FAILED),
        ("inner.md", None),
    ]
    assert results[3][0] == sub / "inner.md"


def test_every_supported_suffix_is_extractable(tmp_path: Path, pdf_path: Path):
    samples = {
        ".txt": b"text",
        ".md": b"# md",
        ".markdown": b"# markdown",
        ".html": b"<p>html</p>",
        ".htm": b"<p>htm</p>",
        ".pdf": pdf_path.read_bytes(),
        ".docx": make_docx(tmp_path / "sample.docx").read_bytes(),
    }
    assert set(samples) == set(SUPPORTED_SUFFIXES)
    for suffix, data in samples.items():
        path = tmp_path / f"sample-all{suffix}"
        path.write_bytes(data)
        assert extract(path).text.strip()

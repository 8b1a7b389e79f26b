"""Word documents read whole: footnotes, endnotes, comments, headers, footers, text boxes, Strict OOXML.

Most cases run on real files from python-mammoth's and python-docx's test
sets (tests/core/data/docx/, licences there), which Sourcelight used to index
as "Ouch." or refuse as "run OCR first" / "an old .doc file". A few build a
document with python-docx to check one rule at a time (a text box anchored
mid-document, a deleted revision).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from core.ingest.documents import CODE_CORRUPT, CODE_ENCRYPTED, CODE_NO_TEXT, extract
from core.ingest.documents.docx_text import COMMENTS_LABEL, ENDNOTES_LABEL, FOOTER_LABEL, FOOTNOTES_LABEL, HEADER_LABEL
from core.errors import IngestError

DATA = Path(__file__).parent / "data" / "docx"


def text_of(name: str) -> str:
    return extract(DATA / name).text


def test_footnotes_follow_the_body_under_a_label_with_markers_in_the_body():
    assert text_of("footnotes.docx") == (
        "Ouch[1].[2]\n\n"
        f"{FOOTNOTES_LABEL}\n\n"
        "[1] A tachyon walks into a bar.\n\n"
        "[2] Fin."
    )


def test_endnotes_use_roman_markers_as_word_numbers_them():
    assert text_of("endnotes.docx") == (
        "Ouch[i].[ii]\n\n"
        f"{ENDNOTES_LABEL}\n\n"
        "[i] A tachyon walks into a bar.\n\n"
        "[ii] Fin."
    )


def test_a_footnote_that_is_a_hyperlink_makes_the_file_readable():
    # The body holds nothing but the footnote reference: this file used to be refused as "no text".
    text = text_of("footnote-hyperlink.docx")
    assert text == f"[1]\n\n{FOOTNOTES_LABEL}\n\n[1] Example"


def test_comments_name_their_author_and_the_text_they_are_attached_to():
    text = text_of("comments.docx")
    body, _, comments = text.partition(f"\n\n{COMMENTS_LABEL}\n\n")
    assert body == "Ouch."
    assert comments.split("\n\n")[0] == "Comment by Michael Williamson on \u201cOuch\u201d: A tachyon walks into a bar."
    assert "Fin." in comments


def test_text_box_is_read_once_although_word_stores_it_twice():
    # DrawingML in mc:Choice and a VML copy in mc:Fallback: one branch is read.
    assert text_of("text-box.docx") == "Datum plane"


def test_strict_ooxml_is_read():
    doc = extract(DATA / "strict-format.docx")
    assert doc.text == "Test"
    assert doc.warnings == ()


def test_headers_lead_and_footers_close_each_distinct_one_once():
    text = text_of("doc-add-section.docx")
    assert text == (
        f"{HEADER_LABEL}\n\n"
        "First-page header content\n\nPrimary (Odd-Page) Header content\n\nEven Page Header content\n\n"
        "First page\n\nSecond page\n\nThird page\n\n"
        f"{FOOTER_LABEL}\n\n"
        "First Page Footer content\n\nPrimary (Odd-Page) Footer content\n\nEven Page Footer content"
    )
    # A later section that repeats (links to) the first section's header adds nothing.
    assert text_of("hdr-header-footer.docx").count("Header for section-1") == 1


def test_a_table_in_a_header_and_tables_in_the_body_keep_one_line_per_row():
    text = text_of("blk-paras-and-tables.docx")
    assert text.startswith(f"{HEADER_LABEL}\n\nLeft-side\tRight-side\n\n")
    assert "Text before Text after" in text
    assert text.endswith(f"{FOOTER_LABEL}\n\nCopyright\tPage-number")
    assert text_of("tables.docx") == "Above\n\nTop left\tTop right\n\nBottom left\tBottom right\n\nBelow"


def test_every_offset_of_a_section_is_exact_in_the_stored_text():
    # Chunking indexes into `doc.text`; each part must be found at one exact place in it.
    doc = extract(DATA / "footnotes.docx")
    text = doc.text
    start = text.index("A tachyon")
    assert text[start:start + len("A tachyon walks into a bar.")] == "A tachyon walks into a bar."
    assert len(doc.pages) == 1 and doc.pages[0].page is None


def _with_part(source: Path, name: str, data: bytes) -> bytes:
    """`source` with one zip member replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item, data if item.filename == name else zin.read(item.filename))
    return out.getvalue()


def test_a_broken_footnotes_part_costs_the_footnotes_only_with_a_warning(tmp_path: Path):
    path = tmp_path / "notes.docx"
    path.write_bytes(_with_part(DATA / "footnotes.docx", "word/footnotes.xml", b"<w:footnotes><oops"))
    doc = extract(path)
    assert doc.text == "Ouch[1].[2]"
    assert len(doc.warnings) == 1 and "footnotes could not be read" in doc.warnings[0]


def test_tracked_deletions_and_field_codes_are_left_out_insertions_kept(tmp_path: Path):
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    paragraph = document.add_paragraph("Budget ")
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    paragraph._p.append(parse_xml(f'<w:del {w} w:id="1" w:author="A"><w:r><w:delText>was cut</w:delText></w:r></w:del>'))
    paragraph._p.append(parse_xml(f'<w:ins {w} w:id="2" w:author="A"><w:r><w:t>grew</w:t></w:r></w:ins>'))
    paragraph._p.append(parse_xml(f'<w:r {w}><w:fldChar w:fldCharType="begin"/></w:r>'))
    paragraph._p.append(parse_xml(f'<w:r {w}><w:instrText> PAGE </w:instrText></w:r>'))
    paragraph._p.append(parse_xml(f'<w:r {w}><w:fldChar w:fldCharType="separate"/></w:r>'))
    paragraph._p.append(parse_xml(f'<w:r {w}><w:t xml:space="preserve"> (page 3)</w:t></w:r>'))
    paragraph._p.append(parse_xml(f'<w:r {w}><w:fldChar w:fldCharType="end"/></w:r>'))
    path = tmp_path / "tracked.docx"
    document.save(path)
    assert extract(path).text == "Budget grew (page 3)"


def test_a_text_box_follows_the_paragraph_it_is_anchored_in(tmp_path: Path):
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph("Before the figure.")
    anchor = document.add_paragraph("The figure shows the plane.")
    box = parse_xml(
        '<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        'xmlns:v="urn:schemas-microsoft-com:vml"><w:pict><v:shape><v:textbox><w:txbxContent>'
        '<w:p><w:r><w:t>Caption in a box.</w:t></w:r></w:p>'
        '</w:txbxContent></v:textbox></v:shape></w:pict></w:r>')
    anchor._p.append(box)
    document.add_paragraph("After the figure.")
    path = tmp_path / "figure.docx"
    document.save(path)
    assert extract(path).text == ("Before the figure.\n\nThe figure shows the plane.\n\nCaption in a box.\n\n"
                                  "After the figure.")


def test_an_old_doc_file_named_docx_is_refused_as_such(tmp_path: Path):
    path = tmp_path / "minutes.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_CORRUPT
    assert "old Word 97-2003 (.doc)" in info.value.message and "save it as .docx" in info.value.message


def test_a_password_protected_docx_is_refused_as_such(tmp_path: Path):
    # Word stores an encrypted .docx as an OLE compound file with an "EncryptedPackage" stream.
    path = tmp_path / "salaries.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le"))
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_ENCRYPTED
    assert "password-protected" in info.value.message


def test_an_excel_workbook_renamed_docx_says_what_it_is(tmp_path: Path):
    path = tmp_path / "budget.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.spreadsheetml.sheet.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
                   '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>')
    with pytest.raises(IngestError) as info:
        extract(path)
    assert "Excel workbook" in info.value.message


def test_a_zip_that_is_not_a_word_package_is_damaged(tmp_path: Path):
    path = tmp_path / "photos.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "not a document")
    with pytest.raises(IngestError) as info:
        extract(path)
    assert info.value.code == CODE_CORRUPT
    assert "photos.docx" in info.value.message
    assert "old .doc" not in info.value.message


def test_a_document_without_text_says_whether_it_is_empty_or_pictures_only(tmp_path: Path):
    import docx

    empty = tmp_path / "empty.docx"
    docx.Document().save(empty)
    with pytest.raises(IngestError) as info:
        extract(empty)
    assert info.value.code == CODE_NO_TEXT
    assert "the document is empty" in info.value.message and "OCR" not in info.value.message

    pictures = tmp_path / "scan.docx"
    document = docx.Document()
    document.add_picture(str(_one_pixel_png(tmp_path / "pixel.png")))
    document.save(pictures)
    with pytest.raises(IngestError) as info:
        extract(pictures)
    assert "only a picture; if it is a picture of text" in info.value.message and "run OCR first" in info.value.message


def _one_pixel_png(path: Path) -> Path:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
                     + chunk(b"IEND", b""))
    return path

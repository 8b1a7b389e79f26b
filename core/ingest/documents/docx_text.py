"""Word (.docx) text extraction: the whole document, in reading order.

`docx_text(path, data)` returns the text of a Word file as one string plus
warnings. Besides the body (paragraphs and tables, as before) it reads what
python-docx's paragraph API leaves out, because users search for it too:

- text boxes (`w:txbxContent`, inside drawings and VML shapes): each box's
  paragraphs follow the paragraph it is anchored in;
- headers and footers of every section (each distinct one once);
- footnotes and endnotes, numbered in the order the body refers to them, with
  a "[1]" (endnotes "[i]") marker where the body refers to them;
- comments, with the author and the text they are attached to;
- content controls, hyperlinks, inserted (tracked) text, fields' results and
  equations (deleted text and field codes are left out, as Word shows them).

Each kind keeps its own place in the text rather than being spliced into the
body sentences: headers first, then the body, then footnotes, endnotes and
comments, each under a short label line ("Footnotes"), and footers last. The
result is a plain string, so every offset that chunking, highlighting and
attribution compute stays exact.

Blocks (paragraphs, table rows, notes) are joined by a blank line; a table row
is one line with its cells separated by tabs, nested tables after their row.

Strict Open XML files (namespaces under http://purl.oclc.org/ooxml/, written
by Word's "Strict Open XML Document" format) are read like ordinary ones: the
elements are the same, only their namespaces differ. Files that are not Word
documents at all get a reason that says what they are: an old binary .doc, a
password-protected document, an Excel or PowerPoint file renamed, a damaged
download.

The package (zip, content types, relationships) is opened by python-docx's
OPC layer (`docx.opc.package.OpcPackage`); the XML is walked here directly,
because python-docx's document API only knows the Transitional namespace and
skips text boxes, notes, comments and content controls.
"""
from __future__ import annotations

import io
from pathlib import Path

from core.errors import CODE_CORRUPT, CODE_ENCRYPTED, CODE_NO_TEXT, IngestError

# Namespaces: Transitional (what Word writes by default) and Strict.
_W = ("http://schemas.openxmlformats.org/wordprocessingml/2006/main",
      "http://purl.oclc.org/ooxml/wordprocessingml/main")
_M = ("http://schemas.openxmlformats.org/officeDocument/2006/math",
      "http://purl.oclc.org/ooxml/officeDocument/math")
_REL_PREFIXES = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships/",
                 "http://purl.oclc.org/ooxml/officeDocument/relationships/")
_R = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships",
      "http://purl.oclc.org/ooxml/officeDocument/relationships")
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A password-protected .docx is an OLE compound file holding this stream
# (its directory stores names as UTF-16 LE).
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")

# Labels of the parts that follow the body (and lead it, for headers).
HEADER_LABEL = "Header"
FOOTER_LABEL = "Footer"
FOOTNOTES_LABEL = "Footnotes"
ENDNOTES_LABEL = "Endnotes"
COMMENTS_LABEL = "Comments"

# How much of the commented text is quoted with a comment: enough to say
# what it is about without indexing a long passage twice.
_QUOTE_CHARS = 120

# Inline elements whose content Word does not show as text.
_SKIPPED_INLINE = frozenset({"del", "moveFrom", "delText", "instrText", "pPr", "rPr", "sdtPr", "sdtEndPr",
                             "commentReference", "annotationRef", "footnoteRef", "endnoteRef",
                             "separator", "continuationSeparator", "fldData", "object", "sectPr"})


def docx_text(path: Path, data: bytes) -> tuple[str, tuple[str, ...]]:
    """The text of the Word document `data` (read from `path`) and warnings about parts left out.

    Raises `IngestError` (with the reason and what to do) when it is not a
    readable Word document.
    """
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_STREAM in data:
            raise IngestError(
                f"{path} is a password-protected Word document; open it in Word with its password and save "
                "a copy without one (File > Info > Protect Document), then add that copy.",
                code=CODE_ENCRYPTED,
            )
        raise IngestError(
            f"{path} is an old Word 97-2003 (.doc) file with a .docx name; open it in Word or LibreOffice "
            "and save it as .docx (Word Document), then add that file.",
            code=CODE_CORRUPT,
        )
    if not data.startswith(b"PK"):
        raise IngestError(
            f"{path} is not a Word document: it is not a .docx package (a zip file) at all. It may be damaged "
            "or another kind of file renamed; open it in Word or LibreOffice and save it as .docx.",
            code=CODE_CORRUPT,
        )
    main = _main_part(path, data)
    reader = _Reader(path, main)
    try:
        text = reader.read()
    except IngestError:
        raise
    except RecursionError as exc:
        raise IngestError(f"{path} nests tables or text boxes too deeply to be read; open it in Word and "
                          "save it again, or save it as PDF and add that.", code=CODE_CORRUPT) from exc
    return text, tuple(reader.warnings)


def _main_part(path: Path, data: bytes):
    """The main document part, via python-docx's package reader; refusals name what the file is."""
    import docx  # noqa: F401 - registers python-docx's part classes with its package reader
    from docx.opc.package import OpcPackage

    try:
        package = OpcPackage.open(io.BytesIO(data))
    except Exception as exc:  # zipfile, KeyError ([Content_Types].xml missing), lxml syntax errors...
        raise IngestError(
            f"{path} is damaged: its Word package (zip contents) cannot be read ({_short(exc)}). If it was "
            "downloaded or copied, fetch it again; otherwise open it in Word or LibreOffice, which can often "
            "repair it, and save it as .docx.",
            code=CODE_CORRUPT,
        ) from exc
    main = next((rel.target_part for rel in package.rels.values()
                 if not rel.is_external and _rel_name(rel.reltype) == "officeDocument"), None)
    if main is None:
        raise IngestError(
            f"{path} is a zip file but not a Word document (it has no main document part); "
            "check that it is the file you meant, or save it from Word as .docx.",
            code=CODE_CORRUPT,
        )
    content_type = str(getattr(main, "content_type", ""))
    for marker, kind, suffix in (("spreadsheetml", "an Excel workbook", ".xlsx"),
                                 ("presentationml", "a PowerPoint presentation", ".pptx")):
        if marker in content_type:
            raise IngestError(
                f"{path} is {kind} with a .docx name, not a Word document; Sourcelight does not read {suffix} "
                "files: save it as PDF (or its text as .txt) and add that.",
                code=CODE_CORRUPT,
            )
    return main


def _rel_name(reltype: str) -> str:
    """"footnotes" for either namespace's footnotes relationship type ("" for other types)."""
    for prefix in _REL_PREFIXES:
        if reltype.startswith(prefix):
            return reltype[len(prefix):]
    return ""


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _local(tag) -> tuple[str, str]:
    """(namespace, local name) of an element's tag ("" for comments and processing instructions)."""
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


class _Reader:
    """One pass over a Word package; collects blocks in reading order."""

    def __init__(self, path: Path, main):
        self.path = path
        self.main = main
        self.warnings: list[str] = []
        self.w = _W[0]
        self.footnote_numbers: dict[str, int] = {}
        self.endnote_numbers: dict[str, int] = {}
        self.comment_quotes: dict[str, list[str]] = {}  # comment id -> the body text it is attached to
        self._open_comments: list[str] = []

    # -- the package -------------------------------------------------------
    def read(self) -> str:
        root = self._root(self.main, "the document body")
        ns, name = _local(root.tag)
        if ns not in _W or name != "document":
            raise IngestError(
                f"{self.path} is not a Word document: its main part is '{name or root.tag}' "
                f"({ns or 'no namespace'}), not a WordprocessingML document. Open it in the program that made "
                "it and save it as .docx.",
                code=CODE_CORRUPT,
            )
        self.w = ns
        body = root.find(self._w("body"))
        body_blocks = self._blocks(body) if body is not None else []
        headers, footers = self._headers_footers(root)
        sections: list[str] = []
        if headers:
            sections.append(self._labelled(HEADER_LABEL, headers))
        sections.extend(body_blocks)
        for label, kind, numbers, roman in ((FOOTNOTES_LABEL, "footnotes", self.footnote_numbers, False),
                                            (ENDNOTES_LABEL, "endnotes", self.endnote_numbers, True)):
            notes = self._notes(kind, numbers, roman)
            if notes:
                sections.append(self._labelled(label, notes))
        comments = self._comments()
        if comments:
            sections.append(self._labelled(COMMENTS_LABEL, comments))
        if footers:
            sections.append(self._labelled(FOOTER_LABEL, footers))
        text = "\n\n".join(sections)
        if not text.strip():
            raise self._no_text(root)
        return text

    def _no_text(self, root) -> IngestError:
        """Why a document without text has none: empty, or pictures only (then OCR may help)."""

        pictures = sum(1 for el in root.iter() if _local(el.tag)[1] in ("blip", "imagedata"))
        if pictures:
            what = "a picture; if it is a picture" if pictures == 1 else f"{pictures} pictures; if they are pictures"
            return IngestError(
                f"{self.path} contains no text, only {what} of text (a scan), run OCR first (e.g. save it as "
                "PDF and use ocrmypdf) and add the result.", code=CODE_NO_TEXT)
        return IngestError(f"{self.path} contains no text (the document is empty); add some text to it or "
                           "remove it from the list.", code=CODE_NO_TEXT)

    @staticmethod
    def _labelled(label: str, blocks: list[str]) -> str:
        return "\n\n".join([label, *blocks])

    def _root(self, part, what: str):
        element = getattr(part, "element", None)
        if element is not None:
            return element
        from lxml import etree

        # Entities are never resolved and nothing is fetched: a document is untrusted input.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            return etree.fromstring(part.blob, parser)
        except Exception as exc:
            raise _PartError(f"{what} could not be read ({_short(exc)})") from exc

    def _related(self, part, name: str) -> list:
        return [rel.target_part for rel in part.rels.values()
                if not rel.is_external and _rel_name(rel.reltype) == name]

    def _optional_root(self, part, what: str):
        """The root of a part whose loss costs only that part: a warning, not a refusal."""
        try:
            return self._root(part, what)
        except _PartError as exc:
            self.warnings.append(f"{self.path}: the {exc} and {'were' if what.endswith('s') else 'was'} left out.")
            return None

    def _w(self, name: str) -> str:
        return f"{{{self.w}}}{name}"

    def _attr(self, element, name: str) -> str:
        """A w: attribute (w:id, w:type, ...), in this document's namespace."""
        return element.get(self._w(name)) or ""

    # -- headers, footers, notes, comments ---------------------------------
    def _headers_footers(self, root) -> tuple[list[str], list[str]]:
        """Blocks of each distinct header and footer, in section order (first-page, default, even)."""
        rels = self.main.rels
        order = {"first": 0, "default": 1, "even": 2}
        headers: list[str] = []
        footers: list[str] = []
        seen: set[tuple[str, str]] = set()
        for sect in root.iter(self._w("sectPr")):
            refs = []
            for child in sect:
                ns, name = _local(child.tag)
                if ns == self.w and name in ("headerReference", "footerReference"):
                    rid = next((child.get(f"{{{r}}}id") for r in _R if child.get(f"{{{r}}}id")), None)
                    refs.append((name, order.get(self._attr(child, "type"), 1), rid))
            for name, _rank, rid in sorted(refs, key=lambda x: (x[0], x[1])):
                rel = rels.get(rid) if rid else None
                if rel is None or rel.is_external:
                    continue
                what = "header" if name == "headerReference" else "footer"
                part_root = self._optional_root(rel.target_part, what)
                if part_root is None:
                    continue
                blocks = self._blocks(part_root)
                text = "\n\n".join(blocks)
                if blocks and (what, text) not in seen:
                    seen.add((what, text))
                    (headers if what == "header" else footers).extend(blocks)
        return headers, footers

    def _notes(self, kind: str, numbers: dict[str, int], roman: bool) -> list[str]:
        """Footnotes or endnotes as "[n] text" blocks, in the order the body refers to them."""
        parts = self._related(self.main, kind)
        if not parts:
            return []
        root = self._optional_root(parts[0], kind)
        if root is None:
            return []
        singular = kind[:-1]
        bodies: dict[str, list[str]] = {}
        for note in root.iter(self._w(singular)):
            if self._attr(note, "type") in ("separator", "continuationSeparator", "continuationNotice"):
                continue
            bodies[self._attr(note, "id")] = self._blocks(note)
        # Notes nobody refers to (rare; left by editing) still hold text: they follow, numbered on.
        for note_id in bodies:
            numbers.setdefault(note_id, len(numbers) + 1)
        out: list[str] = []
        for note_id, number in sorted(numbers.items(), key=lambda item: item[1]):
            blocks = bodies.get(note_id) or []
            if not blocks:
                continue
            mark = _marker(number, roman)
            out.append(f"{mark} {blocks[0]}")
            out.extend(blocks[1:])
        return out

    def _comments(self) -> list[str]:
        parts = self._related(self.main, "comments")
        if not parts:
            return []
        root = self._optional_root(parts[0], "comments")
        if root is None:
            return []
        out: list[str] = []
        for comment in root.iter(self._w("comment")):
            blocks = self._blocks(comment)
            if not blocks:
                continue
            author = self._attr(comment, "author").strip()
            quote = " ".join("".join(self.comment_quotes.get(self._attr(comment, "id"), [])).split())
            if len(quote) > _QUOTE_CHARS:
                quote = quote[:_QUOTE_CHARS - 1].rstrip() + "\u2026"
            head = "Comment" + (f" by {author}" if author else "") + (f" on \u201c{quote}\u201d" if quote else "")
            out.append(f"{head}: {blocks[0]}")
            out.extend(blocks[1:])
        return out

    # -- block content ------------------------------------------------------
    def _flow(self, container):
        """("p" | "tbl", element) for the paragraphs and tables of a body-like element, in order,
        looking through content controls, custom XML and tracked insertions."""
        for child in container:
            ns, name = _local(child.tag)
            if ns == _MC and name == "AlternateContent":
                branch = _alternate_branch(child)
                if branch is not None:
                    yield from self._flow(branch)
            elif ns != self.w:
                continue
            elif name in ("p", "tbl"):
                yield name, child
            elif name == "sdt":
                content = child.find(self._w("sdtContent"))
                if content is not None:
                    yield from self._flow(content)
            elif name in ("customXml", "ins", "moveTo"):
                yield from self._flow(child)

    def _blocks(self, container) -> list[str]:
        """Paragraphs, table rows and text boxes of a body-like element, in order, empty ones dropped."""
        out: list[str] = []
        for name, element in self._flow(container):
            if name == "p":
                text, boxes = self._paragraph(element)
                if text:
                    out.append(text)
                for box in boxes:
                    out.extend(self._blocks(box))
            else:
                out.extend(self._table_rows(element))
        return out

    def _table_rows(self, table) -> list[str]:
        """One line per row, cells separated by tabs; nested tables (and text boxes) follow their row.

        A merged cell is one `w:tc` in the XML, so its text comes once.
        """
        rows: list[str] = []
        for row in self._children(table, "tr"):
            cells: list[str] = []
            after: list[str] = []
            for cell in self._children(row, "tc"):
                parts: list[str] = []
                for name, element in self._flow(cell):
                    if name == "p":
                        text, boxes = self._paragraph(element)
                        if text:
                            parts.append(" ".join(text.split()))
                        for box in boxes:
                            after.extend(self._blocks(box))
                    else:
                        after.extend(self._table_rows(element))
                cells.append(" ".join(parts))
            line = "\t".join(cells).strip()
            if line:
                rows.append(line)
            rows.extend(after)
        return rows

    def _children(self, element, name: str):
        """Direct children named `name`, looking through content controls and custom XML wrappers."""
        for child in element:
            ns, local = _local(child.tag)
            if ns != self.w:
                continue
            if local == name:
                yield child
            elif local == "sdt":
                content = child.find(self._w("sdtContent"))
                if content is not None:
                    yield from self._children(content, name)
            elif local == "customXml":
                yield from self._children(child, name)

    # -- inline content -----------------------------------------------------
    def _paragraph(self, p) -> tuple[str, list]:
        """(the paragraph's text, its text boxes' `txbxContent` elements in order)."""
        pieces: list[str] = []
        boxes: list = []
        stack = [iter(p)]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            ns, name = _local(child.tag)
            if ns == _MC and name == "AlternateContent":
                branch = _alternate_branch(child)
                if branch is not None:
                    stack.append(iter(branch))
                continue
            if ns in _M:
                if name == "t":
                    self._emit(pieces, child.text or "")
                else:
                    stack.append(iter(child))
                continue
            if ns != self.w:
                # Drawings and VML shapes (w:drawing > wp:anchor > ... > wps:txbx, w:pict > v:shape >
                # v:textbox) hold text boxes deep inside foreign elements.
                boxes.extend(self._text_boxes(child))
                continue
            if name in _SKIPPED_INLINE:
                continue
            if name == "t":
                self._emit(pieces, child.text or "")
            elif name in ("tab", "ptab"):
                self._emit(pieces, "\t")
            elif name in ("br", "cr"):
                self._emit(pieces, "\n")
            elif name == "noBreakHyphen":
                self._emit(pieces, "-")
            elif name == "footnoteReference":
                self._emit(pieces, _marker(self._number(self.footnote_numbers, child), False))
            elif name == "endnoteReference":
                self._emit(pieces, _marker(self._number(self.endnote_numbers, child), True))
            elif name == "commentRangeStart":
                cid = self._attr(child, "id")
                self.comment_quotes.setdefault(cid, [])
                self._open_comments.append(cid)
            elif name == "commentRangeEnd":
                cid = self._attr(child, "id")
                if cid in self._open_comments:
                    self._open_comments.remove(cid)
            elif name == "txbxContent":
                boxes.append(child)
            elif name in ("drawing", "pict"):
                boxes.extend(self._text_boxes(child))
            else:
                # Runs, hyperlinks, inserted text, smart tags, content controls, simple fields...
                stack.append(iter(child))
        text = "".join(pieces).replace("\r\n", "\n").replace("\r", "\n").strip()
        for cid in self._open_comments:  # a comment's range may span paragraphs
            if sum(map(len, self.comment_quotes[cid])) <= _QUOTE_CHARS:
                self.comment_quotes[cid].append(" ")
        return text, boxes

    def _emit(self, pieces: list[str], text: str) -> None:
        pieces.append(text)
        for cid in self._open_comments:
            # Only the start is quoted: a range never closed must not copy the rest of the document.
            quote = self.comment_quotes[cid]
            if sum(map(len, quote)) <= _QUOTE_CHARS:
                quote.append(text)

    def _number(self, numbers: dict[str, int], reference) -> int:
        note_id = self._attr(reference, "id")
        return numbers.setdefault(note_id, len(numbers) + 1)

    def _text_boxes(self, element) -> list:
        """The outermost `w:txbxContent` elements under `element` (nested ones are read with their box),
        taking one branch of each mc:AlternateContent (both branches hold the same box)."""
        found: list = []
        stack = [iter([element])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            ns, name = _local(child.tag)
            if ns == _MC and name == "AlternateContent":
                branch = _alternate_branch(child)
                if branch is not None:
                    stack.append(iter(branch))
            elif ns == self.w and name == "txbxContent":
                found.append(child)
            elif ns:
                stack.append(iter(child))
        return found


class _PartError(Exception):
    """A part of the package that could not be parsed."""


def _alternate_branch(element):
    """The branch of an mc:AlternateContent to read: the first mc:Choice, else the mc:Fallback.

    Word writes a text box twice (a DrawingML shape in the Choice, a VML copy
    in the Fallback); reading one branch keeps its text from appearing twice.
    """
    fallback = None
    for child in element:
        ns, name = _local(child.tag)
        if ns != _MC:
            continue
        if name == "Choice":
            return child
        if name == "Fallback" and fallback is None:
            fallback = child
    return fallback


def _marker(number: int, roman: bool) -> str:
    """"[3]" for footnote 3; endnotes use lower-case Roman numerals ("[iii]"), as Word numbers them."""
    return f"[{_roman(number) if roman else number}]"


def _roman(number: int) -> str:
    out = []
    for value, letters in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
                           (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while number >= value:
            out.append(letters)
            number -= value
    return "".join(out)

"""HTML: the text a browser would show, paragraphs and lines kept apart, in the declared (or sniffed) encoding."""
from __future__ import annotations

import re
from pathlib import Path

from core.ingest.documents.plain import check_not_binary, normalise_newlines
from core.ingest.documents.problems import binary

# Elements that start a new paragraph or line when a browser renders them.
_HTML_PARAGRAPHS = frozenset(
    "address article aside blockquote caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr main nav ol p pre section summary table ul".split()
)
_HTML_LINES = frozenset("li tr option legend".split())
_HTML_CELLS = frozenset("td th".split())
_HTML_PREFORMATTED = frozenset({"pre", "textarea", "listing", "plaintext", "xmp"})
# Not "head": html.parser builds the tree as written, so with a missing </head>
# the whole body would sit inside it. The title is taken out and put first.
_HTML_DROPPED = frozenset({"script", "style", "noscript", "template", "title"})
_HTML_WHITESPACE = re.compile(r"[ \t\n\r\f]+")
# Preformatted text keeps its spaces and line breaks; they are swapped for
# private-use characters while the page's other whitespace is tidied, then restored.
_PRE_PROTECT = str.maketrans({" ": "\ue000", "\t": "\ue001", "\n": "\ue002"})
_PRE_RESTORE = str.maketrans({"\ue000": " ", "\ue001": "\t", "\ue002": "\n"})


def html_text(path: Path, data: bytes) -> str:
    from bs4 import BeautifulSoup

    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in data:
        raise binary(path)
    # Given bytes, BeautifulSoup honours a BOM or <meta charset> before guessing.
    # Its guesser can take a short UTF-8 page for a CJK encoding ("Ünïcödé" read
    # as EUC-KR), so undeclared bytes that are valid UTF-8 are read as UTF-8.
    soup = BeautifulSoup(data, "html.parser", from_encoding=_undeclared_utf8(data))
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    text = _render_html(soup)
    check_not_binary(path, text)
    lines = [re.sub(r" {2,}", " ", line).strip(" \t") for line in text.split("\n")]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n").translate(_PRE_RESTORE)
    if title and body:
        return f"{title}\n\n{body}"
    return title or body


def _undeclared_utf8(data: bytes) -> str | None:
    """"utf-8" when the page declares no encoding (no BOM, no <meta charset>) and is valid UTF-8."""
    from bs4.dammit import EncodingDetector

    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return None
    if EncodingDetector.find_declared_encoding(data, is_html=True):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "utf-8"


def _render_html(soup) -> str:
    """The visible text, with line breaks where a browser would break blocks.

    One pass over the tree with an explicit stack: editing the soup instead
    (insert_before/replace_with) looks each node up in its parent's children,
    which measured quadratic (12 s for a 4,000-section page), and deep nesting
    from unclosed tags would overflow a recursive walk.
    """
    from bs4 import NavigableString, Tag

    parts: list[str] = []
    stack = [iter(soup.contents)]
    closers: list[tuple[str, bool]] = [("", False)]  # emitted when a level ends; was it preformatted
    preformatted = 0
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            closer, was_pre = closers.pop()
            parts.append(closer)
            preformatted -= was_pre
        elif isinstance(node, Tag):
            name = node.name
            if name in _HTML_DROPPED:
                continue
            if name == "br":
                parts.append("\n")
                continue
            if name in _HTML_PARAGRAPHS:
                parts.append("\n\n")
                closer = "\n\n"
            elif name in _HTML_LINES:
                parts.append("\n")
                closer = "\n"
            else:
                closer = "\t" if name in _HTML_CELLS else ""
            is_pre = name in _HTML_PREFORMATTED
            preformatted += is_pre
            stack.append(iter(node.contents))
            closers.append((closer, is_pre))
        elif type(node) is NavigableString:
            # Exact type: subclasses are comments, doctypes, CDATA and the
            # script/style strings, none of which a browser shows.
            if preformatted:
                parts.append(normalise_newlines(node).translate(_PRE_PROTECT))
            else:
                parts.append(_HTML_WHITESPACE.sub(" ", node))
    return "".join(parts)


# -- errors -----------------------------------------------------------------

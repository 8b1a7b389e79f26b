"""Offsets between Python strings, Qt document positions and rendered Markdown.

The engine reports offsets as Python string indices (code points): an answer
sentence's `start`/`end` index the answer text, a support span's index the
chunk text. Qt counts positions in UTF-16 code units, so every character
outside the Basic Multilingual Plane (emoji, some CJK) shifts the two apart;
`Utf16Index` converts. Rendering an answer as Markdown removes its markup
(`**`, list bullets, code fences...), so `markdown_position_map` aligns the
answer source with the text Qt rendered and maps every source offset to the
document position of the same character. Both are Qt-free and unit-tested.
`display_safe` replaces the characters Qt would swallow, or (a carriage
return) merge with the next one, one-for-one, so offsets survive display.
"""
from __future__ import annotations

import bisect
import re

# Characters QTextDocument treats specially when inserted as text: U+FDD0/U+FDD1
# open and close frames, NUL and other C0 controls are invisible. Untrusted
# text is shown with each of them replaced by U+FFFD, which keeps every offset.
_UNSAFE = {c: 0xFFFD for c in (*range(0, 9), 11, 12, *range(14, 32), 0x7F, 0xFDD0, 0xFDD1)}
# A carriage return: QTextCursor.insertText and setPlainText turn "\r\n" into
# ONE block separator, so every later position would be one short of the
# engine's offsets (which count both characters), and a "\r" that ends one
# streamed batch and a "\n" that starts the next would make an empty paragraph.
# A space keeps one character per offset and renders as the model meant: before
# "\n" it is invisible trailing space (in Markdown too, where the "\n" still
# ends the line; at worst a line already ending in one space becomes a hard
# break), and a lone "\r" (old Mac line end) separates words like a space
# rather than gluing them together as a zero-width character would. A
# non-space stand-in would also stop Markdown from seeing fences, rules and
# table rows as whole lines.
_UNSAFE[0x0D] = 0x20


def display_safe(text: str) -> str:
    """`text` with characters Qt would swallow or merge replaced one-for-one (offsets unchanged)."""
    return text.translate(_UNSAFE)


# Characters outside the Basic Multilingual Plane: two UTF-16 code units each.
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


class Utf16Index:
    """Maps code-point indices of one string to UTF-16 positions and back, in O(log n)."""

    def __init__(self, text: str = ""):
        self._wide: list[int] = []  # code-point indices of characters that take two UTF-16 units
        self._length = 0
        self.extend(text)

    def extend(self, text: str) -> None:
        """Account for `text` appended to the string."""
        if not text.isascii():
            base = self._length
            # A regex scan, not a Python loop per character: a rendered 25,000-character
            # answer (never ASCII: its paragraphs end in U+2029) took 13 ms that way.
            self._wide.extend(base + m.start() for m in _ASTRAL.finditer(text))
        self._length += len(text)

    def __len__(self) -> int:
        return self._length

    def to_utf16(self, index: int) -> int:
        return index + bisect.bisect_left(self._wide, index)

    def from_utf16(self, position: int) -> int:
        """The code-point index of the character at (or containing) UTF-16 `position`."""
        lo, hi = 0, self._length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.to_utf16(mid) <= position:
                lo = mid
            else:
                hi = mid - 1
        return lo


# Whitespace the Markdown renderer may turn into one another: a soft line
# break becomes a space, a paragraph break U+2029, a hard break U+2028.
_SPACES = frozenset(" \t\n\r\u2028\u2029\xa0")
# Characters a rendered document holds that no source character spells: frame
# boundaries (tables, code blocks) and object replacement (images).
_STRUCTURAL = frozenset("\ufdd0\ufdd1\ufffc")
_STRUCTURAL_RE = re.compile("[\ufdd0\ufdd1\ufffc]")
# Run lengths `markdown_position_map` tries to pair at once, longest first.
_RUNS = (256, 32, 8)

# Block-level markup at the start of a source line that never reaches the
# rendered text: quotes, headings, list bullets and numbers, task boxes.
_LINE_PREFIX = re.compile(
    r"[ \t]{0,3}(?:>[ \t]?)*(?:#{1,6}[ \t]+|(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?)?")
# Whole lines that are markup: rules, setext underlines, table delimiter rows
# (trailing blanks allowed: `display_safe` shows the "\r" of a CRLF as a space).
_MARKUP_LINE = re.compile(
    r"[ \t]{0,3}(?:(?:[-*_][ \t]*){3,}|=+[ \t]*|\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*)$")
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
# The destination part of an inline link or image: "](url)" or "](url "title")".
_LINK_TAIL = re.compile(r"\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'))?\)")


def _markup_mask(source: str) -> list[bool]:
    """True for source characters that are certainly markup (never rendered)."""
    mask = [False] * len(source)
    pos = 0
    fence: str | None = None
    for line in source.split("\n"):
        end = pos + len(line)
        f = _FENCE.match(line)
        if fence is not None:  # inside a fenced code block everything is literal
            if f and f.group(1)[0] == fence[0] and len(f.group(1)) >= len(fence) and not line[f.end():].strip():
                mask[pos:end] = [True] * (end - pos)
                fence = None
        elif f:
            mask[pos:end] = [True] * (end - pos)
            fence = f.group(1)
        elif _MARKUP_LINE.match(line):
            mask[pos:end] = [True] * (end - pos)
        else:
            m = _LINE_PREFIX.match(line)
            if m and m.group(0).strip():
                mask[pos:pos + m.end()] = [True] * m.end()
            for link in _LINK_TAIL.finditer(line):
                mask[pos + link.start():pos + link.end()] = [True] * (link.end() - link.start())
        pos = end + 1
    return mask


def markdown_position_map(source: str, rendered: str) -> list[int] | None:
    """Map every offset of `source` (0..len) to a position in `rendered`, or None if they do not align.

    `rendered` is the text Qt produced from `source` (QTextDocument.toRawText()
    after setMarkdown), indexed in code points. Source and rendered text are
    walked together: equal characters (any whitespace matches any whitespace)
    are paired; source characters left over are markup and map to the position
    of the next rendered character; rendered-only characters may only be
    whitespace or frame/object marks. If anything else is left over the texts
    did not align (an entity or a construct these rules do not know), and the
    caller shows the answer as plain text, where offsets are exact.
    """
    mask = _markup_mask(source)
    n, m = len(source), len(rendered)
    mapping = [0] * (n + 1)
    i = j = 0
    while i < n:
        if not mask[i]:
            while j < m and rendered[j] in _STRUCTURAL:
                j += 1
            # Most of an answer is prose rendered as written: pair a whole run of
            # equal characters at once (what the walk below would do one by one).
            # Per character, a 25,000-character answer took 24 ms of the event loop.
            for size in _RUNS:
                if (source.startswith(rendered[j:j + size], i) and i + size <= n and j + size <= m
                        and not any(mask[i:i + size]) and not _STRUCTURAL_RE.search(rendered, j, j + size)):
                    mapping[i:i + size] = range(j, j + size)
                    i += size
                    j += size
                    break
            else:
                size = 0
            if size:
                continue
            if j < m:
                ch, r = source[i], rendered[j]
                if ch == r or (ch in _SPACES and r in _SPACES):
                    mapping[i] = j
                    i += 1
                    j += 1
                    continue
                if r in _SPACES and ch.isalnum():
                    # The renderer put a separator here that the source lacks
                    # (between blocks); skip it if the character follows.
                    k = j
                    while k < m and (rendered[k] in _SPACES or rendered[k] in _STRUCTURAL):
                        k += 1
                    if k < m and rendered[k] == ch:
                        mapping[i] = k
                        i += 1
                        j = k + 1
                        continue
        mapping[i] = j
        i += 1
    mapping[n] = j
    if any(c not in _SPACES and c not in _STRUCTURAL for c in rendered[j:]):
        return None
    return mapping


def sentence_range(mapping: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """The rendered `[start, end)` of the source range `[start, end)`.

    The end is taken just after the last rendered character of the range, so
    markup closing a sentence (`**`, a fence) is not highlighted. A source
    character was rendered exactly when the map advances after it.
    """
    if mapping is None:
        return start, end
    k = end
    while k > start and mapping[k - 1] == mapping[k]:
        k -= 1
    a = mapping[start]
    # Leading markup maps to the next rendered character already.
    b = mapping[k - 1] + 1 if k > start else a
    return a, max(a, b)


def plain_tooltip(text: str) -> str:
    """`text` made safe to use as a tooltip: Qt must show it as typed, never as HTML.

    Qt renders a tooltip as rich text when `Qt.mightBeRichText` sees a tag
    (or "&lt;") before the first line break, and file names, server messages
    and passage text can hold such things. A WORD JOINER (U+2060, zero width)
    after every "<" and "&" breaks the guess without changing what is shown.
    """
    return text.replace("<", "<\u2060").replace("&", "&\u2060")

"""Unicode clean-up of extracted text (ligatures, compatibility forms) and the check for garbled text."""
from __future__ import annotations

import unicodedata
from functools import lru_cache

# Compatibility characters are mapped to what they stand for (NFKC) where that
# loses nothing a reader sees: ligatures (U+FB00-FB06), full-width letters and
# digits, math-alphabet letters, Arabic presentation forms, vertical and small
# forms, squared abbreviations. Kept as they are: superscripts, subscripts and
# fractions ("m\u00b2" must not become "m2"), no-break spaces, circled
# numbers, full-width punctuation (a Japanese sentence ends in U+3002/U+FF01),
# the ellipsis, and spacing accents (NFKC turns U+00A8 into a space and a
# combining mark).
_KEEP_TAGS = frozenset({"<super>", "<sub>", "<fraction>", "<noBreak>", "<circle>"})
_KEEP_CHARS = frozenset("\u2026\u2025\u3000")
_COMPAT_RANGES = ((0x00A0, 0x3400), (0xF900, 0x10000), (0x1D400, 0x1D800))


@lru_cache(maxsize=1)
def _compat_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for first, last in _COMPAT_RANGES:
        for cp in range(first, last):
            ch = chr(cp)
            decomposition = unicodedata.decomposition(ch)
            if not decomposition.startswith("<") or ch in _KEEP_CHARS:
                continue
            tag = decomposition.split(">", 1)[0] + ">"
            if tag in _KEEP_TAGS:
                continue
            target = unicodedata.normalize("NFKC", ch)
            if target == ch or target[:1].isspace():
                continue
            if tag == "<wide>" and not target.isalnum():
                continue
            table[cp] = target
    return table


def clean_text(text: str) -> str:
    """`text` with compatibility characters mapped (see `_compat_table`) and composed (NFC).

    Applied to every extracted page before anything indexes it: the stored
    text is what offsets point into, so it must already be the clean one.
    """
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text.translate(_compat_table()))


# Thresholds of `text_problem`, set on the committed corpus and the shared PDF
# test sets: every page flagged there is garbled when compared with poppler's
# text, and none of the clean pages (English, German, Polish, Arabic, Japanese,
# multilingual) comes near them.
_MIN_CHECKED_CHARS = 40
_CHECKED_CHARS = 6000
_MAX_BAD_SHARE = 0.02
_MAX_SPACED_SHARE = 0.5
_MAX_SCRIPT_SWITCH_SHARE = 0.2
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "CJK": "CJK", "HANGUL": "HANGUL",
                  "HALFWIDTH": "CJK", "FULLWIDTH": "LATIN", "IDEOGRAPHIC": "CJK"}


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0]
    return _SCRIPT_GROUPS.get(first, first)


def text_problem(text: str) -> str | None:
    """Why `text` (a page) looks garbled, or None if it looks like text.

    Three signs, each of which clean text of any script stays far from:
    unreadable characters (U+FFFD, unassigned or private-use code points,
    control characters); letters spaced out ("A m e r i c a n", from a PDF that
    places every glyph on its own); and letters that switch script inside a
    word (Greek, Syriac and Bengali in one "word" is a font without a usable
    encoding, read through the wrong table).
    """
    # A page's first few thousand characters tell; the cost stays bounded on huge pages.
    text = text[:_CHECKED_CHARS]
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < _MIN_CHECKED_CHARS:
        return None
    bad = sum(1 for ch in visible if ch == "\ufffd" or unicodedata.category(ch) in ("Cn", "Co", "Cc"))
    if bad > _MAX_BAD_SHARE * len(visible):
        return "unreadable characters"
    tokens = text.split()
    letters_only = [t for t in tokens if t.isalpha()]
    if len(letters_only) >= 20 and sum(len(t) == 1 for t in letters_only) > _MAX_SPACED_SHARE * len(letters_only):
        return "letters spaced out"
    pairs = switches = 0
    previous = ""
    for ch in text:
        if not ch.isalpha():
            previous = ""
            continue
        if unicodedata.category(ch) == "Mn":
            continue  # a combining mark belongs to the letter before it
        script = _script(ch)
        if previous:
            pairs += 1
            switches += script != previous
        previous = script
    if pairs >= _MIN_CHECKED_CHARS and switches > _MAX_SCRIPT_SWITCH_SHARE * pairs:
        return "characters of different scripts mixed inside words"
    return None

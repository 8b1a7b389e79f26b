"""Light text normalisation for lexical attribution evidence.

Lexical evidence (BM25, claim-word recall, shared numbers and names) matched or
beat MiniLM alone on the dev splits, so its tokens matter. Everything here is
pure Python with no model or download:

- `content_terms`: lower-cased words minus a short stop list, through a light
  suffix stripper (`stem`). A full Porter/Snowball stemmer would need a new
  dependency (PyStemmer or nltk); inflection-level stripping gets the matches
  that matter here ("founded"/"founding"/"founder" -> "found", British and
  American "-ise"/"-ize") without merging derivations ("national"/"nation").
- `numbers`: numeric values ("5,669" -> "5669", "12.0" -> "12", "twelve" ->
  "12"), so "in 1991" and "1991" agree and "in 1992" can count as a mismatch.
  "hundred" is not a number word: "eighteen hundred square feet" matched a
  claim's "100 countries" on WiCE dev.
- `names`: capitalised words that are not at the start of the text, the usual
  cheap proxy for named entities.
- `parse_citations` / `strip_citations`: the model's "[2]" markers.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# A short, conservative English stop list: function words only, so that content
# words such as "first", "only" or "never" (which often decide support) count.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me
more most my myself nor of off on once or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to
too under until up very was we were what when where which while who whom why will with would you
your yours yourself yourselves s t d ll m re ve y
per via upon within without among amongst onto toward towards whose whether however therefore thus
""".split())

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\w)")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*[A-Za-z0-9]|\b[A-Z]\b")

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
}

# Inflectional endings only (a Porter "step 1" plus -ly/-er/-ment): enough to
# match "founded"/"founding"/"founder" and "studies"/"studied" without the
# over-merging of full derivational stemming ("national" -> "nation").
_BRITISH = (("isation", "ization"), ("ising", "izing"), ("ised", "ized"), ("ises", "izes"), ("ise", "ize"))
_ENDINGS = ("ingly", "edly", "ments", "ment", "ing", "ers", "ed", "er", "ly")
_KEEP = frozenset("news series species always perhaps various lens ones".split())


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Strip common English inflections from a lower-cased word."""
    if len(word) <= 3 or not word.isalpha() or word in _KEEP:
        return word
    for suffix, repl in _BRITISH:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)] + repl
            break
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ied") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in _ENDINGS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            # "stopped" -> "stopp" -> "stop"
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]
            break
    # "organize"/"organized" -> "organiz"; "state"/"stated" -> "stat".
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def normalise(text: str) -> str:
    """Unicode compatibility form with typographic quotes and dashes made plain."""
    text = unicodedata.normalize("NFKC", text)
    return (text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
            .replace("–", "-").replace("—", "-"))


def words(text: str) -> list[str]:
    """Lower-cased word tokens (numbers included)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(normalise(text))]


def content_terms(text: str) -> list[str]:
    """Stemmed content words of `text`, in order, with repeats."""
    out = []
    for w in words(text):
        if "'" in w:
            w = w.split("'", 1)[0]
        if w in STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        out.append(_NUMBER_WORDS.get(w, None) or stem(w))
    return out


def numbers(text: str) -> set[str]:
    """Numeric values in `text`, canonicalised ("1,200" -> "1200", "3.50" -> "3.5")."""
    out = set()
    for m in _NUMBER.finditer(normalise(text)):
        whole = m.group(1).replace(",", "").lstrip("0") or "0"
        frac = (m.group(2) or "").rstrip("0")
        out.add(f"{whole}.{frac}" if frac else whole)
    for w in words(text):
        if w in _NUMBER_WORDS and w != "one":
            # "one" is too often not a count ("one of the", "the one who").
            out.add(_NUMBER_WORDS[w])
    return out


def names(text: str) -> set[str]:
    """Stems of capitalised words that do not open a sentence (a cheap named-entity proxy)."""
    text = normalise(text)
    out = set()
    for m in _CAPITALISED.finditer(text):
        before = text[max(0, m.start() - 3):m.start()].rstrip(" \"'(")
        if m.start() == 0 or not before or before[-1] in ".!?:\n":
            continue
        w = m.group(0).lower().split("'", 1)[0]
        if w in STOPWORDS or len(w) < 2:
            continue
        out.add(stem(w))
    return out


# Citation markers as models write them: "[2]", "[1, 3]", "[1-3]", "[1][2]",
# "【2】". Markdown links ("[text](url)") and non-numeric brackets ("[a]",
# "[citation needed]") are left alone.
_CITATION = re.compile(r"[\[【]\s*(\d{1,3}(?:\s*(?:[,;–-]|and)\s*\d{1,3})*)\s*[\]】](?!\()")


def parse_citations(text: str) -> tuple[int, ...]:
    """Source numbers cited by markers in `text`, in order of first appearance, without repeats."""
    seen: list[int] = []
    for m in _CITATION.finditer(text):
        for part in re.split(r"\s*(?:[,;]|and)\s*", m.group(1)):
            rng = re.split(r"\s*[–-]\s*", part)
            if len(rng) == 2 and rng[0].isdigit() and rng[1].isdigit() and 0 <= int(rng[1]) - int(rng[0]) <= 20:
                values = range(int(rng[0]), int(rng[1]) + 1)
            else:
                values = [int(p) for p in rng if p.isdigit()]
            for v in values:
                if v not in seen:
                    seen.append(v)
    return tuple(seen)


def strip_citations(text: str) -> str:
    """`text` without citation markers (and without the space left before them)."""
    out = _CITATION.sub("", text)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out)
    return re.sub(r"[ \t]{2,}", " ", out).strip()

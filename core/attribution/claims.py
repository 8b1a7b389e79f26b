"""Which answer sentences are claims: a sentence that asserts nothing checkable is not flagged.

Answers carry sentences that say nothing about the world: talk about the
sources or the task ("Based on the provided passages, here is what I found:"),
"not found" refusals ("I could not find this in the documents."), questions,
headings, list lead-ins, greetings and sign-offs. Checking them against the
sources can only go wrong: nothing supports "Here is a summary:", so it was
flagged, and a reader who sees red on harmless sentences learns to ignore red.

`claim_kind` tells the two apart with rules over the sentence's form and its
opening and closing words, because the cases are few and regular, and a rule
is cheap (microseconds, live on every sentence) and explainable. A meta
opening followed by real content is still a claim ("According to the
documents, the warranty lasts two years." asserts the warranty) and is checked
as one. Precision and recall on a hand-labelled set of answer sentences
(`tests/core/data/claim_kinds.jsonl`) are printed by
`python3 -m core.eval.claim_kinds`.
"""
from __future__ import annotations

import re

from core.attribution.text import strip_citations

CLAIM = "claim"
NOT_A_CLAIM = "not_a_claim"
KINDS = (CLAIM, NOT_A_CLAIM)

# Whole-sentence patterns (matched on the lower-cased sentence without markers or Markdown).
_META_WORDS = (r"(?:provided |given |available |retrieved |supplied |above |following |these |the |your |my |"
               r"numbered )*(?:passages?|documents?|sources?|context|excerpts?|texts?|information|files?|"
               r"materials?|search results|results|notes|snippets?|chunks?|data)")
_REFUSAL = re.compile(
    r"^(?:i'm sorry|i am sorry|sorry|unfortunately|i apologi[sz]e)?[, ]*"
    r"(?:i (?:could not|couldn't|cannot|can't|can not|was unable to|am unable to|am not able to|"
    r"did not|didn't|do not|don't) (?:find|locate|see|answer|determine|tell|provide|know|have|access)|"
    r"i don't know|i do not know|i'm not sure|i am not sure|"
    r"(?:the |these |this )?" + _META_WORDS + r" (?:do|does|did) not (?:\w+ )?(?:mention|contain|say|provide|"
    r"include|specify|state|discuss|cover|address|describe|give|have|offer|explain)|"
    r"(?:there is|there's|there are) no (?:\w+ )?(?:information|mention|details?|data|evidence|answer)|"
    r"no (?:\w+ )?(?:information|mention|details?) (?:is|was|were|are)?|"
    r"(?:this|that|it) (?:is|was) not (?:mentioned|covered|specified|stated|discussed|addressed))")
_GREETING = re.compile(
    r"^(?:hi|hello|hey|greetings|sure|certainly|of course|absolutely|okay|ok|great question|good question|"
    r"thanks|thank you|you're welcome|you are welcome|glad to help|happy to help|i hope (?:this|that) helps|"
    r"hope (?:this|that) helps|let me know|feel free|good luck|please let me know|if you have any (?:other|more|"
    r"further) questions|i'd be happy to|i would be happy to|i'll be happy to)\b")
_TASK_TALK = re.compile(
    r"^(?:here(?:'s| is| are)|below (?:is|are)|the following (?:is|are)|let me|let's|i'll|i will|"
    r"to answer (?:your|the|this) question|"
    r"as an ai|as a language model|you asked|your question|the question (?:asks|is about)|"
    r"i (?:can|will|would|'d) (?:summari[sz]e|explain|answer|help|describe|outline|list|walk|provide|give|"
    r"offer|share)|i(?:'m| am) glad|i (?:have |'ve )?(?:searched|looked|checked|reviewed|read|gathered)|"
    r"(?:that|this|it)(?:'s| is) (?:a|an) (?:\w+ )?question)\b")
# "... is not mentioned in the passages" wherever it stands in the sentence.
_ABOUT_SOURCES = re.compile(r"\b(?:not|n't|never) (?:\w+ )?(?:mentioned|covered|provided|present|found|included|given|"
                            r"addressed|discussed|specified|stated|detailed|described|explained|listed|available|"
                            r"clear|known) (?:in|by|from) (?:the |these |any )?" + _META_WORDS)
# A line of code or a shell command (an answer's code block, split into
# "sentences"): mostly symbols and tokens that are not words. It asserts nothing
# a passage could support sentence by sentence; the prose around it does.
_CODE_TOKEN = re.compile(r"^(?:[-/.~$#`|&<>=]|\w+[/=.(]|--)")
_CODE_MARK = re.compile(r"```|\s(?:&&|\|\||\||>|<|=)\s|(?:^|\s)(?:sudo|\$|#|--?\w+=)")


def _looks_like_code(body: str) -> bool:
    words = body.split()
    if len(words) < 2 or not _CODE_MARK.search(body):
        return False
    if re.match(r"(?:```\w*\s*)?(?:sudo|\$|#)\s", body):  # a shell prompt or sudo opens a command line
        return True
    codeish = sum(1 for w in words if _CODE_TOKEN.match(w) or not w.strip(",.;:").isalpha())
    return codeish >= 0.5 * len(words)
# Openings that only point at the sources; what follows them decides.
_META_LEAD = re.compile(
    r"^(?:(?:based|relying|drawing) on|according to|from|per|as (?:stated|described|mentioned|noted|shown|"
    r"explained) in|in|as|the)\s+" + _META_WORDS + r"(?:\s*\[[\d,\s-]+\])?(?:\s+(?:you )?(?:provided|given|"
    r"above|shared))?\s*(?:,|:|\bit (?:is|seems|appears) that\b)\s*")
# A lead-in that the splitter closed at the first list number ("... as follows: 1.").
_DANGLING_ITEM = re.compile(r":\s*\d{1,2}[.)]?$")
_HEADING_MD = re.compile(r"^\s*(?:#{1,6}\s|\*\*[^*]+\*\*:?\s*$|__[^_]+__:?\s*$)")
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_VERBISH = re.compile(r"\b(?:is|are|was|were|be|been|has|have|had|do|does|did|can|could|will|would|should|may|"
                      r"might|must|\w{3,}ed)\b")


# A lead-in is a short pointer at what follows ("Follow these steps:", "It can read these types:").
# A sentence that ends in a colon after a long statement or a clause break asserts
# that statement ("You will see two options - one is set to English; the other ...:").
_LEAD_IN_MAX_WORDS = 24


# A lead-in without its colon: "There are several ways to cater for mixed abilities." The
# ways follow, one sentence each; this one only announces them.
_ANNOUNCES_LIST = re.compile(
    r"^there (?:are|is) (?:several|many|a few|a couple of|some|various|a number of|multiple|numerous|two|three|"
    r"four|five) (?:\w+ ){0,2}(?:ways|steps|options|methods|strategies|approaches|scenarios|possibilities|tips|"
    r"things|factors|reasons|aspects|considerations|types|kinds)\b")
_ANNOUNCE_MAX_WORDS = 16
# A short piece of an answer cut off mid-sentence (the token limit) ends in a word that
# cannot end a statement: "The document itself is". What it would have said is unknown; a
# long cut-off sentence has already asserted something and stays a claim.
_DANGLING_WORD = re.compile(r"\b(?:the|a|an|is|are|was|were|be|of|to|in|on|for|with|and|or|but|that|which|by|"
                            r"from|as|at|its|their|this|these|can|will|would|should|has|have|had)$")
_CUT_OFF_MAX_WORDS = 8


# Words that hand over to a list whatever precedes them: "..., the government can implement a
# variety of measures, including: 1." announces the measures however long the sentence is.
_LIST_HANDOVER = re.compile(r"\b(?:including|such as|as follows|the following(?: \w+){0,2})\s*:\s*(?:\d{1,2}[.)]?)?$")


def _asserts_before_colon(body: str) -> bool:
    if _LIST_HANDOVER.search(body.lower().rstrip()):
        return False
    return ";" in body or len(body.split()) > _LEAD_IN_MAX_WORDS


def _plain(text: str) -> str:
    text = strip_citations(text).strip()
    text = re.sub(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", "", text)  # a list bullet or number
    text = text.replace("**", "").replace("__", "").replace("`", "")
    return re.sub(r"\s+", " ", text).strip().strip("\"'“”")


# Discourse openings that assert nothing themselves ("In summary, prices rose." asserts the rise).
_DISCOURSE_LEAD = re.compile(r"^(?:in summary|in short|in conclusion|to summari[sz]e|to conclude|overall|"
                             r"in addition|additionally|also|however|furthermore|moreover|finally|first|"
                             r"firstly|second|secondly|third|lastly|for example|for instance)\s*,\s*")


def claim_body(text: str) -> str:
    """`text` without a leading "Based on the provided documents," (what is left is what it asserts)."""
    plain = _plain(text)
    for lead in (_DISCOURSE_LEAD, _META_LEAD, _DISCOURSE_LEAD):
        m = lead.match(plain.lower())
        if m:
            plain = plain[m.end():].strip()
            plain = plain[:1].upper() + plain[1:]
    return plain


def claim_kind(text: str) -> str:
    """`CLAIM` when `text` asserts something the sources could support, else `NOT_A_CLAIM`."""
    if _HEADING_MD.match(text.strip()):
        return NOT_A_CLAIM
    body = claim_body(text)
    if not _LETTERS.search(body):
        return NOT_A_CLAIM
    low = body.lower().rstrip()
    if low.endswith("?"):
        return NOT_A_CLAIM
    if (low.endswith(":") or _DANGLING_ITEM.search(low)) and not _asserts_before_colon(body):
        return NOT_A_CLAIM  # a list lead-in or a label; the items that follow are the claims
    if _TASK_TALK.match(low) and ":" in body:
        # "Here is a summary: - Overfishing is a major threat ..." (a lead-in the
        # splitter joined to its first item): the item decides.
        tail = body.split(":", 1)[1].strip(" -*")
        if len(tail.split()) >= 6:
            return claim_kind(tail)
    if _REFUSAL.match(low) or _GREETING.match(low) or _TASK_TALK.match(low) or _ABOUT_SOURCES.search(low):
        return NOT_A_CLAIM
    if _looks_like_code(strip_citations(text)):
        return NOT_A_CLAIM
    words = low.split()
    if _ANNOUNCES_LIST.match(low) and len(words) <= _ANNOUNCE_MAX_WORDS:
        return NOT_A_CLAIM
    if len(words) <= _CUT_OFF_MAX_WORDS and not low.endswith((".", "!", ";", ")", '"', "'")) \
            and _DANGLING_WORD.search(low):
        return NOT_A_CLAIM  # cut off before it said anything
    if len(words) <= 6 and not low.endswith((".", "!", ";")) and not _VERBISH.search(low):
        return NOT_A_CLAIM  # a heading or a label ("Installation", "Key points")
    return CLAIM

"""Forms the retrieval query of a follow-up question from the conversation.

"And PDFs?" asked after "How do I add documents?" means "How do I add PDF
documents?", but searched for alone it finds anything that mentions PDFs.
The model sees the whole conversation in its prompt; retrieval sees only the
query, so the query has to carry the context.

Rewriting the question with the model would cost a second generation, which
for the bundled model is seconds of a busy CPU per question, and a 135M model
rewrites badly. Instead a question that reads as a follow-up is searched for
together with the previous question: keyword search (BM25) and the embedding
both see the topic of the conversation and the new detail. A question that
stands on its own is searched for as it is.

A question reads as a follow-up when it is very short (three words or
fewer), opens with a connective ("and", "what about", "also", ...), leans
on a pronoun that points back ("it", "that", "them", ...), or ends on a bare
question word ("How do I see why?").
"""
from __future__ import annotations

import re
from typing import Sequence

from core.llm.base import ChatMessage

SHORT_WORDS = 3
_CONNECTIVE = re.compile(
    r"^\s*(and|or|but|also|so|then|what about|how about|what if|same for|and what about|and how about)\b[\s,]*",
    re.IGNORECASE)
_POINTS_BACK = re.compile(r"\b(it|its|that|this|those|these|they|them|their|there|one|ones)\b", re.IGNORECASE)
# "How do I see why?": a question word with nothing after it points back too.
_ENDS_ELLIPTIC = re.compile(r"\b(why|how|where|when|which one)\s*[?.!]*\s*$", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def is_followup(question: str) -> bool:
    """Whether `question` needs the conversation to be understood."""
    words = _WORD.findall(question)
    return (len(words) <= SHORT_WORDS or bool(_CONNECTIVE.match(question))
            or bool(_POINTS_BACK.search(question)) or bool(_ENDS_ELLIPTIC.search(question)))


def retrieval_query(question: str, history: Sequence[ChatMessage] = ()) -> str:
    """The text to retrieve passages for: the question, with the previous question if it follows up on it."""
    previous = next((m.content for m in reversed(history) if m.role == "user" and m.content.strip()), None)
    if previous is None or not is_followup(question):
        return question
    detail = _CONNECTIVE.sub("", question, count=1).strip() or question.strip()
    return f"{previous.strip()} {detail}"

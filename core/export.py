"""Export a conversation, or one answer, with its citations: Markdown and JSON.

Markdown is what people paste into notes, tickets and e-mails, so an answer
keeps its original wording and gains footnotes:

- After each supported sentence (at its end offset, so the model's words are
  untouched) comes a marker such as `[^1]`. The footnote quotes the supporting
  span and names the file (base name) and page: `[^1]: “...” — policy.pdf,
  page 3`. A sentence backed by several spans gets several markers; one span
  backing several sentences (same file, page and text) gets one footnote
  number, reused.
- A sentence the attribution found unsupported gets `UNSUPPORTED_MARK`
  (“⚠ *unsupported*”) after it instead of a footnote: visible in raw and
  rendered Markdown, and no footnote suggests evidence that is not there.
  A supported sentence whose own "[n]" marker names a different source than
  the support gets “⚠ *cites [n], but the support is in another source*”.
  The model's "[n]" markers stay in the text; a line under the answer says
  which file each cited number meant.
- A sentence that claims nothing (a question, a heading, "I could not find
  this in the documents.") gets neither a footnote nor the mark: there is
  nothing to back, and a warning on it would teach readers to skip warnings.
- Failed, stopped and truncated answers say so in an italic note.

Both the documents and the model's output are untrusted, and an export is
rendered later by programs we do not control (GitHub, note apps, chat
clients), so:

- Document text (quotes), file names, titles and questions are rendered
  literally: whitespace is collapsed to one line and every character that can
  start Markdown or HTML (`\\ ` * _ [ ] < > & ~ | $`) is backslash-escaped,
  which CommonMark renders as the character itself.
- The answer keeps its Markdown (lists, emphasis, code), because that is how
  the model formatted it, but outside code it cannot open raw HTML (`<` is
  escaped), load images (an image is how injected text exfiltrates data),
  link anywhere but http(s)/mailto/#anchors, or define footnotes that would
  collide with ours.
- Control characters become U+FFFD, as in the window.

Timestamps are written in UTC so that an export is the same on every machine.

An answer's text, footnotes and notes are rendered from its `Answer` state
(`core.answer.state`): the live one the window hands in for "Copy with citations",
or the one a stored turn folds back into (`StoredTurn.answer_state()`). The
JSON export writes the stored turn's fields as history keeps them.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Sequence

from core.answer.state import Answer
from core.events import AnswerSentence, RetrievedChunk, SupportSpan, event_to_json

if TYPE_CHECKING:
    from core.history import HistoryStore, StoredTurn

FORMATS = ("md", "json")
JSON_FORMAT = "sourcelight.conversation"
JSON_FORMAT_VERSION = 1
UNSUPPORTED_MARK = "\u26a0 *unsupported*"
LEGEND = ("Exported from Sourcelight. Each footnote quotes the document passage that supports the sentence "
          f"it follows; {UNSUPPORTED_MARK} marks a sentence that no retrieved passage supports.")
UNSUPPORTED_LEGEND = f"{UNSUPPORTED_MARK}: no retrieved passage supports this sentence."

# Characters that can start Markdown, GFM or HTML syntax inside a line.
# Backslash-escaping any ASCII punctuation renders it literally (CommonMark).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&~|$])")
# As in gui/text_positions.py: characters renderers swallow or treat as markup.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufdd0\ufdd1]")
_SAFE_LINK = r"(?:https?://|mailto:|#)"
# Atomic groups: backtracking must not let "](<http://x>)" pass the lookahead as "](".
_LINK_OPEN = re.compile(r"\]\((?>\s*<?)(?!\s*" + _SAFE_LINK + ")", re.I)
_IMAGE_OPEN = re.compile(r"!\[[^\]\n]*\]\(")
_REF_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:(?>[ \t]*<?)(?!" + _SAFE_LINK + ")", re.I | re.M)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")


def escape_markdown(text: str) -> str:
    """`text` as one line of Markdown that renders literally (no markup, links or HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", _UNSAFE.sub("\ufffd", " ".join(text.split())))


# ------------------------------------------------------------------ footnotes


class _Footnotes:
    """Numbers footnotes in order of first use; identical spans share a number."""

    def __init__(self) -> None:
        self._numbers: dict[tuple, int] = {}
        self.definitions: list[str] = []

    def marker(self, span: SupportSpan, chunk: RetrievedChunk | None) -> str:
        quote = " ".join(span.text.split())
        key = (chunk.source, chunk.page, quote) if chunk else (span.chunk_id, None, quote)
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self._numbers) + 1
            self.definitions.append(f"[^{number}]: \u201c{escape_markdown(quote)}\u201d \u2014 {_where(chunk)}")
        return f"[^{number}]"


def _where(chunk: RetrievedChunk | None) -> str:
    if chunk is None:
        return "source not recorded"
    return escape_markdown(chunk.file_name) + (f", page {chunk.page}" if chunk.page else "")


# ------------------------------------------------------------- answer text


def _code_regions(text: str) -> tuple[list[tuple[int, int, bool]], str]:
    """(start, end, is_fence) of fenced code blocks and inline code spans, in order; and the
    opening fence of a block the text leaves open ("" when none), which runs to the end."""
    regions: list[tuple[int, int, bool]] = []
    plain: list[tuple[int, int]] = []
    pos, fence, fence_start, segment_start = 0, "", 0, 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if fence:
            stripped = body.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence) and \
                    len(body) - len(body.lstrip(" ")) <= 3:
                regions.append((fence_start, pos + len(body), True))
                fence, segment_start = "", pos + len(line)
        else:
            m = _FENCE.match(body)
            if m and not (m.group(1)[0] == "`" and "`" in body[m.end():]):
                plain.append((segment_start, pos))
                fence, fence_start = m.group(1), pos
        pos += len(line)
    open_fence = fence
    if fence:
        regions.append((fence_start, len(text), True))
    else:
        plain.append((segment_start, len(text)))
    for start, end in plain:
        i = start
        while True:
            m = _BACKTICKS.search(text, i, end)
            if m is None:
                break
            closing = m.end()
            while True:
                c = _BACKTICKS.search(text, closing, end)
                if c is None or len(c.group()) == len(m.group()):
                    break
                closing = c.end()
            if c is None:
                i = m.end()  # an unmatched run is literal backticks
                continue
            regions.append((m.start(), c.end(), False))
            i = c.end()
    return sorted(regions), open_fence


def _sentence_end(answer: str, sentence: AnswerSentence) -> int | None:
    if answer[sentence.start:sentence.end] == sentence.text:
        return sentence.end
    found = answer.find(sentence.text)  # offsets from an older run should not happen; degrade, don't crash
    return None if found < 0 or not sentence.text else found + len(sentence.text)


def _render_answer(state: Answer, notes: _Footnotes) -> tuple[str, bool]:
    """The answer as Markdown with footnote markers; also whether a sentence was marked unsupported."""
    answer = state.text
    chunks = {c.id: c for c in state.chunks}
    inserts: dict[int, str] = {}
    unsupported = False
    for att in state.attributions:
        end = _sentence_end(answer, att.sentence)
        if end is None:
            continue
        if att.supported and att.sources:
            mark = "".join(dict.fromkeys(notes.marker(s, chunks.get(s.chunk_id)) for s in att.sources))
            if att.citation_agrees is False and att.cited:
                # The model's own "[n]" points elsewhere: say so, as the window does.
                refs = ", ".join(f"\\[{n}\\]" for n in att.cited)
                mark += f" \u26a0 *cites {refs}, but the support is in another source*"
        elif att.flagged:
            mark, unsupported = " " + UNSUPPORTED_MARK, True
        else:
            continue
        inserts[end] = inserts.get(end, "") + mark

    regions, open_fence = _code_regions(answer)
    rewrites = {m.start(): "\ufffd" for m in _UNSAFE.finditer(answer)}
    in_code = bytearray(len(answer) + 1)
    for start, end, _ in regions:
        in_code[start:end] = b"\x01" * (end - start)
    for i, ch in enumerate(answer):
        if (ch == "<" or (ch == "[" and answer.startswith("[^", i))) and not in_code[i]:
            rewrites[i] = "\\" + ch
    parens = [m.start() + 1 for m in _LINK_OPEN.finditer(answer)] + [m.end() - 1 for m in _IMAGE_OPEN.finditer(answer)]
    for paren in parens:
        if not in_code[paren]:
            rewrites[paren] = "\\("
    for m in _REF_DEFINITION.finditer(answer):
        bracket = answer.index("[", m.start())
        if not in_code[bracket]:
            rewrites[bracket] = "\\["

    # A marker inside code would show as code: move it to the end of the code
    # (on its own line after a fence, which must stay alone on its line).
    placed: dict[int, str] = {}
    for offset, mark in inserts.items():
        for start, end, fence in regions:
            if start < offset < end:
                offset, mark = end, ("\n" + mark.lstrip() if fence else mark)
                break
        placed[offset] = placed.get(offset, "") + mark
    if open_fence:
        # An answer cut off inside a code block (stopped, or out of tokens):
        # close the block, or everything after it in the export (notes, later
        # turns, footnotes) would render as code.
        end = len(answer)
        mark = placed.get(end, "")
        placed[end] = ("" if answer.endswith("\n") else "\n") + open_fence + ("\n" + mark.lstrip() if mark else "")

    out, last = [], 0
    for i in sorted(set(rewrites) | set(placed)):
        out.append(answer[last:i])
        out.append(placed.get(i, ""))
        if i in rewrites:
            out.append(rewrites[i])
            last = i + 1
        else:
            last = i
    out.append(answer[last:])
    return "".join(out), unsupported


def _status_note(answer: Answer) -> str | None:
    if answer.status == "failed":
        message = answer.error.message if answer.error is not None else ""
        return f"*\u26a0 The answer stopped with an error: {escape_markdown(message or 'unknown error')}*"
    if answer.status == "cancelled":
        return "*Stopped before the answer was complete.*"
    if not answer.text.strip():
        return "*The model returned an empty answer.*"
    if answer.finish_reason == "length":
        return "*The answer was cut off at the length limit (Settings > Model > Maximum answer length).*"
    if answer.finish_reason == "repetition":
        return "*The model began repeating itself and was stopped; the part before the repeat is kept.*"
    return None


def _citation_key(answer: Answer) -> str | None:
    """What the model's own "[n]" markers point at, when it wrote any (they stay in the text)."""
    cited = sorted({n for a in answer.attributions for n in a.cited if 0 < n <= len(answer.chunks)})
    if not cited:
        return None
    parts = "; ".join(f"\\[{n}\\] {_where(answer.chunks[n - 1])}" for n in cited)
    return f"*Numbers in brackets are the model's own references to the passages it was given: {parts}.*"


def _timestamp(seconds: float | None, spec: str = "minutes") -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if spec == "minutes" else moment.isoformat(timespec="seconds")


def _meta_line(turn: "StoredTurn") -> str | None:
    parts = []
    when = _timestamp(turn.started_at if turn.started_at is not None else turn.finished_at)
    if when:
        parts.append(when)
    if turn.backend:
        parts.append(turn.backend)
    if turn.model and turn.model not in turn.backend:
        parts.append(f"model {turn.model}")
    return "*" + escape_markdown(" \u00b7 ".join(parts)) + "*" if parts else None


def _state(answer: "Answer | StoredTurn") -> Answer:
    """The one answer state to export: given, or folded from a stored turn."""
    return answer if isinstance(answer, Answer) else answer.answer_state()


def _turn_body(answer: "Answer | StoredTurn", notes: _Footnotes) -> tuple[list[str], bool]:
    state = _state(answer)
    text, unsupported = _render_answer(state, notes)
    blocks = [text.strip("\n")] if text.strip() else []
    for extra in (_status_note(state), _citation_key(state)):
        if extra:
            blocks.append(extra)
    return blocks, unsupported


# ------------------------------------------------------------------ public API


def answer_to_markdown(answer: "Answer | StoredTurn") -> str:
    """One answer (its state, or a stored turn) with its footnotes, for "Copy answer with citations"."""
    notes = _Footnotes()
    blocks, unsupported = _turn_body(answer, notes)
    if unsupported:
        blocks.append(UNSUPPORTED_LEGEND)
    if notes.definitions:
        blocks += notes.definitions
    return "\n\n".join(blocks) + "\n"


def to_markdown(conversation_title: str, turns: Sequence["StoredTurn"]) -> str:
    """A whole conversation: a heading per question, each answer with markers, all footnotes at the end."""
    notes = _Footnotes()
    blocks = [f"# {escape_markdown(conversation_title) or 'Conversation'}", LEGEND]
    for number, turn in enumerate(turns, start=1):
        blocks.append(f"## {number}. {escape_markdown(turn.question)}")
        meta = _meta_line(turn)
        if meta:
            blocks.append(meta)
        body, _ = _turn_body(turn, notes)
        blocks += body
    if notes.definitions:
        blocks += notes.definitions
    return "\n\n".join(blocks) + "\n"


def to_json(conversation_title: str, turns: Sequence["StoredTurn"], *, conversation_id: int | None = None,
            created_at: float | None = None, updated_at: float | None = None) -> str:
    """The conversation as JSON: every field stored, chunks and attributions in the `ask --json` shapes."""
    data = {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "id": conversation_id,
        "title": conversation_title,
        "created_at": _timestamp(created_at, "iso"),
        "updated_at": _timestamp(updated_at, "iso"),
        "turns": [{
            "position": turn.position if turn.position is not None else index,
            "question": turn.question,
            "answer": turn.answer,
            "status": turn.status,
            "finish_reason": turn.finish_reason,
            "error": None if turn.status != "failed" else {
                "code": turn.error_code, "type": turn.error_type, "message": turn.error_message},
            "backend": turn.backend,
            "model": turn.model,
            "started_at": _timestamp(turn.started_at, "iso"),
            "finished_at": _timestamp(turn.finished_at, "iso"),
            "usage": None if turn.prompt_tokens is None and turn.completion_tokens is None else {
                "prompt_tokens": turn.prompt_tokens, "completion_tokens": turn.completion_tokens},
            "chunks": [asdict(c) for c in turn.chunks],
            "attributions": [event_to_json(a) for a in turn.attributions],
        } for index, turn in enumerate(turns)],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def export_conversation(history: "HistoryStore", conversation_id: int | str, fmt: str = "md") -> str:
    """`sourcelight export CONVERSATION_ID [--format md|json]`: the text to write.

    Raises `ConversationNotFound` (a SourcelightError) for an unknown id or a
    conversation in the trash.
    """
    from core.history import ConversationNotFound

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    text = str(conversation_id).strip()
    if not text.isdigit():
        raise ConversationNotFound(f"'{conversation_id}' is not a conversation id: ids are whole numbers, "
                                   "such as 12.")
    try:
        summary = history.conversation(int(text))
    except ConversationNotFound:
        raise ConversationNotFound(f"There is no conversation with id {text}. Check the id; a conversation "
                                   "deleted for good cannot be exported.") from None
    if summary.deleted_at is not None:
        raise ConversationNotFound(f"Conversation {text} is in the trash. Restore it (undo the delete) to "
                                   "export it.")
    turns = history.turns(summary.id)
    if fmt == "json":
        return to_json(summary.title, turns, conversation_id=summary.id, created_at=summary.created_at,
                       updated_at=summary.updated_at)
    return to_markdown(summary.title, turns)

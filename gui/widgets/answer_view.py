"""The text of one answer: streamed, then rendered as Markdown, with sentence highlights.

Each answer lives in its own `AnswerView` (its own QTextDocument), so
streaming into the newest answer never lays out the conversation above it
(shared/docs/environment.md: per-message documents, never re-render history).

While the answer streams, text is appended as plain text at the end of the
document, one batch per frame (see `gui.answer_bridge`); document positions
then equal answer offsets (in UTF-16 units). When the answer ends, the one
message is rendered as Markdown with HTML switched off (model output is
untrusted) and `gui.text_positions.markdown_position_map` maps answer offsets
(which the engine's sentence offsets index) to positions in the rendered
document; if the two texts do not align the answer stays plain text, where the
offsets are exact (it also stays plain text when Qt's Markdown reader is known
to mangle it, see `_ENTITY_LIST_ITEM`). Sentence highlights are extra
selections, so they never modify the document and are cheap to redraw.

The view sizes itself to its content (the chat scrolls, not the message) and
turns a click on a sentence into `sentence_clicked(index)`.
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPoint, QPointF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QTextEdit, QToolTip, QWidget

from gui import theme
from gui.text_positions import Utf16Index, display_safe, markdown_position_map, plain_tooltip, sentence_range

_MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML
# QTextDocument.setMarkdown (Qt 6.10/6.11) drops the list and prints "attempted
# to insert into a list that no longer exists" when the first item of a list
# starts with an HTML entity ("- &amp; x\n- y", also inside emphasis or a
# quote). Such an answer is shown as plain text instead: bullets as typed,
# exact offsets, no warning. Any list item is checked, not only the first: a
# few harmless answers lose Markdown, none reaches the broken path.
_ENTITY_LIST_ITEM = re.compile(
    r"^[ \t]*(?:>[ \t]*)*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?[*_~]*&#?[A-Za-z0-9]+;", re.MULTILINE)
# A press and release further apart than this is a text selection, not a click.
_CLICK_SLOP_PX = 4


@dataclass
class _SentenceState:
    sentence: object  # core.events.AnswerSentence
    attribution: object | None = None  # core.events.AttributionReady
    start: int = 0  # document positions (UTF-16), refreshed when the document is re-rendered
    end: int = 0


class AnswerView(QTextBrowser):
    """One answer's text; knows its sentences, their attributions and where they are drawn."""

    sentence_clicked = Signal(int)
    link_clicked = Signal(QUrl)  # only http(s) links, and only on a click
    height_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("answerText")
        self.setAccessibleName("Answer text")
        self.setAccessibleDescription("Click a sentence to see the source passage that supports it.")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        self.setMouseTracking(True)
        doc = self.document()
        doc.setUndoRedoEnabled(False)  # a streamed answer is never edited; undo would only cost memory
        doc.setDocumentMargin(2)
        self.anchorClicked.connect(self._on_self_anchor_clicked)

        self._source = ""  # the answer as the engine streamed it
        self._positions = Utf16Index()  # code points -> UTF-16 of the displayed text
        self._map: list[int] | None = None  # answer offsets -> displayed text offsets (Markdown only)
        self._end_cursor = QTextCursor(doc)
        self._sentences: list[_SentenceState] = []  # in document order
        self._by_index: dict[int, _SentenceState] = {}  # sentence index -> its state
        self._colors = theme.colors(self.palette())
        self._starts: list[int] = []  # document start position of each sentence (sorted)
        self._selected: int | None = None
        self._marked: set[int] = set()
        # Sentence index -> its extra selection, for the sentences that draw something.
        self._drawn: dict[int, QTextEdit.ExtraSelection] = {}
        self._markdown = False
        self._press: QPoint | None = None
        self._height = 0
        self.setFixedHeight(self._content_height())

    # -- content -----------------------------------------------------------
    @property
    def source_text(self) -> str:
        return self._source

    @property
    def is_markdown(self) -> bool:
        return self._markdown

    def append_text(self, text: str) -> None:
        """Append a batch of streamed text at the end (plain text: positions equal offsets)."""
        if not text:
            return
        self._source += text
        self._positions.extend(text)
        cursor = self._end_cursor
        end = self.document().characterCount() - 1
        if cursor.position() != end:
            # Not movePosition(End): it lays out the (long) last paragraph first.
            cursor.setPosition(end)
        cursor.insertText(display_safe(text))  # leaves the cursor at the new end
        self._sync_height()

    def set_text(self, text: str) -> None:
        """Replace the whole text (plain), e.g. when a run ends with a different final answer."""
        self._source = text
        self._positions = Utf16Index(text)
        self._map = None
        self._markdown = False
        self.document().setPlainText(display_safe(text))
        self._end_cursor = QTextCursor(self.document())
        self._relocate()

    def render_markdown(self) -> bool:
        """Render the finished answer as Markdown; returns False if it stays plain text."""
        safe = display_safe(self._source)  # same length and offsets as the answer
        doc = self.document()
        mapping = None
        if not _ENTITY_LIST_ITEM.search(safe):
            doc.setMarkdown(safe, _MARKDOWN)
            rendered = doc.toRawText()
            mapping = markdown_position_map(safe, rendered)
        if mapping is None:
            doc.setPlainText(safe)
            rendered = safe
        self._map = mapping
        self._markdown = mapping is not None
        self._positions = Utf16Index(rendered)
        self._end_cursor = QTextCursor(doc)
        self._relocate()
        return self._markdown

    # -- sentences ---------------------------------------------------------
    def add_sentence(self, sentence) -> None:
        if sentence.index in self._by_index:
            return
        state = _SentenceState(sentence)
        state.start, state.end = self._doc_range(sentence.start, sentence.end)
        self._by_index[sentence.index] = state
        if self._sentences and state.start < self._sentences[-1].start:  # out of order: never while streaming
            self._sentences.append(state)
            self._sentences.sort(key=lambda s: s.start)
            self._starts = [s.start for s in self._sentences]
        else:
            self._sentences.append(state)
            self._starts.append(state.start)
        if sentence.index == self._selected or sentence.index in self._marked:
            self._refresh_sentence(state)
        # Otherwise a new sentence draws nothing yet: no redraw while text streams.

    def add_attribution(self, attribution) -> None:
        state = self._state(attribution.sentence.index)
        if state is None:
            self.add_sentence(attribution.sentence)
            state = self._state(attribution.sentence.index)
        had = self._format(state)
        state.attribution = attribution
        if self._format(state) != had:  # most supported sentences change nothing on screen
            self._refresh_sentence(state)

    def sentences(self) -> list:
        return [self._by_index[i].sentence for i in sorted(self._by_index)]

    def attribution(self, index: int):
        state = self._state(index)
        return state.attribution if state else None

    def attribution_list(self) -> list:
        """The attributions that arrived, in sentence order."""
        return [state.attribution for _, state in sorted(self._by_index.items()) if state.attribution is not None]

    def sentence_count(self) -> int:
        return len(self._sentences)

    def sentence_range(self, index: int) -> tuple[int, int] | None:
        """Where sentence `index` is drawn: document positions [start, end)."""
        state = self._state(index)
        return (state.start, state.end) if state else None

    def sentence_point(self, index: int) -> QPoint | None:
        """A point (viewport coordinates) inside the first line of sentence `index`."""
        span = self.sentence_range(index)
        if span is None:
            return None
        start, end = span
        cursor = QTextCursor(self.document())
        cursor.setPosition(min(start + 1, max(start, end - 1)))
        return self.cursorRect(cursor).center()

    def sentence_at(self, point: QPoint) -> int | None:
        """The index of the sentence drawn under `point` (viewport coordinates), if any."""
        layout = self.document().documentLayout()
        offset = QPointF(self.horizontalScrollBar().value(), self.verticalScrollBar().value())
        pos = layout.hitTest(QPointF(point) + offset, Qt.HitTestAccuracy.ExactHit)
        if pos < 0:
            return None
        i = bisect.bisect_right(self._starts, pos) - 1
        for k in (i, i - 1):
            if 0 <= k < len(self._sentences):
                s = self._sentences[k]
                if s.start <= pos < s.end or (k == i - 1 and s.start < pos <= s.end):
                    return s.sentence.index
        return None

    # -- highlights --------------------------------------------------------
    @property
    def selected_sentence(self) -> int | None:
        return self._selected

    def set_selected_sentence(self, index: int | None) -> None:
        if index == self._selected:
            return
        self._selected = index
        self._refresh_highlights()

    @property
    def marked_sentences(self) -> set[int]:
        return set(self._marked)

    def set_marked_sentences(self, indices) -> None:
        """Sentences lit because the user clicked a source passage that supports them."""
        indices = set(indices)
        if indices == self._marked:
            return
        self._marked = indices
        self._refresh_highlights()

    def _format(self, state: _SentenceState) -> QTextCharFormat | None:
        """How sentence `state` is drawn (None: plain)."""
        colors = self._colors
        att = state.attribution
        index = state.sentence.index
        fmt = QTextCharFormat()
        if index == self._selected:
            fmt.setBackground(colors.selected_sentence)
        elif index in self._marked:
            fmt.setBackground(colors.marked_sentence)
        if att is not None and att.flagged:
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            fmt.setUnderlineColor(colors.unsupported)
        elif att is not None and att.is_claim and att.citation_agrees is False:
            # (A sentence that claims nothing gets no verdict on its "[n]" either.)
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DashUnderline)
            fmt.setUnderlineColor(colors.citation_mismatch)
        return fmt if fmt.propertyCount() else None

    def _selection(self, state: _SentenceState, fmt: QTextCharFormat) -> QTextEdit.ExtraSelection:
        sel = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.document())
        cursor.setPosition(state.start)
        cursor.setPosition(state.end, QTextCursor.MoveMode.KeepAnchor)
        sel.cursor = cursor
        sel.format = fmt
        return sel

    def _refresh_highlights(self) -> None:
        # Only sentences that draw something become extra selections, so a
        # long answer whose sentences are all supported costs nothing here.
        self._colors = theme.colors(self.palette())
        self._drawn = {}
        for state in self._sentences:
            fmt = self._format(state)
            if fmt is not None:
                self._drawn[state.sentence.index] = self._selection(state, fmt)
        self.setExtraSelections(list(self._drawn.values()))

    def _refresh_sentence(self, state: _SentenceState) -> None:
        """Redraw one sentence whose look changed (an attribution arrived while streaming).

        Rebuilding every sentence's selection per attribution was quadratic: a
        4,000-token answer spent a quarter of a second of the event loop in it.
        """
        index = state.sentence.index
        fmt = self._format(state)
        if fmt is None:
            if self._drawn.pop(index, None) is None:
                return
        else:
            # (Sentences never overlap, so the order of the selections does not matter.)
            self._drawn[index] = self._selection(state, fmt)
        self.setExtraSelections(list(self._drawn.values()))

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._refresh_highlights()

    # -- geometry ----------------------------------------------------------
    def _content_height(self) -> int:
        doc = self.document()
        return int(math.ceil(doc.size().height())) + 2 * self.frameWidth()

    def _sync_height(self) -> None:
        height = self._content_height()
        if height != self._height:
            self._height = height
            self.setFixedHeight(height)
            self.height_changed.emit(height)

    def resizeEvent(self, event) -> None:  # Qt override
        # QTextEdit re-wraps the document itself when the width changes. Setting
        # the text width here would lay the whole answer out again on every
        # height change (QTextDocument.setTextWidth always relayouts), i.e. on
        # every streamed line.
        super().resizeEvent(event)
        self._sync_height()

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(super().sizeHint().width(), self._content_height())

    # -- positions ---------------------------------------------------------
    def _doc_range(self, start: int, end: int) -> tuple[int, int]:
        a, b = sentence_range(self._map, start, end) if self._map is not None else (start, end)
        return self._positions.to_utf16(a), self._positions.to_utf16(b)

    def _relocate(self) -> None:
        for state in self._sentences:
            state.start, state.end = self._doc_range(state.sentence.start, state.sentence.end)
        self._sentences.sort(key=lambda s: s.start)
        self._starts = [s.start for s in self._sentences]
        self._sync_height()
        self._refresh_highlights()

    def _state(self, index: int) -> _SentenceState | None:
        return self._by_index.get(index)

    # -- input -------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # Qt override
        self._press = event.position().toPoint() if event.button() == Qt.MouseButton.LeftButton else None
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # Qt override
        super().mouseReleaseEvent(event)
        press, self._press = self._press, None
        if event.button() != Qt.MouseButton.LeftButton or press is None:
            return
        point = event.position().toPoint()
        if (point - press).manhattanLength() > _CLICK_SLOP_PX or self.anchorAt(point):
            return
        index = self.sentence_at(point)
        if index is not None:
            self.sentence_clicked.emit(index)

    def viewportEvent(self, event: QEvent) -> bool:  # Qt override
        if event.type() == QEvent.Type.ToolTip:
            index = self.sentence_at(event.pos())
            text = self.tooltip_for(index) if index is not None else ""
            if text:
                QToolTip.showText(event.globalPos(), plain_tooltip(text), self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def tooltip_for(self, index: int) -> str:
        """What hovering sentence `index` shows: the best support found when the sentence is flagged,
        and that there is nothing to check when it claims nothing (so its lack of a mark is not a verdict)."""
        att = self.attribution(index)
        if att is None:
            return ""
        if not att.is_claim:
            return att.kind_note
        best = att.sources[0] if att.sources else None
        quote = ""
        if best is not None:
            text = " ".join(best.text.split())
            quote = f"\nBest support found ({best.score:.2f}): \u201c{text[:220]}{'...' if len(text) > 220 else ''}\u201d"
        if not att.supported:
            return (f"Not supported by the retrieved sources (support {att.support:.2f})." +
                    (quote or "\nNo passage came close."))
        if att.citation_agrees is False:
            cited = ", ".join(f"[{n}]" for n in att.cited)
            return f"The citation {cited} points at a different source than the one that supports this sentence." + quote
        return ""

    def _on_self_anchor_clicked(self, url: QUrl) -> None:
        # Model output is untrusted: only web links, and only on an explicit click.
        if url.scheme() in ("http", "https"):
            self.link_clicked.emit(url)

    def loadResource(self, kind: int, name: QUrl):  # Qt override
        # Never fetch anything an answer mentions (images, style sheets): the
        # text is untrusted and may point at local files or trackers.
        return None

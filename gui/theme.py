"""Highlight colours that follow the system's light or dark palette.

Widgets draw with palette roles wherever Qt has one; the few colours Qt has
no role for (a highlighted sentence, a supporting span, the red underline of
an unsupported sentence) are chosen here from the palette's lightness, so the
window stays legible in both schemes and every highlight looks the same in
the answer and in the Sources panel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtGui import QColor, QPalette


@dataclass(frozen=True)
class Colors:
    selected_sentence: QColor  # the sentence the user clicked
    marked_sentence: QColor  # sentences supported by the passage the user clicked
    support_span: QColor  # the span that supports the selected sentence
    weak_span: QColor  # the best span found for an unsupported sentence
    unsupported: QColor  # wavy underline of an unsupported sentence
    citation_mismatch: QColor  # dashed underline: the model's [n] disagrees with the support
    supported_text: QColor  # "Support 0.71" on a supporting passage
    unsupported_text: QColor
    card_active: QColor  # frame of the passage that supports the selection / was clicked
    dark: bool
    # Badges carry white text in both schemes.
    support_badge: QColor = field(default_factory=lambda: QColor("#1b7a31"))
    weak_badge: QColor = field(default_factory=lambda: QColor("#b71c1c"))


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def colors(palette: QPalette) -> Colors:
    if is_dark(palette):
        return Colors(
            selected_sentence=QColor("#6b5300"), marked_sentence=QColor("#1f4a6e"),
            support_span=QColor("#6b5300"), weak_span=QColor("#5a3d3d"),
            unsupported=QColor("#ff6b6b"), citation_mismatch=QColor("#ffb347"),
            supported_text=QColor("#7ddc8a"), unsupported_text=QColor("#ff8f8f"),
            card_active=QColor("#d9a400"), dark=True)
    return Colors(
        selected_sentence=QColor("#ffe27a"), marked_sentence=QColor("#cfe6ff"),
        support_span=QColor("#ffe27a"), weak_span=QColor("#f6d6d6"),
        unsupported=QColor("#d32f2f"), citation_mismatch=QColor("#e07b00"),
        supported_text=QColor("#1b7a31"), unsupported_text=QColor("#b71c1c"),
        card_active=QColor("#c99700"), dark=False)


def style_sheet(palette: QPalette) -> str:
    """The window's few style rules: rounded message and passage cards, the active passage's frame.

    Colours come from the palette (`palette(...)`) so a light or dark system
    scheme carries through; only the active-passage frame uses a fixed hue.
    """
    c = colors(palette)
    return f"""
QFrame#questionCard {{ background: palette(alternate-base); border: 1px solid palette(midlight);
    border-radius: 8px; }}
QFrame#answerCard {{ background: palette(base); border: 1px solid palette(midlight); border-radius: 8px; }}
QFrame#sourceCard {{ background: palette(base); border: 1px solid palette(midlight); border-radius: 6px; }}
QFrame#sourceCard[active="true"] {{ border: 2px solid {c.card_active.name()}; }}
QFrame#messageBanner {{ border: 1px solid palette(mid); border-radius: 6px; }}
QTextBrowser#answerText {{ background: palette(base); }}
"""

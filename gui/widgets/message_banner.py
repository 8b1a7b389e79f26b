"""The one place where the window shows errors and notices.

Engine errors already say what happened and what to do next (core.errors);
the banner shows that message as plain text with a Dismiss button. It never
blocks the window (no modal dialog), so the user can act on the advice at once.

A message may carry one action (e.g. "Undo" after deleting a conversation):
its button emits `action_clicked` and the banner closes. The action belongs to
that message only; the next message, or Dismiss, takes it away.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from gui import theme

ERROR, INFO = "error", "info"


class MessageBanner(QFrame):
    """A dismissible strip with one message; `kind` is "error" or "info"."""

    dismissed = Signal()
    action_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.setAccessibleName("Message")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.label = QLabel()
        self.label.setObjectName("messageText")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setAccessibleName("Dismiss the message")
        self.dismiss_button.clicked.connect(self._on_dismiss_button_clicked)
        self.action_button = QPushButton()
        self.action_button.setObjectName("messageAction")
        self.action_button.clicked.connect(self._on_action_button_clicked)
        self.action_button.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.kind = INFO
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, text: str, kind: str = ERROR, action: str | None = None,
                     action_description: str = "") -> None:
        """Show `text`; with `action`, also a button of that name (emits `action_clicked`)."""
        self.kind = kind
        self.label.setText(text)
        self.action_button.setVisible(action is not None)
        self.action_button.setText(action or "")
        self.action_button.setAccessibleName(action_description or action or "")
        self.setAccessibleDescription(text)
        dark = theme.is_dark(self.palette())
        if kind == ERROR:
            bg = QColor("#5c1f1f") if dark else QColor("#fde7e7")
        else:
            bg = QColor("#1f3b5c") if dark else QColor("#e7f0fd")
        # A style sheet, not the palette: the window's style sheet wins over palettes.
        self.setStyleSheet(f"QFrame#messageBanner {{ background: {bg.name()}; border: 1px solid palette(mid); "
                           "border-radius: 6px; }")
        self.show()

    @property
    def action(self) -> str | None:
        """The text of the message's action button, or None."""
        return self.action_button.text() if not self.action_button.isHidden() else None

    def clear(self) -> None:
        self.label.clear()
        self.action_button.hide()
        self.hide()

    def _on_action_button_clicked(self) -> None:
        self.clear()
        self.action_clicked.emit()

    def _on_dismiss_button_clicked(self) -> None:
        self.clear()
        self.dismissed.emit()

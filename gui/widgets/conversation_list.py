"""The conversation list: saved conversations, newest first, with New, rename, delete and search.

The list only shows what the controller gives it (`set_conversations`, rows of
core.history.ConversationSummary) and turns gestures into signals; the
history database is read and written by the controller, off the UI thread.

Keys: Ctrl+N (a window action) starts a new conversation; in the list, Enter
opens the current conversation, F2 renames it in place (Enter keeps, Escape
cancels), Delete moves it to the trash (the window offers Undo). In the search
box, Down moves to the list and Escape clears the search. Typing in the search
box filters by title, question and answer text after a short pause, so a
search does not run once per keystroke.

The controller refreshes the list after every saved turn, so a refresh can
arrive while a title is being edited (F2 while an answer streams). Rebuilding
the rows then would destroy the editor and the typed title with it, so while
an editor is open `set_conversations` only keeps the newest list and shows it
once the editor has closed (after Enter has committed the title, or Escape).
"""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from gui.text_positions import plain_tooltip

ID_ROLE = Qt.ItemDataRole.UserRole
TITLE_ROLE = Qt.ItemDataRole.UserRole + 1
# Long enough that typing a word runs one search, short enough to feel live.
SEARCH_DELAY_MS = 200


class _TitleList(QListWidget):
    """A QListWidget that says when its in-place editor closed (Qt has no signal for it)."""

    editor_closed = Signal()

    def closeEditor(self, editor: QWidget, hint) -> None:  # Qt override
        # Every way an editor ends passes through here: Enter/Escape and focus
        # loss (the delegate's closeEditor signal) and a change of current row
        # (QAbstractItemView.currentChanged calls it directly).
        super().closeEditor(editor, hint)
        self.editor_closed.emit()


class ConversationList(QWidget):
    """Saved conversations: open, New, rename in place, delete, search."""

    new_clicked = Signal()
    conversation_chosen = Signal(int)  # conversation id: open it
    rename_requested = Signal(int, str)  # (conversation id, new title)
    deletion_requested = Signal(int)  # conversation id
    search_changed = Signal(str)  # the search text, once typing paused

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("conversationList")
        self.setAccessibleName("Conversations")
        title = QLabel("Conversations")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        title.setFont(font)
        self.new_button = QPushButton("New")
        self.new_button.setAccessibleName("New conversation")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_clicked)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(title, 1)
        header.addWidget(self.new_button)

        self.search = QLineEdit()
        self.search.setObjectName("conversationSearch")
        self.search.setAccessibleName("Search conversations")
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Show the conversations whose title, questions or answers contain every word "
                               "typed here")
        self.search.textChanged.connect(self._on_search_text_changed)
        self.search.installEventFilter(self)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._on_search_timer_timeout)

        self.list = _TitleList()
        self.list.setObjectName("conversationsList")
        self.list.setAccessibleName("Saved conversations")
        self.list.setAccessibleDescription("Enter opens the conversation, F2 renames it, Delete moves it to the "
                                           "trash.")
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        # Only F2 and the menu start an edit: a click opens the conversation.
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.itemClicked.connect(self._on_list_item_activated)
        self.list.itemActivated.connect(self._on_list_item_activated)
        self.list.itemChanged.connect(self._on_list_item_changed)
        self.list.currentItemChanged.connect(self._on_list_current_item_changed)
        self.list.editor_closed.connect(self._on_list_editor_closed)
        # The newest list that arrived while a title was being edited, shown
        # once the editor closes; titles renamed since it was read win over it.
        self._pending: list | None = None
        self._renamed_since_pending: dict[int, str] = {}
        # Zero delay: the rebuild runs after the view has finished closing the
        # editor (and after the slot that closed it returned), never inside it.
        self._pending_timer = QTimer(self)
        self._pending_timer.setSingleShot(True)
        self._pending_timer.setInterval(0)
        self._pending_timer.timeout.connect(self._on_pending_timer_timeout)

        self.rename_action = QAction("Rename", self.list)
        self.rename_action.setObjectName("renameConversationAction")
        self.rename_action.setShortcut(QKeySequence(Qt.Key.Key_F2))
        self.rename_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.rename_action.triggered.connect(self._on_rename_action_triggered)
        self.delete_action = QAction("Delete", self.list)
        self.delete_action.setObjectName("deleteConversationAction")
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.delete_action.triggered.connect(self._on_delete_action_triggered)
        self.list.addAction(self.rename_action)
        self.list.addAction(self.delete_action)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        self.empty_label = QLabel()
        self.empty_label.setObjectName("conversationsEmpty")
        self.empty_label.setWordWrap(True)
        self.empty_label.setTextFormat(Qt.TextFormat.PlainText)
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 4)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label)
        self.setTabOrder(self.new_button, self.search)
        self.setTabOrder(self.search, self.list)
        self._current: int | None = None
        self._filling = False
        self._update_actions()
        self._update_empty()

    # -- content -----------------------------------------------------------
    def set_conversations(self, summaries, current: int | None = None) -> None:
        """Show these conversations (core.history.ConversationSummary), marking `current`.

        While a title is being edited the list is only kept, and shown when the
        editor closes (see the module docstring).
        """
        if self._editing():
            self._pending = list(summaries)
            self._renamed_since_pending.clear()
            self._current = current
            return
        self._pending = None
        renamed, self._renamed_since_pending = self._renamed_since_pending, {}
        self._filling = True
        try:
            self.list.clear()
            for summary in summaries:
                title = renamed.get(summary.id, summary.title)
                item = QListWidgetItem(title)
                item.setData(ID_ROLE, summary.id)
                item.setData(TITLE_ROLE, title)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                when = datetime.fromtimestamp(summary.updated_at).strftime("%Y-%m-%d %H:%M")
                n = summary.turn_count
                item.setToolTip(plain_tooltip(f"{title}\n{n} question{'s' if n != 1 else ''}, last on "
                                              f"{when}"))
                self.list.addItem(item)
        finally:
            self._filling = False
        self.set_current(current)
        self._update_empty()

    def set_current(self, conversation_id: int | None) -> None:
        """Mark the conversation the window shows (None: a new, unsaved one)."""
        self._current = conversation_id
        item = self.item_for(conversation_id) if conversation_id is not None else None
        self._filling = True
        try:
            self.list.setCurrentItem(item)
            if item is None:
                self.list.clearSelection()
            else:
                item.setSelected(True)
        finally:
            self._filling = False
        self._update_actions()

    def item_for(self, conversation_id: int) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) == conversation_id:
                return item
        return None

    def conversation_ids(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def titles(self) -> list[str]:
        return [self.list.item(i).data(TITLE_ROLE) for i in range(self.list.count())]

    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None and item.isSelected() else None

    def start_rename(self, conversation_id: int | None = None) -> bool:
        """Edit the title in place (of `conversation_id`, else of the selected conversation)."""
        item = self.item_for(conversation_id) if conversation_id is not None else self.list.currentItem()
        if item is None:
            return False
        self.list.setCurrentItem(item)
        self.list.editItem(item)
        return True

    def _editing(self) -> bool:
        return self.list.state() == QAbstractItemView.State.EditingState

    def _update_empty(self) -> None:
        if self.list.count():
            self.empty_label.hide()
            return
        self.empty_label.setText("No conversation matches the search." if self.search.text().strip() else
                                 "Your conversations are saved here as you ask.")
        self.empty_label.show()

    def _update_actions(self) -> None:
        has = self.list.currentItem() is not None
        self.rename_action.setEnabled(has)
        self.delete_action.setEnabled(has)

    # -- slots -------------------------------------------------------------
    def _on_list_item_activated(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(ID_ROLE)
        if conversation_id is not None and conversation_id != self._current:
            self.conversation_chosen.emit(conversation_id)

    def _on_list_current_item_changed(self, _current, _previous) -> None:
        self._update_actions()

    def _on_list_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        old = item.data(TITLE_ROLE)
        new = " ".join(item.text().split())
        if not new or new == old:
            # An empty title is refused: the old one comes back.
            self._filling = True
            try:
                item.setText(old)
            finally:
                self._filling = False
            return
        item.setData(TITLE_ROLE, new)
        if self._pending is not None:
            # The waiting list was read before this rename: keep the new title
            # rather than flash the old one until the controller's next refresh.
            self._renamed_since_pending[item.data(ID_ROLE)] = new
        self.rename_requested.emit(item.data(ID_ROLE), new)

    def _on_list_editor_closed(self) -> None:
        if self._pending is not None:
            self._pending_timer.start()

    def _on_pending_timer_timeout(self) -> None:
        # Another editor may have opened meanwhile (Tab to the next row): it
        # closes through _on_list_editor_closed again.
        if self._pending is not None and not self._editing():
            self.set_conversations(self._pending, self._current)

    def _on_rename_action_triggered(self) -> None:
        self.start_rename()

    def _on_delete_action_triggered(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.deletion_requested.emit(item.data(ID_ROLE))

    def _on_search_text_changed(self, _text: str) -> None:
        self._search_timer.start()

    def _on_search_timer_timeout(self) -> None:
        self.search_changed.emit(self.search.text().strip())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        if watched is self.search and event.type() == QEvent.Type.ShortcutOverride \
                and event.key() == Qt.Key.Key_Escape and self.search.text():
            event.accept()  # Escape clears the search here rather than triggering the window's Stop
            return True
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Down and self.list.count():
                self.list.setFocus(Qt.FocusReason.TabFocusReason)
                if self.list.currentItem() is None:
                    self.list.setCurrentRow(0)
                return True
            if event.key() == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
        return super().eventFilter(watched, event)

"""The conversation list keeps an in-place rename (F2) alive while the list refreshes.

The controller refreshes the list after every saved turn, so a refresh can
arrive while the user is typing a new title (an answer ending during the
rename). The widget test drives `ConversationList` alone with hand-made
summaries; the window test drives the real window, controller and history
with a scripted model, the way the refresh really arrives. Waits are on
signals or conditions; nothing sleeps.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLineEdit

from core.history import ConversationSummary

from gui.widgets.conversation_list import ConversationList
from tests.fakes import Script, ScriptedBackend
from tests.gui.test_window_answers import ANSWER, QUESTION, ask
from tests.gui.test_window_history import saved

TIMEOUT = 60_000


def summary(conversation_id: int, title: str, turns: int = 1) -> ConversationSummary:
    return ConversationSummary(id=conversation_id, title=title, created_at=1.7e9, updated_at=1.7e9 + turns,
                               turn_count=turns)


def shown_list(qtbot) -> ConversationList:
    """A conversation list on screen and active: the F2 editor needs keyboard focus to open."""
    panel = ConversationList()
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel)
    return panel


def editing(panel, editor: QLineEdit) -> bool:
    """True while `editor` is the list's open, visible title editor (a closed one lingers until deleted)."""
    return panel.list.state() == QAbstractItemView.State.EditingState and editor.isVisible() \
        and editor.hasFocus()


def start_typing_a_title(qtbot, panel, conversation_id: int, text: str) -> QLineEdit:
    """F2 on the conversation, then type `text` over its title; return the editor."""
    panel.list.setFocus()
    panel.list.setCurrentItem(panel.item_for(conversation_id))
    qtbot.keyClick(panel.list, Qt.Key.Key_F2)
    editor = panel.list.findChild(QLineEdit)
    assert editor is not None and editing(panel, editor)
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    return editor


def test_a_refresh_while_renaming_keeps_the_editor_and_applies_once_it_closes(qtbot):
    panel = shown_list(qtbot)
    panel.set_conversations([summary(2, "Second"), summary(1, "First")], current=1)
    editor = start_typing_a_title(qtbot, panel, 1, "Renamed")

    # Two refreshes arrive while the user types (a turn saved in conversation 2,
    # then one more conversation): the editor and the typed text survive.
    panel.set_conversations([summary(2, "Second", 2), summary(1, "First")], current=1)
    panel.set_conversations([summary(3, "Third"), summary(2, "Second", 2), summary(1, "First")], current=1)
    assert editing(panel, editor) and editor.text() == "Renamed"

    # Enter commits the typed title for the conversation being edited...
    with qtbot.waitSignal(panel.rename_requested) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert blocker.args == [1, "Renamed"]
    # ...then the latest list is shown, with the new title (the refresh was read
    # before the rename, so it cannot know it yet) and the same current row.
    qtbot.waitUntil(lambda: panel.conversation_ids() == [3, 2, 1])
    assert panel.titles() == ["Third", "Second", "Renamed"]
    assert panel.selected_id() == 1
    # Once the rename is stored the next refresh agrees.
    panel.set_conversations([summary(3, "Third"), summary(2, "Second", 2), summary(1, "Renamed")], current=1)
    assert panel.titles() == ["Third", "Second", "Renamed"]


def test_escape_after_a_refresh_keeps_the_old_title_and_shows_the_new_list(qtbot):
    panel = shown_list(qtbot)
    panel.set_conversations([summary(1, "First")], current=1)
    editor = start_typing_a_title(qtbot, panel, 1, "Never mind")
    panel.set_conversations([summary(2, "Second"), summary(1, "First")], current=1)
    assert editing(panel, editor)

    with qtbot.assertNotEmitted(panel.rename_requested):
        qtbot.keyClick(editor, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: panel.conversation_ids() == [2, 1])
    assert panel.titles() == ["Second", "First"]


def test_renaming_while_an_answer_streams_survives_the_answer_ending(qtbot, make_app):
    backend = ScriptedBackend.sequence(Script(pieces=ANSWER), Script(pieces=["Follow ", "up."], stall_after=1))
    window, controller = make_app(backend)
    turn = saved(qtbot, ask(qtbot, window, controller))
    panel = window.conversation_list
    qtbot.waitUntil(lambda: panel.titles() == [QUESTION])
    # A follow-up streams while the user renames the conversation (F2).
    follow_up = controller.answers.ask("And a follow up?")
    qtbot.waitUntil(lambda: backend.stalled == 1, timeout=TIMEOUT)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    editor = start_typing_a_title(qtbot, panel, turn.conversation_id, "My new ti")

    # The answer ends (Stop) and its turn is saved: the list refreshes.
    with qtbot.waitSignal(controller.conversations.conversations_changed, timeout=TIMEOUT,
                          check_params_cb=lambda summaries: summaries[0].turn_count == 2):
        controller.answers.stop()
    saved(qtbot, follow_up)
    assert editing(panel, editor) and editor.text() == "My new ti"

    qtbot.keyClicks(editor, "tle")
    with qtbot.waitSignal(controller.conversations.conversation_renamed, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert blocker.args == [turn.conversation_id, "My new title"]
    assert controller.history.conversation(turn.conversation_id).title == "My new title"
    qtbot.waitUntil(lambda: panel.titles() == ["My new title"])

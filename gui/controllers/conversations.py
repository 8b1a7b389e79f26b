"""Conversations: the list (with search), opening one page by page, rename, delete with undo, export.

Opening a conversation replays its stored turns through the same bridge and
card code as a live answer (task "conversation"; older pages on request, task
"earlier"). The chat, and the conversation the next question goes to, switch
at once on the click; an answer still running is stopped and saved in the
conversation it was asked in.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gui.controllers.answers import AnswersController, Turn
from gui.controllers.history import FAILED, Chat, HistoryAccess
from gui.controllers.support import delete_later, describe

PAGE_TURNS = 20  # turns per page: about two screens of answers; 200 at once would take seconds to lay out


class ConversationsController(QObject):
    """The conversation list and the conversation the window shows; see the module docstring."""

    conversations_changed = Signal(list)  # list[ConversationSummary] now in the list
    conversation_opened = Signal(int)  # its first page of turns is in the chat
    earlier_loaded = Signal(int)  # how many older turns were added above
    conversation_deleted = Signal(int)
    conversation_restored = Signal(int)
    conversation_renamed = Signal(int, str)
    exported = Signal(str)  # path written

    def __init__(self, app, history: HistoryAccess, answers: AnswersController, parent=None):
        super().__init__(parent)
        self.window = app.window
        self.tasks = app.tasks
        self.history = history
        self.answers = answers  # stopped on a switch; its turns are the ones shown
        self.chat = Chat()
        self._search = ""
        self._undo: tuple[int, bool] | None = None  # (conversation id, was open) of the last delete
        history.opened.connect(self._on_history_opened)
        answers.conversation_created.connect(self._on_answers_conversation_created)
        answers.turn_saved.connect(self._on_answers_turn_saved)
        window = self.window
        window.new_conversation_requested.connect(self._on_window_new_conversation_requested)
        window.conversation_chosen.connect(self._on_window_conversation_chosen)
        window.conversation_rename_requested.connect(self._on_window_conversation_rename_requested)
        window.conversation_deletion_requested.connect(self._on_window_conversation_deletion_requested)
        window.conversation_search_changed.connect(self._on_window_conversation_search_changed)
        window.earlier_requested.connect(self._on_window_earlier_requested)
        window.export_requested.connect(self._on_window_export_requested)
        window.undo_requested.connect(self._on_window_undo_requested)

    # The list shows new conversations, new turns (their time) and, once history is open, what it holds.
    def _on_history_opened(self) -> None:
        self.refresh_conversations()

    def _on_answers_conversation_created(self, _conversation_id: int) -> None:
        self.refresh_conversations()

    def _on_answers_turn_saved(self, _stored) -> None:
        self.refresh_conversations()

    def _on_window_new_conversation_requested(self) -> None:
        self.new_conversation()

    def _on_window_conversation_chosen(self, conversation_id: int) -> None:
        self.open_conversation(conversation_id)

    def _on_window_conversation_rename_requested(self, conversation_id: int, title: str) -> None:
        self.rename_conversation(conversation_id, title)

    def _on_window_conversation_deletion_requested(self, conversation_id: int) -> None:
        self.delete_conversation(conversation_id)

    def _on_window_conversation_search_changed(self, text: str) -> None:
        self.search_conversations(text)

    def _on_window_earlier_requested(self) -> None:
        self.load_earlier()

    def _on_window_export_requested(self, path: str) -> None:
        self.export_conversation(path)

    def _on_window_undo_requested(self) -> None:
        self.undo_delete()

    @property
    def conversation_id(self) -> int | None:
        """The id of the conversation the window shows (None: a new one, not saved yet)."""
        return self.chat.id

    # -- the list ------------------------------------------------------------
    def refresh_conversations(self) -> asyncio.Task:
        """Re-read the conversation list (with the current search) in the background."""
        return self.tasks.start("conversations", self._refresh_conversations())

    async def _refresh_conversations(self) -> None:
        history = await self.history.available()
        if history is None:
            return
        loop = asyncio.get_running_loop()
        try:
            summaries = await loop.run_in_executor(None, history.list_conversations, self._search or None)
        except Exception as exc:
            self.window.show_error(describe(exc, "The list of conversations could not be read"))
            return
        self.window.conversation_list.set_conversations(summaries, self.chat.id)
        self.conversations_changed.emit(summaries)

    def search_conversations(self, text: str) -> asyncio.Task:
        self._search = text.strip()
        return self.refresh_conversations()

    # -- switching -----------------------------------------------------------
    def new_conversation(self) -> asyncio.Task:
        """Stop the running answer and start an empty chat (saved once a question is asked)."""
        return self._switch(None)

    def open_conversation(self, conversation_id: int) -> asyncio.Task:
        """Show a saved conversation: its latest turns first, older ones on request."""
        return self._switch(conversation_id)

    def _switch(self, conversation_id: int | None) -> asyncio.Task:
        """Show conversation `conversation_id` (None: a new one); its turns are read in task "conversation".

        The chat and the conversation the next question goes to switch here,
        at once, not after the running answer has ended: a question sent
        right after the click belongs to the conversation the user chose. The
        stopped answer's turn still belongs to the conversation it was asked
        in; it ends, and is saved, there.
        """
        old = self.chat
        ending = self.answers.stop_answer()
        self.tasks.cancel("earlier")
        if ending is not None:
            # Cards whose runs are still ending are written to until then: they
            # leave the chat, hidden, and are deleted once the answer has ended.
            leaving = [card for card in self.window.chat_view.answers() if not card.finished]
            for card in leaving:
                card.hide()
                card.setParent(self.window)
            ending.add_done_callback(lambda _task, cards=leaving: delete_later(cards))
        if conversation_id is not None and conversation_id == old.id:
            # The same conversation again: keep its chain of writes, so a turn
            # still being saved (the stopped one) is on disk before a follow-up
            # reads its context.
            self.chat = old
            old.loaded_from = 0
        else:
            self.chat = Chat(conversation_id)
        self.answers.clear_turns()
        self.window.clear_conversation()
        self.window.conversation_list.set_current(conversation_id)
        if conversation_id is None:
            self.window.set_status("New conversation.")
            self.window.composer.setFocus()
        return self.tasks.start("conversation", self._open(self.chat, ending))

    async def _open(self, chat: Chat, ending: asyncio.Task | None) -> None:
        if ending is not None:
            # The stopped answer's turn is saved first (it may be a turn of
            # this very conversation, which is read back below).
            await asyncio.wait({ending})
        if chat.id is not None:
            await self._load_page(chat, first=True)

    def load_earlier(self) -> asyncio.Task | None:
        """Add the previous page of the open conversation above the turns shown."""
        chat = self.chat
        if chat.id is None or chat.loaded_from <= 0 or self.tasks.running("earlier") \
                or self.tasks.running("conversation"):
            return None
        self.window.chat_view.set_earlier_loading()
        return self.tasks.start("earlier", self._load_page(chat, first=False))

    async def _load_page(self, chat: Chat, *, first: bool) -> None:
        loop = asyncio.get_running_loop()
        chat_view = self.window.chat_view
        history = await self.history.available()
        if history is None:
            self.window.show_error("The conversation history is not available, so saved conversations cannot "
                                   "be opened. Restart Sourcelight; if it keeps happening, see the first error.")
            return
        await self.history.settled()  # what this window wrote is on disk before it is read back
        try:
            start, page, notes = await loop.run_in_executor(None, _read_page, history, chat.id,
                                                            None if first else chat.loaded_from)
        except Exception as exc:
            self.window.show_error(describe(exc, "The conversation could not be opened"))
            chat_view.set_earlier_available(not first and chat.loaded_from > 0)
            return
        # Newest first, each one above the last, with the loop free between
        # them: the answer the user reads is painted after one card, not after
        # a page of Markdown layouts, and the window never freezes while the
        # older ones come in above (the chat view keeps the reader's place).
        added = []
        for k, turn in enumerate(reversed(page)):
            anchor = chat_view.first_message()  # older turns go above what is shown (or asked meanwhile)
            card = chat_view.add_answer(turn.question, before=anchor)
            view = chat_view.add_question(turn.question, before=card)
            self.answers.replay(card, turn, notes.get(turn.id, {}))
            added.append(Turn(turn.question, view, card))
            if first and k == 0:
                self.window.set_current_answer(card)
            await asyncio.sleep(0)
        added.reverse()
        self.answers.prepend_turns(added)
        chat.loaded_from = start
        chat_view.set_earlier_available(start > 0)
        self.window.set_busy(self.window.busy)
        if first:
            self.window.set_current_answer(chat_view.last_answer())
            self.window.set_status(f"Opened the conversation ({start + len(page)} question"
                                   f"{'s' if start + len(page) != 1 else ''}).")
            self.conversation_opened.emit(chat.id)
        else:
            self.earlier_loaded.emit(len(page))

    # -- rename, delete, undo ------------------------------------------------
    def rename_conversation(self, conversation_id: int, title: str) -> asyncio.Task:
        return self.tasks.start(f"rename:{conversation_id}", self._rename(conversation_id, title))

    async def _rename(self, conversation_id: int, title: str) -> None:
        renamed = await self.history.call("The conversation could not be renamed",
                                          lambda history: history.rename(conversation_id, title))
        self.refresh_conversations()  # the new title, or the old one back after a failure
        if renamed is FAILED:
            return
        self.conversation_renamed.emit(conversation_id, title)

    def delete_conversation(self, conversation_id: int) -> asyncio.Task:
        """Move a conversation to the trash; the banner offers Undo."""
        return self.tasks.start(f"delete:{conversation_id}", self._delete(conversation_id))

    async def _delete(self, conversation_id: int) -> None:
        was_open = conversation_id == self.chat.id

        def delete(history):
            summary = history.conversation(conversation_id)  # its title, for the Undo notice
            history.delete(conversation_id)
            return summary

        summary = await self.history.call("The conversation could not be deleted", delete)
        if summary is FAILED:
            return
        if was_open and conversation_id == self.chat.id:
            self._switch(None)
        self._undo = (conversation_id, was_open)
        self.window.show_notice(f"Deleted “{summary.title}”.", "Undo", "Undo deleting the conversation")
        self.refresh_conversations()
        self.conversation_deleted.emit(conversation_id)

    def undo_delete(self) -> asyncio.Task | None:
        """Bring back the conversation deleted last (and reopen it if it was open)."""
        if self._undo is None:
            return None
        conversation_id, was_open = self._undo
        self._undo = None
        return self.tasks.start(f"undo:{conversation_id}", self._undo_delete(conversation_id, was_open))

    async def _undo_delete(self, conversation_id: int, was_open: bool) -> None:
        restored = await self.history.call("The conversation could not be restored",
                                           lambda history: history.undo_delete(conversation_id))
        if restored is FAILED:
            return
        self.window.set_status("Conversation restored.")
        if was_open and self.chat.id is None and not self.answers.turns:
            self.open_conversation(conversation_id)
        self.refresh_conversations()
        self.conversation_restored.emit(conversation_id)

    # -- export --------------------------------------------------------------
    def export_conversation(self, path) -> asyncio.Task:
        """Write the open conversation to `path`: Markdown with footnotes, or JSON for a .json path."""
        return self.tasks.start("export", self._export(Path(path)))

    async def _export(self, path: Path) -> None:
        loop = asyncio.get_running_loop()
        chat = self.chat
        if chat.saving is not None:  # the last answer is part of the export
            await asyncio.wait({chat.saving})
        history = await self.history.available()
        if history is None or chat.id is None:
            self.window.show_notice("There is nothing to export yet: ask a question or open a conversation "
                                    "first.")
            return
        fmt = "json" if path.suffix.lower() == ".json" else "md"
        try:
            await loop.run_in_executor(None, _write_export, history, chat.id, fmt, path)
        except Exception as exc:
            self.window.show_error(describe(exc, f"The conversation could not be exported to {path}"))
            return
        self.window.set_status(f"Exported the conversation to {path}.")
        self.exported.emit(str(path))


# History work for the executor (each call blocks on SQLite, maybe a stat or a hash of a source file).
def _read_page(history, conversation_id: int, before: int | None):
    """(index of the page's first turn, the turns, {turn id: {chunk id: note}}) for one page.

    `before` None: the last PAGE_TURNS turns; else the PAGE_TURNS turns before
    turn number `before`. Each source file is compared with its fingerprint
    here, on the worker (a stat, maybe a hash), not on the UI thread.
    """
    from core.history import source_note, source_state

    if before is None:
        total = history.turn_count(conversation_id)
        page = history.turns(conversation_id, offset=-PAGE_TURNS)
        start = max(0, total - len(page))
    else:
        start = max(0, before - PAGE_TURNS)
        page = history.turns(conversation_id, offset=start, limit=before - start)
    states: dict = {}
    notes: dict[int, dict[str, str]] = {}
    for turn in page:
        for chunk in turn.chunks:
            fingerprint = turn.fingerprint(chunk.source)
            if fingerprint not in states:
                states[fingerprint] = source_state(fingerprint)
            note = source_note(states[fingerprint], chunk.file_name)
            if note:
                notes.setdefault(turn.id, {})[chunk.id] = note
    return start, page, notes


def _write_export(history, conversation_id: int, fmt: str, path: Path) -> None:
    from core.export import export_conversation

    text = export_conversation(history, conversation_id, fmt)
    path.write_text(text, encoding="utf-8")

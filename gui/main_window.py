"""The main window: conversations, documents, the chat, the question box and the Sources panel.

The window is view logic only. It turns user gestures (keys, buttons, file
choosers) into signals the controllers act on, and lays out its widgets;
which answer is current, which sentence is selected and what the Sources
panel and document view show is kept in step by `gui.answer_focus`. It holds
no engine, no async method and no network call (architecture rule 5).

Keys (promised by the built-in guide): Ctrl+O add files, Enter sends,
Shift+Enter new line, Esc stops, Alt+Down / Alt+Up next / previous answer
sentence, Delete removes the selected document. Conversations: Ctrl+N new,
F2 rename and Delete (with Undo in the banner) in the list, Ctrl+Shift+C copies
the current answer with citations, Ctrl+Shift+E exports the conversation.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QPushButton, QSplitter, QVBoxLayout, QWidget

from gui import theme
from gui.answer_focus import AnswerFocus
from gui.text_positions import plain_tooltip
from gui.widgets.chat_view import ChatView
from gui.widgets.composer import Composer
from gui.widgets.conversation_list import ConversationList
from gui.widgets.document_view import DocumentView
from gui.widgets.documents_panel import DocumentsPanel
from gui.widgets.message_banner import ERROR, INFO, MessageBanner
from gui.widgets.sources_panel import SourcesPanel

if TYPE_CHECKING:  # loaded with the first answer (see ChatView.add_answer), after the first paint
    from PySide6.QtGui import QCloseEvent

    from gui.widgets.answer_card import AnswerCard

FILE_FILTER = "Documents (*.txt *.md *.markdown *.pdf *.html *.htm *.docx);;All files (*)"
EXPORT_FILTER = "Markdown with footnotes (*.md);;JSON (*.json)"


def _file_dialog():
    """QFileDialog, imported when a dialog opens: setting up its type costs ~8 ms, before the first paint otherwise."""
    from PySide6.QtWidgets import QFileDialog

    return QFileDialog


# The share of the window's width the answers keep when it is made narrower.
CHAT_SHARE = 0.42


class MainWindow(QMainWindow):
    """Sourcelight's window; see the module docstring for what it does and does not do."""

    question_submitted = Signal(str)
    stop_requested = Signal()
    regenerate_requested = Signal()
    paths_chosen = Signal(list)  # list[str] of files and folders to ingest
    removal_requested = Signal(str)  # doc_key
    ingest_cancel_requested = Signal()
    refresh_requested = Signal()  # sync the index with the folders added before
    settings_requested = Signal()
    close_requested = Signal()
    link_open_requested = Signal(QUrl)
    new_conversation_requested = Signal()
    conversation_chosen = Signal(int)  # conversation id to open
    conversation_rename_requested = Signal(int, str)  # (conversation id, title)
    conversation_deletion_requested = Signal(int)  # conversation id
    conversation_search_changed = Signal(str)
    earlier_requested = Signal()  # older turns of the open conversation
    copy_requested = Signal(object)  # AnswerCard: copy it with citations
    export_requested = Signal(str)  # path to write the open conversation to
    undo_requested = Signal()  # the banner's Undo (after a delete)
    # (RetrievedChunk, start, end, width in device pixels): show this span in its document
    span_view_requested = Signal(object, int, int, int)
    page_view_requested = Signal(str, int, int)  # (source, page, width): another page of the PDF shown
    open_at_page_requested = Signal(str, int)  # (source, page; 0 for none): the system's viewer

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.splitter: QSplitter | None = None
        self.setWindowTitle("Sourcelight")
        self.setAccessibleName("Sourcelight")
        self.resize(1280, 800)
        self.setAcceptDrops(True)
        self._busy = False
        self._closing = False
        self._dark: bool | None = None

        self.conversation_list = ConversationList()
        self.documents_panel = DocumentsPanel()
        self.chat_view = ChatView()
        self.sources_panel = SourcesPanel()
        self.document_view = DocumentView()
        # Which answer and sentence the reader is at, kept in step across the chat and the two panes.
        self.focus = AnswerFocus(self.chat_view, self.sources_panel, self.document_view, parent=self)
        self.banner = MessageBanner()
        self.composer = Composer()

        self._make_actions()

        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send the question")
        self.send_button.setToolTip("Send the question (Enter)")
        self.send_button.setDefault(False)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the answer")
        self.stop_button.setToolTip("Stop the answer; the part already written is kept (Esc)")
        self.stop_button.clicked.connect(self.stop_action.trigger)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setAccessibleName("Regenerate the last answer")
        self.regenerate_button.setToolTip("Ask the last question again (Ctrl+R)")
        self.regenerate_button.clicked.connect(self.regenerate_action.trigger)
        buttons = QVBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.regenerate_button)
        buttons.addStretch(1)
        input_row = QHBoxLayout()
        input_row.setSpacing(6)
        input_row.addWidget(self.composer, 1)
        input_row.addLayout(buttons)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 8)
        center_layout.setSpacing(6)
        center_layout.addWidget(self.chat_view, 1)
        center_layout.addWidget(self.banner)
        center_layout.addLayout(input_row)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        # Conversations above documents: both stay visible, each with its own keys.
        self.side_splitter = QSplitter(Qt.Orientation.Vertical)
        self.side_splitter.setObjectName("sideSplitter")
        self.side_splitter.setChildrenCollapsible(False)
        self.side_splitter.addWidget(self.conversation_list)
        self.side_splitter.addWidget(self.documents_panel)
        self.side_splitter.setSizes([420, 380])
        self.splitter.addWidget(self.side_splitter)
        self.splitter.addWidget(center)
        # The Sources panel above the document view: the passage and, below, where it is in its file.
        self.sources_splitter = QSplitter(Qt.Orientation.Vertical)
        self.sources_splitter.setObjectName("sourcesSplitter")
        self.sources_splitter.setChildrenCollapsible(False)
        self.sources_splitter.addWidget(self.sources_panel)
        self.sources_splitter.addWidget(self.document_view)
        self.sources_splitter.setSizes([380, 420])
        self.splitter.addWidget(self.sources_splitter)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([230, 640, 410])
        self.documents_panel.setMinimumWidth(180)
        self.sources_panel.setMinimumWidth(240)
        self.setCentralWidget(self.splitter)

        self.status_label = QLabel("Starting...")
        self.status_label.setObjectName("statusText")
        self.status_label.setAccessibleName("Status")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # file names and server text appear here
        self.backend_label = QLabel()
        self.backend_label.setObjectName("backendText")
        self.backend_label.setAccessibleName("Model")
        self.backend_label.setTextFormat(Qt.TextFormat.PlainText)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.backend_label)

        self.composer.submitted.connect(self._on_composer_submitted)
        self.chat_view.answer_added.connect(self._on_chat_view_answer_added)
        self.focus.span_view_requested.connect(self.span_view_requested)
        self.sources_panel.open_requested.connect(self._on_sources_panel_open_requested)
        self.document_view.page_requested.connect(self.page_view_requested)
        self.document_view.open_requested.connect(self._on_document_view_open_requested)
        self.documents_panel.add_files_clicked.connect(self.add_files_action.trigger)
        self.documents_panel.add_folder_clicked.connect(self.add_folder_action.trigger)
        self.documents_panel.removal_requested.connect(self.removal_requested)
        self.documents_panel.ingest_cancel_clicked.connect(self.ingest_cancel_requested)
        self.documents_panel.refresh_clicked.connect(self.refresh_requested)
        self.link_open_requested.connect(self._on_self_link_open_requested)
        self.conversation_list.new_clicked.connect(self.new_conversation_action.trigger)
        self.conversation_list.conversation_chosen.connect(self.conversation_chosen)
        self.conversation_list.rename_requested.connect(self.conversation_rename_requested)
        self.conversation_list.deletion_requested.connect(self.conversation_deletion_requested)
        self.conversation_list.search_changed.connect(self.conversation_search_changed)
        self.chat_view.earlier_requested.connect(self.earlier_requested)
        self.banner.action_clicked.connect(self.undo_requested)
        self._apply_theme()
        self.set_busy(False)
        self.composer.setFocus()

    def _make_actions(self) -> None:
        def action(text: str, shortcut, slot, name: str) -> QAction:
            act = QAction(text, self)
            act.setObjectName(name)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
                act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.add_files_action = action("&Add files...", QKeySequence.StandardKey.Open,
                                       self._on_add_files_action_triggered, "addFilesAction")
        self.add_folder_action = action("Add &folder...", "Ctrl+Shift+O", self._on_add_folder_action_triggered,
                                        "addFolderAction")
        self.settings_action = action("&Settings...", "Ctrl+,", self.settings_requested.emit, "settingsAction")
        self.quit_action = action("&Quit", QKeySequence.StandardKey.Quit, self.close, "quitAction")
        self.stop_action = action("&Stop", "Esc", self.stop_requested.emit, "stopAction")
        self.regenerate_action = action("&Regenerate", "Ctrl+R", self.regenerate_requested.emit,
                                        "regenerateAction")
        self.next_sentence_action = action("&Next sentence", "Alt+Down", self._on_next_sentence_action_triggered,
                                           "nextSentenceAction")
        self.previous_sentence_action = action("&Previous sentence", "Alt+Up",
                                               self._on_previous_sentence_action_triggered,
                                               "previousSentenceAction")
        self.new_conversation_action = action("&New conversation", QKeySequence.StandardKey.New,
                                              self.new_conversation_requested.emit, "newConversationAction")
        self.export_action = action("&Export conversation...", "Ctrl+Shift+E", self._on_export_action_triggered,
                                    "exportAction")
        self.copy_citations_action = action("&Copy answer with citations", "Ctrl+Shift+C",
                                            self._on_copy_citations_action_triggered, "copyCitationsAction")
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.new_conversation_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.add_files_action)
        file_menu.addAction(self.add_folder_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        answer_menu = self.menuBar().addMenu("&Answer")
        answer_menu.addAction(self.stop_action)
        answer_menu.addAction(self.regenerate_action)
        answer_menu.addAction(self.copy_citations_action)
        answer_menu.addSeparator()
        answer_menu.addAction(self.next_sentence_action)
        answer_menu.addAction(self.previous_sentence_action)

    # -- state set by the controller ----------------------------------------
    def set_busy(self, busy: bool) -> None:
        """An answer is running: Stop (and Esc) work; Regenerate needs a question to repeat."""
        self._busy = busy
        self.stop_action.setEnabled(busy)
        self.stop_button.setEnabled(busy)
        can_regenerate = self.chat_view.last_answer() is not None
        self.regenerate_action.setEnabled(can_regenerate)
        self.regenerate_button.setEnabled(can_regenerate)

    @property
    def busy(self) -> bool:
        return self._busy

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_backend_description(self, text: str) -> None:
        self.backend_label.setText(text)
        self.backend_label.setToolTip(plain_tooltip(f"Answers come from {text}. Change it in Settings (Ctrl+,)."))

    def show_error(self, message: str) -> None:
        self.banner.show_message(message, ERROR)

    def show_notice(self, message: str, action: str | None = None, action_description: str = "") -> None:
        """An information message; with `action` (e.g. "Undo") its button emits `undo_requested`."""
        self.banner.show_message(message, INFO, action, action_description)

    def copy_to_clipboard(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def clear_conversation(self) -> None:
        """Empty the chat (another conversation opens, or a new one starts)."""
        self.set_current_answer(None)
        self.chat_view.clear()
        self.set_busy(self._busy)

    # -- answers -------------------------------------------------------------
    @property
    def current_answer(self) -> AnswerCard | None:
        return self.focus.current

    def set_current_answer(self, card: AnswerCard | None) -> None:
        """Make `card` the answer whose sources the panel shows."""
        self.focus.set_current_answer(card)

    def select_sentence(self, card: AnswerCard, index: int | None) -> None:
        """Select sentence `index` of `card`: highlight it and show its support in the panel."""
        self.focus.select_sentence(card, index)

    def _on_chat_view_answer_added(self, card: AnswerCard) -> None:
        self.focus.follow(card)
        card.link_clicked.connect(self.link_open_requested)
        card.copy_requested.connect(self.copy_requested)
        # An older answer loaded above the others is not the one the user is at.
        if card is self.chat_view.last_answer():
            self.set_current_answer(card)
        self.set_busy(self._busy)

    def _on_document_view_open_requested(self, source: str, page: int) -> None:
        if not self._existing(source):
            return
        self.open_at_page_requested.emit(source, page)

    def _on_next_sentence_action_triggered(self) -> None:
        self.focus.step_sentence(+1)

    def _on_previous_sentence_action_triggered(self) -> None:
        self.focus.step_sentence(-1)

    def _on_copy_citations_action_triggered(self) -> None:
        card = self.focus.current or self.chat_view.last_answer()
        if card is None:
            self.show_notice("There is no answer to copy yet.")
            return
        self.copy_requested.emit(card)

    def _on_export_action_triggered(self) -> None:
        path, chosen = _file_dialog().getSaveFileName(self, "Export conversation",
                                                   str(Path.home() / "conversation.md"), EXPORT_FILTER)
        if not path:
            return
        if "JSON" in chosen and not path.lower().endswith(".json"):
            path += ".json"
        elif "Markdown" in chosen and Path(path).suffix == "":
            path += ".md"
        self.export_requested.emit(path)

    # -- input -------------------------------------------------------------
    def _on_composer_submitted(self, _text: str) -> None:
        question = self.composer.take_text()
        if question.strip():
            self.question_submitted.emit(question)

    def _on_send_button_clicked(self) -> None:
        if self.composer.toPlainText().strip():
            self._on_composer_submitted(self.composer.toPlainText())
        self.composer.setFocus()

    def _on_add_files_action_triggered(self) -> None:
        paths, _ = _file_dialog().getOpenFileNames(self, "Add documents", str(Path.home()), FILE_FILTER)
        if paths:
            self.paths_chosen.emit(list(paths))

    def _on_add_folder_action_triggered(self) -> None:
        folder = _file_dialog().getExistingDirectory(self, "Add a folder of documents", str(Path.home()))
        if folder:
            self.paths_chosen.emit([folder])

    def _existing(self, source: str) -> Path | None:
        path = Path(source)
        if source.startswith("sample:"):
            from resources import SAMPLE_CORPUS

            path = SAMPLE_CORPUS / source.split(":", 1)[1]
        if not path.exists():
            self.show_error(f"{path} is no longer there. It was moved or deleted after it was added; add it "
                            "again to refresh the index.")
            return None
        return path

    def _on_sources_panel_open_requested(self, source: str) -> None:
        path = self._existing(source)
        if path is None:
            return
        # The page of the passage shown in the document view, when it is this file.
        page = self.document_view.page if self.document_view.source == source else 0
        self.open_at_page_requested.emit(source, page)

    def open_in_system_viewer(self, path: Path) -> None:
        """Open `path` with the desktop's default application (at its first page)."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _on_self_link_open_requested(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)

    def dragEnterEvent(self, event) -> None:  # Qt override
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.paths_chosen.emit(paths)
            event.acceptProposedAction()

    # -- look and lifetime ---------------------------------------------------
    def _apply_theme(self) -> None:
        self._dark = theme.is_dark(self.palette())
        self.setStyleSheet(theme.style_sheet(self.palette()))

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        super().changeEvent(event)
        # Only a switch between light and dark needs new rules; setting the
        # sheet itself sends palette changes, so anything else must not loop.
        if event.type() == QEvent.Type.PaletteChange and theme.is_dark(self.palette()) != self._dark:
            self._apply_theme()

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(1280, 800)

    @property
    def closing(self) -> bool:
        """The user has closed the window (the app is shutting down or about to)."""
        return self._closing

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        old = event.oldSize()
        # Only when a shown window is made narrower: the first layout keeps its own sizes.
        if old.isValid() and old.width() > 0 and event.size().width() < old.width():
            self._keep_chat_readable()

    def _keep_chat_readable(self) -> None:
        """When the window narrows, the side panes give way too, so the chat keeps CHAT_SHARE of the width.

        The side panes do not stretch (a wider window goes to the answers), so
        QSplitter took every narrowed pixel from the chat: at 800 px the answers
        were 160 px wide and their cards ran past the column.
        """
        if self.splitter is None or self.splitter.count() != 3:
            return
        sizes = self.splitter.sizes()
        total = sum(sizes)
        want = int(total * CHAT_SHARE)
        if total <= 0 or sizes[1] >= want:
            return
        mins = [max(self.splitter.widget(i).minimumSizeHint().width(), self.splitter.widget(i).minimumWidth())
                for i in (0, 2)]
        room = [max(0, sizes[0] - mins[0]), max(0, sizes[2] - mins[1])]
        deficit = min(want - sizes[1], sum(room))
        if deficit <= 0:
            return
        take = [deficit * r // max(1, sum(room)) for r in room]
        take[1] += deficit - sum(take)
        self.splitter.setSizes([sizes[0] - take[0], sizes[1] + deficit, sizes[2] - take[1]])

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        if not self._closing:
            self._closing = True
            self.close_requested.emit()
        event.accept()

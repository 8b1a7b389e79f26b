"""The window's controllers, one per feature, built together by `gui.controller.Controller`.

`answers` (ask, regenerate, stop, record and save each turn, copy),
`conversations` (the list, open, page, rename, delete, undo, export),
`documents` (add, refresh, cancel, remove), `settings` (the dialog, saves,
backend switches, the connection test) and `models` (the Models page: find,
use, download). `history` opens the conversation store and orders its writes;
`support` holds the small pieces they share. None imports `core` at module
level: the window is painted before torch and chromadb are imported.
"""

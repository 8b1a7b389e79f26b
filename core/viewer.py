"""Opening a PDF in the system's viewer at a given page, where the viewer allows it.

Desktop "open this file" calls (xdg-open, Qt's QDesktopServices) have no page
argument, and a "#page=N" fragment on a file URL is honoured by browsers but
makes most Linux viewers fail to find the file. So on Linux the default PDF
application is looked up (`xdg-mime query default application/pdf`) and, when
it is one whose command line takes a page, it is started with it. Anything
else (another viewer, macOS, Windows) gets `None`, and the caller opens the
file the ordinary way, at its first page.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Desktop-file name (lower case, without ".desktop") fragment -> (executable, how it takes the page).
_VIEWERS = (
    ("evince", "evince", "page-index"),
    ("atril", "atril", "page-index"),
    ("xreader", "xreader", "page-index"),
    ("okular", "okular", "dash-p"),
    ("zathura", "zathura", "dash-P"),
    ("qpdfview", "qpdfview", "hash"),
    ("firefox", "firefox", "fragment"),
    ("chromium", "chromium", "fragment"),
    ("google-chrome", "google-chrome", "fragment"),
)


def command_for(desktop_file: str, path: Path, page: int) -> list[str] | None:
    """The command that opens `path` at `page` (1-based) in the viewer named by `desktop_file`, or None."""
    name = desktop_file.strip().lower()
    for fragment, exe, style in _VIEWERS:
        if fragment not in name:
            continue
        found = shutil.which(exe)
        if found is None:
            return None
        target = str(path)
        if style == "page-index":
            return [found, f"--page-index={page}", target]
        if style == "dash-p":
            return [found, "-p", str(page), target]
        if style == "dash-P":
            return [found, "-P", str(page), target]
        if style == "hash":
            return [found, f"{target}#{page}"]
        return [found, f"{path.as_uri()}#page={page}"]
    return None


def open_at_page(path: Path, page: int) -> bool:
    """Start the default PDF viewer at `page`; False when that is not possible here (open it plainly).

    Blocking for a moment (it asks xdg-mime): call it off the UI thread.
    """
    if page < 1 or not sys.platform.startswith("linux") or shutil.which("xdg-mime") is None:
        return False
    try:
        default = subprocess.run(["xdg-mime", "query", "default", "application/pdf"], capture_output=True,
                                 text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    command = command_for(default, Path(path), page)
    if command is None:
        return False
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError:
        return False
    return True

"""The file types Sourcelight reads and the largest file it will hold in memory to read."""
from __future__ import annotations

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".docx")

# Large enough for any real book or manual; the cap exists because the whole
# file is held in memory (bytes, then decoded text) while it is extracted.
MAX_FILE_BYTES = 200 * 1024 * 1024

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})

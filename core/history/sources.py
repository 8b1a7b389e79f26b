"""Source files as a turn saw them: a fingerprint when it is saved, and whether the file changed since."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# Files up to this size are hashed when a turn is saved, so that a file that
# was only touched (same bytes, new mtime) is not reported as changed. Bigger
# files fall back to size + mtime: hashing 64 MB takes ~0.1 s, and add_turn
# must stay quick enough that the turn is on disk before the next question.
HASH_LIMIT_BYTES = 64 * 1024 * 1024

SourceState = Literal["unchanged", "changed", "removed", "unknown"]


@dataclass(frozen=True)
class SourceFingerprint:
    """What a source file looked like when a turn was saved.

    `size` is None when there was no readable file at that time (a sample
    source, a file already gone): its later state is "unknown".
    """

    source: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None = None


def _is_file_source(source: str) -> bool:
    # "sample:<name>" and other non-path sources have no file to compare.
    return os.path.isabs(source)


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str | None:
    """Hash of a file version; (size, mtime_ns) in the key lets the cache notice a new version."""
    if size > HASH_LIMIT_BYTES:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def fingerprint_source(source: str) -> SourceFingerprint:
    """Size, mtime and (for files up to HASH_LIMIT_BYTES) sha256 of a source file, now."""
    if not _is_file_source(source):
        return SourceFingerprint(source, None, None)
    try:
        st = os.stat(source)
    except OSError:
        return SourceFingerprint(source, None, None)
    return SourceFingerprint(source, st.st_size, st.st_mtime_ns, _sha256(source, st.st_size, st.st_mtime_ns))


def source_state(fingerprint: SourceFingerprint | None) -> SourceState:
    """Compare a source file on disk now with its fingerprint from save time.

    Cheap in the common case (one stat); a file whose mtime moved but whose
    size did not is hashed (once per version, cached) so that a touch or a
    copy of identical bytes is not called a change.
    """
    if fingerprint is None or fingerprint.size is None:
        return "unknown"
    try:
        st = os.stat(fingerprint.source)
    except FileNotFoundError:
        return "removed"
    except OSError:
        return "unknown"
    if st.st_size != fingerprint.size:
        return "changed"
    if st.st_mtime_ns == fingerprint.mtime_ns:
        return "unchanged"
    if fingerprint.sha256 is None:
        return "changed"
    now = _sha256(fingerprint.source, st.st_size, st.st_mtime_ns)
    return "unchanged" if now == fingerprint.sha256 else "changed"


def source_note(state: SourceState, file_name: str) -> str | None:
    """The note the sources panel shows under a passage whose file moved on (None: no note)."""
    if state == "changed":
        return (f"{file_name} has changed since this answer was written; the passage shown is the text "
                "as it was then.")
    if state == "removed":
        return (f"{file_name} has been moved or deleted since this answer was written; the passage shown "
                "is the text as it was then.")
    return None

"""Which files to read and their bytes: folders walked deterministically (no symlink loops), sizes capped."""
from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.ingest.documents.formats import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from core.ingest.documents.problems import name_error, not_a_file, not_found, os_error, too_large, unsupported
from core.errors import CODE_CHANGED, CODE_NOT_FOUND, CODE_PERMISSION, IngestError



def iter_files(paths: Iterable[Path], *, skipped: Counter | None = None
               ) -> Iterator[tuple[Path, IngestError | None]]:
    """Expand files and folders into `(file, None)` for each supported file to extract.

    Folders are walked recursively in name order. Inside folders, hidden
    entries (names starting with ".") are skipped, and files of unsupported
    types are skipped but counted by suffix in `skipped` when it is given
    (".png" -> 12; "" for names without one); a path given explicitly is never skipped silently: if it is
    missing, unsupported or unreadable it comes back as `(path, IngestError)`,
    as do folders that cannot be listed. A file reachable twice (through
    symlinks, or given both directly and inside a folder) is yielded once, and
    symlink cycles are walked once.
    """
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    for path in paths:
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            yield path, not_found(path)
            continue
        except OSError as exc:  # permission on a parent, a symlink loop (ELOOP), ...
            yield path, os_error(path, exc)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, seen_dirs, seen_files, skipped)
        elif not stat.S_ISREG(st.st_mode):
            yield path, not_a_file(path)
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            yield path, unsupported(path)
        elif _first_visit(path, seen_files):
            yield path, name_error(path)


def _walk(root: Path, seen_dirs: set[str], seen_files: set[str], skipped: Counter | None = None
          ) -> Iterator[tuple[Path, IngestError | None]]:
    """Depth-first, name-ordered walk; an explicit stack so deep trees cannot hit the recursion limit."""
    if not _first_visit(root, seen_dirs):
        return
    listing = _sorted_entries(root)
    if isinstance(listing, IngestError):
        yield root, listing
        return
    stack = [iter(listing)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        entry_path = Path(entry.path)
        supported = entry_path.suffix.lower() in SUPPORTED_SUFFIXES
        try:
            is_dir = entry.is_dir()  # follows symlinks, so linked folders are walked too
            is_file = not is_dir and entry.is_file()
        except OSError as exc:  # e.g. ELOOP from a symlink that points at itself
            if supported:
                yield entry_path, os_error(entry_path, exc)
            continue
        if is_dir:
            if not _first_visit(entry_path, seen_dirs):
                continue
            listing = _sorted_entries(entry_path)
            if isinstance(listing, IngestError):
                yield entry_path, listing
            else:
                stack.append(iter(listing))
        elif is_file:
            if supported and _first_visit(entry_path, seen_files):
                yield entry_path, name_error(entry_path)
            elif not supported and skipped is not None and _first_visit(entry_path, seen_files):
                skipped[entry_path.suffix.lower()] += 1
        elif supported and entry.is_symlink():
            # A dangling link named like a document: the user probably expects it.
            yield entry_path, not_found(entry_path)


def _sorted_entries(folder: Path) -> list[os.DirEntry] | IngestError:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return not_found(folder)
    except PermissionError:
        return IngestError(
            f"Cannot open the folder {folder}: permission denied. "
            "Allow your user to read it, or remove it from the list.",
            code=CODE_PERMISSION,
        )
    except OSError as exc:
        return os_error(folder, exc)


def _first_visit(path: Path, seen: set[str]) -> bool:
    """Record `path` by its real location; False if it was recorded already."""
    key = os.path.normcase(os.path.realpath(path))
    if key in seen:
        return False
    seen.add(key)
    return True


# -- reading ----------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """The whole file, once it is known to be a regular, supported file under the size cap."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as exc:
        raise os_error(path, exc) from exc
    if stat.S_ISDIR(st.st_mode):
        raise os_error(path, IsADirectoryError())
    # Opening a FIFO would block until someone writes to it, so check first.
    if not stat.S_ISREG(st.st_mode):
        raise not_a_file(path)
    # Refused before reading: no point in reading 200 MB of a .exe.
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise unsupported(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise too_large(path, size)
            # Reading one byte past the cap bounds memory even if the file grows meanwhile.
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        # It existed a moment ago (the stat above): deleted or moved since.
        raise IngestError(
            f"{path} was moved or deleted while it was being read; "
            "add it again from its new location.",
            code=CODE_NOT_FOUND,
        ) from None
    except OSError as exc:
        raise os_error(path, exc) from exc
    if len(data) > MAX_FILE_BYTES:
        raise too_large(path, len(data))
    if len(data) != size:
        raise IngestError(
            f"{path} changed while it was being read ({size} bytes expected, {len(data)} read); "
            "wait until the program writing it has finished, then add it again.",
            code=CODE_CHANGED,
        )
    return data

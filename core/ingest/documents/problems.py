"""What a file that cannot be read is told: an `IngestError` per way it fails, naming the file and the next step."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from core.ingest.documents.formats import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from core.errors import (CODE_BAD_NAME, CODE_BINARY, CODE_ENCRYPTED, CODE_NO_TEXT, CODE_NOT_A_FILE, CODE_NOT_FOUND,
                         CODE_PERMISSION, CODE_READ_FAILED, CODE_TOO_LARGE, CODE_UNSUPPORTED, IngestError)


def not_found(path: Path) -> IngestError:
    return IngestError(
        f"{path} does not exist; check the path, or remove it from the list if it was moved or deleted.",
        code=CODE_NOT_FOUND,
    )


def name_error(path: Path) -> IngestError | None:
    """An error for a file whose name is not valid UTF-8, else None.

    Linux allows any bytes in a name (Latin-1 names from old archives arrive
    in Python as lone surrogates); the index stores names as UTF-8 text, so such
    a file cannot be recorded until it is renamed.
    """
    try:
        str(path).encode("utf-8")
        return None
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "replace")
        return IngestError(
            f"The name of {shown} is not valid UTF-8 text, so it cannot be indexed. Rename the file "
            "(for example with `convmv -f latin1 -t utf8`, or in a file manager) and add it again.",
            code=CODE_BAD_NAME,
        )


def not_a_file(path: Path) -> IngestError:
    return IngestError(
        f"{path} is not a regular file (it is a device, pipe or socket); add documents or folders only.",
        code=CODE_NOT_A_FILE,
    )


def os_error(path: Path, exc: OSError) -> IngestError:
    if isinstance(exc, PermissionError):
        return IngestError(
            f"Cannot read {path}: permission denied. "
            "Allow your user to read it (or copy it somewhere readable) and add it again.",
            code=CODE_PERMISSION,
        )
    if isinstance(exc, IsADirectoryError):
        return IngestError(
            f"{path} is a folder; add the folder itself to ingest the documents inside it.",
            code=CODE_NOT_A_FILE,
        )
    if exc.errno == errno.ELOOP:
        return IngestError(
            f"Cannot read {path}: it is a symbolic link that loops back on itself (or through too many links). "
            "Point the link at a real file or folder, or remove it, and add it again.",
            code=CODE_READ_FAILED,
        )
    reason = exc.strerror or str(exc)
    return IngestError(
        f"Cannot read {path}: {reason}. Check that the drive is connected and the path is valid, then try again.",
        code=CODE_READ_FAILED,
    )


def too_large(path: Path, size: int) -> IngestError:
    from core.units import format_bytes

    return IngestError(
        f"{path} is {format_bytes(size)}, more than the {format_bytes(MAX_FILE_BYTES)} limit; "
        "split it into smaller files and add those.",
        code=CODE_TOO_LARGE,
    )


def unsupported(path: Path) -> IngestError:
    kind = f"'{path.suffix}' files are" if path.suffix else "Files without an extension are"
    return IngestError(
        f"Cannot read {path}: {kind} not supported. "
        f"Supported types: {', '.join(SUPPORTED_SUFFIXES)}; convert it to one of these (e.g. PDF or plain text).",
        code=CODE_UNSUPPORTED,
    )


def binary(path: Path) -> IngestError:
    return IngestError(
        f"{path} holds binary data, not text, despite its '{path.suffix}' extension; "
        "check that it is the file you meant (if it is UTF-16 text without a byte-order mark, re-save it as UTF-8).",
        code=CODE_BINARY,
    )


def encrypted(path: Path) -> IngestError:
    return IngestError(
        f"{path} is password-protected; open it with its password and save or print an unprotected copy, "
        "then add that copy.",
        code=CODE_ENCRYPTED,
    )


def no_text(path: Path, suffix: str) -> IngestError:
    if suffix == ".pdf":
        hint = "if it is a scanned PDF, run OCR first (e.g. ocrmypdf) and add the result"
    elif suffix == ".docx":
        hint = "if its content is images of text, run OCR first"
    else:
        hint = "add some text to it or remove it from the list"
    return IngestError(f"{path} contains no text; {hint}.", code=CODE_NO_TEXT)

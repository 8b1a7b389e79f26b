"""Plain text and Markdown: decoding (BOMs, UTF-8 with a cp1252 fallback), newlines, and refusing binary files."""
from __future__ import annotations

import re
from pathlib import Path

from core.ingest.documents.problems import binary
from core.errors import CODE_BINARY, IngestError

# Binary sniffing looks at a bounded prefix so a 50 MB file costs no more than a
# small one. Uniformly random bytes are ~11% C0 control characters, while real
# text (even ANSI-coloured logs) stays far below 10%; NUL bytes, checked over
# the whole text, catch nearly every binary format on their own.
_SNIFF_CHARS = 64 * 1024
_MAX_CONTROL_RATIO = 0.10
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")

# Longest BOMs first: the UTF-32 LE BOM starts with the UTF-16 LE one. The BOM
# is sliced off before decoding (the explicit-endian codecs would keep it).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def plain_text(path: Path, data: bytes) -> tuple[str, tuple[str, ...]]:
    text = normalise_newlines(_decode(path, data))
    bad = text.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode("utf-8"))
    if bad > 0:
        return text, (f"{path}: {bad} byte sequence(s) were not valid UTF-8 and show as {_REPLACEMENT}; "
                      "the rest of the text was read as UTF-8.",)
    return text, ()


_REPLACEMENT = "\ufffd"
# Share of a file's non-ASCII characters that may be broken for it still to be
# read as UTF-8 (with U+FFFD for the broken ones) rather than as cp1252.
_MAX_BROKEN_UTF8 = 0.05


def _lenient_utf8(data: bytes) -> str | None:
    """`data` as UTF-8 with U+FFFD for broken sequences, when it is clearly UTF-8 apart from those.

    A UTF-8 file with one bad byte (a part cut by `split -b`, a copy-paste
    accident) would otherwise be read entirely as cp1252, turning every accent
    and every CJK character into mojibake. A cp1252 or latin-1 file almost never
    forms valid multi-byte UTF-8 sequences, so it stays on the cp1252 path.
    """
    text = data.decode("utf-8", errors="replace")
    broken = text.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode("utf-8"))
    valid = len(text) - len(text.encode("ascii", "ignore")) - broken  # non-ASCII characters decoded
    # One broken sequence is allowed in any text that is otherwise UTF-8 (the
    # cut last character of a `split -b` part); more only in proportion.
    allowed = max(1.0, _MAX_BROKEN_UTF8 * (valid + broken))
    return text if valid >= 2 * broken and broken <= allowed else None


def _decode(path: Path, data: bytes) -> str:
    """BOM first, then strict UTF-8, then UTF-8 with a few broken sequences, then cp1252,
    then latin-1 (which cannot fail)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding)
            except UnicodeDecodeError:
                raise IngestError(
                    f"{path} starts with a {encoding.upper()} byte-order mark but is not valid "
                    f"{encoding.upper()} text; re-save it as UTF-8 and add it again.",
                    code=CODE_BINARY,
                ) from None
            check_not_binary(path, text)
            return text
    # Checked on the bytes so binaries are refused before any decoding work.
    if b"\x00" in data:
        raise binary(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _lenient_utf8(data)
    if text is None:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            # cp1252 leaves five bytes undefined; latin-1 maps every byte, so
            # it is the last resort (the text may show a stray character).
            text = data.decode("latin-1")
    check_not_binary(path, text)
    return text


def check_not_binary(path: Path, text: str) -> None:
    if "\x00" in text:
        raise binary(path)
    sample = text[:_SNIFF_CHARS]
    if sample and len(_CONTROL_CHARS.findall(sample)) > _MAX_CONTROL_RATIO * len(sample):
        raise binary(path)


def normalise_newlines(text: str) -> str:
    # Two linear passes; "\r\n" first so it becomes one newline, not two.
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- PDF --------------------------------------------------------------------

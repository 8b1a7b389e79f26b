"""What a GGUF model file says about itself: name, quantisation, context length, licence, chat template.

The values come from the file's key-value header, using the key names and
type codes of the `gguf` package (the reference implementation from
llama.cpp). Its `GGUFReader` is not used to read them: it parses every
tensor and every tokenizer array up front, which took 9 s for the bundled
98 MB SmolLM2 file on these machines (49,152-entry vocabulary arrays), and
the Models page lists every GGUF on the disk. This reader walks the header
only, skipping arrays by their lengths, and stops before the tensor table:
milliseconds per file whatever its size.
"""
from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf import GGUFValueType, LlamaFileType

_MAGIC = b"GGUF"
_SCALARS = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H", GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i", GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q", GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}
# Strings longer than this are not kept (a chat template is a few kB; nothing we show is longer).
_MAX_KEPT_STRING = 64 * 1024
_QUANT_IN_NAME = re.compile(r"(?i)(?:^|[-_.])((?:I?Q\d+_[A-Z0-9_]+|I?Q\d+|F16|BF16|F32))(?=\.gguf$|[-_.])")


class GGUFError(ValueError):
    """The file is not a GGUF model, or its header is damaged."""


@dataclass(frozen=True)
class GGUFInfo:
    """The facts shown on the Models page; None where the file does not say."""

    path: Path
    size_bytes: int
    name: str
    architecture: str | None
    quantization: str | None
    context_length: int | None
    license: str | None
    chat_template: str | None
    parameters: str | None  # general.size_label, e.g. "1.5B"
    kind: str | None  # general.type: "model", or "adapter"/"mmproj" for files that cannot answer alone

    @property
    def can_answer(self) -> bool:
        """Whether the file is a language model on its own (not a vision projector or an adapter)."""
        return self.kind in (None, "model") and self.architecture not in ("clip", None)


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Read the header of `path`; raises GGUFError for anything that is not a readable GGUF file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                raise GGUFError(f"{path} is too short to be a GGUF model.")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                values = _read_header(data, path)
    except OSError as exc:
        raise GGUFError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    arch = values.get("general.architecture")
    context = values.get(f"{arch}.context_length") if arch else None
    name = values.get("general.name") or path.stem
    return GGUFInfo(
        path=path, size_bytes=size, name=str(name), architecture=arch,
        quantization=_quantization(values.get("general.file_type"), path.name),
        context_length=int(context) if isinstance(context, int) else None,
        license=values.get("general.license"), chat_template=values.get("tokenizer.chat_template"),
        parameters=values.get("general.size_label"), kind=values.get("general.type"))


def _quantization(file_type: object, file_name: str) -> str | None:
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    match = _QUANT_IN_NAME.search(file_name)
    return match.group(1).upper() if match else None


def _read_header(data: mmap.mmap, path: Path) -> dict[str, object]:
    if data[:4] != _MAGIC:
        raise GGUFError(f"{path} is not a GGUF model file.")
    try:
        version, _tensors, kv_count = struct.unpack_from("<IQQ", data, 4)
        if version < 2:
            raise GGUFError(f"{path} is a GGUF version {version} file, too old to read.")
        offset = 24
        values: dict[str, object] = {}
        for _ in range(kv_count):
            key, offset = _string(data, offset)
            (vtype,), offset = struct.unpack_from("<I", data, offset), offset + 4
            value, offset = _value(data, offset, GGUFValueType(vtype))
            values[key.decode("utf-8", "replace")] = value
        return values
    except (struct.error, ValueError, IndexError) as exc:
        if isinstance(exc, GGUFError):
            raise
        raise GGUFError(f"The header of {path} is damaged ({exc}).") from exc


def _string(data: mmap.mmap, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from("<Q", data, offset)
    start = offset + 8
    if start + length > len(data):
        raise GGUFError("a string runs past the end of the file")
    return data[start:start + min(length, _MAX_KEPT_STRING)], start + length


def _value(data: mmap.mmap, offset: int, vtype: GGUFValueType) -> tuple[object, int]:
    if vtype == GGUFValueType.STRING:
        raw, offset = _string(data, offset)
        return raw.decode("utf-8", "replace"), offset
    if vtype == GGUFValueType.ARRAY:
        (item_type,), offset = struct.unpack_from("<I", data, offset), offset + 4
        (count,), offset = struct.unpack_from("<Q", data, offset), offset + 8
        item_type = GGUFValueType(item_type)
        if item_type in _SCALARS:  # skipped in one step: nothing shown is an array of numbers
            return None, offset + count * struct.calcsize(_SCALARS[item_type])
        items = []
        for _ in range(count):
            item, offset = _value(data, offset, item_type)
            if len(items) < 16:
                items.append(item)
        return items, offset
    fmt = _SCALARS[vtype]
    return struct.unpack_from(fmt, data, offset)[0], offset + struct.calcsize(fmt)

"""How a model and a download are put into words, the same on the Models page and on the command line."""
from __future__ import annotations

from core.units import format_bytes, format_duration


def model_facts(entry) -> str:
    """"1.1 GiB, Q4_K_M, 32,768-token context, licence apache-2.0" - only what the file or server says."""
    parts = []
    if entry.parameters:
        parts.append(f"{entry.parameters} parameters")
    if entry.size_bytes:
        parts.append(format_bytes(entry.size_bytes))
    if entry.quantization:
        parts.append(entry.quantization)
    if entry.context_length:
        parts.append(f"{entry.context_length:,}-token context")
    if entry.license:
        parts.append(f"licence {entry.license}")
    if entry.kind == "file" and entry.has_chat_template is False:
        parts.append("no chat template in the file")
    return ", ".join(parts)


def recommended_facts(model) -> str:
    """"about 770 MiB, 1B parameters, licence ..., needs about 2 GB of memory"."""
    return (f"about {format_bytes(model.size_bytes)}, {model.parameters} parameters, licence {model.license}, "
            f"needs about {model.ram_gb:g} GB of memory")


def download_progress_text(p) -> str:
    """"312 MiB of 1.1 GiB, 4.2 MiB/s, about 3 min left" (or the stage while checking and verifying)."""
    if p.stage == "checking":
        return "Asking Hugging Face for the file..."
    if p.stage == "verifying":
        return "Checking the file's checksum (SHA-256)..."
    if p.stage == "done":
        return "Downloaded and verified."
    parts = [f"{format_bytes(p.done)} of {format_bytes(p.total)}" if p.total else format_bytes(p.done)]
    if p.bytes_per_s:
        parts.append(f"{format_bytes(p.bytes_per_s)}/s")
    if p.seconds_left is not None:
        parts.append(f"{format_duration(p.seconds_left)} left")
    return ", ".join(parts)

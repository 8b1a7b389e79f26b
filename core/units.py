"""Human-readable sizes and durations for messages, the CLI and the window.

Sizes are binary multiples and say so (KiB, MiB, GiB: 1 MiB = 1,048,576
bytes); a size computed with 2**20 but labelled "MB" is off by 5%, and by 7%
at GiB. Durations are rounded to what a person waiting needs ("about 3 min").
"""
from __future__ import annotations

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def format_bytes(size: float) -> str:
    """"512 bytes", "1.5 KiB", "210 MiB", "1.2 GiB" (three significant figures at most)."""
    size = float(size)
    unit = 0
    while abs(size) >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    if unit == 0:
        return f"{int(size)} bytes" if int(size) != 1 else "1 byte"
    if abs(size) >= 100:
        return f"{size:.0f} {_UNITS[unit]}"
    if abs(size) >= 10:
        return f"{_trim(f'{size:.1f}')} {_UNITS[unit]}"
    return f"{_trim(f'{size:.2f}')} {_UNITS[unit]}"


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


def format_duration(seconds: float) -> str:
    """"less than a minute", "about 3 min", "about 1 h 20 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return "less than a minute"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h" + (f" {minutes} min" if minutes else "")

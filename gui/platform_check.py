"""Before Qt starts: can this Linux desktop show the window, and if not, which package is missing?

Qt 6's X11 platform plugin (`libqxcb.so`) needs a set of xcb libraries that
many desktops do not install with X itself (`libxcb-cursor0` since Qt 6.5,
`libxcb-icccm4`, `libxcb-keysyms1`, ...). When one is missing Qt prints its
plugin error and aborts the process, which a Python `try` cannot catch, and
its message names neither our app nor the package to install. So the
launcher asks first: `ldd` (part of glibc, on every such system) lists the
libraries the plugin cannot find, `libxcb-cursor.so.0` (which Qt loads at run
time, so ldd does not list it) is tried directly, and the message names the
Debian/Ubuntu packages that provide them. Nothing here imports Qt.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The library file -> the Debian/Ubuntu package that installs it (Qt's own list
# of xcb dependencies, plus the few other libraries its plugins link).
PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
}
# Loaded by Qt with dlopen at run time, so `ldd` never lists it.
RUNTIME_LOADED = ("libxcb-cursor.so.0",)
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def uses_xcb(env: dict | None = None) -> bool:
    """Will Qt pick its X11 plugin? (Linux, no platform forced elsewhere, an X display, no Wayland one.)"""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    forced = env.get("QT_QPA_PLATFORM", "").split(";")[0].strip().lower()
    if forced:
        return forced == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def _qt_files() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return []
    qt = Path(list(spec.submodule_search_locations)[0]) / "Qt"
    return [p for p in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6") if p.exists()]


def _ldd_missing(files: list[Path]) -> list[str]:
    ldd = shutil.which("ldd")
    if not ldd or not files:
        return []
    found: list[str] = []
    for f in files:
        try:
            out = subprocess.run([ldd, str(f)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for name in _NOT_FOUND.findall(out):  # a library can be listed once per library that needs it
            if name not in found:
                found.append(name)
    return found


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_libraries(files: list[Path] | None = None) -> list[str]:
    """The libraries Qt's X11 plugin needs and this system lacks (file names), in a stable order."""
    missing = _ldd_missing(_qt_files() if files is None else files)
    missing += [name for name in RUNTIME_LOADED if name not in missing and not _loads(name)]
    return sorted(missing)


def packages_for(libraries: list[str]) -> list[str]:
    """Debian/Ubuntu package names for library files (a guess from the name for ones not in the table)."""
    out = []
    for lib in libraries:
        name = PACKAGES.get(lib)
        if name is None:  # libfoo-bar.so.3 -> libfoo-bar3, Debian's usual naming
            m = re.match(r"^(lib[\w+-]+?)\.so\.(\d+)", lib)
            name = (m.group(1) + ("-" if m.group(1)[-1].isdigit() else "") + m.group(2)).lower() if m else lib
        if name not in out:
            out.append(name)
    return out


def window_problem(env: dict | None = None, libraries: list[str] | None = None) -> str | None:
    """What stops the window from opening on this desktop, with the command that fixes it; None if nothing."""
    if not uses_xcb(env):
        return None
    libraries = missing_libraries() if libraries is None else libraries
    if not libraries:
        return None
    packages = " ".join(packages_for(libraries))
    return (f"Sourcelight's window cannot open: Qt needs system libraries this computer lacks "
            f"({', '.join(libraries)}).\n"
            f"Install them, then start Sourcelight again:\n"
            f"    sudo apt install {packages}        # Debian, Ubuntu\n"
            f"On other systems install the packages that provide those files (Fedora: xcb-util-cursor, "
            f"xcb-util-wm, xcb-util-keysyms). The command line works without them: sourcelight --help")

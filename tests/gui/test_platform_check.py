"""A desktop without Qt's xcb libraries gets the package to install, not Qt's plugin error."""
from __future__ import annotations

import pytest

from gui import launcher, platform_check


def test_the_message_names_the_packages_and_the_command(monkeypatch):
    env = {"DISPLAY": ":0"}
    problem = platform_check.window_problem(env, ["libxcb-cursor.so.0", "libxcb-icccm.so.4"])
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4" in problem
    assert "libxcb-cursor.so.0" in problem and "sourcelight --help" in problem


@pytest.mark.parametrize("env", [
    {"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"},  # tests, CI
    {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"},  # Qt picks Wayland
    {},  # no display at all: not an xcb question
])
def test_no_check_where_qt_will_not_use_x11(env):
    assert platform_check.window_problem(env, ["libxcb-cursor.so.0"]) is None


def test_nothing_missing_means_no_message():
    assert platform_check.window_problem({"DISPLAY": ":0"}, []) is None


def test_unknown_libraries_get_debians_usual_package_name():
    assert platform_check.packages_for(["libxcb-util.so.1", "libdbus-1.so.3", "libfoo-2.so.7"]) == \
        ["libxcb-util1", "libdbus-1-3", "libfoo-2-7"]


def test_ldd_output_is_read_for_libraries_not_found(monkeypatch, tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    out = ("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibxcb-icccm.so.4 => not found\n"
           "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)\n\tlibxcb-keysyms.so.1 => not found\n"
           "\tlibxcb-icccm.so.4 => not found\n")  # listed again for a library that needs it too
    monkeypatch.setattr(platform_check.shutil, "which", lambda _n: "/usr/bin/ldd")
    monkeypatch.setattr(platform_check.subprocess, "run",
                        lambda *a, **k: type("R", (), {"stdout": out})())
    monkeypatch.setattr(platform_check, "_loads", lambda _name: True)
    assert platform_check.missing_libraries([plugin]) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_the_launcher_says_which_package_and_exits_before_qt_starts(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(platform_check, "missing_libraries", lambda files=None: ["libxcb-cursor.so.0"])
    started = []
    monkeypatch.setattr("gui.app.main", lambda argv: started.append(argv) or 0)
    assert launcher.main([]) == 1
    assert started == []
    assert "sudo apt install libxcb-cursor0" in capsys.readouterr().err

"""`python3 -m core.fast_start`: make the ONNX exports that let later starts skip torch (`core.onnx_cache`).

The window starts this as a separate, low-priority process once its own
start-up is done, and does not wait for it: an export takes several seconds of
CPU (torch must load the models to export them), and a user who quits meanwhile
must not wait for it. The process writes into the same data directory (its
`SOURCELIGHT_HOME` is the app's), each file atomically, so a kill leaves at
most a `.part` file that the next export replaces. Exit status 0 when both
exports are in place.
"""
from __future__ import annotations

import os
import subprocess
import sys


DISABLE_ENV = "SOURCELIGHT_NO_FAST_START"  # "1": never export (a read-only or small disk; the test suite)


def start_in_background() -> subprocess.Popen | None:
    """Start the export process (None when it cannot or should not run here: a frozen build has no
    `python -m`, and SOURCELIGHT_NO_FAST_START=1 turns it off)."""
    if getattr(sys, "frozen", False) or os.environ.get(DISABLE_ENV) == "1":
        return None
    return subprocess.Popen([sys.executable, "-m", "core.fast_start"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def main() -> int:
    try:
        os.nice(10)  # behind the app and the user's work
    except (AttributeError, OSError):
        pass
    from core.attribution.calibration import Calibration
    from core.attribution.verifier import Verifier
    from core.embedding import Embedder

    ready = Embedder().prepare_fast_start()
    settings = Calibration.load().verifier
    if settings is not None:
        ready = Verifier(max_tokens=settings.max_tokens).prepare_fast_start() and ready
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())

"""The `sourcelight` console entry point.

With no arguments it opens the window; with a sub-command it runs the
headless CLI in `core.cli`. Qt is imported only on the window path, so the
CLI starts without it.
"""
from __future__ import annotations

import sys

WINDOW_FLAGS = {"--self-test"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in WINDOW_FLAGS:
        try:
            from gui.app import main as gui_main
        except ImportError:  # the window is not part of this build yet
            from core.cli import build_parser

            build_parser().print_help()
            return 0
        return gui_main(argv)
    from core.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())

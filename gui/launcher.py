"""The `sourcelight` console entry point.

With no arguments it opens the window; with a sub-command it runs the
headless CLI in `core.cli`. Qt is imported only on the window path, so the
CLI starts without it. `bench` reaches `gui.bench` (which adds the window
benchmarks to the core ones) through the `sourcelight.verbs` entry point, as
`check` and `eval` reach theirs: the product imports no harness code.
"""
from __future__ import annotations

import sys

WINDOW_FLAGS = {"--self-test"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in WINDOW_FLAGS:
        from gui.platform_check import window_problem

        problem = window_problem()
        if problem:  # Qt would print its plugin error and abort; say which package instead
            print(problem, file=sys.stderr)
            return 1
        from gui.app import main as gui_main

        return gui_main(argv)
    from core.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())

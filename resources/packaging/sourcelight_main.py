"""Entry script of the frozen (PyInstaller) build: the same as the `sourcelight` console script.

PyInstaller needs a script file rather than the `gui.launcher:main` entry
point of pyproject.toml, so this one line of glue lives beside the spec.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    # A frozen executable re-runs itself for multiprocessing children (torch,
    # joblib); freeze_support lets such a child do its job instead of opening a window.
    multiprocessing.freeze_support()
    from gui.launcher import main

    sys.exit(main())

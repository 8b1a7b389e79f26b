"""The harness verbs of the command line (`check`, `bench`, `eval`), found through entry points.

The fault suite, the benchmarks and the evaluations are packages of their own
that the product never imports (tests/test_import_contract.py holds that);
they register a `main(argv)` under the `sourcelight.verbs` entry-point group in
pyproject.toml, and `sourcelight check | bench | eval` load them by name here.
A build that leaves them out still runs the app and the rest of the CLI.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Sequence

GROUP = "sourcelight.verbs"

Verb = Callable[[Sequence[str]], int]


def harness_verb(name: str) -> Verb | None:
    """The installed `main(argv)` for `name`, or None when this install has no such verb."""
    for point in entry_points(group=GROUP, name=name):
        return point.load()
    return None


def run_harness_verb(name: str, argv: Sequence[str]) -> int:
    """Run a harness verb, or say how to get it when the install lacks it (exit code 2)."""
    import sys

    verb = harness_verb(name)
    if verb is None:
        print(f"Error: `sourcelight {name}` is not part of this installation "
              f"(it comes with the source install: pip install -e \".[test]\").", file=sys.stderr)
        return 2
    return verb(list(argv))

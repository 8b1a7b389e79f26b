"""The loaded condition of the speed benches: a second process keeping one core busy (issue 19).

A goal that holds only on an idle machine does not hold on a user's desktop,
where a browser tab or a build shares the cores. So the benches measure twice:
on the machine as it is ("idle") and with this process spinning on one core
("busy_core"), and print both.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Iterator

IDLE = "idle"
BUSY_CORE = "busy_core"
CONDITIONS = (IDLE, BUSY_CORE)
DESCRIPTION = {IDLE: "no load of its own", BUSY_CORE: "a second process kept one core busy"}


def add_conditions_argument(parser) -> None:
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help="machine conditions to measure, in order: idle, busy_core (default both; the bench "
                             "keeps one core busy with a second process itself for busy_core)")
    parser.add_argument("--busy-core", action="store_true", help="only the loaded condition (--conditions busy_core)")


def conditions(args) -> list[str]:
    """The conditions asked for on the command line, in the order given."""
    if getattr(args, "busy_core", False):
        return [BUSY_CORE]
    wanted = [c.strip().replace("-", "_").replace(" ", "_")
              for c in str(getattr(args, "conditions", IDLE)).split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CONDITIONS]
    if unknown or not wanted:
        raise SystemExit(f"--conditions {args.conditions}: choose from {', '.join(CONDITIONS)}")
    return wanted


@contextlib.contextmanager
def condition(name: str) -> Iterator[None]:
    """Run the block under `name`: as is, or with a second process keeping one core busy."""
    if name != BUSY_CORE:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()

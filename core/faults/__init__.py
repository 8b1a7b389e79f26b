"""The fault suite: bad input, folder sync, backend faults, cancellation and crashes, untrusted text, secrets.

`sourcelight check faults [--json]` calls `main(argv)`, which tries every
case against the real engine and prints one line per case, or with `--json`
one object: `{"tried": N, "survived": N, "lost": N, "failures": [...]}` where
each failure is an `Outcome` (name, category, survived, lost, the message the
user was shown, and the measured detail). The exit status is 0 only when every
case tried survived and nothing was lost.

The same case list is run by tests/faults/ (pytest, one test per case), so the
command and the tests cannot drift apart. Cases that need the window (what
the panels show, quitting mid-stream) live in tests/faults/gui/ only, because
core never imports Qt.

Modules: `base` (case, outcome, context, runner), `fake_openai` (the scripted
server), `scripted` (the scripted backend, the vector table for children),
`asking` (driving one question), and one module per category.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from core.faults.base import CATEGORIES, Case, FaultContext, Outcome, registered, run_case

__all__ = ["CASES", "Case", "FaultContext", "Outcome", "cases", "main", "run_all", "run_case", "summarize"]


def cases() -> list[Case]:
    """Every case, in suite order (categories as listed in CATEGORIES).

    The case modules are imported here, not at package import, so a child
    process (`python -m core.faults.children`) does not pay for the openai
    SDK and the rest when it only needs its own task.
    """
    # Importing a case module registers its cases.
    from core.faults import backend, bad_input, cancellation, folder_sync, secrets_leak, untrusted  # noqa: F401

    return sorted(registered(), key=lambda c: CATEGORIES.index(c.category))


def __getattr__(name: str):
    if name == "CASES":
        return cases()
    raise AttributeError(name)


def select(names: Sequence[str] = (), categories: Sequence[str] = ()) -> list[Case]:
    """The cases to run, in suite order; unknown names raise ValueError."""
    every = cases()
    unknown = sorted(set(names) - {c.name for c in every})
    if unknown:
        raise ValueError(f"unknown case(s): {', '.join(unknown)}")
    return [c for c in every if (not names or c.name in names) and (not categories or c.category in categories)]


def run_all(cases: Sequence[Case], ctx: FaultContext | None = None, *, on_outcome=None) -> list[Outcome]:
    """Run `cases` in order with one shared context (created and closed here unless given)."""
    own = ctx is None
    ctx = ctx or FaultContext()
    try:
        outcomes = []
        for c in cases:
            outcome = run_case(c, ctx)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        return outcomes
    finally:
        if own:
            ctx.close()


def summarize(outcomes: Sequence[Outcome]) -> dict:
    """The `--json` object. Skipped cases (not possible on this machine) are listed, not counted as tried."""
    tried = [o for o in outcomes if not o.skipped]
    summary = {
        "tried": len(tried),
        "survived": sum(o.survived for o in tried),
        "lost": sum(o.lost for o in tried),
        "failures": [o.to_json() for o in tried if not o.survived or o.lost],
    }
    skipped = [{"name": o.name, "category": o.category, "reason": o.skipped} for o in outcomes if o.skipped]
    if skipped:
        summary["skipped"] = skipped
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """`sourcelight check faults [--json] [--only NAME ...] [--category CAT ...] [--list]`."""
    from core.cli import terminal_safe

    parser = argparse.ArgumentParser(prog="sourcelight check faults",
                                     description="Try every fault case against the real engine.")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the counts and failures")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this case (repeat)")
    parser.add_argument("--category", action="append", default=[], choices=CATEGORIES, help="run one category")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        cases = select(args.only, args.category)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for c in cases:
            print(f"{c.category:15} {c.name:40} {c.doc}")
        return 0

    def report(o: Outcome) -> None:
        if args.json:
            return
        status = "skip" if o.skipped else ("ok  " if o.survived and not o.lost else ("LOST" if o.lost else "FAIL"))
        print(f"{status} {o.category:15} {o.name} ({o.seconds:.1f} s)", flush=True)
        if o.skipped:
            print(f"       {terminal_safe(o.skipped)}")
        elif not o.survived or o.lost:
            print(f"       message: {terminal_safe(o.message)}\n       detail: {terminal_safe(o.detail)}")

    outcomes = run_all(cases, on_outcome=report)
    summary = summarize(outcomes)
    if args.json:
        print(json.dumps(summary, ensure_ascii=True, indent=2))
    else:
        print(f"\n{summary['tried']} tried, {summary['survived']} survived, {summary['lost']} lost"
              + (f", {len(summary.get('skipped', []))} skipped" if summary.get("skipped") else ""))
    return 0 if summary["survived"] == summary["tried"] and not summary["lost"] else 1

"""Speed benchmarks (issue 5): each stage of the product next to its physical limit, in one run.

`sourcelight bench NAME [--json] [...]` (and `python -m core.bench NAME`)
lands in `main`. The Qt-free benchmarks live here:

- `retrieval`:   `Retriever.retrieve` vs bare query embedding + Chroma query (10k and 100k chunks);
- `ingest`:      `Ingestor` on a generated corpus vs one encode + one collection.add per file;
- `attribution`: live attribution per answer sentence vs embedding the sentence alone, and the
                 whole-answer latency after the last token through `core.answer.pipeline`;
- `local_llm`:   tokens/s through the whole pipeline vs raw llama-cpp-python on the same prompt.

The benchmarks that need the window (`stream`, `startup`) belong to `gui/`.
Because core never imports gui, they are handed in rather than looked up:
`gui` either calls `core.bench.main(argv, benches=[*core_benches(), *its own])`
or publishes `Bench` values under the `sourcelight.benches` entry-point
group (``stream = "gui.bench.stream:BENCH"``), which `main` reads.

The machines are shared and noisy, so every bench alternates product and
reference calls and reports medians and ratios (shared/docs/performance.md).
Benchmarks print figures; tests never assert on time.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from core.bench.base import Bench, BenchResult, Goal, dumps

__all__ = ["Bench", "BenchResult", "Goal", "core_benches", "available_benches", "main", "GUI_BENCHES"]

ENTRY_POINT_GROUP = "sourcelight.benches"
# Named in issue 5 but implemented in gui/ (they need the real window).
GUI_BENCHES = ("stream", "startup")


def core_benches() -> list[Bench]:
    """The Qt-free benchmarks. Importing them is cheap: heavy imports happen inside `run`."""
    from core.bench import attribution, ingest, local_llm, retrieval

    return [retrieval.BENCH, ingest.BENCH, attribution.BENCH, local_llm.BENCH]


def _entry_point_benches() -> list[Bench]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            value = ep.load()
        except Exception as exc:  # a broken plugin must not hide the other benchmarks
            print(f"warning: benchmark {ep.name!r} ({ep.value}) could not be loaded: {exc}", file=sys.stderr)
            continue
        found.extend(value if isinstance(value, (list, tuple)) else [value])
    return [b for b in found if isinstance(b, Bench)]


def available_benches(benches: Sequence[Bench] | None = None) -> dict[str, Bench]:
    """Name -> bench: the given ones (default: core's), then any published under the entry-point group."""
    catalogue = {b.name: b for b in (core_benches() if benches is None else benches)}
    for bench in _entry_point_benches():
        catalogue.setdefault(bench.name, bench)
    return catalogue


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object (the issue's fields)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny configuration that finishes in seconds (for tests; figures are not meaningful)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the product path and print the top functions on stderr")
    parser.add_argument("--seed", type=int, default=5, help="seed of the generated corpus (default 5)")


def _usage(catalogue: dict[str, Bench]) -> str:
    lines = ["usage: sourcelight bench NAME [--json] [--quick] [--profile] [options]", "", "benchmarks:"]
    for name, bench in catalogue.items():
        lines.append(f"  {name:<12} {bench.summary}")
    for name in GUI_BENCHES:
        if name not in catalogue:
            lines.append(f"  {name:<12} (needs the window; provided by the GUI package, not installed here)")
    lines.append("")
    lines.append("`sourcelight bench NAME --help` lists a benchmark's own options.")
    return "\n".join(lines)


def main(argv: Sequence[str], benches: Sequence[Bench] | None = None) -> int:
    """Run one benchmark: `argv` is [NAME, options...]. Returns the process exit code.

    0: the benchmark ran (whether or not its goals were met - the output says
    which); 2: unknown benchmark or bad options; 1: the benchmark failed.
    """
    argv = list(argv)
    catalogue = available_benches(benches)
    if not argv or argv[0] in ("-h", "--help", "help", "list"):
        print(_usage(catalogue))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    bench = catalogue.get(name)
    if bench is None:
        if name in GUI_BENCHES:
            print(f"The {name!r} benchmark drives the real window and is provided by the GUI package; "
                  "it is not registered in this installation.", file=sys.stderr)
        else:
            print(f"Unknown benchmark {name!r}. Choose one of: {', '.join(catalogue)}.", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"sourcelight bench {name}", description=bench.summary)
    _add_common(parser)
    bench.add_arguments(parser)
    try:
        args = parser.parse_args(rest)
    except SystemExit as exc:  # argparse exits on --help (0) and on errors (2)
        return int(exc.code or 0)
    from core.errors import SourcelightError

    try:
        result = bench.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SourcelightError as exc:  # e.g. the bundled model is missing: say what to do, no traceback
        print(f"bench {name} could not run: {exc.message}", file=sys.stderr)
        return 1
    print(dumps(result) if args.json else result.render(), flush=True)
    return 0

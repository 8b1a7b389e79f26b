"""The benchmarks that need the real window (issues 5 and 16): `stream`, `startup` and `page_view`.

The Qt-free benchmarks and the reporting (figures, ratios, goals, `--json`)
live in `core.bench`; core never imports gui, so the window benches are
handed to `core.bench.main` from here. `main(argv)` runs any of them:

    python -m gui.bench stream [--json] [--quick] [--profile] [options]
    python -m gui.bench startup [--json] [--quick] [--runs N]
    python -m gui.bench page_view [--json] [--quick] [--clicks N]
    python -m gui.bench retrieval ...        # the core ones work here too

`sourcelight bench NAME ...` should call `gui.bench.main(["NAME", ...])`.
Importing this package imports no Qt: each bench imports what it needs in `run`.
"""
from __future__ import annotations

from typing import Sequence

from core.bench import Bench

__all__ = ["gui_benches", "main"]


def gui_benches() -> list[Bench]:
    """`stream`, `startup` and `page_view`, as `core.bench.Bench` values."""
    from gui.bench import page_view, startup, stream

    return [stream.BENCH, startup.BENCH, page_view.BENCH]


def main(argv: Sequence[str]) -> int:
    """Run one benchmark (`argv` = [NAME, options...]), window ones included; returns the exit code."""
    from core.bench import core_benches, main as bench_main

    return bench_main(argv, benches=[*core_benches(), *gui_benches()])

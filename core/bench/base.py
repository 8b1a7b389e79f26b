"""What every benchmark shares: the `Bench` description, results with goals, statistics, output.

A benchmark is a `Bench` value (name, summary, its own arguments, a `run`
function returning a `BenchResult`). Nothing registers itself globally: the
catalogue is whatever list the caller hands to `core.bench.main` (see
`core.bench.core_benches`), so the GUI package can describe its own Qt
benchmarks with the same types and pass them in, or publish them under the
`sourcelight.benches` entry-point group.

Output rules (shared/docs/performance.md): figures go to stdout, progress
(tqdm) to stderr; `--json` prints exactly one JSON object on stdout. Every
figure with a goal is printed next to that goal, and a missed goal says
MISSED - it is never hidden.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

CACHE_ENV = "SOURCELIGHT_BENCH_CACHE"


@dataclass(frozen=True)
class Goal:
    """One goal from issue 5, checked against a measured value."""

    label: str       # e.g. "ratio at 100,000 chunks"
    value: float
    op: str          # "<=" or ">="
    target: float
    unit: str = ""

    @property
    def met(self) -> bool:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        return self.value <= self.target if self.op == "<=" else self.value >= self.target

    def describe(self) -> str:
        return f"{self.label}: {fmt(self.value)}{self.unit} (goal {self.op} {fmt(self.target)}{self.unit})"

    def to_json(self) -> dict[str, Any]:
        return {"goal": f"{self.label} {self.op} {fmt(self.target)}{self.unit}", "value": _clean(self.value),
                "met": self.met}


@dataclass
class BenchResult:
    """What a run measured: the issue's named fields (for --json), printable lines, goals, notes."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def all_met(self) -> bool:
        return all(g.met for g in self.goals)

    def to_json(self) -> dict[str, Any]:
        return {"bench": self.name, **_clean(self.fields), "goals": [g.to_json() for g in self.goals],
                "goals_met": self.all_met, "notes": list(self.notes)}

    def render(self) -> str:
        out = [f"== bench {self.name} =="]
        out.extend(self.lines)
        if self.goals:
            out.append("goals:")
            for g in self.goals:
                out.append(f"  {'met   ' if g.met else 'MISSED'}  {g.describe()}")
            missed = [g for g in self.goals if not g.met]
            out.append("all goals met" if not missed else
                       f"{len(missed)} of {len(self.goals)} goal(s) MISSED - see the notes and run with --profile")
        for note in self.notes:
            out.append(f"note: {note}")
        return "\n".join(out)


@dataclass(frozen=True)
class Bench:
    """A benchmark: `add_arguments` configures its parser, `run` measures and returns the result.

    `run` receives the parsed arguments (including the shared `--json`,
    `--quick`, `--profile`, `--seed`). It must run the product path and its
    reference side by side in one process, and print nothing on stdout
    (progress goes to stderr).
    """

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], BenchResult]


# -- statistics ----------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(a: float, b: float) -> float:
    return float("nan") if not b or math.isnan(b) or math.isnan(a) else a / b


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS; NaN on Windows)."""
    try:
        import resource  # Unix only
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Current RSS from /proc (Linux); NaN elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return float("nan")


class Stopwatch:
    """`with Stopwatch() as w: ...; w.ms` - perf_counter, in milliseconds."""

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        self.ms = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.ms = (time.perf_counter() - self.start) * 1000.0


def interleaved(n: int) -> Iterable[tuple[int, bool]]:
    """(index, product_first) pairs: the order flips every round so drift and warm caches favour neither side."""
    for i in range(n):
        yield i, i % 2 == 0


# -- environment -----------------------------------------------------------------

def cache_dir() -> Path:
    """Where built corpora and collections are kept between runs ($SOURCELIGHT_BENCH_CACHE overrides)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("sourcelight-bench", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine_line() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            "(shared; compare the ratios, not the absolute times)")


def progress(iterable=None, **kwargs):
    """tqdm on stderr with the house defaults (slow refresh: the machine is shared)."""
    from tqdm import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def say(message: str) -> None:
    """A status line on stderr (stdout is reserved for figures)."""
    print(message, file=sys.stderr, flush=True)


def profile_calls(label: str, fn: Callable[[], Any], repeat: int, top: int = 25) -> str:
    """cProfile `repeat` calls of `fn`; returns the top functions by cumulative and by own time."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        for _ in range(repeat):
            fn()
    finally:
        prof.disable()
    buf = io.StringIO()
    buf.write(f"--- profile: {label} ({repeat} calls) ---\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(12)
    return buf.getvalue()


# -- formatting ------------------------------------------------------------------

def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def row(label: str, value: Any, unit: str = "", goal: str = "") -> str:
    text = f"  {label:<44} {fmt(value):>10} {unit}"
    return f"{text:<66} {goal}".rstrip()


def goal_text(value: float, op: str, target: float) -> str:
    """'goal <= 1.2', with MISSED appended when the value misses it (NaN misses)."""
    met = Goal("", value, op, target).met
    return f"goal {op} {fmt(target)}" + ("" if met else "  MISSED")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null, floats are rounded to what the noise allows."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value


def dumps(result: BenchResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False)

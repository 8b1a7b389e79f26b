"""`sourcelight bench stream`: the real window while a backend streams like a fast server (issues 5, 19).

By default a scripted backend delivers 5,000 tokens/s in network-sized
chunks of 2-8 tokens (`--tps`, `--chunk-tokens`), and one run measures both
machine conditions (`--conditions`): the machine as it is ("idle": no load of
the bench's own), then with a second process the bench starts keeping one core
busy ("busy_core"). Each condition prints its figures and has its own goals;
`--json` holds both under `conditions` (the top-level fields are the first
condition's).

Per condition and configuration (a conversation holding `--history-tokens`, then the same
with `--small-history-tokens`) the bench builds a fresh window through the
composition root (`gui.app.build`), fills the conversation by answering
scripted questions at burst speed through `Controller.ask` (so earlier
answers are exactly what the app shows: finished cards rendered as Markdown,
with sentence highlights), then asks one more question whose answer streams
at `--tps` pieces per second: Markdown with one `--paragraph-tokens`-piece
paragraph. Meanwhile a 4 ms `Qt.PreciseTimer` heartbeat runs on the same
event loop; a stall is the gap between beats minus 4 ms. A token counts as
painted at the first paint of the answer's viewport after it reached the
document (the card's `answer_text` at paint time, which is what the view
holds), so `painted_tps` includes the wait for the final render.

A token is one word-sized piece with its leading whitespace
(`core.bench.scripted.split_tokens`), about 1.3 BPE tokens of a real model.
What is real and what is scripted is listed in `gui.bench.scripted` and in
the output.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import cProfile
import io
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.bench import load
from core.bench.base import (Bench, BenchResult, Goal, goal_text, machine_line, median, percentile, ratio, row,
                             say)

HEARTBEAT_MS = 4
# Each run measures both (issue 19): the machine as it is, then with a second
# process of the bench's own keeping one core busy.
REAL = ("real: MainWindow + Controller from gui.app.build, Controller.ask, core AnswerPipeline/AnswerRun "
        "(per-batch text, repetition guard per chunk, sentences found per batch, attribution worker "
        "thread), AnswerBridge batching, AnswerCard/AnswerView "
        "streaming and the final Markdown render, Sources panel; the qasync loop and executor of gui.app")
SCRIPTED = ("scripted: the LLM (PacedBackend), retrieval (4 fixed chunks), evidence pool and attributor "
            "(constant-time results); no embedder, Chroma or BM25 runs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tps", type=float, default=5000.0, help="pieces delivered per second (default 5000)")
    parser.add_argument("--answer-tokens", type=int, default=4000, help="pieces in the measured answer (default 4000)")
    parser.add_argument("--paragraph-tokens", type=int, default=2000,
                        help="length of the one long paragraph inside it (default 2000)")
    parser.add_argument("--history-tokens", type=int, default=50_000,
                        help="pieces of earlier answers in the conversation (default 50,000)")
    parser.add_argument("--small-history-tokens", type=int, default=1000,
                        help="the comparison conversation (default 1,000)")
    parser.add_argument("--keep-visible", action="store_true",
                        help="diagnostic: scroll the streaming answer's end into view whenever it grows (through "
                             "ChatView.ensure_visible), for when the app's own auto-scroll leaves it out of view")
    parser.add_argument("--chunk-tokens", default="2-8",
                        help="deliver pieces in network-sized chunks of LEAST-MOST pieces, as fast hosted servers "
                             "do (default 2-8); 1: one piece per chunk")
    load.add_conditions_argument(parser)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measured answers per configuration, each in a fresh window (order alternates)")


@dataclass
class Measurement:
    history_tokens: int
    tokens: int
    delivered_tps: float
    painted_tps: float
    stalls_ms: list[float]
    stall_end_at: list[float]  # when each stall's gap ended (relative to the first delivered piece), s
    first_paint_ms: list[float]
    paints: int
    doc_changes: int
    streamed_s: float
    completed_at_s: float  # when the card was marked completed (after the final Markdown render)
    build_s: float
    profile: str = ""
    extra: dict = field(default_factory=dict)


def _pieces_of(text: str, size: int) -> list[str]:
    from gui.bench.scripted import split_tokens

    tokens = split_tokens(text)
    return ["".join(tokens[i:i + size]) for i in range(0, len(tokens), size)]


class _PaintProbe:
    """Records (time, characters in the answer) at every paint of one answer's viewport."""

    def __init__(self):
        from PySide6.QtCore import QEvent, QObject

        probe = self

        class Filter(QObject):
            def eventFilter(self, watched, event) -> bool:  # Qt override
                if event.type() == QEvent.Type.Paint and probe.card is not None:
                    probe.paints.append((time.perf_counter(), len(probe.card.answer_text)))
                return False

        self.card = None
        self.paints: list[tuple[float, int]] = []
        self.doc_changes = 0
        self.completed_at: float | None = None
        self._filter = Filter()

    def attach(self, card, keep_visible: bool = False) -> None:
        from gui.widgets.answer_card import COMPLETED

        self.card = card
        if keep_visible:
            chat = card.window().chat_view
            card.view.height_changed.connect(lambda h: chat.ensure_visible(card.view, h, margin=20))
        card.view.viewport().installEventFilter(self._filter)
        card.view.document().contentsChanged.connect(self._on_contents_changed)

        def state(_card, s):
            if s == COMPLETED and self.completed_at is None:
                self.completed_at = time.perf_counter()

        card.state_changed.connect(state)

    def _on_contents_changed(self) -> None:
        self.doc_changes += 1


async def _measure(args, history_tokens: int, seed: int, profile: bool) -> Measurement:
    from PySide6.QtCore import Qt, QTimer

    from core.secrets import ApiKeyStore
    from core.settings import Settings
    from gui.app import build
    from gui.bench.scripted import PacedBackend, ScriptedEngine, history_answers, markdown_answer, split_tokens

    loop = asyncio.get_running_loop()
    backend = PacedBackend(chunk_tokens=_chunk_range(args.chunk_tokens), seed=seed)
    built = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sourcelight-bench-stream-") as tmp:
        window, controller = build(settings=Settings(top_k=4, max_tokens=100_000),
                                   engine_factory=lambda s: ScriptedEngine(s, backend, seed),
                                   key_store=ApiKeyStore(environ={}), settings_path=Path(tmp) / "settings.json")
        finished: list[asyncio.Future] = []
        controller.answers.answer_finished.connect(lambda card: finished and not finished[-1].done()
                                           and finished[-1].set_result(card))

        async def ask(question: str):
            finished.append(loop.create_future())
            controller.answers.ask(question)
            return await asyncio.wait_for(finished[-1], 600)

        try:
            window.show()
            window.composer.setFocus()
            for _ in range(500):
                handle = window.windowHandle()
                if handle is not None and handle.isExposed():
                    break
                await asyncio.sleep(0.01)
            loaded = loop.create_future()
            controller.engine_loaded.connect(lambda: loaded.done() or loaded.set_result(None))
            controller.start()
            await asyncio.wait_for(loaded, 60)

            backend.tokens_per_s = None  # the history streams as a burst, in 40-piece chunks
            chunking, backend.chunk_tokens = backend.chunk_tokens, None
            for k, text in enumerate(history_answers(history_tokens, seed)):
                backend.pieces = _pieces_of(text, 40)
                await ask(f"Earlier question {k + 1}: what does the report say?")
            history_in_window = sum(len(split_tokens(c.answer_text)) for c in window.chat_view.answers())
            await asyncio.sleep(0.3)  # let the last render settle
            build_s = time.perf_counter() - built

            answer = markdown_answer(args.answer_tokens, seed, long_paragraph=args.paragraph_tokens)
            pieces = split_tokens(answer)
            ends, total = [], 0
            for p in pieces:
                total += len(p)
                ends.append(total)
            backend.pieces, backend.tokens_per_s, backend.chunk_tokens = pieces, args.tps, chunking

            probe = _PaintProbe()
            attach = lambda c: probe.attach(c, args.keep_visible)  # noqa: E731
            window.chat_view.answer_added.connect(attach)
            beats: list[float] = []
            heartbeat = QTimer()
            heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
            heartbeat.setInterval(HEARTBEAT_MS)
            heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
            prof = cProfile.Profile() if profile else None
            heartbeat.start()
            await asyncio.sleep(0.1)
            if prof:
                prof.enable()
            card = await ask("Explain everything about the measured topic, at length.")
            await asyncio.sleep(0.15)  # the last paints
            if prof:
                prof.disable()
            heartbeat.stop()
            window.chat_view.answer_added.disconnect(attach)
            layout = window.chat_view.widget().layout()
            blank_px = layout.itemAt(layout.count() - 1).geometry().height()  # the trailing stretch
            assert card.answer_text == answer, "the window shows a different answer than was streamed"
        finally:
            await controller.shutdown()
            window.close()
            window.deleteLater()
            await asyncio.sleep(0.05)

    sent = backend.sent_at
    t0, t_last = sent[0], sent[-1]
    n = len(pieces)
    # Tokens painted at each paint, then the first paint that shows each token.
    first_paint: list[float] = [float("nan")] * n
    done = 0
    for t, chars in probe.paints:
        upto = bisect.bisect_right(ends, chars)
        while done < upto:
            first_paint[done] = t
            done += 1
    painted_all_at = first_paint[-1] if done == n else float("nan")
    delivered_tps = n / max(1e-9, t_last - t0 + 1 / args.tps)
    painted_tps = done / max(1e-9, painted_all_at - t0 + 1 / args.tps) if done == n else done / (t_last - t0)
    ends_at = [t for t in (painted_all_at, probe.completed_at, t_last) if t is not None and t == t]
    start, end = t0 - 0.05, max(ends_at) + 0.05
    stalls, stall_end = [], []
    for a, b in zip(beats, beats[1:]):
        if a >= start and b <= end:
            stalls.append(max(0.0, (b - a) * 1000 - HEARTBEAT_MS))
            stall_end.append(b - t0)
    text = ""
    if prof:
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.strip_dirs().sort_stats("cumulative").print_stats(30)
        st.sort_stats("tottime").print_stats(20)
        text = buf.getvalue()
    return Measurement(
        history_tokens=history_in_window, tokens=n, delivered_tps=delivered_tps, painted_tps=painted_tps,
        stalls_ms=stalls, stall_end_at=stall_end,
        first_paint_ms=[(first_paint[i] - sent[i]) * 1000 for i in range(done)], paints=len(probe.paints),
        doc_changes=probe.doc_changes, streamed_s=t_last - t0,
        completed_at_s=(probe.completed_at - t0) if probe.completed_at else float("nan"), build_s=build_s,
        profile=text, extra={"blank_below_px": blank_px, "painted_tokens": done})


def _chunk_range(text: str) -> tuple[int, int] | None:
    """"2-8" -> (2, 8); "" or "1" -> None (one piece per chunk)."""
    if not text or text == "1":
        return None
    least, _, most = text.partition("-")
    low, high = int(least), int(most or least)
    if not 1 <= low <= high:
        raise SystemExit(f"--chunk-tokens {text}: use LEAST-MOST with 1 <= LEAST <= MOST, e.g. 2-8")
    return low, high


def _worst(m: Measurement, k: int = 3) -> str:
    top = sorted(zip(m.stalls_ms, m.stall_end_at), reverse=True)[:k]
    return ", ".join(f"{s:.1f} ms at {t:.2f} s" for s, t in top)


def run(args: argparse.Namespace) -> BenchResult:
    from gui.bench._qt import QtWarnings, choose_platform, run_in_app

    if args.quick:
        args.answer_tokens, args.paragraph_tokens = 200, 120
        args.history_tokens, args.small_history_tokens = min(args.history_tokens, 2000), min(
            args.small_history_tokens, 200)
        args.rounds = 1
    wanted = load.conditions(args)
    platform = choose_platform()
    warnings = QtWarnings()
    configs: list[tuple[str, int]] = []
    for r in range(max(1, args.rounds)):
        pair = [("large", args.history_tokens), ("small", args.small_history_tokens)]
        configs.extend(pair if r % 2 == 0 else pair[::-1])

    async def measure_all(condition: str) -> list[tuple[str, Measurement]]:
        out = []
        for i, (label, history) in enumerate(configs):
            say(f"stream [{condition}]: {label} history ({history:,} tokens), answer {args.answer_tokens:,} tokens "
                f"at {args.tps:g}/s [{i + 1}/{len(configs)}]")
            m = await _measure(args, history, args.seed + i, profile=args.profile and label == "large")
            say(f"  delivered {m.delivered_tps:.0f}/s painted {m.painted_tps:.0f}/s, stall p99 "
                f"{percentile(m.stalls_ms, 99):.1f} ms max {max(m.stalls_ms, default=0):.1f} ms "
                f"(worst: {_worst(m)}); complete at {m.completed_at_s:.2f} s")
            if m.profile:
                print(f"--- profile [{condition}]: the measured answer with {history:,} tokens of history ---\n"
                      f"{m.profile}", file=sys.stderr)
            out.append((label, m))
        return out

    async def main() -> dict[str, list[tuple[str, Measurement]]]:
        measured = {}
        for where in wanted:
            with load.condition(where):
                measured[where] = await measure_all(where)
        return measured

    warnings.install()
    try:
        measured = run_in_app(main)
    finally:
        warnings.uninstall()

    result = BenchResult("stream")
    per_condition = {c: _summary(args, c, measured[c]) for c in wanted}
    first = per_condition[wanted[0]]
    result.fields = {**first["fields"], "platform": platform, "conditions": {
        c: per_condition[c]["fields"] for c in wanted}, "qt_warnings": list(warnings.messages)}
    result.goals = [g for c in wanted for g in per_condition[c]["goals"]]
    result.lines = [
        machine_line(),
        f"  Qt platform {platform}; {len(configs) // 2} round(s) per configuration, medians; answer "
        f"{args.answer_tokens:,} tokens with one {args.paragraph_tokens:,}-token paragraph at {args.tps:g} tokens/s"
        + (f", in chunks of {args.chunk_tokens} tokens" if _chunk_range(args.chunk_tokens) else ", one token per chunk"),
    ]
    for c in wanted:
        result.lines.extend(per_condition[c]["lines"])
    result.notes = [REAL, SCRIPTED,
                    "a token is a word-sized piece with its leading whitespace (~1.3 model tokens); painted = the "
                    "first paint of the answer viewport after the token reached its document, so the final "
                    "Markdown render before the last paint counts"]
    for c in wanted:
        for label, m in measured[c]:
            if m.extra["painted_tokens"] < m.tokens:
                result.notes.append(
                    f"{c}, {label} history: only {m.extra['painted_tokens']:,} of {m.tokens:,} streamed tokens were "
                    f"ever painted ({m.paints} paints of the answer): the chat column had {m.extra['blank_below_px']} "
                    "px of blank stretch below the last card, so the view auto-scrolled past the streaming answer "
                    "(ChatView)")
    if warnings.messages:
        result.notes.append(f"{len(warnings.messages)} Qt warning(s): " + "; ".join(warnings.messages[:5]))
    return result


def _summary(args, condition: str, measured: list[tuple[str, Measurement]]) -> dict:
    """The fields, goals and printed lines of one condition's runs (medians over its rounds)."""
    large = [m for label, m in measured if label == "large"]
    small = [m for label, m in measured if label == "small"]
    med = lambda ms, f: median([f(m) for m in ms])  # noqa: E731
    delivered = med(large, lambda m: m.delivered_tps)
    painted = med(large, lambda m: m.painted_tps)
    p50 = med(large, lambda m: percentile(m.stalls_ms, 50))
    p99 = med(large, lambda m: percentile(m.stalls_ms, 99))
    smax = med(large, lambda m: max(m.stalls_ms, default=float("nan")))
    p99_small = med(small, lambda m: percentile(m.stalls_ms, 99))
    max_small = med(small, lambda m: max(m.stalls_ms, default=float("nan")))
    fp50 = med(large, lambda m: percentile(m.first_paint_ms, 50))
    fp99 = med(large, lambda m: percentile(m.first_paint_ms, 99))
    paint_ratio = ratio(painted, delivered)
    gap = p99 - p99_small
    fields = {
        "delivered_tps": delivered, "painted_tps": painted, "stall_p50_ms": p50, "stall_p99_ms": p99,
        "stall_max_ms": smax, "stall_p99_small_history_ms": p99_small,
        "painted_ratio": paint_ratio, "stall_max_small_history_ms": max_small,
        "first_paint_p50_ms": fp50, "first_paint_p99_ms": fp99,
        "history_tokens": med(large, lambda m: m.history_tokens),
        "small_history_tokens": med(small, lambda m: m.history_tokens),
        "answer_tokens": args.answer_tokens, "paragraph_tokens": args.paragraph_tokens, "tps": args.tps,
        "rounds": len(large), "heartbeats": med(large, lambda m: len(m.stalls_ms)),
        "paints": med(large, lambda m: m.paints), "document_changes": med(large, lambda m: m.doc_changes),
        "completed_after_s": med(large, lambda m: m.completed_at_s),
        "keep_visible": bool(args.keep_visible), "chunk_tokens": args.chunk_tokens or "1",
        "condition": condition, "busy_core": condition == "busy_core",
        "runs": [{"history": label, "history_tokens": m.history_tokens, "delivered_tps": m.delivered_tps,
                  "painted_tps": m.painted_tps, "stall_p50_ms": percentile(m.stalls_ms, 50),
                  "stall_p99_ms": percentile(m.stalls_ms, 99), "stall_max_ms": max(m.stalls_ms, default=None),
                  "worst_stalls": _worst(m), "paints": m.paints, "blank_below_last_card_px": m.extra["blank_below_px"],
                  "completed_after_s": m.completed_at_s, "build_s": m.build_s}
                 for label, m in measured],
    }
    goals = [
        Goal(f"{condition}: painted / delivered", paint_ratio, ">=", 0.99),
        Goal(f"{condition}: stall p99 (50k history)", p99, "<=", 16.0, " ms"),
        Goal(f"{condition}: stall max (50k history)", smax, "<=", 33.0, " ms"),
        Goal(f"{condition}: stall p99 50k minus 1k history", gap, "<=", 2.0, " ms"),
    ]
    hist = f"{fields['history_tokens']:,.0f}"
    lines = [
        f"  -- {condition}: {load.DESCRIPTION[condition]}",
        row("delivered tokens/s", delivered),
        row("painted tokens/s", painted),
        row("painted / delivered", paint_ratio, "", goal_text(paint_ratio, ">=", 0.99)),
        row(f"stall p50 ({hist} tokens of history)", p50, "ms"),
        row(f"stall p99 ({hist} tokens of history)", p99, "ms", goal_text(p99, "<=", 16)),
        row(f"stall max ({hist} tokens of history)", smax, "ms", goal_text(smax, "<=", 33)),
        row(f"stall p99 ({fields['small_history_tokens']:,.0f} tokens of history)", p99_small, "ms"),
        row("stall p99 difference", gap, "ms", goal_text(gap, "<=", 2)),
        row("delivery -> first paint p50 / p99", f"{fp50:.1f} / {fp99:.1f}", "ms"),
        row("paints / document changes", f"{fields['paints']:.0f} / {fields['document_changes']:.0f}"),
        *[f"  run {label:<5} history {m.history_tokens:>6,}: p99 {percentile(m.stalls_ms, 99):5.1f} ms, max "
          f"{max(m.stalls_ms, default=0):6.1f} ms, painted {m.painted_tps:6.0f}/s ({m.paints} paints); worst "
          f"{_worst(m)}; blank below the last card {m.extra['blank_below_px']} px; card "
          f"completed {m.completed_at_s:.2f} s after the first token" for label, m in measured],
    ]
    return {"fields": fields, "goals": goals, "lines": lines}


BENCH = Bench("stream", "the real window while a scripted backend streams 5,000 tokens/s in chunks of 2-8 into a "
              "long conversation, idle and with one core busy",
              add_arguments, run)

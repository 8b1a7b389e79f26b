"""The headless command line: `sourcelight ingest | refresh | ask | documents | remove | models | eval`.

Same engine, same event stream as the window. `ask --json` prints one JSON
object per event line, which is also how scripts and tests drive the engine.
Document text and model output are untrusted: control characters and ANSI
escape sequences are removed before anything reaches the terminal.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Sequence

_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Text with escape sequences and control characters (except newline and tab) removed."""
    return _CONTROL.sub("", text)


def _settings(args: argparse.Namespace):
    from core.settings import Settings

    settings = Settings.load()
    for name in ("backend", "model", "base_url", "top_k", "threads", "max_tokens"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, value)
    if getattr(args, "api", None):
        settings.api_mode = args.api
    return settings.validated()


def _engine(args: argparse.Namespace, backend=None):
    from core.engine import Engine

    return Engine(_settings(args), backend=backend, workspace=args.collection)


def _cmd_workspaces(args: argparse.Namespace) -> int:
    engine = _engine(args, backend=_NoBackend())
    for name in engine.store.workspaces():
        print(("* " if name == engine.store.workspace else "  ") + name)
    return 0


class _AboveTheBar:
    """A logging handler that prints library messages above the progress bar, never into it.

    Records from the ingest reader thread are skipped: ingest attaches them to
    the file being read, and they are printed with that file's warnings.
    """

    def __init__(self, write):
        import logging

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                from core.ingest.ingestor import READER_THREAD_NAME

                if record.threadName == READER_THREAD_NAME:
                    return
                try:
                    message = record.getMessage()
                except Exception:  # noqa: BLE001 - a malformed record is not worth a traceback
                    return
                write(terminal_safe(f"note: {record.name}: {message}"))

        self.handler = Handler(logging.WARNING)

    def __enter__(self):
        import logging

        logging.getLogger().addHandler(self.handler)
        logging.captureWarnings(True)  # warnings.warn from other threads too
        return self

    def __exit__(self, *exc) -> None:
        import logging

        logging.captureWarnings(False)
        logging.getLogger().removeHandler(self.handler)


def progress_text(p) -> str:
    """The text beside the bar: bytes done of the total (binary units), time left, files done, chunks, file."""
    from core.units import format_bytes, format_duration

    parts = []
    if p.bytes_total:
        parts.append(f"{format_bytes(p.bytes_done)} of {format_bytes(p.bytes_total)}")
    if p.seconds_left is not None and p.bytes_done < p.bytes_total:
        parts.append(f"{format_duration(p.seconds_left)} left")
    parts.append(f"{p.files_done}/{p.files_total} files")
    if p.chunks_written:
        parts.append(f"{p.chunks_written} chunks")
    if p.current:
        parts.append(terminal_safe(p.current)[:40])
    return ", ".join(parts)


def _cmd_ingest(args: argparse.Namespace) -> int:
    return _run_ingest(args, refresh=False)


def _cmd_refresh(args: argparse.Namespace) -> int:
    return _run_ingest(args, refresh=True)


def _run_ingest(args: argparse.Namespace, *, refresh: bool) -> int:
    from tqdm import tqdm

    engine = _engine(args, backend=_NoBackend())
    cancel = threading.Event()
    # Per mille of the bytes: the bar moves inside a large file; sizes and time left are in the text
    # (tqdm's own unit scaling would label binary multiples "MB").
    bar = tqdm(total=1000, desc="Indexing", file=sys.stderr, disable=args.quiet,
               bar_format="{desc} {percentage:3.0f}%|{bar}|{postfix}")
    last: list = []  # the last progress report: what the message after Ctrl+C can honestly say

    def progress(p) -> None:
        last[:] = [p]
        fraction = p.fraction
        bar.n = int(1000 * fraction) if fraction is not None else 0
        bar.set_postfix_str(progress_text(p), refresh=True)

    def write(text: str) -> None:
        if args.quiet:
            print(text, file=sys.stderr)
        else:
            bar.write(text, file=sys.stderr)

    try:
        with _AboveTheBar(write):
            engine.store.open()
            engine.embedder.load()
            if refresh:
                report = engine.refresh(progress=progress, cancel=cancel)
            else:
                report = engine.ingest([Path(p) for p in args.paths], progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        from core.ingest.ingestor import interrupted_message

        bar.close()
        print(interrupted_message(last[0] if last else None), file=sys.stderr)
        return 130
    finally:
        bar.close()
    _print_report(report)
    return 1 if report.failed and not report.indexed and not report.unchanged and not report.removed else 0


def _print_report(report) -> None:
    from core.ingest.ingestor import describe_types, failure_line

    print(f"Indexed {len(report.indexed)} file(s), skipped {len(report.unchanged)} unchanged, "
          f"{len(report.failed)} failed. {report.chunks} chunks in {report.seconds:.1f} s.")
    if report.removed:
        print(f"Removed {len(report.removed)} document(s) whose files are gone from their folder:")
        for path in report.removed:
            print(f"  removed: {terminal_safe(path)}")
    if report.skipped_types:
        n = sum(report.skipped_types.values())
        print(f"Skipped {n} file(s) of types Sourcelight does not read: {describe_types(report.skipped_types)}.")
    if report.not_retried:
        print(f"{len(report.not_retried)} of the failed files have not changed since they last failed and were "
              "not read again.")
    for path, reason in report.failed:
        print(f"  failed: {terminal_safe(failure_line(path, reason))}")
    for path, warning in report.warnings:
        print(f"  warning: {terminal_safe(failure_line(path, warning))}")


def _cmd_documents(args: argparse.Namespace) -> int:
    engine = _engine(args, backend=_NoBackend())
    docs = engine.documents()
    if args.json:
        for d in docs:
            print(json.dumps({"id": d.doc_key, "source": d.source, "chunks": d.chunks, "pages": d.pages}))
        return 0
    if not docs:
        print("No documents indexed yet. Add some with: sourcelight ingest PATH")
    for d in docs:
        print(f"{d.doc_key}  {d.chunks:5d} chunks  {terminal_safe(d.source)}")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from core.ingest.chunking import document_key

    engine = _engine(args, backend=_NoBackend())
    status = 0
    for item in args.documents:
        key = item if re.fullmatch(r"[0-9a-f]{16}", item) else document_key(os.path.abspath(item))
        if engine.remove_document(key):
            print(f"Removed {item}")
        else:
            print(f"Not in the index: {item}. See `sourcelight documents` for what is indexed.", file=sys.stderr)
            status = 1
    return status


def _cmd_ask(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_ask(args))
    except KeyboardInterrupt:  # Ctrl+C: `_ask` has already saved the turn and said so
        return 130


async def _ask(args: argparse.Namespace) -> int:
    from core.answer.conversation import ConversationService
    from core.events import FINISH_NOTES, Cancelled, Completed, Failed, StatusChanged, TextDelta, event_to_json
    from core.history import HistoryStore, title_from_question

    engine = _engine(args)
    history = HistoryStore()
    conversation = args.conversation or history.create_conversation(title_from_question(args.question))
    engine.attributor.prefetch()  # the verifier loads while retrieval and generation start
    # A new conversation has no earlier turns to read; a continued one's are read as the run starts.
    asking = ConversationService(engine, history).ask(args.question, conversation,
                                                      messages=None if args.conversation else [])
    wrote_text = False
    try:
        async for event in asking.events():
            if args.json:
                data = event_to_json(event)
                if data["type"] == "started":
                    continue
                # ensure_ascii escapes C1 controls (U+0080-U+009F) too, which
                # ensure_ascii=False would print raw to the terminal.
                print(json.dumps(data), flush=True)
            elif isinstance(event, StatusChanged):
                # The server's progress (Assistants API): said on stderr while nothing is written
                # yet; once the answer streams, a status line would cut into its text.
                if not wrote_text:
                    print(f"({terminal_safe(event.message)})", file=sys.stderr, flush=True)
            elif isinstance(event, TextDelta):
                wrote_text = True
                sys.stdout.write(terminal_safe(event.text))
                sys.stdout.flush()
            elif isinstance(event, Failed):
                print(f"\nError: {terminal_safe(event.message)}", file=sys.stderr)
            elif isinstance(event, Cancelled):
                print("\n(stopped)", file=sys.stderr)
            if isinstance(event, Completed) and not args.json:
                print()
                if event.finish_reason in FINISH_NOTES:
                    print(f"({FINISH_NOTES[event.finish_reason]})", file=sys.stderr)
    except asyncio.CancelledError:
        # Ctrl+C (asyncio.run cancels this task): the question and the part already
        # written are kept (saved as the stream ended), as Esc does in the window.
        if args.json:
            print(json.dumps(event_to_json(asking.stopped or Cancelled(asking.answer.text))), flush=True)
        else:
            print(f"\n(stopped; saved as conversation {conversation})", file=sys.stderr)
        raise
    finally:
        history.close()
        await engine.aclose()
    answer = asking.answer
    if engine.attributor.verifier_error:
        # Said once, after the answer: support came from the fused score alone.
        print(f"\nNote: {engine.attributor.verifier_error}", file=sys.stderr)
    if not args.json and answer.attributions:
        _print_attributions(answer)
    if not args.json:
        print(f"\n(saved as conversation {conversation}; continue it with --conversation {conversation}, "
              f"export it with: sourcelight export {conversation})", file=sys.stderr)
    return 1 if answer.status == "failed" else 0


def _print_attributions(answer) -> None:
    """Each sentence of the answer (a core.answer.state.Answer) with its support and the passages behind it."""
    from core.events import NOT_A_CLAIM_NOTE

    by_id = {c.id: (n, c) for n, c in enumerate(answer.chunks, start=1)}
    print("\nSources of each sentence:")
    for a in answer.attributions:
        print(f"\n  ({a.sentence.index + 1}) {terminal_safe(a.sentence.text)}")
        if not a.is_claim:
            # Its support score and best spans would suggest a verdict on a
            # sentence that asserts nothing.
            print(f"      {NOT_A_CLAIM_NOTE}")
            continue
        flag = "supported" if a.supported else "UNSUPPORTED"
        print(f"      support {a.support:.2f} - {flag}")
        for span in a.sources:
            n, chunk = by_id.get(span.chunk_id, (0, None))
            where = (f"[{n}] {terminal_safe(chunk.file_name)}" + (f", p. {chunk.page}" if chunk.page else "")
                     if chunk else "")
            print(f"      {where}: \"{terminal_safe(span.text)}\"")


def _cmd_export(args: argparse.Namespace) -> int:
    from core.export import export_conversation
    from core.history import HistoryStore

    with HistoryStore() as history:
        text = export_conversation(history, args.conversation_id, args.format)
    # Quoted document text may hold escape sequences; whether this goes to a
    # terminal or a file, they are never wanted in Markdown or JSON output.
    print(terminal_safe(text), end="")
    return 0


def _cmd_conversations(args: argparse.Namespace) -> int:
    from core.history import HistoryStore

    with HistoryStore() as history:
        found = history.list_conversations(args.search)
    if not found:
        print("No conversations yet." if not args.search else "No conversation matches.")
    for c in found:
        print(f"{c.id:6d}  {terminal_safe(c.title)}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    """`models` lists, `models use NAME` chooses, `models recommended` and `models download KEY` fetch."""
    from core.models.discovery import discover, find_model
    from core.models.download import RECOMMENDED
    from core.models.text import model_facts, recommended_facts
    from core.settings import Settings

    settings = Settings.load()
    if args.action == "recommended":
        print("Recommended models (download one with: sourcelight models download KEY):")
        for r in RECOMMENDED:
            print(f"  {r.key:14s} {r.name} - {recommended_facts(r)}\n  {'':14s} {r.notes} ({r.repo_id})")
        return 0
    if args.action == "download":
        return _download(args.name)
    found = discover(settings)
    if args.action == "use":
        match = find_model(args.name, found.models)
        if isinstance(match, list):
            if not match:
                print(f"No model called {args.name!r}. See `sourcelight models` for the models found.",
                      file=sys.stderr)
            else:
                print(f"{args.name!r} matches {len(match)} models - give more of the name:", file=sys.stderr)
                for m in match:
                    print(f"  {terminal_safe(m.name)}  ({terminal_safe(m.location)})", file=sys.stderr)
            return 1
        chosen = match.apply_to(settings).validated()
        chosen.save()
        print(f"{terminal_safe(match.name)} now answers ({terminal_safe(match.location)}).")
        return 0
    if args.json:
        import dataclasses

        for m in found.models:
            print(json.dumps({**dataclasses.asdict(m), "current": m.is_current(settings)}))
        return 0
    for m in found.models:
        mark = "*" if m.is_current(settings) else " "
        print(f"{mark} {terminal_safe(m.name)}  [{terminal_safe(m.source)}]")
        facts = model_facts(m)
        if facts:
            print(f"    {terminal_safe(facts)}")
        print(f"    {terminal_safe(m.location)}")
    for problem in found.problems:
        print(f"note: {terminal_safe(problem)}", file=sys.stderr)
    print("\n* answers now. Choose another with: sourcelight models use NAME; fetch one with: "
          "sourcelight models recommended", file=sys.stderr)
    return 0


def _download(key: str) -> int:
    from tqdm import tqdm

    from core.models.download import RECOMMENDED, DownloadError, download_model, recommended
    from core.models.text import download_progress_text

    model = recommended(key)
    if model is None:
        print(f"No recommended model {key!r}; choose one of: {', '.join(r.key for r in RECOMMENDED)}.",
              file=sys.stderr)
        return 2
    cancel = threading.Event()
    bar = tqdm(total=1000, desc=model.name, file=sys.stderr, bar_format="{desc} {percentage:3.0f}%|{bar}|{postfix}")

    def progress(p) -> None:
        bar.n = int(1000 * p.fraction) if p.fraction is not None else 0
        bar.set_postfix_str(download_progress_text(p), refresh=True)

    try:
        path = download_model(model.repo_id, model.filename, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        bar.close()
        print("Stopped; what arrived is kept, and the same command continues from there.", file=sys.stderr)
        return 130
    except DownloadError as exc:
        bar.close()
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    bar.close()
    print(f"Downloaded and verified: {path}\nUse it with: sourcelight models use {path.name}")
    return 0


class _NoBackend:
    """Stands in for the LLM where a command never generates (ingest, documents)."""

    description = "none"

    async def stream(self, messages, *, max_tokens, temperature):  # pragma: no cover - never called
        raise RuntimeError("this command does not generate")
        yield

    async def check(self) -> str:
        return "no backend"

    async def aclose(self) -> None:
        return None


# Run by the packages registered for them (core.verbs), not by this module.
HARNESS_VERBS = ("check", "bench", "eval")


def build_parser() -> argparse.ArgumentParser:
    from core.settings import API_MODES

    parser = argparse.ArgumentParser(prog="sourcelight", description="Ask questions of your own documents and "
                                     "see where each answer sentence comes from.")
    parser.add_argument("--collection", default=None, help="workspace (named collection) to use; "
                        "default: the one chosen in Settings")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index files and folders (.txt .md .pdf .html .docx)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("ask", help="ask a question; streams the answer and its sources")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="one JSON object per event line")
    p.add_argument("--backend", choices=["local", "openai", "openai_compatible"])
    p.add_argument("--model")
    p.add_argument("--base-url", dest="base_url")
    p.add_argument("--api", choices=list(API_MODES), help="API to use: chat (every server), responses (OpenAI "
                   "only), assistants (servers that still implement the Assistants API)")
    p.add_argument("--top-k", dest="top_k", type=int)
    p.add_argument("--threads", type=int, help="generation threads for the bundled model")
    p.add_argument("--max-tokens", dest="max_tokens", type=int)
    p.set_defaults(func=_cmd_ask)

    p.add_argument("--conversation", type=int, help="continue this conversation (earlier turns become context)")

    p = sub.add_parser("conversations", help="list saved conversations")
    p.add_argument("search", nargs="?", help="only those containing these words")
    p.set_defaults(func=_cmd_conversations)

    p = sub.add_parser("export", help="export a conversation with citations")
    p.add_argument("conversation_id")
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("refresh", help="sync the index with the disk: re-add every folder added before "
                                       "(new and changed files indexed, documents whose files are gone removed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_refresh)

    p = sub.add_parser("documents", help="list indexed documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_documents)

    p = sub.add_parser("remove", help="remove documents from the index (path or id)")
    p.add_argument("documents", nargs="+")
    p.set_defaults(func=_cmd_remove)

    p = sub.add_parser("models", help="the models Sourcelight can use: list them, choose one, download a "
                                      "recommended one")
    p.add_argument("--json", action="store_true", help="one JSON object per model")
    p.set_defaults(func=_cmd_models, action="list")
    models = p.add_subparsers(dest="action")
    models.add_parser("list", help="list the models found (the default)")
    use = models.add_parser("use", help="make a model the one that answers (by name, file name or path)")
    use.add_argument("name")
    models.add_parser("recommended", help="the curated models that can be downloaded")
    download = models.add_parser("download", help="download a recommended model (resumes an interrupted one)")
    download.add_argument("name", metavar="KEY")

    p = sub.add_parser("workspaces", help="list workspaces (named collections); * marks the current one")
    p.set_defaults(func=_cmd_workspaces)

    p = sub.add_parser("eval", add_help=False, help="measure: eval attribution | eval chunk-vectors (public data); "
                                                    "eval followups | eval loops (the sample guide); each takes --help")
    p.add_argument("what", choices=["attribution", "chunk-vectors", "followups", "loops"])
    p.set_defaults(func=None)

    p = sub.add_parser("check", add_help=False, help="robustness checks: `check faults [--json]` tries every fault case")
    p.add_argument("what", choices=["faults"])
    p.set_defaults(func=None)

    p = sub.add_parser("bench", add_help=False, help="speed benchmarks against each stage's reference (see bench NAME --help)")
    p.add_argument("name", help="retrieval | ingest | attribution | local_llm | stream | startup")
    p.set_defaults(func=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command not in HARNESS_VERBS and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from core.errors import SourcelightError

    try:
        if args.command in HARNESS_VERBS:  # the fault suite, benchmarks and evaluations: separate packages
            from core.verbs import run_harness_verb

            # `check faults ...` hands on what follows "faults"; `bench NAME` and `eval WHAT` hand on the name too
            leading = {"check": [], "bench": [getattr(args, "name", "")], "eval": [getattr(args, "what", "")]}
            status = run_harness_verb(args.command, leading[args.command] + rest)
        else:
            status = args.func(args)
        sys.stdout.flush()  # inside the try: a reader that closed the pipe fails here, not at exit
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except SourcelightError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1


def _closed_pipe() -> int:
    """`sourcelight documents | head -3`: the reader has what it wanted; end quietly.

    Python would print a BrokenPipeError traceback, and again when it flushes
    stdout at exit; stdout is pointed at /dev/null so that last flush succeeds.
    141 is what a shell reports for a command ended by SIGPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())

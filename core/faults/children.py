"""Cases that need a process of their own: kill -9, SIGKILL/SIGTERM during a large file or a folder
(no ghosts), a 50 MB file, dropped file permissions, no network.

Each case has a parent half (run by the suite: prepares files, starts the
child, watches it, kills it, then reopens what it left behind with the real
engine) and a child half (`python -m core.faults.children TASK ARGS_JSON`),
which reports what it does as one JSON object per stdout line.

Why children: a `kill -9` must hit a real process; a file at mode 000 stays
readable for root unless the process drops CAP_DAC_OVERRIDE (`setpriv`); DNS
must fail without a packet leaving the machine, which a fresh network
namespace (`unshare -n`) guarantees; and the 50 MB file's ingest cannot be
interrupted in-process (see `huge_file`), so it must run where it can be killed.

Children do not import torch: the parent hands them the real model's vectors
for every text they will meet (`core.faults.scripted.VectorTable`), so a child
starts in ~2 s instead of ~15 s on these loaded cores. Every child is bounded:
the parent kills it at its deadline, and the child exits on its own after
`CHILD_LIFETIME_S` if the parent vanished.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from core.faults.base import CaseSkipped

CHILD_LIFETIME_S = 240.0
ROOT = Path(__file__).resolve().parents[2]


# ============================================================================ parent side


class Child:
    """A child process speaking JSON lines on stdout; bounded waits; always killable."""

    def __init__(self, task: str, args: dict, *, workdir: Path, prefix: tuple[str, ...] = ()):
        self.stderr_path = workdir / f"child-{task}.stderr"
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
                   SOURCELIGHT_HOME=str(workdir / "home"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "core.faults.children", task, json.dumps(args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     cwd=ROOT, env=env, text=True, bufsize=1)
        self.messages: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"fault-child-{task}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # ends when the child exits
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                message = {"raw": line}
            message["_at"] = time.monotonic()
            self._queue.put(message)
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[dict], bool], timeout_s: float) -> dict | None:
        """The first message satisfying `predicate` within `timeout_s` (all messages are kept)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                message = self._queue.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if message is None:  # the child exited
                self._queue.put(None)
                return None
            self.messages.append(message)
            if predicate(message):
                return message

    def send(self, text: str) -> None:
        try:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        try:
            self.kill9()
            # The reader sees EOF once the child is gone; closing its pipe under it would raise there.
            self._reader.join(5)
        finally:
            self._stderr.close()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 - closing a dead pipe
                    pass

    def stderr_tail(self, chars: int = 600) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _prepare_texts(paths, chunk_chars: int = 900, overlap: int = 1) -> list[str]:
    """Every text ingest will embed for these files (chunk texts and sentence texts)."""
    from core.ingest.ingestor import file_hash, prepare

    texts: list[str] = []
    for path in paths:
        prepared = prepare(Path(path), file_hash(Path(path)), chunk_chars=chunk_chars, overlap=overlap)
        texts += [c.text for c in prepared.chunks] + [s.text for s in prepared.sentences]
    return texts


def _write_table(ctx, path: Path, texts) -> Path:
    from core.faults.scripted import VectorTable

    VectorTable.save_file(path, ctx.embedder.table(texts))
    return path


def _engine(home: Path, embedder, backend=None, **settings):
    from core.engine import Engine
    from core.faults.scripted import ScriptedBackend
    from core.settings import Settings

    return Engine(Settings(**settings), backend=backend or ScriptedBackend(["Hello."]), embedder=embedder,
                  data_dir=home, index_sample_corpus=False)


# -- a file that becomes unreadable mid-ingest --------------------------------------------------------


def unreadable_file(ctx):
    from core.faults.bad_input import GOOD_DOC
    from core.faults.base import Checks

    work = ctx.dir("unreadable")
    folder = work / "shared-drive"
    folder.mkdir()
    good = folder / "a-minutes.md"
    good.write_text(GOOD_DOC, encoding="utf-8")
    locked = folder / "b-payroll.md"
    locked.write_text("Payroll notes that an administrator locks while Sourcelight reads the folder.\n",
                      encoding="utf-8")
    table = _write_table(ctx, work / "vectors.npz", _prepare_texts([good]))
    # As root, permissions are only enforced once the DAC override capabilities are gone.
    prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    c = Checks()
    if prefix and shutil.which("setpriv") is None:
        raise CaseSkipped("running as root without setpriv: a mode-000 file stays readable")
    child = Child("unreadable", {"home": str(work / "home"), "folder": str(folder), "table": str(table),
                                 "target": str(locked)}, workdir=work, prefix=prefix)
    try:
        done = child.wait_for(lambda m: "report" in m, 120)
    finally:
        child.close()
        locked.chmod(0o600)
    if done is None:
        c.expect(False, f"the child did not report (stderr: {child.stderr_tail()})")
        return c.result("")
    report = done["report"]
    failed = dict(map(tuple, report["failed"]))
    c.fact(f"child report: indexed {len(report['indexed'])}, failed {len(report['failed'])}; "
           f"permission dropped: {done.get('chmodded')}; DAC capabilities dropped: {bool(prefix)}")
    c.expect(done.get("chmodded"), "the file's permissions were not changed mid-ingest")
    c.expect(str(locked) in failed, "the unreadable file was not reported")
    c.expect(locked.name in failed.get(str(locked), ""), "the message does not name the file")
    c.lose(str(good) not in report["indexed"], "the readable file was not indexed")
    return c.result(failed.get(str(locked), ""))


# -- a 50 MB single-line file --------------------------------------------------------------------------

HUGE_BYTES = 50 * 2**20
OBSERVE_S = 12.0  # how long progress is watched before Cancel is pressed (longer than the gap limit)
CANCEL_GRACE_S = 5.0  # how long a Cancel may take to end the ingest
PROGRESS_GAP_LIMIT_S = 10.0  # longer without a progress report looks frozen to the user
MEMORY_LIMIT_BYTES = 1 << 30  # peak RSS growth allowed for ingesting a 50 MB file


def write_single_line_file(path: Path, size: int = HUGE_BYTES) -> None:
    """`size` bytes of varied English sentences, no newline at all (as a minified export would be)."""
    import random

    words = ("the river ledger quarterly budget report index shows seven hundred twelve tonnes of grain "
             "moved north while inflation stayed calm and the council approved new bridges for the valley "
             "farmers who asked about water rights during a dry summer").split()
    rng = random.Random(6)
    block = "".join(" ".join(rng.choice(words) for _ in range(rng.randint(8, 22))).capitalize() + ". "
                    for _ in range(700))
    with open(path, "w", encoding="ascii") as fh:
        written = 0
        while written < size:
            piece = block[: size - written]
            fh.write(piece)
            written += len(piece)


def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes (0, 0 when it is gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 0, 0


def huge_file(ctx):
    from core.faults.base import Checks

    work = ctx.dir("huge")
    path = work / "export-one-line.txt"
    write_single_line_file(path)
    c = Checks()
    child = Child("huge", {"home": str(work / "home"), "file": str(path)}, workdir=work)
    samples: list[int] = []
    try:
        ready = child.wait_for(lambda m: "ready" in m, 60)
        if ready is None:
            c.expect(False, f"the child did not start (stderr: {child.stderr_tail()})")
            return c.result("")
        baseline = ready["rss"]
        started = time.monotonic()
        # Watch: progress messages arrive on the reader thread; sample memory meanwhile.
        while time.monotonic() - started < OBSERVE_S and child.proc.poll() is None:
            samples.append(_rss(child.proc.pid)[0])
            child.wait_for(lambda m: "returned" in m, 0.25)
            if any("returned" in m for m in child.messages):
                break
        child.send("cancel")
        cancel_sent = time.monotonic()
        returned = next((m for m in child.messages if "returned" in m), None) or \
            child.wait_for(lambda m: "returned" in m, CANCEL_GRACE_S)
        cancel_latency = (returned["_at"] - cancel_sent) if returned else None
        peak = max(_rss(child.proc.pid)[1], max(samples, default=0))
    finally:
        child.close()
        path.unlink(missing_ok=True)
    progress = [m for m in child.messages if "progress" in m]
    times = [0.0] + [m["t"] for m in progress] + [time.monotonic() - started if not returned else returned["t"]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    growth = max(0, peak - baseline)
    c.fact(f"50 MB, one line; watched {OBSERVE_S:.0f} s: {len(progress)} progress report(s) at "
           f"{[round(m['t'], 1) for m in progress]} s (chunks {[m['progress'][2] for m in progress]}); "
           f"longest gap {max(gaps, default=0):.1f} s")
    c.fact(f"memory: baseline {baseline / 2**20:.0f} MB, peak growth {growth / 2**20:.0f} MB "
           f"({growth / HUGE_BYTES:.1f}x the file) within the window")
    c.fact("Cancel: " + (f"ingest returned {cancel_latency:.1f} s after Cancel" if cancel_latency is not None
                         else f"ingest had not returned {CANCEL_GRACE_S:.0f} s after Cancel; the child was killed"))
    c.expect(max(gaps, default=0) <= PROGRESS_GAP_LIMIT_S,
             f"no progress report for {max(gaps, default=0):.0f} s (limit {PROGRESS_GAP_LIMIT_S:.0f} s)")
    c.expect(growth <= MEMORY_LIMIT_BYTES, f"memory grew by {growth / 2**20:.0f} MB")
    c.expect(cancel_latency is not None, "Cancel was not honoured")
    message = returned["summary"] if returned else ""
    return c.result(message)


# -- kill -9 during ingest ---------------------------------------------------------------------------

KILL_DOCS = {
    "a-harbour.md": "The harbour opens at six. Ferries leave every hour. Tickets are sold on the pier. "
                    "Bicycles travel free. Dogs must be on a lead. The café sells tea and soup. Lockers cost "
                    "two euros. The last ferry leaves at ten. Fog can delay crossings in November. "
                    "Lost property is kept for a month. The harbour master's office is blue. Parking is free.",
    "b-orchard.md": "The orchard has forty apple trees. Pruning happens in February. The oldest tree was "
                    "planted in 1921. Cider is pressed in October. Volunteers pick on Saturdays. Bees live in "
                    "six hives by the wall. The pears ripen after the apples. Frost nets cover the young "
                    "trees. The ladder shed is locked at dusk. A robin nests in the gate post. Windfalls go "
                    "to the pigs. The orchard gate squeaks.",
    "c-library.md": "The library lends tools as well as books. A drill can be borrowed for a week. Late "
                    "returns cost nothing. The reading room is silent. Children's stories are read on "
                    "Wednesdays. The printer needs a card. Wi-Fi needs no password. The archive holds maps "
                    "from 1850. Volunteers repair torn pages. The roof was fixed last spring. Seed packets are "
                    "free in April. The library closes on Mondays.",
}
KILL_PART_TEXTS = 8


def kill9_during_ingest(ctx):
    from core.faults.asking import ask
    from core.faults.base import Checks, GOOD_ANSWER
    from core.faults.scripted import ScriptedBackend

    work = ctx.dir("kill-ingest")
    folder = work / "notes"
    folder.mkdir()
    for name, text in KILL_DOCS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    files = sorted(folder.iterdir())
    table = _write_table(ctx, work / "vectors.npz", _prepare_texts(files))
    home = work / "home"
    c = Checks()
    child = Child("kill_ingest", {"home": str(home), "folder": str(folder), "table": str(table),
                                  "part_texts": KILL_PART_TEXTS}, workdir=work)
    try:
        frozen = child.wait_for(lambda m: "frozen" in m, 120)
        if frozen is None:
            c.expect(False, f"the child never reached the middle of a file (stderr: {child.stderr_tail()})")
            return c.result("")
        child.kill9()
        killed_rc = child.proc.returncode
    finally:
        child.close()
    c.fact(f"killed (rc {killed_rc}) while {frozen['frozen']['current']} was half written: "
           f"{frozen['frozen']['files_done']} file(s) committed, {frozen['frozen']['chunks']} chunk(s) written; "
           f"parts of {KILL_PART_TEXTS} texts in the child so a small file is written in several parts")

    # Restart: the collection opens, committed documents are listed, the half-written one is not.
    engine = _engine(home, ctx.embedder)
    try:
        engine.store.open()
        before = {d.file_name: d.chunks for d in engine.documents()}
        orphans = engine.store.chunk_count() - sum(before.values())
        c.fact(f"after restart: listed {sorted(before)}, {orphans} chunk(s) without a manifest")
        c.lose("a-harbour.md" not in before, "the file committed before the kill is gone")
        c.expect("b-orchard.md" not in before, "the half-written file is listed as indexed")
        c.expect(orphans == 0, f"{orphans} chunk(s) of the half-written file are still stored after the restart")
        report = engine.ingest([folder])
        after = {d.file_name: d.chunks for d in engine.documents()}
        stray = engine.store.chunk_count() - sum(after.values())
        c.fact(f"re-run: {report.summary()}; stray chunks {stray}")
        c.expect(sorted(after) == sorted(KILL_DOCS), "the re-run did not complete the ingest")
        c.expect(Path(report.unchanged[0]).name == "a-harbour.md" if report.unchanged else False,
                 "the committed file was not recognised as unchanged")
        c.expect(stray == 0, f"{stray} chunk(s) of the interrupted write were left behind")
        engine.set_backend(ScriptedBackend(GOOD_ANSWER))
        asked = ask(engine, "When is cider pressed in the orchard?", timeout_s=60)
        sources = {ch.file_name for e in asked.events if e.type == "retrieval" for ch in e.chunks}
        c.fact(f"question after recovery: {asked.describe()}; sources {sorted(sources)}")
        c.expect("b-orchard.md" in sources, "the recovered file is not retrieved")
        message = report.summary()
    finally:
        engine.pipeline.close()
    return c.result(message)


# -- a kill (SIGKILL or SIGTERM) during a large file, alone or in a folder: no ghosts ------------------

# The large file is built from a small pool of distinct sentences, so the parent
# embeds the pool once with the real model and the child meets no unknown text
# (only sentences are embedded; chunk vectors are pooled from them). About 1,200
# chunks and 20,000 sentences per MB; a MB takes ~20 s to ingest in a child here.
GHOST_SUBJECTS = ("The blue airship", "The zeppelin crew", "The hangar warden", "The mooring mast",
                  "The gas cell inspector", "The Karsby navigator")
GHOST_VERBS = ("checks", "repaints", "measures", "records", "guards", "patches", "weighs")
GHOST_OBJECTS = ("the hydrogen valves", "the rudder cables", "the ballast log", "the Karsby hangar doors",
                 "the envelope seams", "the altitude ledger", "the winch brakes")
GHOST_QUESTION = "Who patches the envelope seams of the blue airship in the Karsby hangar?"
GHOST_BYTES = 1_000_000
GHOST_FOLDER_BYTES = 500_000


def ghost_pool() -> list[str]:
    """The distinct sentences of the generated large file (none of them appears in KILL_DOCS)."""
    return [f"{s} {v} {o} before the {w} flight." for s in GHOST_SUBJECTS for v in GHOST_VERBS
            for o in GHOST_OBJECTS for w in ("dawn", "evening")]


def write_pooled_file(path: Path, size: int, seed: int = 18) -> None:
    """About `size` bytes of paragraphs drawn from `ghost_pool()`."""
    import random

    rng = random.Random(seed)
    pool = ghost_pool()
    written = 0
    with open(path, "w", encoding="ascii") as fh:
        while written < size:
            paragraph = " ".join(rng.choice(pool) for _ in range(rng.randint(6, 12))) + "\n\n"
            fh.write(paragraph)
            written += len(paragraph)


def _raw_rows(index: Path, workspace: str = "default") -> tuple[int, int, int]:
    """(chunk rows, sentence rows, manifest records) as stored, read without the app's clean-up."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(index), settings=ChromaSettings(anonymized_telemetry=False))
    counts = []
    for suffix in ("chunks", "sentences", "documents"):
        try:
            counts.append(client.get_collection(f"{workspace}-{suffix}").count())
        except Exception:  # noqa: BLE001 - the child was killed before creating it
            counts.append(0)
    return counts[0], counts[1], counts[2]


def kill_during_ingest_leaves_no_ghosts(ctx, *, sig: int, point: str, in_folder: bool):
    """Kill a child ingesting a large file (alone, or third of four files in a folder) at `point`
    ("first-part": right after its first part is stored; "late": once ~60% of it is stored),
    then check in this process, with the real engine, that nothing of it is listed, retrieved or
    stored, that the files committed before the kill are, and (folder) that a re-run completes."""
    from core.ingest.chunking import document_key
    from core.faults.base import Checks

    name = f"{signal.Signals(sig).name.lower()}-{point}-{'folder' if in_folder else 'file'}"
    work = ctx.dir(f"ghost-{name}")
    folder = work / "airship-notes"
    folder.mkdir()
    big = folder / "c-airship-log.txt"
    write_pooled_file(big, GHOST_FOLDER_BYTES if in_folder else GHOST_BYTES)
    small = []
    if in_folder:
        for file_name, text in KILL_DOCS.items():
            path = folder / (file_name if file_name != "c-library.md" else "d-library.md")
            path.write_text(text + "\n", encoding="utf-8")
            small.append(path)
    table = _write_table(ctx, work / "vectors.npz", _prepare_texts(small) + ghost_pool())
    expected_chunks = big.stat().st_size // 900  # at least this many (chunks of <= 900 characters)
    threshold = 1 if point == "first-part" else int(expected_chunks * 0.6)
    home = work / "home"
    c = Checks()
    child = Child("ghost_ingest", {"home": str(home), "paths": [str(folder if in_folder else big)],
                                   "table": str(table), "big": str(big)}, workdir=work)
    try:
        at = child.wait_for(lambda m: m.get("big_chunks", 0) >= threshold, 180)
        if at is None:
            c.expect(False, f"the child never stored {threshold} chunk(s) of the large file "
                            f"(stderr: {child.stderr_tail()})")
            return c.result("")
        child.proc.send_signal(sig)
        child.proc.wait(10)
        rc = child.proc.returncode
    finally:
        child.close()
    committed = sorted({Path(p).name for m in child.messages for p in m.get("committed", [])})
    finished = any("finished" in m for m in child.messages)
    c.fact(f"{signal.Signals(sig).name} (rc {rc}) after {at['big_chunks']} chunk(s) of {big.name} "
           f"({big.stat().st_size / 2**20:.2f} MiB, ~{expected_chunks}+ chunks) were stored; "
           f"committed before: {committed or 'none'}")
    c.expect(not finished, "the child finished the ingest before the kill; nothing was interrupted")
    c.expect(rc == -sig, f"the child was not ended by the signal (rc {rc})")
    left = _raw_rows(home / "index")
    c.fact(f"rows on disk after the kill: {left[0]} chunk(s), {left[1]} sentence(s), {left[2]} manifest(s)")

    engine = _engine(home, ctx.embedder)
    try:
        engine.load()  # opens the store (the clean-up) and builds keyword search, as a restart does
        listed = {d.file_name: d for d in engine.documents()}
        rows = (engine.store.chunk_count(), engine.store.sentence_count())
        stray = (rows[0] - sum(d.chunks for d in listed.values()), rows[1] - sum(d.sentences for d in listed.values()))
        hits = engine.retriever.retrieve(GHOST_QUESTION, 8)
        ghost_hits = [h for h in hits if h.file_name == big.name]
        c.fact(f"after restart: listed {sorted(listed)}; rows {rows[0]} chunk(s), {rows[1]} sentence(s); "
               f"not listed: {stray[0]} chunk(s), {stray[1]} sentence(s); the airship question retrieved "
               f"{sorted({h.file_name for h in hits})}")
        c.expect(big.name not in listed, "the interrupted file is listed as indexed")
        c.expect(not ghost_hits, f"{len(ghost_hits)} chunk(s) of the interrupted file are retrieved")
        c.expect(stray == (0, 0), f"{stray[0]} chunk and {stray[1]} sentence row(s) of the interrupted file "
                                  "are still stored after the restart")
        c.expect(not engine.remove_document(document_key(str(big))),
                 "remove found the interrupted file although documents does not list it")
        for path in small:
            if path.name in committed:
                c.lose(path.name not in listed, f"{path.name}, committed before the kill, is gone")
            else:
                c.expect(path.name not in listed, f"{path.name}, not finished before the kill, is listed")
        if in_folder:
            c.expect(len(committed) >= 2, "the small files read before the large one were not committed "
                                          "before it (a kill during it loses them)")
            if "b-orchard.md" in committed:
                orchard = engine.retriever.retrieve("When is cider pressed in the orchard?", 3)
                c.expect(any(h.file_name == "b-orchard.md" for h in orchard),
                         "b-orchard.md, committed before the kill, is not retrieved")
            report = engine.ingest([folder])
            after = {d.file_name: d for d in engine.documents()}
            rows = (engine.store.chunk_count(), engine.store.sentence_count())
            stray = (rows[0] - sum(d.chunks for d in after.values()),
                     rows[1] - sum(d.sentences for d in after.values()))
            found = {h.file_name for h in engine.retriever.retrieve(GHOST_QUESTION, 5)}
            c.fact(f"re-run: {report.summary()}; not listed after it: {stray}; airship question now "
                   f"retrieves {sorted(found)}")
            c.expect(sorted(after) == sorted([big.name] + [p.name for p in small]),
                     "the re-run did not complete the folder")
            c.expect(sorted(Path(p).name for p in report.unchanged) == committed,
                     "the files committed before the kill were not recognised as unchanged")
            c.expect(stray == (0, 0), "the re-run left rows that no document lists")
            c.expect(big.name in found, "the re-added large file is not retrieved")
            message = report.summary()
        else:
            message = ""
    finally:
        engine.pipeline.close()
    return c.result(message)


# -- kill -9 during a conversation ----------------------------------------------------------------------

CONVERSATION = [
    ("When does the last ferry leave?", ["The last ferry leaves at ten. ", "Fog can delay it in November."]),
    ("Do bicycles cost extra?", ["No, bicycles travel free on the ferry."]),
    ("And dogs?", ["Dogs must ", "be on a lead"]),  # stalls after its first piece: killed mid-stream
]


def kill9_during_conversation(ctx):
    from core.faults.asking import ask
    from core.faults.base import Checks
    from core.faults.scripted import ScriptedBackend
    from core.history import HistoryStore

    work = ctx.dir("kill-conversation")
    folder = work / "notes"
    folder.mkdir()
    doc = folder / "a-harbour.md"
    doc.write_text(KILL_DOCS["a-harbour.md"] + "\n", encoding="utf-8")
    home = work / "home"
    engine = _engine(home, ctx.embedder, top_k=2)
    # Build the index and run the same questions once here, so the child's
    # vector table holds the real model's vector of every text it will embed.
    try:
        engine.ingest([folder])
        for question, pieces in CONVERSATION[:2]:
            engine.set_backend(ScriptedBackend(pieces))
            ask(engine, question, timeout_s=60)
    finally:
        engine.pipeline.close()
    table = _write_table(ctx, work / "vectors.npz", ctx.embedder.known_texts())
    c = Checks()
    child = Child("conversation", {"home": str(home), "table": str(table), "turns": CONVERSATION},
                  workdir=work)
    try:
        streaming = child.wait_for(lambda m: "streaming" in m, 120)
        if streaming is None:
            c.expect(False, f"the third answer never started streaming (stderr: {child.stderr_tail()})")
            return c.result("")
        child.kill9()
    finally:
        child.close()
    saved = [m for m in child.messages if "saved" in m]
    conversation_id = next(m["conversation"] for m in child.messages if "conversation" in m)
    c.fact(f"killed while answer 3 streamed; the child had saved {len(saved)} turn(s)")

    history = HistoryStore(home / "history.sqlite3")
    try:
        integrity = history._conn.execute("PRAGMA integrity_check").fetchone()[0]
        turns = history.turns(conversation_id)
        c.fact(f"after restart: integrity {integrity}; {len(turns)} turn(s): "
               f"{[(t.question, t.status) for t in turns]}")
        c.expect(integrity == "ok", "the history database is damaged")
        for m in saved:
            match = next((t for t in turns if t.position == m["saved"]), None)
            c.lose(match is None, f"completed turn {m['saved'] + 1} is gone")
            if match is not None:
                c.lose(match.answer != m["answer"] or match.question != m["question"],
                       f"turn {m['saved'] + 1} came back different")
                c.expect(len(match.attributions) == m["attributions"], "its attributions came back different")
        c.lose(len(saved) < 2, "the child did not complete the first two turns")
        follow_up = history.history_messages(conversation_id)
        engine = _engine(home, ctx.embedder, top_k=2)
        try:
            engine.set_backend(ScriptedBackend(["Dogs must be on a lead."]))
            asked = ask(engine, "And dogs?", history=follow_up, timeout_s=60)
        finally:
            engine.pipeline.close()
        c.fact(f"follow-up after restart with {len(follow_up)} history message(s): {asked.describe()}")
        c.expect(asked.terminal is not None and asked.terminal.type == "completed", "the follow-up failed")
    finally:
        history.close()
    return c.result("")


# -- DNS failure ----------------------------------------------------------------------------------------

DNS_URL = "http://sourcelight-fault-dns.invalid:8080/v1"


def dns_failure(ctx):
    from core.faults.backend import follow_up_works
    from core.faults.base import Checks

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise CaseSkipped("needs `unshare -n` (root) so the failing DNS lookup never leaves the machine")
    work = ctx.dir("dns")
    c = Checks()
    child = Child("dns", {"home": str(work / "home")}, workdir=work, prefix=("unshare", "-n"))
    try:
        done = child.wait_for(lambda m: "terminal" in m, 90)
    finally:
        child.close()
    if done is None:
        if "unshare failed" in child.stderr_tail():
            raise CaseSkipped("`unshare -n` is not permitted here: " + child.stderr_tail(200))
        c.expect(False, f"the child did not report (stderr: {child.stderr_tail()})")
        return c.result("")
    end = done["terminal"]
    c.fact(f"in a network namespace without DNS: {end['type']}[{end.get('code')}] after {done['elapsed']:.2f} s")
    c.expect(end["type"] == "error" and end["code"] == "backend_unavailable", "the run did not fail as unreachable")
    c.expect(DNS_URL in end.get("message", ""), "the message does not name the URL")
    c.expect("could not be found" in end.get("message", ""),
             "the message does not say the host name was not found (it suggests the server is down)")
    follow_up_works(ctx, c)
    return c.result(end.get("message", ""))


# ============================================================================= child side


def _emit(**message: Any) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child_unreadable(args: dict) -> None:
    from core.faults.scripted import VectorTable

    embedder = VectorTable.load_file(Path(args["table"]))
    engine = _engine(Path(args["home"]), embedder)
    target = Path(args["target"])
    chmodded: list[bool] = []

    def progress(p) -> None:
        # First report: the folder is listed, no file has been read yet.
        if not chmodded:
            target.chmod(0)
            chmodded.append(True)

    report = engine.ingest([Path(args["folder"])], progress=progress)
    _emit(report={"indexed": report.indexed, "failed": report.failed}, chmodded=bool(chmodded),
          misses=embedder.misses)


def _child_huge(args: dict) -> None:
    from core.faults.scripted import VectorTable

    engine = _engine(Path(args["home"]), VectorTable({}))
    engine.store.open()
    cancel = threading.Event()
    started = time.monotonic()
    _emit(ready=True, rss=_rss(os.getpid())[0])

    def progress(p) -> None:
        _emit(progress=[p.files_done, p.files_total, p.chunks_written], t=time.monotonic() - started)

    def work() -> None:
        report = engine.ingest([Path(args["file"])], progress=progress, cancel=cancel)
        _emit(returned=True, t=time.monotonic() - started, summary=report.summary())

    threading.Thread(target=work, daemon=True).start()
    for line in sys.stdin:
        if line.strip() == "cancel":
            cancel.set()


def _child_kill_ingest(args: dict) -> None:
    import core.ingest.ingestor
    from core.faults.scripted import VectorTable

    # Small parts, so a small file goes through the same multi-part write (and
    # the same manifest-last commit) that a file of over 2,048 texts does.
    core.ingest.ingestor.PART_TEXTS = int(args["part_texts"])
    engine = _engine(Path(args["home"]), VectorTable.load_file(Path(args["table"])))
    last = {"chunks": 0}

    def progress(p) -> None:
        grew = p.chunks_written > last["chunks"]
        last["chunks"] = p.chunks_written
        if p.files_done >= 1 and grew:
            # One file is committed and part of the next one is written: freeze
            # here so the kill lands between two parts of one file.
            _emit(frozen={"files_done": p.files_done, "current": p.current, "chunks": p.chunks_written})
            time.sleep(CHILD_LIFETIME_S)

    engine.ingest([Path(args["folder"])], progress=progress)
    _emit(finished=True)


def _child_ghost_ingest(args: dict) -> None:
    from core.ingest.chunking import document_key
    from core.faults.scripted import VectorTable

    engine = _engine(Path(args["home"]), VectorTable.load_file(Path(args["table"])))
    store = engine.store
    big_key = document_key(os.path.abspath(args["big"]))
    written = {"chunks": 0}
    add_records, write_documents = store.add_records, store.write_documents

    # Report what reaches the store, as it lands: the parent kills on these.
    def counted_add(chunks, *rest, **kw):
        add_records(chunks, *rest, **kw)
        if chunks and chunks[0].id.startswith(big_key):
            written["chunks"] += len(chunks)
            _emit(big_chunks=written["chunks"])

    def counted_write(writes):
        write_documents(writes)
        _emit(committed=[w[0].source for w in writes])

    store.add_records, store.write_documents = counted_add, counted_write
    report = engine.ingest([Path(p) for p in args["paths"]])
    _emit(finished=True, summary=report.summary())


def _child_conversation(args: dict) -> None:
    from core.events import TextDelta
    from core.faults.scripted import ScriptedBackend, VectorTable
    from core.history import HistoryStore, TurnRecorder

    home = Path(args["home"])
    engine = _engine(home, VectorTable.load_file(Path(args["table"])), top_k=2)
    history = HistoryStore(home / "history.sqlite3")
    conversation = history.create_conversation()
    _emit(conversation=conversation)

    async def converse() -> None:
        for i, (question, pieces) in enumerate(args["turns"]):
            last = i == len(args["turns"]) - 1
            backend = ScriptedBackend(pieces, stall_after=1 if last else None)
            engine.set_backend(backend)
            recorder = TurnRecorder(question, backend.description)
            run = engine.ask(question, history.history_messages(conversation))
            async for event in run.events():
                recorder.observe(event)
                if last and isinstance(event, TextDelta):
                    _emit(streaming=i)
            # add_turn blocks on an fsync: off the loop, as the app must do it.
            stored = await asyncio.get_running_loop().run_in_executor(None, history.add_turn, conversation,
                                                                      recorder.result())
            _emit(saved=stored.position, question=stored.question, answer=stored.answer, status=stored.status,
                  attributions=len(stored.attributions))

    asyncio.run(converse())


def _child_dns(args: dict) -> None:
    from core.events import event_to_json
    from core.faults.asking import ask
    from core.faults.scripted import VectorTable
    from core.llm.openai_compat import OpenAIChatBackend

    backend = OpenAIChatBackend("gpt-4o-mini", DNS_URL, "sk-fault-suite-dns", 5.0, max_retries=0)
    engine = _engine(Path(args["home"]), VectorTable({}), backend=backend)
    asked = ask(engine, "When does the last ferry leave?", timeout_s=60)
    end = asked.terminal
    _emit(terminal=event_to_json(end) if end is not None else {"type": "none"},
          elapsed=asked.times[-1] if asked.times else 0.0)


CHILD_TASKS = {"unreadable": _child_unreadable, "huge": _child_huge, "kill_ingest": _child_kill_ingest,
               "ghost_ingest": _child_ghost_ingest, "conversation": _child_conversation, "dns": _child_dns}


def child_main(argv: list[str]) -> int:
    task, args = argv[0], json.loads(argv[1])
    # If the parent dies without killing us, do not linger.
    timer = threading.Timer(CHILD_LIFETIME_S, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    CHILD_TASKS[task](args)
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))

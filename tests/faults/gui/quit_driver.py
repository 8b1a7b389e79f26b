"""Runs the real composition root in a process of its own and closes the window mid-work.

`python -m tests.faults.gui.quit_driver MODE WORKDIR` sets up
the app exactly as `gui.app.main` does (QApplication, qasync loop, the app's
executor, `gui.app.build`, `gui.app.run_window`), with a scripted model and an
embedder that needs no torch (hash vectors; retrieval quality is irrelevant
here). Once an answer is streaming, or an ingest batch is being embedded, it
closes the window and lets the app shut down the normal way. It prints one
JSON line per step; the test measures how long the process takes to exit
after the close. Modes: `mid-stream`; `mid-ingest` (the batch in flight takes
one more second - the gate opens then - as a real embedding batch would);
`mid-huge-ingest` (a 50 MB single-line file is being prepared).
"""
from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path


def emit(**message) -> None:
    print(json.dumps(message), flush=True)


def main(mode: str, workdir: Path) -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    from core.engine import Engine
    from core.faults.scripted import GatedEmbedder, ScriptedBackend, VectorTable
    from core.secrets import ApiKeyStore
    from core.settings import Settings
    from gui.app import build, make_executor, run_window

    # A hard stop in case the app never exits: the parent then sees a timeout, not a hang.
    watchdog = threading.Timer(90, lambda: (emit(watchdog=True), sys.stdout.flush(), __import__("os")._exit(4)))
    watchdog.daemon = True
    watchdog.start()

    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)  # as gui.app.main: the async shutdown runs before the loop ends
    loop = qasync.QEventLoop(app)
    executor = make_executor()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)

    folder = workdir / "inbox"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("museum", "library", "theatre"):
        (folder / f"{name}.md").write_text(f"The {name} opens at nine. Visitors sign the {name} book.\n",
                                           encoding="utf-8")
    if mode == "mid-huge-ingest":
        from core.faults.children import write_single_line_file

        write_single_line_file(folder / "export-one-line.txt")
    embedder = GatedEmbedder(VectorTable({}), hold=lambda text: "museum" in text)
    backend = ScriptedBackend(["Press Esc ", "or click Stop."], stall_after=1)

    def factory(settings):
        return Engine(settings, backend=backend, embedder=embedder, data_dir=workdir / "home",
                      index_sample_corpus=False)

    window, controller = build(settings=Settings(top_k=2), engine_factory=factory,
                               key_store=ApiKeyStore(environ={}), settings_path=workdir / "settings.json")

    async def until(predicate, timeout_s: float = 60.0) -> None:
        # Polled rather than awaited: these are states of the app (a flag, a
        # counter, a label), not events it announces. A short interval keeps the
        # close close to the moment the state is reached.
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the app never reached the state to close it in")
            await asyncio.sleep(0.02)

    async def drive() -> None:
        await until(lambda: controller.ready)
        if mode == "mid-stream":
            controller.answers.ask("How do I stop an answer early?")
            await until(lambda: backend.streaming == 1)
        elif mode == "mid-ingest":
            controller.documents.add_paths([str(folder)])
            await until(embedder.blocked.is_set)
            threading.Timer(1.0, embedder.gate.set).start()
        else:
            embedder.gate.set()
            controller.documents.add_paths([str(folder / "export-one-line.txt")])
            # The panel names a file once the reader reports its first percent of
            # it: from then on the reader is segmenting the huge file.
            await until(lambda: "export-one-line.txt" in window.documents_panel.progress_label.text())
        emit(closing=time.time())
        window.close()

    driver = loop.create_task(drive())
    with loop:
        code = loop.run_until_complete(run_window(window, controller))
    executor.shutdown(wait=False, cancel_futures=True)
    window.deleteLater()
    emit(returned=code, driver=repr(driver.exception()) if driver.done() and not driver.cancelled() else "",
         backend=backend.outcomes)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))

"""`bench ingest`: the product's `Ingestor` vs a naive per-file loop, on the same generated files.

The corpus is 2,000 generated .txt/.md files (log-normal lengths around
1,500 characters, a long tail to 30,000; `--files` shrinks it), written once
under the bench cache.
Both sides produce the same records from the same files:

- product: `Ingestor.ingest` (reader thread, batches of texts across files,
  `ChunkStore.write_documents` per batch, each file all or nothing), then the BM25 rebuild that
  `Engine.ingest` runs after every ingest;
- reference: for each file in turn, the product's own extraction and chunking
  (`core.ingest.ingestor.prepare`), then ONE `SentenceTransformer.encode` of that file's
  chunk and sentence texts and ONE `collection.add` into a separate collection.

Both store the same records, chunk and sentence vectors alike (the product
keeps sentence vectors for attribution). The reference runs the model on the
chunk texts and the sentence texts, as a straightforward ingest would; the
product runs it on each distinct sentence once and pools the chunk vectors
from them (`core.ingest.chunk_vectors`; what that does to retrieval is measured on
public data by `sourcelight eval chunk-vectors`). The files are
split into interleaved slices and the two sides alternate slice by slice, so a
change in machine load hits both. Goal (issue 5): ratio >= 3.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from core.bench.base import (Bench, BenchResult, Goal, cache_dir, goal_text, machine_line, peak_rss_mb,
                             profile_calls, progress, ratio, row, say)
from core.bench.corpus import CORPUS_VERSION, write_document_corpus

GOAL_RATIO = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, default=2000, help="files in the generated corpus (default 2000)")
    parser.add_argument("--median-chars", type=int, default=1500,
                        help="median file length in characters (log-normal; default 1500)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="slices of the corpus; product and reference alternate per slice (default 4)")


def corpus_files(n_files: int, seed: int, median_chars: int) -> list[Path]:
    """The generated corpus (cached; rebuilt if missing or from another corpus version)."""
    folder = cache_dir() / f"ingest-corpus-{n_files}x{median_chars}-seed{seed}-corpus{CORPUS_VERSION}"
    listing = folder / "files.json"
    if listing.exists():
        return [folder / p for p in json.loads(listing.read_text())]
    tmp = folder.with_name(folder.name + f".building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    say(f"writing a {n_files:,}-file corpus to {folder} ...")
    paths = write_document_corpus(tmp, n_files, seed, median_chars)
    (tmp / "files.json").write_text(json.dumps([str(p.relative_to(tmp)) for p in paths]))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return [folder / p.relative_to(tmp) for p in paths]


class _NaiveIngest:
    """One encode and one collection.add per file: the reference the product must beat."""

    def __init__(self, folder: Path, chunk_chars: int, overlap: int):
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from sentence_transformers import SentenceTransformer

        from core.embedding import bundled_model_path

        self.model = SentenceTransformer(bundled_model_path(), device="cpu")
        self.client = chromadb.PersistentClient(path=str(folder), settings=ChromaSettings(anonymized_telemetry=False))
        self.collection = self.client.get_or_create_collection(
            "naive", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
        self.max_batch = self.client.get_max_batch_size()
        self.chunk_chars, self.overlap = chunk_chars, overlap
        self.encode_s = self.add_s = 0.0

    def ingest(self, files: list[Path], on_file=lambda: None) -> tuple[int, int]:
        from core.ingest.ingestor import file_hash, prepare

        chunks = sentences = 0
        for path in files:
            prepared = prepare(path, file_hash(path), chunk_chars=self.chunk_chars, overlap=self.overlap)
            texts = [c.text for c in prepared.chunks] + [s.text for s in prepared.sentences]
            ids = [c.id for c in prepared.chunks] + [s.id for s in prepared.sentences]
            metas = ([{"source": c.source, "kind": "chunk"} for c in prepared.chunks]
                     + [{"chunk_id": s.chunk_id, "start": s.start, "end": s.end, "kind": "sentence"}
                        for s in prepared.sentences])
            t0 = time.perf_counter()
            vectors = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            t1 = time.perf_counter()
            for lo in range(0, len(ids), self.max_batch):  # one add, unless Chroma's batch limit forbids it
                hi = lo + self.max_batch
                self.collection.add(ids=ids[lo:hi], embeddings=vectors[lo:hi], metadatas=metas[lo:hi],
                                    documents=texts[lo:hi])
            self.encode_s += t1 - t0
            self.add_s += time.perf_counter() - t1
            chunks += len(prepared.chunks)
            sentences += len(prepared.sentences)
            on_file()
        return chunks, sentences


def run(args: argparse.Namespace) -> BenchResult:
    from core.embedding import Embedder
    from core.ingest.ingestor import Ingestor
    from core.answer.lexical import LexicalIndex
    from core.settings import Settings
    from core.ingest.store import ChunkStore

    # --quick: a handful of short files, so a test run stays within seconds on a loaded machine.
    n_files = 6 if args.quick else args.files
    rounds = 2 if args.quick else max(1, args.rounds)
    settings = Settings()
    files = corpus_files(n_files, args.seed, 300 if args.quick else args.median_chars)
    slices = [files[r::rounds] for r in range(rounds)]
    result = BenchResult("ingest")
    result.lines.append(machine_line())
    work = Path(tempfile.mkdtemp(prefix="ingest-run-", dir=cache_dir()))
    try:
        say("loading both embedding models...")
        embedder = Embedder()
        embedder.load()
        store = ChunkStore(work / "product" / "index", "bench")
        store.open()
        lexical = LexicalIndex(store, work / "product" / "lexical")
        ingestor = Ingestor(store, embedder, chunk_chars=settings.chunk_chars, overlap=settings.chunk_overlap_sentences)
        naive = _NaiveIngest(work / "naive", settings.chunk_chars, settings.chunk_overlap_sentences)
        # Warm both models (first-call allocations) outside the timed region.
        embedder.encode(["warm up the model"] * 4)
        naive.model.encode(["warm up the model"] * 4, show_progress_bar=False)

        product_s = naive_s = 0.0
        p_chunks = p_sentences = n_chunks = n_sentences = 0
        failed: list[tuple[str, str]] = []
        bar = progress(total=2 * n_files, desc="ingest (product and naive alternate)", unit="file")
        for r, part in enumerate(slices):
            sides = ("product", "naive") if r % 2 == 0 else ("naive", "product")
            for side in sides:
                base = bar.n
                t0 = time.perf_counter()
                if side == "product":
                    # Progress is reported per file; updating a tqdm bar costs microseconds.
                    report = ingestor.ingest(part, progress=lambda p, b=base: bar.update(b + p.files_done - bar.n))
                    product_s += time.perf_counter() - t0
                    p_chunks += report.chunks
                    p_sentences += report.sentences
                    failed += report.failed
                else:
                    c, s = naive.ingest(part, lambda: bar.update(1))
                    naive_s += time.perf_counter() - t0
                    n_chunks += c
                    n_sentences += s
                bar.update(base + len(part) - bar.n)
        bar.close()
        # Engine.ingest rebuilds keyword search after every ingest; once for the whole corpus here.
        t0 = time.perf_counter()
        lexical.invalidate()
        lexical.ensure_current()
        lexical_s = time.perf_counter() - t0
        product_s += lexical_s

        profile_text = None
        if args.profile:
            sample = files[: min(200, len(files))]
            pstore = ChunkStore(work / "profiled" / "index", "bench")
            pstore.open()
            profiled = Ingestor(pstore, embedder, chunk_chars=settings.chunk_chars,
                                overlap=settings.chunk_overlap_sentences)
            profile_text = profile_calls(f"Ingestor.ingest of {len(sample)} files (main thread only; the reader "
                                         "thread is not profiled)", lambda: profiled.ingest(sample), repeat=1)
    finally:
        peak = peak_rss_mb()
        shutil.rmtree(work, ignore_errors=True)
    if profile_text:
        say(profile_text)

    cps, ncps = p_chunks / product_s, n_chunks / naive_s
    texts_ps, naive_texts_ps = (p_chunks + p_sentences) / product_s, (n_chunks + n_sentences) / naive_s
    result.fields = {
        "chunks_per_s": cps, "naive_chunks_per_s": ncps, "ratio": ratio(cps, ncps), "peak_rss_mb": peak,
        "files": n_files, "chunks": p_chunks, "sentences": p_sentences,
        "texts_per_s": texts_ps, "naive_texts_per_s": naive_texts_ps,
        "product_seconds": product_s, "naive_seconds": naive_s, "lexical_rebuild_seconds": lexical_s,
        "naive_encode_seconds": naive.encode_s, "naive_add_seconds": naive.add_s,
    }
    result.lines += [
        f"{n_files:,} files -> {p_chunks:,} chunks + {p_sentences:,} sentences embedded and stored "
        f"({rounds} slices, product and naive alternating):",
        row("product chunks/s", cps, "chunks/s"),
        row("naive (encode + add per file) chunks/s", ncps, "chunks/s"),
        row("ratio", result.fields["ratio"], "", goal_text(result.fields["ratio"], ">=", GOAL_RATIO)),
        row("product texts/s (chunks + sentences)", texts_ps, "texts/s"),
        row("naive texts/s", naive_texts_ps, "texts/s"),
        row("product wall time (incl. BM25 rebuild)", product_s, "s"),
        row("  of which BM25 rebuild", lexical_s, "s"),
        row("naive wall time", naive_s, "s"),
        row("  of which encode", naive.encode_s, "s"),
        row("  of which collection.add", naive.add_s, "s"),
        row("peak RSS (both models, both stores)", peak, "MB"),
    ]
    result.goals.append(Goal("ingest ratio", result.fields["ratio"], ">=", GOAL_RATIO))
    if n_chunks != p_chunks:
        result.notes.append(f"the sides stored different chunk counts (product {p_chunks}, naive {n_chunks})")
    if failed:
        result.notes.append(f"{len(failed)} file(s) failed in the product ingest, e.g. {failed[0]}")
    result.notes.append("peak RSS is the whole process: both models and both stores are loaded")
    return result


BENCH = Bench("ingest", "Ingestor on a generated 2,000-file corpus vs one encode + one collection.add per file",
              add_arguments, run)

"""Command-line pieces shared by the `sourcelight eval ...` commands: the data files and the embedding cache."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--wice, --expertqa, --json, --quiet, --cache and --no-cache."""
    parser.add_argument("--wice", metavar="FILE", help="WiCE claim-level JSONL (e.g. shared/data/wice/claim_dev.jsonl)")
    parser.add_argument("--expertqa", metavar="FILE", nargs="+",
                        help="ExpertQA JSONL file(s); answers repeated across files are counted once")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--cache", metavar="DIR", help="where benchmark embeddings are kept between runs "
                                                      "(default: DATA_DIR/cache/eval-embeddings)")
    parser.add_argument("--no-cache", action="store_true", help="embed everything afresh and keep nothing")


def check_data_files(args: argparse.Namespace) -> int | None:
    """None if the data files asked for can be read; else says why (with the next step) and returns exit code 2."""
    problem = None
    plain = getattr(args, "plain", None)
    if not args.wice and not args.expertqa and not plain:
        problem = ("Nothing to evaluate: give --wice FILE and/or --expertqa FILE "
                   "(for example ../shared/data/wice/claim_dev.jsonl)"
                   + (", or your own labelled rows with --plain FILE." if hasattr(args, "plain") else "."))
    for f in [args.wice, plain] + (args.expertqa or []):
        if problem is None and f and not Path(f).is_file():
            problem = f"No such file: {f}"
    if problem is None:
        return None
    print(problem, file=sys.stderr)
    return 2


def open_cache(args: argparse.Namespace, embedder):
    """The benchmark embedding cache the arguments ask for (shared by every eval command)."""
    from core.eval.attribution_data import EmbeddingCache, default_cache_dir

    return EmbeddingCache(embedder, None if args.no_cache else (args.cache or default_cache_dir()), name="eval")

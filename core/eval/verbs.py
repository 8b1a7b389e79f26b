"""`sourcelight eval WHAT ...`: one entry point for the evaluations (`attribution`, `chunk-vectors`, `followups`, `loops`).

Registered under the `sourcelight.verbs` entry-point group (pyproject.toml), so
the product's command line finds it by name and never imports the harness.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

# what -> the module whose main(argv) runs it
EVALUATIONS = {
    "attribution": "core.eval.attribution_eval",
    "chunk-vectors": "core.eval.chunk_vectors",
    "followups": "core.eval.followups",
    "loops": "core.eval.loops",
}


def main(argv: Sequence[str]) -> int:
    """Run one evaluation: `argv` = [WHAT, options...]."""
    argv = list(argv)
    if not argv or argv[0] not in EVALUATIONS:
        print(f"usage: sourcelight eval {{{','.join(EVALUATIONS)}}} ...", file=sys.stderr)
        return 2
    return importlib.import_module(EVALUATIONS[argv[0]]).main(argv[1:])

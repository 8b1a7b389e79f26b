"""Models exported once to ONNX on this machine and run by onnxruntime: where the files live, writing, loading.

Importing torch and transformers takes most of the time from launch to the
first answerable question on these two cores (about 10 of 16 s while busy,
measured 2026-12-03), and onnxruntime (already installed with ChromaDB) runs the
same small BERT models several times faster per call. The app's models (the
embedder, `core.onnx_embedding`; the support verifier,
`core.attribution.verifier`) are therefore exported from their shipped weights
on the user's machine, once, after the first start, and later starts load the
export. Nothing is downloaded and no derived weights are committed.

An export is written atomically and kept only when its outputs match the torch
model's on a few inputs (`export`): a user's index holds the torch model's
vectors and the calibration reads the verifier's logits. A file that no longer
loads is deleted (`session`), and the caller takes the torch path again, which
writes a new export.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "v1"  # bump when an exported graph changes


def cache_path(weights: Path, cache_dir: Path, name: str) -> Path | None:
    """The export of the model whose weights file is `weights` (None: no such file to key it by)."""
    try:
        info = weights.stat()
    except OSError:
        return None
    return cache_dir / f"{name}.{info.st_size}.{info.st_mtime_ns}.{FORMAT}.onnx"


def session(path: Path | None):
    """An onnxruntime session for an export, or None (no file yet, no onnxruntime, or the file is damaged)."""
    if path is None or not path.is_file():
        return None
    try:
        import onnxruntime
    except ImportError:  # a build without it (the packaged app today) keeps the file for a later one
        return None
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about graph details, not for users
        # Its worker threads otherwise spin for a while after each call, holding both cores while the
        # Chroma query and BM25 that follow an embedding wait for them (retrieval p50 46 -> see README).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged file: the torch path works, and writes a good one
        log.warning("the ONNX export %s could not be loaded; using torch", path, exc_info=True)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def export(module, inputs: dict, output: str, path: Path | None, check: Callable[[Path], float],
           tolerance: float) -> Path | None:
    """Export a torch module to `path` (atomically); keep it only if `check(file)` <= `tolerance`.

    `inputs` maps input names to example tensors of shape (batch, tokens);
    both axes are dynamic. `check` returns the largest difference between the
    export's outputs and the torch model's. Blocking (a few seconds of CPU):
    call it on a worker. Returns the file, or None when there is no export.
    """
    if path is None:
        return None
    if path.is_file():
        return path
    try:
        import onnx  # noqa: F401 - torch's exporter writes with it; without it there is no fast path
        import torch
    except ImportError:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes about its own internals
            torch.onnx.export(module.eval(), tuple(inputs.values()), str(partial), input_names=list(inputs),
                              output_names=[output], dynamic_axes={**axes, output: {0: "batch"}},
                              opset_version=17, dynamo=False)
        difference = check(partial)
        if not difference <= tolerance:  # NaN fails too
            log.warning("the ONNX export %s differs from the model by %.2g; not used", path.name, difference)
            partial.unlink(missing_ok=True)
            return None
        os.replace(partial, path)
        _remove_older(path)
        return path
    except Exception:
        log.warning("exporting %s to ONNX failed; starts keep using torch", path.name, exc_info=True)
        partial.unlink(missing_ok=True)
        return None


def _remove_older(path: Path) -> None:
    """Delete exports of earlier weights or formats of the same model (90 MB each; none is read again)."""
    name = path.name.split(".", 1)[0]
    for other in path.parent.glob(f"{name}.*.onnx"):
        if other != path:
            try:
                other.unlink()
            except OSError:
                pass


def token_arrays(encodings) -> dict[str, np.ndarray]:
    """A batch of `tokenizers` encodings (padded alike) as the three BERT inputs."""
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}

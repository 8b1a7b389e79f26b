"""The embedding model without torch: the same all-MiniLM-L6-v2, exported once to ONNX and run by onnxruntime.

Why: importing torch, transformers and sentence-transformers is most of the
time from launch to the first answerable question (about 10 s of 16 s on these
two cores while busy, measured 2026-12-03); onnxruntime and tokenizers are
already installed with ChromaDB and load the same model in about 0.5 s, and
embed one question in 6.5 ms instead of 29 ms.

The ONNX file is derived from the bundled weights on this machine, never
downloaded and never committed: the first run loads the model through
sentence-transformers as before, and `export` (run on a worker once the app
is ready) writes `<data dir>/cache/embedder/<model>.<size>.<mtime>.v1.onnx`.
The graph holds the whole sentence-transformers pipeline after tokenising:
BERT, mean pooling over the attention mask, L2 normalisation. An export is
kept only if it gives the torch model's vectors (max difference below 1e-4
on a few sentences); the later launches use it. A damaged or missing file
means the torch path again, and a new export.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "v1"  # bump when the exported graph changes
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
PARITY_TOLERANCE = 1e-4
PARITY_TEXTS = ("How do I add documents?",
                "Sourcelight highlights the exact span of the source that supports each answer sentence.",
                "Chunk size is 64 MB; each chunk replica is stored as a plain Linux file.")


def cache_path(model_dir: str | Path, cache_dir: Path) -> Path | None:
    """Where the export of the model in `model_dir` lives (None: no safetensors weights to key it by)."""
    weights = Path(model_dir) / "model.safetensors"
    try:
        info = weights.stat()
    except OSError:
        return None
    return cache_dir / f"{Path(model_dir).name}.{info.st_size}.{info.st_mtime_ns}.{FORMAT}.onnx"


class OnnxEncoder:
    """`encode(texts, batch_size)` with sentence-transformers' results, on onnxruntime."""

    def __init__(self, onnx_file: Path, model_dir: str | Path):
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about graph details, not for users
        self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_options) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, in the order given."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # Batches of similar length (as sentence-transformers does): less padding, same vectors.
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        out = np.empty((len(texts), 384), dtype=np.float32)
        for k in range(0, len(order), batch_size):
            part = order[k:k + batch_size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in part])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            vectors = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                               "token_type_ids": np.zeros_like(ids)})[0]
            out[part] = vectors
        return out


def load(model_dir: str | Path, cache_dir: Path) -> OnnxEncoder | None:
    """The encoder from an earlier export, or None (none yet, onnxruntime missing, or the file is damaged)."""
    path = cache_path(model_dir, cache_dir)
    if path is None or not path.is_file():
        return None
    try:
        import onnxruntime  # noqa: F401 - a build without it (the packaged app today) keeps the file for later
    except ImportError:
        return None
    try:
        return OnnxEncoder(path, model_dir)
    except Exception:  # a damaged file, an onnxruntime that cannot run it: the torch path works
        log.warning("the cached ONNX embedder %s could not be loaded; using sentence-transformers", path,
                    exc_info=True)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def export(model, model_dir: str | Path, cache_dir: Path) -> Path | None:
    """Export a loaded SentenceTransformer to ONNX for the next launches; returns the file, or None.

    Blocking (about 3 s of CPU): call it on a worker. Kept only if its vectors
    match `model`'s; written atomically, so a crash leaves no half file.
    """
    path = cache_path(model_dir, cache_dir)
    if path is None:
        return None
    if path.is_file():
        return path
    try:
        import onnx  # noqa: F401 - torch's exporter needs it; without it there is no fast path
        import torch
    except ImportError:
        return None
    bert = model[0].auto_model

    class _Sentence(torch.nn.Module):
        """BERT, then mean pooling over real tokens, then L2 normalisation (sentence-transformers' modules)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    dummy = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "token_type_ids")}
    try:
        with torch.no_grad():
            import warnings

            with warnings.catch_warnings():  # the exporter's notes about its own internals
                warnings.simplefilter("ignore")
                torch.onnx.export(_Sentence(bert).eval(), (dummy, dummy, torch.zeros_like(dummy)), str(partial),
                                  input_names=["input_ids", "attention_mask", "token_type_ids"],
                                  output_names=["embedding"], dynamic_axes={**axes, "embedding": {0: "batch"}},
                                  opset_version=17, dynamo=False)
        expected = model.encode(list(PARITY_TEXTS), normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        got = OnnxEncoder(partial, model_dir).encode(PARITY_TEXTS)
        difference = float(np.abs(np.asarray(expected, dtype=np.float32) - got).max())
        if difference > PARITY_TOLERANCE:
            log.warning("the ONNX export differs from the model by %.2g; not used", difference)
            partial.unlink(missing_ok=True)
            return None
        os.replace(partial, path)
        return path
    except Exception:
        log.warning("exporting the embedder to ONNX failed; launches keep using sentence-transformers",
                    exc_info=True)
        partial.unlink(missing_ok=True)
        return None

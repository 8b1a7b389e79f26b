"""The embedding model without torch: all-MiniLM-L6-v2 exported to ONNX on this machine (`core.onnx_cache`).

The exported graph holds the whole sentence-transformers pipeline after
tokenising: BERT, mean pooling over the attention mask, L2 normalisation. It
loads in about 0.5 s instead of ~10 s of torch and transformers imports, and
embeds one question in 6.5 ms instead of 29 ms (2 busy cores, 2026-12-03). An
export is kept only if its vectors match sentence-transformers' within 1e-4
(`export`), since a user's index holds the torch model's vectors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core import onnx_cache

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
TOLERANCE = 1e-4
CHECK_TEXTS = ("How do I add documents?",
               "Sourcelight highlights the exact span of the source that supports each answer sentence.",
               "Chunk size is 64 MB; each chunk replica is stored as a plain Linux file.")


def export_path(model_dir: str | Path, cache_dir: Path) -> Path | None:
    return onnx_cache.cache_path(Path(model_dir) / "model.safetensors", cache_dir, Path(model_dir).name)


class OnnxEncoder:
    """`encode(texts, batch_size)` with sentence-transformers' results, on onnxruntime."""

    def __init__(self, session, model_dir: str | Path):
        from tokenizers import Tokenizer

        self._session = session
        self._tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_options) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, in the order given."""
        texts = list(texts)
        out = np.empty((len(texts), 384), dtype=np.float32)
        # Batches of similar length (as sentence-transformers does): less padding, same vectors.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for k in range(0, len(order), batch_size):
            part = order[k:k + batch_size]
            inputs = onnx_cache.token_arrays(self._tokenizer.encode_batch([texts[i] for i in part]))
            out[part] = self._session.run(None, inputs)[0]
        return out


def load(model_dir: str | Path, cache_dir: Path) -> OnnxEncoder | None:
    """The encoder from an earlier export, or None (none yet, no onnxruntime, or a damaged file)."""
    session = onnx_cache.session(export_path(model_dir, cache_dir))
    return OnnxEncoder(session, model_dir) if session is not None else None


def export(model, model_dir: str | Path, cache_dir: Path) -> Path | None:
    """Export a loaded SentenceTransformer for the next starts; returns the file, or None. Blocking (~3 s)."""
    import torch

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

    def check(candidate: Path) -> float:
        expected = model.encode(list(CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        got = OnnxEncoder(onnx_cache.session(candidate), model_dir).encode(CHECK_TEXTS)
        return float(np.abs(np.asarray(expected, dtype=np.float32) - got).max())

    dummy = torch.ones(2, 8, dtype=torch.long)
    inputs = {"input_ids": dummy, "attention_mask": dummy, "token_type_ids": torch.zeros_like(dummy)}
    return onnx_cache.export(_Sentence(model[0].auto_model), inputs, "embedding", export_path(model_dir, cache_dir),
                             check, TOLERANCE)

"""The embedding model without torch: all-MiniLM-L6-v2 on onnxruntime, its graph built from the bundled weights.

`core.onnx_bert` writes the whole sentence-transformers pipeline after
tokenising (BERT, mean pooling over the attention mask, L2 normalisation) as
an ONNX graph over the weights in the package's `model.safetensors`; the
tokenizer is the model's own `tokenizer.json` (`tokenizers`), cut at 256 word
pieces as sentence-transformers does. It loads in well under a second on every
start, the first included, where importing torch and sentence-transformers
took ~8 s; a user's index holds vectors made either way, so they must agree
(within 1e-4: tests/core/test_onnx_embedding.py).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from core.onnx_bert import length_batches, token_arrays

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json)


def _check_pipeline(model_dir: Path) -> int:
    """The model's max_seq_length, once its sentence-transformers modules are what the graph computes
    (a transformer, then mean pooling, then optionally Normalize: `Embedder.encode` normalises anyway)."""
    from core.onnx_bert import UnsupportedModel

    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModel(f"sentence-transformers modules {kinds}")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise UnsupportedModel(f"pooling {sorted(modes)}")
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length") or MAX_TOKENS)
    return MAX_TOKENS


class OnnxEncoder:
    """`encode(texts, batch_size)` with sentence-transformers' results, on onnxruntime."""

    def __init__(self, session, model_dir: str | Path, max_tokens: int = MAX_TOKENS):
        from tokenizers import Tokenizer

        self._session = session
        self._tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.no_padding()  # the file pads to 128; `encode` pads each batch to its own longest row
        self._width = session.get_outputs()[0].shape[1]

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_options) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, in the order given."""
        return self.encode_with_tokens(texts, batch_size, tokens=False)[0]

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[tuple[str, ...], np.ndarray]]:
        """Per text: its word pieces ([CLS] and [SEP] included) and their last-layer vectors (pieces, 384),
        unnormalised, as sentence-transformers' `output_value="token_embeddings"` gives them."""
        return self.encode_with_tokens(texts)[1]

    def encode_with_tokens(self, texts: Sequence[str], batch_size: int = 64, *, tokens: bool = True
                           ) -> tuple[np.ndarray, list[tuple[tuple[str, ...], np.ndarray]]]:
        """`encode` and `token_vectors` from one pass of the model (the token list is empty without `tokens`).

        Padding does not change a row's result (the attention mask hides it), so
        rows are batched by length, which saves the work padding would cost.
        """
        encoded = self._tokenizer.encode_batch(list(texts))
        vectors = np.empty((len(encoded), self._width), dtype=np.float32)
        pieces: list = [None] * len(encoded) if tokens else []
        lengths = [len(e.ids) for e in encoded]
        outputs = ["embedding", "tokens"] if tokens else ["embedding"]
        for batch in length_batches(lengths, max(1, batch_size)):
            got = self._session.run(outputs, token_arrays([encoded[i] for i in batch]))
            vectors[batch] = got[0]
            for row, i in enumerate(batch if tokens else ()):
                pieces[i] = (tuple(encoded[i].tokens), got[1][row, :lengths[i]].astype(np.float32))
        return vectors, pieces


def load(model_dir: str | Path) -> OnnxEncoder | None:
    """The encoder for the sentence-transformers model in `model_dir`, or None when it cannot run on
    onnxruntime here (no onnxruntime, safetensors or tokenizers, or a model the graph builder does not
    know); the caller then loads sentence-transformers."""
    try:
        from core import onnx_bert

        max_tokens = _check_pipeline(Path(model_dir))
        return OnnxEncoder(onnx_bert.session(model_dir, "embedding"), model_dir, max_tokens)
    except ImportError as exc:  # a build without onnxruntime (the packaged app today): torch, silently
        log.info("embedding on torch: %s", exc)
        return None
    except Exception:  # a model or runtime this graph does not fit: torch computes it as before
        log.warning("the embedding model could not be built for onnxruntime; using sentence-transformers",
                    exc_info=True)
        return None

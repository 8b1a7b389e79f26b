"""The support verifier: a small cross-encoder that reads a sentence and its evidence together.

Cosine and shared-word features only say that a sentence and its evidence are
about the same thing; they cannot see a swapped number, a negation or an added
fact, and a score fitted on them did not carry over to unseen data (issue 13).
The verifier is all-MiniLM-L6-v2 fine-tuned as a cross-encoder
("[CLS] sentence [SEP] evidence [SEP]" -> one logit: does the evidence fully
support the sentence), trained by `python3 -m core.eval.verifier_train` on
public labelled pairs and perturbations of them (resources/verifier/README.md).

The weights ship as fp16 (45 MB) in `resources/verifier/` and are computed in
fp32, or with dynamic int8 linear layers (`int8=True`, faster on CPU; both are
measured by `sourcelight eval attribution --int8`). Loading is lazy and can be
started early on a background thread (`prefetch`); if the files are missing
or damaged, `error` says so and the attributor falls back to the fused score.
Nothing here downloads anything.

It runs on onnxruntime (`core.onnx_bert`: the fp32 graph built from the
shipped weights, on every start, the first included), with the tokenizer from
`tokenizer.json`; its logits match torch's within 1e-3
(tests/core/attribution/test_verifier_onnx.py). That skips the torch and
transformers imports (~8 s here), and a forward pass costs a fraction. Torch
is the fallback where onnxruntime is missing or the graph cannot be built, and
for `int8` (a torch-only experiment); `onnx=False` asks for it.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from core import onnx_bert
from core.model_loading import IMPORT_LOCK

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "resources" / "verifier"
MAX_TOKENS = 128
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
# Recent (claim, evidence) logits: the eval asks for the same pairs more than once,
# and a re-attributed sentence (a re-opened answer) costs nothing the second time.
CACHE_SIZE = 4096


class VerifierUnavailable(RuntimeError):
    """The verifier's weights could not be loaded; support falls back to the fused score."""


def default_dir() -> Path:
    if DEFAULT_DIR.exists():
        return DEFAULT_DIR
    from importlib import resources  # installed as a wheel: resources/ is package data

    return Path(str(resources.files("resources") / "verifier"))


class Verifier:
    """Scores (sentence, evidence) pairs; load once, call from one worker thread at a time."""

    def __init__(self, directory: str | Path | None = None, *, int8: bool = False, threads: int | None = None,
                 cache_size: int = CACHE_SIZE, max_tokens: int = MAX_TOKENS, onnx: bool = True):
        self.directory = Path(directory) if directory else default_dir()
        self._onnx = onnx and not int8  # int8 linear layers are a torch-only experiment
        self._session = None  # onnxruntime, unless the torch fallback runs
        self.runtime = ""  # "onnxruntime" or "torch", once loaded
        self.int8 = int8
        # Word pieces read per pair (claim + evidence): the cost is linear in it.
        self.max_tokens = max_tokens
        self.threads = threads
        self._model = None
        self._tok = None
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self.error: str | None = None
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.cache_size = cache_size

    @property
    def available(self) -> bool:
        """True once loaded; False after a failed load (see `error`)."""
        return self._model is not None

    def _load_onnx(self) -> bool:
        """Build the graph for onnxruntime (False: it cannot run here, and torch loads instead)."""
        try:
            from tokenizers import Tokenizer

            session = onnx_bert.session(self.directory, "logit")
            tok = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
            # A smoke pair, as on torch: weights that parse but give NaN fail here, not mid-answer.
            if not np.isfinite(session.run(None, onnx_bert.token_arrays([tok.encode("a", "a")]))[0]).all():
                raise ValueError("the weights give non-finite scores")
        except ImportError as exc:  # a build without onnxruntime (the packaged app today): torch, silently
            log.info("the verifier runs on torch: %s", exc)
            return False
        except Exception:  # weights or a runtime the graph does not fit: torch reads them as before
            log.warning("the verifier could not be built for onnxruntime; using torch", exc_info=True)
            return False
        tok.enable_truncation(self.max_tokens, strategy="longest_first")
        tok.no_padding()  # padded per length group in `_score_onnx`
        self._tok, self._session, self._model = tok, session, session
        self.runtime = "onnxruntime"
        return True

    def prefetch(self) -> None:
        """Start loading on a background thread (returns at once; `score` waits for it)."""
        with self._lock:
            if self._model is not None or self.error or self._loading is not None:
                return
            self._loading = threading.Thread(target=self._load_quietly, name="sourcelight-verifier-load", daemon=True)
            self._loading.start()

    def _load_quietly(self) -> None:
        try:
            self.load()
        except VerifierUnavailable:
            pass  # recorded in self.error; the attributor reports it and falls back

    def load(self) -> None:
        """Load the tokenizer and weights (blocking; a second call is a no-op). Raises `VerifierUnavailable`."""
        if self._model is not None:
            return
        if self.error:
            raise VerifierUnavailable(self.error)
        missing = [f for f in REQUIRED_FILES if not (self.directory / f).is_file()]
        if missing:
            self.error = (f"The support verifier's files are missing from {self.directory} ({', '.join(missing)}); "
                          "support is estimated from word overlap and similarity only. Reinstall Sourcelight "
                          "to restore them.")
            log.warning(self.error)
            raise VerifierUnavailable(self.error)
        if self._onnx and self._load_onnx():
            return
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            with IMPORT_LOCK:
                import torch
                from transformers import AutoModelForSequenceClassification, AutoTokenizer
                from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # a "Loading weights" bar in the terminal says nothing useful

            tok = AutoTokenizer.from_pretrained(str(self.directory), local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(
                str(self.directory), local_files_only=True, dtype=torch.float32)
            model.eval()
            if self.int8:
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            # A smoke pair: a damaged file that still parsed fails here rather than mid-answer.
            with torch.inference_mode():
                out = model(**tok(["a"], ["a"], return_tensors="pt")).logits
            if not torch.isfinite(out).all():
                raise ValueError("the weights give non-finite scores")
        except Exception as exc:  # any failure here means "no verifier", never "no app"
            self.error = (f"The support verifier in {self.directory} could not be loaded ({type(exc).__name__}: "
                          f"{exc}); support is estimated from word overlap and similarity only. Reinstall "
                          "Sourcelight to restore it.")
            log.warning(self.error)
            raise VerifierUnavailable(self.error) from exc
        self._tok, self._model = tok, model
        self.runtime = "torch"

    def clear_cache(self) -> None:
        """Forget remembered logits (benchmarks time the model, not the cache)."""
        self._cache.clear()

    def wait(self) -> None:
        """Block until a prefetch started earlier has finished (no-op otherwise)."""
        loading = self._loading
        if loading is not None:
            loading.join()

    def score(self, claim: str, evidence: Sequence[str]) -> np.ndarray:
        """One logit per evidence text: how strongly it fully supports `claim` (> 0: more likely than not)."""
        if not evidence:
            return np.zeros(0, dtype=np.float32)
        keys = [(claim, e) for e in evidence]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            self.wait()
            self.load()
            if self._session is not None:
                self._score_onnx(claim, todo)
            else:
                self._score_torch(claim, todo)
        out = np.array([self._cache[k] for k in keys], dtype=np.float32)
        for k in keys:
            self._cache.move_to_end(k)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _score_onnx(self, claim: str, todo: list[tuple[str, str]]) -> None:
        encoded = self._tok.encode_batch([(claim, e) for _, e in todo])  # no padding: grouped by length below
        for group in onnx_bert.length_batches([len(e.ids) for e in encoded]):
            inputs = onnx_bert.token_arrays([encoded[i] for i in group])
            for i, v in zip(group, self._session.run(None, inputs)[0]):
                self._cache[todo[i]] = float(v)

    def _score_torch(self, claim: str, todo: list[tuple[str, str]]) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        enc = self._tok([claim] * len(todo), [e for _, e in todo], truncation=True, max_length=self.max_tokens)
        rows = [{name: enc[name][i] for name in enc} for i in range(len(todo))]
        with torch.inference_mode():
            for group in onnx_bert.length_batches([len(r["input_ids"]) for r in rows]):
                batch = self._tok.pad([rows[i] for i in group], return_tensors="pt")
                got = self._model(**batch).logits[:, 0].float().numpy()
                for i, v in zip(group, got):
                    self._cache[todo[i]] = float(v)

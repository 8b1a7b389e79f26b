"""BERT encoders for onnxruntime built straight from their safetensors weights: no torch, no export step.

Both of the app's models are small BERTs (all-MiniLM-L6-v2: 6 layers, 384
wide, 12 heads): the embedder (`core.onnx_embedding`) and the support
verifier (`core.attribution.verifier`, the same network fine-tuned with a
one-logit head). Importing torch and transformers to run them cost ~8 s of a
first launch on these two cores; earlier versions therefore exported them to
ONNX with torch after the first start, so only later starts were fast.

Here the ONNX graph is written from the model's `config.json`: the same
computation as transformers' `BertModel` in inference (no dropout), with the
weights read by `safetensors.numpy` (fp16 weights upcast to fp32, as the
torch path computes) and handed to onnxruntime as arrays
(`SessionOptions.add_external_initializers`), never copied into the
protobuf. Building it and opening the session takes well under a second, so
every start, the first included, runs on onnxruntime. The graph is standard
ONNX (opset 17: its LayerNormalization, Erf for the exact GELU), which
onnxruntime's own optimiser fuses (GELU with its bias, the attention scale
into its MatMul) as it does an exported graph.

The protobuf is written by the few lines under "ONNX protobuf" below rather
than with the `onnx` package: importing `onnx` pulls in `ml_dtypes`, whose
0.7.0 release takes 8 s to import next to numpy 2.4 on these machines
(it registers its ufunc loops one by one; 0.6.0 takes 0.08 s), and even
with an older one `import onnx` costs 0.7 s of the start. The messages used
are few, their field numbers are those of onnx.proto, and the tests check
the output with `onnx.checker` and against torch.

Heads:
- `"embedding"`: sentence-transformers' all-MiniLM-L6-v2 pipeline after the
  transformer: mean pooling over the attention mask (token counts clamped at
  1e-9), then L2 normalisation (norms clamped at 1e-12); output (batch, 384).
  A second output, `"tokens"`, is the transformer's last hidden state
  (batch, tokens, 384): the word-piece vectors the attributor aligns a claim
  with its evidence by (`core.attribution.alignment`). It is computed for the
  pooling anyway; onnxruntime copies it out only when it is asked for.
- `"logit"`: BertForSequenceClassification's pooler (dense + tanh on [CLS])
  and classifier, first logit only; output (batch,).

Inputs are `input_ids`, `attention_mask`, `token_type_ids`, int64 (batch,
tokens), both axes dynamic: the interface the torch exports had.

Anything this builder does not know (another activation, relative position
embeddings, a missing tensor) raises `UnsupportedModel`, and the callers take
the torch path as before.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

OPSET = 17  # LayerNormalization is in the standard domain from 17 on
HEADS = ("embedding", "logit")


class UnsupportedModel(ValueError):
    """The weights or config describe something this graph does not compute."""


def _read_config(model_dir: Path) -> dict:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type", "bert") != "bert":
        raise UnsupportedModel(f"model_type {config.get('model_type')!r} is not bert")
    if config.get("hidden_act", "gelu") != "gelu":  # transformers' "gelu" is the exact (erf) GELU
        raise UnsupportedModel(f"hidden_act {config.get('hidden_act')!r} is not gelu")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel(f"position_embedding_type {config.get('position_embedding_type')!r}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise UnsupportedModel("hidden_size is not a multiple of num_attention_heads")
    return config


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """The tensors by name without any wrapper prefix ("bert."), floats as fp32."""
    from safetensors.numpy import load_file

    raw = load_file(str(path))
    anchor = next((k for k in raw if k.endswith("embeddings.word_embeddings.weight")), None)
    if anchor is None:
        raise UnsupportedModel(f"{path.name} holds no BERT word embeddings")
    prefix = anchor[: -len("embeddings.word_embeddings.weight")]
    out = {}
    for name, value in raw.items():
        if name.startswith(prefix):
            name = name[len(prefix):]
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32, copy=False)
        out[name] = value
    return out


# ---- ONNX protobuf (proto2 wire format; field numbers from onnx.proto) ----
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_DTYPES = {np.dtype(np.float32): _FLOAT, np.dtype(np.int64): _INT64}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # a negative int64 is sent as its 64-bit two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _attribute(name: str, value) -> bytes:
    """AttributeProto: name 1, type 20, f 2, i 3, ints 8."""
    if isinstance(value, float):
        return _bytes(1, name) + _int(20, 1) + _varint(2 << 3 | 5) + struct.pack("<f", value)
    if isinstance(value, int):
        return _bytes(1, name) + _int(20, 2) + _int(3, value)
    return _bytes(1, name) + _int(20, 7) + b"".join(_int(8, v) for v in value)


def _node(op_type: str, inputs, outputs, attributes: dict) -> bytes:
    """NodeProto: input 1, output 2, op_type 4, attribute 5."""
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op_type)
            + b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items()))


def _tensor(name: str, value: np.ndarray, external: bool) -> bytes:
    """TensorProto: dims 1, data_type 2, name 8, raw_data 9, external_data 13, data_location 14 (1: external)."""
    head = b"".join(_int(1, d) for d in value.shape) + _int(2, _DTYPES[value.dtype]) + _bytes(8, name)
    if not external:
        return head + _bytes(9, value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes())
    entries = (("location", name), ("offset", "0"), ("length", str(value.nbytes)))
    return head + b"".join(_bytes(13, _bytes(1, k) + _bytes(2, v)) for k, v in entries) + _int(14, 1)


def _value_info(name: str, elem_type: int, dims) -> bytes:
    """ValueInfoProto (name 1, type 2) of a tensor: TypeProto.tensor_type 1 {elem_type 1, shape 2 {dim 1}}."""
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, elem_type) + _bytes(2, shape)))


def _model(graph: bytes, opset: int) -> bytes:
    """ModelProto: ir_version 1, producer_name 2, graph 7, opset_import 8 {domain 1, version 2}."""
    # IR version 8 is read by every onnxruntime since 1.10; the opset fixes the operators' meaning.
    return _int(1, 8) + _bytes(2, "sourcelight.core.onnx_bert") + _bytes(7, graph) + _bytes(8, _bytes(1, "")
                                                                                      + _int(2, opset))


class _Graph:
    """Nodes and initializers of one ONNX graph, with fresh names for intermediate values."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []  # TensorProtos: inline constants, and references to `external`
        self.external: dict[str, np.ndarray] = {}  # the weights themselves, handed over without a copy
        self._named: set[str] = set()
        self._count = 0

    def op(self, kind: str, *inputs: str, **attributes) -> str:
        self._count += 1
        out = f"{kind.lower()}_{self._count}"
        self.nodes.append(_node(kind, inputs, [out], attributes))
        return out

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self._named:
            self._named.add(name)
            self.initializers.append(_tensor(name, np.asarray(value), external=False))
        return name

    def weight(self, name: str, transpose: bool = False) -> str:
        """A tensor of the checkpoint (linear layers' (out, in) matrices transposed for MatMul), declared as
        external data: copying 90 MB into the protobuf and parsing it again would cost more than the
        rest of the build (`session` hands the arrays to onnxruntime directly)."""
        if name in self._named:
            return name
        try:
            value = self.weights[name]
        except KeyError:
            raise UnsupportedModel(f"the weights have no tensor {name!r}") from None
        value = np.ascontiguousarray(value.T if transpose else value)
        self._named.add(name)
        self.initializers.append(_tensor(name, value, external=True))
        self.external[name] = value
        return name

    def linear(self, x: str, prefix: str) -> str:
        return self.op("Add", self.op("MatMul", x, self.weight(f"{prefix}.weight", transpose=True)),
                       self.weight(f"{prefix}.bias"))

    def layer_norm(self, x: str, prefix: str, epsilon: float) -> str:
        return self.op("LayerNormalization", x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias"),
                       axis=-1, epsilon=epsilon)


def _encoder(g: _Graph, config: dict) -> tuple[str, str]:
    """BertModel's last hidden state (batch, tokens, hidden) and the float mask (batch, tokens)."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_size = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731

    # Embeddings: word + absolute position (0..tokens-1) + token type, then LayerNorm.
    tokens = g.op("Shape", "input_ids", start=1, end=2)
    positions = g.op("Slice", g.weight("embeddings.position_embeddings.weight"), g.const("zero_1d", i64(0)), tokens,
                     g.const("zero_1d", i64(0)))
    x = g.op("Add", g.op("Add", g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids"),
                         positions),
             g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"))
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # Padding keys get the most negative float added to their scores (transformers' extended mask),
    # so softmax gives them exactly zero weight.
    mask = g.op("Cast", "attention_mask", to=1)
    bias = g.op("Mul", g.op("Sub", g.const("one", f32(1.0)), mask), g.const("most_negative",
                                                                          f32(np.finfo(np.float32).min)))
    bias = g.op("Unsqueeze", bias, g.const("axes_1_2", i64(1, 2)))  # (batch, 1, 1, tokens)
    split = g.const("split_heads", i64(0, 0, heads, head_size))  # Reshape's 0 keeps batch and tokens
    merge = g.const("merge_heads", i64(0, 0, hidden))
    scale = g.const("scale", f32(1.0 / math.sqrt(head_size)))
    sqrt2 = g.const("sqrt2", f32(math.sqrt(2.0)))
    half, one = g.const("half", f32(0.5)), g.const("one", f32(1.0))

    for n in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{n}"
        q = g.op("Transpose", g.op("Reshape", g.linear(x, f"{p}.attention.self.query"), split), perm=[0, 2, 1, 3])
        k = g.op("Transpose", g.op("Reshape", g.linear(x, f"{p}.attention.self.key"), split), perm=[0, 2, 3, 1])
        v = g.op("Transpose", g.op("Reshape", g.linear(x, f"{p}.attention.self.value"), split), perm=[0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge)
        x = g.layer_norm(g.op("Add", g.linear(context, f"{p}.attention.output.dense"), x),
                         f"{p}.attention.output.LayerNorm", eps)
        inner = g.linear(x, f"{p}.intermediate.dense")
        # Exact GELU, 0.5 * x * (1 + erf(x / sqrt 2)), as transformers' "gelu"; onnxruntime fuses it.
        inner = g.op("Mul", g.op("Mul", inner, half), g.op("Add", g.op("Erf", g.op("Div", inner, sqrt2)), one))
        x = g.layer_norm(g.op("Add", g.linear(inner, f"{p}.output.dense"), x), f"{p}.output.LayerNorm", eps)
    return x, mask


def _embedding_head(g: _Graph, hidden: str, mask: str) -> str:
    """sentence-transformers' Pooling (mean over real tokens) then Normalize (L2)."""
    weights = g.op("Unsqueeze", mask, g.const("axis_last", np.array([-1], dtype=np.int64)))
    axis1 = g.const("axis_1", np.array([1], dtype=np.int64))
    summed = g.op("ReduceSum", g.op("Mul", hidden, weights), axis1, keepdims=0)
    count = g.op("Max", g.op("ReduceSum", weights, axis1, keepdims=0), g.const("min_count", np.array(1e-9, np.float32)))
    pooled = g.op("Div", summed, count)
    norm = g.op("Max", g.op("ReduceL2", pooled, axes=[1], keepdims=1), g.const("min_norm", np.array(1e-12, np.float32)))
    return g.op("Div", pooled, norm)


def _logit_head(g: _Graph, hidden: str) -> str:
    """BertPooler (tanh of a dense layer on [CLS]) then the classifier's first logit."""
    first = g.const("index_0", np.array(0, dtype=np.int64))
    pooled = g.op("Tanh", g.linear(g.op("Gather", hidden, first, axis=1), "pooler.dense"))
    return g.op("Gather", g.linear(pooled, "classifier"), first, axis=1)


def build(model_dir: str | Path, head: str, weights_file: str = "model.safetensors") -> tuple[bytes, dict]:
    """(the serialized ONNX model, its weights by name) for the BERT in `model_dir` with `head`
    ("embedding" or "logit").

    The model's weight initializers are external references; the arrays are
    handed to onnxruntime beside it (`session`). Raises `UnsupportedModel`
    for a model it cannot express, ImportError without `safetensors`,
    OSError for unreadable files.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, not {head!r}")
    model_dir = Path(model_dir)
    config = _read_config(model_dir)
    g = _Graph(_read_weights(model_dir / weights_file))
    hidden, mask = _encoder(g, config)
    extra = b""
    if head == "embedding":
        out, dims = _embedding_head(g, hidden, mask), ["batch", config["hidden_size"]]
        g.nodes.append(_node("Identity", [hidden], ["tokens"], {}))
        extra = _bytes(12, _value_info("tokens", _FLOAT, ["batch", "tokens", config["hidden_size"]]))
    else:
        out, dims = _logit_head(g, hidden), ["batch"]
    g.nodes.append(_node("Identity", [out], [head], {}))
    graph = (b"".join(_bytes(1, n) for n in g.nodes) + _bytes(2, f"bert_{head}")
             + b"".join(_bytes(5, t) for t in g.initializers)
             + b"".join(_bytes(11, _value_info(name, _INT64, ["batch", "tokens"]))
                        for name in ("input_ids", "attention_mask", "token_type_ids"))
             + _bytes(12, _value_info(head, _FLOAT, dims)) + extra)
    return _model(graph, OPSET), g.external


def session_options():
    """onnxruntime options for the app's models (one place, so the embedder and the verifier agree)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are about graph details, not for users
    # Its worker threads otherwise spin for a while after each call, holding both cores while the
    # Chroma query and BM25 that follow an embedding wait for them (retrieval p50 46 -> see README).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def session(model_dir: str | Path, head: str, weights_file: str = "model.safetensors"):
    """An onnxruntime session computing `head` for the BERT in `model_dir` (blocking: well under a second).

    Raises ImportError without onnxruntime or safetensors, `UnsupportedModel`,
    or whatever onnxruntime raises for a graph it rejects; callers fall back to torch.
    """
    import onnxruntime

    model, weights = build(model_dir, head, weights_file)
    options = session_options()
    names = list(weights)
    # onnxruntime copies these into its graph before optimising it, so the arrays need not outlive this call.
    options.add_external_initializers(names, [onnxruntime.OrtValue.ortvalue_from_numpy(weights[n]) for n in names])
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def length_batches(lengths, batch_size: int | None = None, slack: float = 1.35) -> list[list[int]]:
    """Indices in batches of similar token length (each at most `batch_size` when given): a batch computes
    every row at its longest row's length.

    The built-in guide's 52 sentences (6 to 48 word pieces) cost 2.6 s of CPU in one batch padded to 48 and
    1.4 s in groups within 35% of each other (2 busy cores, 2026-12-03); for the verifier, padding a few
    one-sentence candidates to a coverage window's length doubled the work.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        if last and (batch_size is None or len(last) < batch_size) and lengths[i] <= slack * lengths[last[0]]:
            last.append(i)
        else:
            batches.append([i])
    return batches


def token_arrays(encodings) -> dict[str, np.ndarray]:
    """A batch of `tokenizers` encodings as the three BERT inputs, zero-padded to the longest
    (padding changes no row's result: the attention mask hides it)."""
    width = max(len(e.ids) for e in encodings)
    arrays = {name: np.zeros((len(encodings), width), dtype=np.int64)
              for name in ("input_ids", "attention_mask", "token_type_ids")}
    for row, e in enumerate(encodings):
        n = len(e.ids)
        arrays["input_ids"][row, :n] = e.ids
        arrays["attention_mask"][row, :n] = 1
        arrays["token_type_ids"][row, :n] = e.type_ids
    return arrays

"""The graphs `core.onnx_bert` writes are valid ONNX, checked by the `onnx` package itself.

The product writes the protobuf without importing `onnx` (its import costs
seconds here); a field number or wire type gone wrong would make
onnxruntime refuse the model, and every start would fall back to torch
without saying much. Here `onnx.checker` (with full shape inference) reads
both heads, and a model the builder cannot express is refused by name.
"""
from __future__ import annotations

import json
import shutil

import pytest

onnx = pytest.importorskip("onnx")

from core import onnx_bert  # noqa: E402
from core.attribution.verifier import default_dir  # noqa: E402
from core.embedding import bundled_model_path  # noqa: E402


@pytest.mark.parametrize("head", ["embedding", "logit"])
def test_the_graph_passes_the_onnx_checker_with_its_weights_inlined(head):
    from onnx import numpy_helper

    folder = bundled_model_path() if head == "embedding" else default_dir()
    serialized, weights = onnx_bert.build(folder, head)
    model = onnx.load_model_from_string(serialized)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert set(external) == set(weights)  # every weight is handed over, none is copied into the protobuf
    for i, tensor in enumerate(model.graph.initializer):
        if tensor.name in weights:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(weights[tensor.name], tensor.name))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    # The embedding graph also hands out the word-piece vectors the attributor aligns claims with.
    assert [o.name for o in model.graph.output] == [head] + (["tokens"] if head == "embedding" else [])


def test_relative_position_embeddings_are_refused_not_computed_wrongly(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(default_dir(), folder, ignore=lambda _d, names: [n for n in names if n == "model.safetensors"])
    (folder / "model.safetensors").symlink_to(default_dir() / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "position_embedding_type": "relative_key"}))
    with pytest.raises(onnx_bert.UnsupportedModel, match="relative_key"):
        onnx_bert.build(folder, "logit")

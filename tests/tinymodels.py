"""Tiny models built in code with fixed seeds, for converter and runtime tests. Reuse them; don't download.

- ``mlp_onnx``: features[batch, 16] -> MatMul/Add/Relu x2 -> scores[batch, 8] (the dynamic INT8 path; a "tensor"
  model compared by relative error).
- ``cnn_onnx``: images[batch, 3, 32, 32] -> Conv/Relu x2 -> GlobalAveragePool -> Gemm -> logits[batch, 10] (the
  static QDQ INT8 path; detected as image classification, compared by top-1 agreement).
- ``bert_dir``: a 2-layer BERT-style sentence-transformers directory from a ``transformers.BertConfig`` with random
  weights and a WordPiece tokenizer built offline with ``tokenizers`` (the text / dynamic INT8 path).
- ``outlier_mlp_onnx``: three layers where only ``fc2``'s input carries an outlier channel, so per-tensor
  activation quantization ruins ``fc2`` alone (the recovery must keep exactly that node in float).
- ``unsupported_op_onnx``: an MLP followed by ``ai.onnx.ml.Scaler``: ONNX Runtime runs it, OpenVINO cannot
  convert it.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np

OPSET = 17
IR_VERSION = 9  # what ONNX Runtime and OpenVINO of this era load (onnx 1.23 would default to 14)


def _init(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def mlp_model(seed: int = 0, hidden: int = 32):  # -> onnx.ModelProto
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(_init(rng, (16, hidden), 16), "w1"),
        numpy_helper.from_array((rng.standard_normal(hidden) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array(_init(rng, (hidden, 8), hidden), "w2"),
        numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["features", "w1"], ["h1"], name="fc1"),
        helper.make_node("Add", ["h1", "b1"], ["h1b"], name="fc1_bias"),
        helper.make_node("Relu", ["h1b"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "w2"], ["h2"], name="fc2"),
        helper.make_node("Add", ["h2", "b2"], ["scores"], name="fc2_bias"),
    ]
    graph = helper.make_graph(nodes, "tiny_mlp",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgekit-tests",
                             ir_version=IR_VERSION)


def mlp_onnx(path: Path, seed: int = 0, external_data: bool = False) -> Path:
    import onnx

    model = mlp_model(seed)
    if external_data:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def cnn_onnx(path: Path, seed: int = 0) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(_init(rng, (8, 3, 3, 3), 27), "c1_w"),
        numpy_helper.from_array(np.zeros(8, np.float32), "c1_b"),
        numpy_helper.from_array(_init(rng, (16, 8, 3, 3), 72), "c2_w"),
        numpy_helper.from_array(np.zeros(16, np.float32), "c2_b"),
        numpy_helper.from_array(_init(rng, (10, 16), 16) * 4, "fc_w"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "c2_w", "c2_b"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny_cnn",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgekit-tests",
                             ir_version=IR_VERSION)
    onnx.save_model(model, str(path))
    return path


def outlier_mlp_onnx(path: Path, seed: int = 0) -> Path:
    """features[batch, 16] -> fc1 -> Relu -> (+ outlier on channel 0) -> fc2 -> Relu -> fc3 -> scores[batch, 8].

    Channel 0 of fc2's input sits near 400 while the others are O(1), and fc2 barely uses it: dynamic u8
    quantization of that input (one scale per tensor) leaves ~1.6 per step for the useful channels."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w2 = _init(rng, (32, 32), 32)
    w2[0, :] = 1e-4
    shift = np.zeros(32, np.float32)
    shift[0] = 400.0
    inits = [
        numpy_helper.from_array(_init(rng, (16, 32), 16), "w1"),
        numpy_helper.from_array(shift, "shift"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(_init(rng, (32, 8), 32), "w3"),
    ]
    nodes = [
        helper.make_node("MatMul", ["features", "w1"], ["h1"], name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("Add", ["a1", "shift"], ["a1s"], name="outlier"),
        helper.make_node("MatMul", ["a1s", "w2"], ["h2"], name="fc2"),
        helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
        helper.make_node("MatMul", ["a2", "w3"], ["scores"], name="fc3"),
    ]
    graph = helper.make_graph(nodes, "outlier_mlp",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgekit-tests",
                              ir_version=IR_VERSION)
    onnx.save_model(model, str(path))
    return path


def unsupported_op_onnx(path: Path, seed: int = 0) -> Path:
    """MLP + ``ai.onnx.ml.Scaler``: fine for ONNX Runtime, no conversion rule in OpenVINO."""
    import onnx
    from onnx import helper

    model = mlp_model(seed)
    g = model.graph
    g.node[-1].output[0] = "raw_scores"
    g.node.append(helper.make_node("Scaler", ["raw_scores"], ["scores"], name="scaler", domain="ai.onnx.ml",
                                   offset=[0.0] * 8, scale=[2.0] * 8))
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    onnx.save_model(model, str(path))
    return path


SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "and", "of", "to", "in", "is", "for", "on", "with", "model", "device", "edge", "sensor",
         "temperature", "battery", "update", "train", "station", "book", "water", "power", "network", "data"]


def _vocab() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return SPECIAL + WORDS + chars + [f"##{c}" for c in string.ascii_lowercase + string.digits]


def bert_dir(path: Path, seed: int = 0, layers: int = 2, hidden: int = 32, heads: int = 4,
             max_seq_length: int = 64) -> Path:
    """A sentence-transformers style directory: BertModel (random weights), WordPiece tokenizer, mean pooling +
    normalize. ``max_seq_length`` keeps samples short so tests stay fast."""
    import torch
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel

    path.mkdir(parents=True, exist_ok=True)
    vocab = _vocab()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 4, max_position_embeddings=128,
                        pad_token_id=0)
    BertModel(config, add_pooling_layer=False).eval().save_pretrained(path)

    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.save(str(path / "tokenizer.json"))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer",
                                                             "model_max_length": 128}), encoding="utf-8")
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}),
                                                    encoding="utf-8")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden,
                                                                "pooling_mode_mean_tokens": True}), encoding="utf-8")
    return path


def random_feeds(inputs: dict[str, tuple[tuple[int, ...], str]], seed: int = 0) -> dict[str, np.ndarray]:
    """Feeds for ``{name: (shape, dtype)}`` (floats standard normal, ints in [0, 10))."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, dtype) in inputs.items():
        if dtype.startswith("float"):
            out[name] = rng.standard_normal(shape).astype(dtype)
        else:
            out[name] = rng.integers(0, 10, shape).astype(dtype)
    return out

"""ONNX Runtime quantization steps: dynamic (transformers), static QDQ (CNNs), and int8 weight storage for nodes
kept in float compute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.quantize.fakequant import WEIGHT_ONLY_OPS, quantize_weight
from converters.quantize.presets import OrtPreset

Feeds = dict[str, np.ndarray]
DYNAMIC_OPS = ("MatMul", "Gather")  # what dynamic mode quantizes here (Gemm is rewritten to MatMul first)
STATIC_OPS = ("Conv", "MatMul", "Gemm")


def gemm_to_matmul(model: Any) -> int:
    """Rewrite plain ``Gemm`` (alpha=beta=1, no transA, constant B) as MatMul + Add, which dynamic quantization
    handles (it skips Gemm). Returns how many were rewritten. The rewritten MatMul keeps the Gemm's name."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    rewritten = 0
    new_nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0 or node.input[1] not in inits):
            new_nodes.append(node)
            continue
        b = inits[node.input[1]]
        if attrs.get("transB", 0):
            arr = numpy_helper.to_array(b).T.copy()
            b.CopyFrom(numpy_helper.from_array(arr, b.name))
        name = node.name or f"gemm_{rewritten}"
        if len(node.input) > 2 and node.input[2]:
            mid = f"{node.output[0]}_matmul"
            new_nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1]], [mid], name=name))
            new_nodes.append(helper.make_node("Add", [mid, node.input[2]], [node.output[0]], name=f"{name}_bias"))
        else:
            new_nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1]], [node.output[0]], name=name))
        rewritten += 1
    if rewritten:
        del model.graph.node[:]
        model.graph.node.extend(new_nodes)
    return rewritten


def quantize_dynamic_int8(src: Path, dst: Path, preset: OrtPreset, exclude: Sequence[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(DYNAMIC_OPS), per_channel=preset.per_channel,
                     reduce_range=preset.reduce_range, weight_type=QuantType[preset.weight],
                     nodes_to_exclude=list(exclude), extra_options={"MatMulConstBOnly": True})


class _Reader:
    """ONNX Runtime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: Sequence[Feeds]) -> None:
        self._it = iter(list(feeds))

    def get_next(self) -> Feeds | None:
        return next(self._it, None)


def quantize_static_qdq(src: Path, dst: Path, preset: OrtPreset, calibration: Sequence[Feeds],
                        exclude: Sequence[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(str(src), str(dst), _Reader(calibration), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType[preset.static_activation], weight_type=QuantType[preset.weight],
                    per_channel=preset.per_channel, reduce_range=preset.reduce_range,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(exclude),
                    extra_options={"WeightSymmetric": True})


def store_weights_int8(path: Path, nodes: Sequence[str]) -> list[str]:
    """Store the weights of float-kept ``nodes`` (MatMul, Gather) as per-channel s8 + DequantizeLinear: the node
    still computes in float, the file keeps int8 size. Returns the nodes rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    wanted = set(nodes)
    done: list[str] = []
    ordered = []
    for node in model.graph.node:
        if node.name in wanted and node.op_type in WEIGHT_ONLY_OPS:
            idx = 0 if node.op_type == "Gather" else 1
            name = node.input[idx]
            init = inits.get(name)
            if init is not None and init.data_type == onnx.TensorProto.FLOAT and uses.get(name) == 1:
                w = numpy_helper.to_array(init)
                axis = w.ndim - 1
                q, scale = quantize_weight(w, axis)
                model.graph.initializer.remove(init)
                model.graph.initializer.extend([
                    numpy_helper.from_array(q, f"{name}_s8"),
                    numpy_helper.from_array(scale.reshape(-1), f"{name}_s8_scale"),
                    numpy_helper.from_array(np.zeros(scale.size, np.int8), f"{name}_s8_zero"),
                ])
                ordered.append(helper.make_node("DequantizeLinear", [f"{name}_s8", f"{name}_s8_scale",
                                                                     f"{name}_s8_zero"], [name],
                                                name=f"{node.name}_weight_dq", axis=axis))
                done.append(node.name)
        ordered.append(node)
    if done:
        del model.graph.node[:]
        model.graph.node.extend(ordered)
        if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import):
            raise ValueError("per-channel DequantizeLinear needs opset >= 13")
        onnx.save_model(model, str(path))
    return done


def activation_ranges(model_path: Path, tensors: Sequence[str],
                      feeds: Sequence[Feeds]) -> dict[str, tuple[float, float]]:
    """Min/max of ``tensors`` over ``feeds`` in the FP32 model (ORT's MinMax calibration), for the static sim."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    existing = {o.name for o in model.graph.output}
    for t in tensors:
        if t not in existing:
            model.graph.output.append(onnx.ValueInfoProto(name=t))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    lo = {t: np.inf for t in tensors}
    hi = {t: -np.inf for t in tensors}
    for f in feeds:
        outs = sess.run(list(tensors), f)
        for t, v in zip(tensors, outs, strict=True):
            lo[t] = min(lo[t], float(np.min(v)))
            hi[t] = max(hi[t], float(np.max(v)))
    return {t: (lo[t], hi[t]) for t in tensors}

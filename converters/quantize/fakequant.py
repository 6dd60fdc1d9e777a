"""A switchable fake-quant copy of an FP32 ONNX graph, for measuring per-node quantization sensitivity.

For every quantizable node ``i`` the copy computes, from two extra graph inputs ``a`` (``edgekit_qswitch``) and
``b`` (``edgekit_wswitch``)::

    weight     = fq(W) if a_i else wo(W) if b_i else W     # int8 compute, int8 weight-only storage, float
    activation = x + a_i * (fq(x) - x)

(weights are selected with ``If`` nodes, so no weight-sized arithmetic runs per call), and one ONNX Runtime
session evaluates any choice of quantized / float-kept nodes by feeding two 0/1 vectors, instead of
re-quantizing and reloading the model for each. The arithmetic mirrors ONNX Runtime's: symmetric s8
weights (per-channel or per-tensor, optional 7-bit reduce_range), u8 activations (dynamic per-tensor min/max, or
static ranges from calibration). ``wo`` is the weight-only storage used for nodes kept in float compute:
per-channel s8 on the output axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SWITCH_INPUT = "edgekit_qswitch"
WEIGHT_SWITCH_INPUT = "edgekit_wswitch"
WEIGHT_ONLY_OPS = ("MatMul", "Gather")  # kept-in-float nodes whose weights can stay int8 (DequantizeLinear)


@dataclass(frozen=True)
class Candidate:
    """One node the quantizer would turn into integer arithmetic."""

    node: str
    op_type: str
    activation: str | None  # the float input quantized at run time (None for Gather: weight-only by nature)
    weight: str  # the constant input quantized offline
    weight_input: int  # its input index on the node
    axis: int | None  # per-channel axis of the weight as the quantizer treats it; None = per-tensor
    params: int  # weight elements: keeping this node with float weights costs 3 bytes per element

    @property
    def storage_axis(self) -> int:
        """The output-channel axis used when the node is kept in float compute with int8 weight storage."""
        return self.axis if self.axis is not None and self.op_type != "Gather" else -1


def find_candidates(model: Any, op_types: tuple[str, ...], per_channel: bool) -> list[Candidate]:
    """Nodes of ``op_types`` with a constant float weight, in graph order (what ONNX Runtime would quantize)."""
    from onnx import TensorProto

    inits = {i.name: i for i in model.graph.initializer}
    out: list[Candidate] = []
    for node in model.graph.node:
        if node.op_type not in op_types or not node.name:
            continue
        if node.op_type == "Gather":
            w = inits.get(node.input[0])
            if w is None or w.data_type != TensorProto.FLOAT or len(w.dims) != 2:
                continue
            out.append(Candidate(node.name, "Gather", None, w.name, 0, None, int(np.prod(w.dims))))
            continue
        w = inits.get(node.input[1]) if len(node.input) > 1 else None
        if w is None or w.data_type != TensorProto.FLOAT or node.input[0] in inits or len(w.dims) < 2:
            continue
        if node.op_type == "MatMul":
            axis: int = len(w.dims) - 1
        elif node.op_type == "Gemm":
            axis = 0 if next((a.i for a in node.attribute if a.name == "transB"), 0) else 1
        else:  # Conv: output channels first
            axis = 0
        out.append(Candidate(node.name, node.op_type, node.input[0], w.name, 1, axis if per_channel else None,
                             int(np.prod(w.dims))))
    return out


def quantize_weight(w: np.ndarray, axis: int | None, reduce_range: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric s8 as ONNX Runtime does it (qmax 127, or 64 with reduce_range): (int8 values, float scales).
    Scales keep the reduced axis as size 1 so they broadcast against ``w``."""
    qmax = 64.0 if reduce_range else 127.0
    if axis is None:
        absmax = np.abs(w).max(keepdims=True)
    else:
        axis = axis % w.ndim
        absmax = np.abs(w).max(axis=tuple(d for d in range(w.ndim) if d != axis), keepdims=True)
    scale = np.where(absmax > 0, absmax / qmax, 1.0).astype(np.float32)
    return np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8), scale


def fake_quant_weight(w: np.ndarray, axis: int | None, reduce_range: bool = False) -> np.ndarray:
    q, scale = quantize_weight(w, axis, reduce_range)
    return (q.astype(np.float32) * scale).astype(np.float32)


def static_u8_params(lo: float, hi: float) -> tuple[float, int]:
    """Scale and zero point of an asymmetric u8 range that contains 0 (ONNX Runtime's MinMax calibration)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    return float(scale), int(np.clip(round(-lo / scale), 0, 255))


def build_switch_model(model: Any, candidates: list[Candidate], *, reduce_range: bool = False,
                       activation_ranges: dict[str, tuple[float, float]] | None = None) -> Any:
    """A copy of ``model`` with switches per candidate; ``activation_ranges`` (tensor -> min, max) selects static
    activation quantization, otherwise activations are quantized dynamically on every run."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    n = len(candidates)
    g.input.append(helper.make_tensor_value_info(SWITCH_INPUT, onnx.TensorProto.FLOAT, [n]))
    g.input.append(helper.make_tensor_value_info(WEIGHT_SWITCH_INPUT, onnx.TensorProto.FLOAT, [n]))
    replaced: dict[str, list[Any]] = {}
    for i, c in enumerate(candidates):
        p = f"ek_fq{i}"
        node = next(nd for nd in g.node if nd.name == c.node)
        w = numpy_helper.to_array(inits[c.weight]).astype(np.float32)
        g.initializer.append(numpy_helper.from_array(np.array(i, dtype=np.int64), f"{p}_idx"))
        nodes = [helper.make_node("Gather", [SWITCH_INPUT, f"{p}_idx"], [f"{p}_a"], name=f"{p}_ga", axis=0),
                 helper.make_node("Gather", [WEIGHT_SWITCH_INPUT, f"{p}_idx"], [f"{p}_b"], name=f"{p}_gb", axis=0)]
        if c.op_type == "Gather":
            # Mix the gathered rows, not the (large) table: Gather(W) + a*Gather(fq(W)-W) + b*Gather(wo(W)-W).
            g.initializer.append(numpy_helper.from_array(fake_quant_weight(w, c.axis, reduce_range) - w, f"{p}_dq"))
            g.initializer.append(numpy_helper.from_array(fake_quant_weight(w, c.storage_axis) - w, f"{p}_dwo"))
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            out, idx = node.output[0], node.input[1]
            nodes += [
                _copy(node, f"{p}_y", {}),
                helper.make_node("Gather", [f"{p}_dq", idx], [f"{p}_yq"], name=f"{p}_gq", axis=axis),
                helper.make_node("Gather", [f"{p}_dwo", idx], [f"{p}_yw"], name=f"{p}_gw", axis=axis),
                helper.make_node("Mul", [f"{p}_a", f"{p}_yq"], [f"{p}_ya"], name=f"{p}_mya"),
                helper.make_node("Mul", [f"{p}_b", f"{p}_yw"], [f"{p}_yb"], name=f"{p}_myb"),
                helper.make_node("Add", [f"{p}_y", f"{p}_ya"], [f"{p}_y1"], name=f"{p}_aya"),
                helper.make_node("Add", [f"{p}_y1", f"{p}_yb"], [out], name=f"{p}_ayb"),
            ]
            replaced[c.node] = nodes
            continue
        wq = f"{p}_wq"
        g.initializer.append(numpy_helper.from_array(fake_quant_weight(w, c.axis, reduce_range), wq))
        wwo = wq
        if c.axis != c.storage_axis or reduce_range:
            wwo = f"{p}_wwo"
            g.initializer.append(numpy_helper.from_array(fake_quant_weight(w, c.storage_axis), wwo))
        # quantized branch: fake-quant activation, fq weight; float branches: wo weight (b) or the original.
        qnodes = []
        x = c.activation or node.input[0]
        xs = x
        if c.activation is not None:
            xs = f"{p}_xd"
            if activation_ranges is not None and x in activation_ranges:
                scale, zp = static_u8_params(*activation_ranges[x])
                g.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), f"{p}_xs"))
                g.initializer.append(numpy_helper.from_array(np.array(zp, np.uint8), f"{p}_xz"))
                qnodes.append(helper.make_node("QuantizeLinear", [x, f"{p}_xs", f"{p}_xz"], [f"{p}_xq"],
                                               name=f"{p}_q"))
            else:
                qnodes.append(helper.make_node("DynamicQuantizeLinear", [x], [f"{p}_xq", f"{p}_xs", f"{p}_xz"],
                                               name=f"{p}_q"))
            qnodes.append(helper.make_node("DequantizeLinear", [f"{p}_xq", f"{p}_xs", f"{p}_xz"], [xs],
                                           name=f"{p}_deq"))
        out = node.output[0]
        then_q = _graph(f"{p}_tq", qnodes + [_copy(node, f"{p}_oq", {0: xs, c.weight_input: wq})], f"{p}_oq")
        then_wo = _graph(f"{p}_two", [_copy(node, f"{p}_owo", {c.weight_input: wwo})], f"{p}_owo")
        else_f = _graph(f"{p}_tf", [_copy(node, f"{p}_of", {})], f"{p}_of")
        else_b = _graph(f"{p}_eb", [
            helper.make_node("If", [f"{p}_bc"], [f"{p}_ob"], name=f"{p}_ifb", then_branch=then_wo,
                             else_branch=else_f)], f"{p}_ob")
        nodes += [
            helper.make_node("Cast", [f"{p}_a"], [f"{p}_ac"], name=f"{p}_ca", to=onnx.TensorProto.BOOL),
            helper.make_node("Cast", [f"{p}_b"], [f"{p}_bc"], name=f"{p}_cb", to=onnx.TensorProto.BOOL),
            helper.make_node("If", [f"{p}_ac"], [out], name=f"{p}_ifa", then_branch=then_q, else_branch=else_b),
        ]
        replaced[c.node] = nodes
    ordered = []
    for node in g.node:
        ordered.extend(replaced.get(node.name, [node]))
    del g.node[:]
    g.node.extend(ordered)
    return m


def _copy(node: Any, output: str, inputs: dict[int, str]) -> Any:
    """``node`` with output 0 renamed and some inputs replaced (attributes kept)."""
    import onnx

    new = onnx.NodeProto()
    new.CopyFrom(node)
    new.name = f"{output}_node"
    new.output[0] = output
    for idx, name in inputs.items():
        new.input[idx] = name
    return new


def _graph(name: str, nodes: list[Any], output: str) -> Any:
    import onnx
    from onnx import helper

    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)])

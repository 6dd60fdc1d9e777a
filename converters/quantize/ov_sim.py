"""The OpenVINO side of the recovery search: switches inserted into an NNCF-compressed ``ov.Model``.

Activation mode (post-training quantization, on a model quantized with NNCF's ``compress_weights: False`` so
weights still carry FakeQuantize): every FakeQuantize output edge is blended with its input,
``x + s * (FQ(x) - x)``, where ``s`` is the switch of the op(s) the edge feeds (through reshapes/transposes), so
an op's "unit" turns its activation and weight quantization on or off, as ``IgnoredScope(names=[op])`` does.
Weight mode (weight compression): every decompressed weight is blended with the original float constant.
One compiled model then evaluates any mix of quantized and float ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from converters.parity import ParityChecker
from edgekit.manifest import Parity

SWITCH = "edgekit_qswitch"
PASSTHROUGH = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "StridedSlice", "Split", "VariadicSplit", "Concat",
               "MaxPool", "Convert", "Gather"}
WEIGHT_OPS = {"MatMul", "Gather", "Convolution", "GroupConvolution"}


def _units_reached(node: Any, seen: set[int] | None = None) -> list[Any]:
    """The first non-passthrough ops reached from ``node`` (itself if it is one)."""
    if node.get_type_name() not in PASSTHROUGH:
        return [node]
    seen = seen if seen is not None else set()
    out = []
    for output in node.outputs():
        for target in output.get_target_inputs():
            nxt = target.get_node()
            if id(nxt) not in seen:
                seen.add(id(nxt))
                out.extend(_units_reached(nxt, seen))
    return out


def activation_edges(model: Any) -> tuple[list[str], list[tuple[Any, Any, Any, list[int]]]]:
    """Units (op names) and edges ``(target_input, x, fq_output, unit indices)`` of a PTQ model."""
    names: list[str] = []
    index: dict[str, int] = {}
    edges = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        x = op.input_value(0)
        for target in list(op.output(0).get_target_inputs()):
            units = []
            for unit in _units_reached(target.get_node()):
                name = unit.get_friendly_name()
                if name not in index:
                    index[name] = len(names)
                    names.append(name)
                units.append(index[name])
            if units:
                edges.append((target, x, op.output(0), sorted(set(units))))
    return names, edges


def weight_edges(model: Any, original: Any) -> tuple[list[str], list[tuple[Any, Any, Any, list[int]]]]:
    """Units and edges of a weight-compressed model: decompressed weight vs the original float constant."""
    import openvino.opset13 as ops

    originals = {op.get_friendly_name(): op for op in original.get_ordered_ops()
                 if op.get_type_name() in WEIGHT_OPS}
    names: list[str] = []
    edges = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in WEIGHT_OPS or op.get_friendly_name() not in originals:
            continue
        idx = 0 if op.get_type_name() == "Gather" else 1
        decompressed = op.input_value(idx)
        if decompressed.get_node().get_type_name() not in ("Multiply", "Convert", "Subtract"):
            continue  # not compressed
        src = originals[op.get_friendly_name()].input_value(idx).get_node()
        while src.get_type_name() == "Convert":
            src = src.input_value(0).get_node()
        if src.get_type_name() != "Constant":
            continue
        weight = ops.constant(np.asarray(src.get_data(), dtype=np.float32))
        names.append(op.get_friendly_name())
        edges.append((op.input(idx), weight.output(0), decompressed, [len(names) - 1]))
    return names, edges


class OvSimulator:
    def __init__(self, model: Any, checker: ParityChecker, target: str, threads: int, *, mode: str = "activations",
                 original: Any = None) -> None:
        import openvino as ov
        import openvino.opset13 as ops

        self.checker, self.target = checker, target
        if mode == "activations":
            self.names, edges = activation_edges(model)
        else:
            self.names, edges = weight_edges(model, original)
        switch = ops.parameter([max(len(self.names), 1)], ov.Type.f32, name=SWITCH)
        switch.output(0).get_tensor().set_names({SWITCH})
        for target_input, x, y, units in edges:
            picked = ops.gather(switch, ops.constant(np.array(units, dtype=np.int64)), 0)
            s = ops.reduce_max(picked, ops.constant(np.array([0], dtype=np.int64)), keep_dims=False)
            x = _as_f32(x, ops)
            blended = ops.add(x, ops.multiply(s, ops.subtract(_as_f32(y, ops), x)))
            target_input.replace_source_output(blended.output(0))
        sim_model = ov.Model(model.get_results(), [*model.get_parameters(), switch], "edgekit-switch")
        self.compiled = ov.Core().compile_model(sim_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                                   "INFERENCE_NUM_THREADS": threads})
        self.request = self.compiled.create_infer_request()
        self.outputs = [(p, p.get_any_name()) for p in self.compiled.outputs]
        self.inputs = {p.get_any_name(): p.get_element_type().to_dtype() for p in self.compiled.inputs}

    def evaluate(self, quantized: np.ndarray, indices: Sequence[int] | None = None
                 ) -> tuple[Parity, np.ndarray, np.ndarray]:
        a = np.asarray(quantized, dtype=np.float32).reshape(-1)
        if a.size == 0:
            a = np.zeros(1, np.float32)

        def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            wanted = {k: v.astype(self.inputs[k], copy=False) for k, v in feeds.items() if k in self.inputs}
            result = self.request.infer({**wanted, SWITCH: a})
            return {name: np.array(result[port]) for port, name in self.outputs}

        return self.checker.evaluate(self.target, predict, indices)


def _as_f32(value: Any, ops: Any) -> Any:
    import openvino as ov

    if value.get_element_type() != ov.Type.f32:
        return ops.convert(value, ov.Type.f32).output(0)
    return value

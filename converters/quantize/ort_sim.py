"""The ONNX Runtime side of the recovery search: a switchable fake-quant session over the FP32 graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from converters.parity import ParityChecker
from converters.quantize.fakequant import (
    SWITCH_INPUT,
    WEIGHT_ONLY_OPS,
    WEIGHT_SWITCH_INPUT,
    Candidate,
    build_switch_model,
)
from edgekit.manifest import Parity


class OrtSimulator:
    """Evaluates any mix of int8 and float-kept nodes in one session.

    ``weight_only_kept``: nodes kept in float compute still store int8 weights (MatMul, Gather), as the real
    artifact will (``store_weights_int8``).
    """

    def __init__(self, model_path: Path, candidates: list[Candidate], checker: ParityChecker, target: str, *,
                 reduce_range: bool, activation_ranges: dict[str, tuple[float, float]] | None, work: Path,
                 threads: int) -> None:
        import onnx
        import onnxruntime as ort

        self.candidates = candidates
        self.names = [c.node for c in candidates]
        self.checker, self.target = checker, target
        model = build_switch_model(onnx.load(str(model_path)), candidates, reduce_range=reduce_range,
                                   activation_ranges=activation_ranges)
        path = work / "switch-model.onnx"
        onnx.save_model(model, str(path))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        path.unlink()
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.capable = np.array([c.op_type in WEIGHT_ONLY_OPS for c in candidates])
        self.weight_only_kept = False

    def switches(self, quantized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = quantized.astype(np.float32)
        b = ((~quantized) & self.capable & self.weight_only_kept).astype(np.float32)
        return a, b

    def evaluate(self, quantized: np.ndarray, indices: Sequence[int] | None = None
                 ) -> tuple[Parity, np.ndarray, np.ndarray]:
        a, b = self.switches(np.asarray(quantized, dtype=bool))

        def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            outs = self.session.run(self.outputs, {**feeds, SWITCH_INPUT: a, WEIGHT_SWITCH_INPUT: b})
            return dict(zip(self.outputs, outs, strict=True))

        return self.checker.evaluate(self.target, predict, indices)

    def weight_only_passes(self) -> Parity:
        """Parity with every node in float compute and int8 weight storage where possible."""
        self.weight_only_kept = True
        parity = self.evaluate(np.zeros(len(self.names), dtype=bool))[0]
        self.weight_only_kept = bool(parity.passed)
        return parity

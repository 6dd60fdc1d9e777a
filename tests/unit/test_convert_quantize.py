"""INT8 machinery: the fake-quant simulator mirrors ONNX Runtime; the recovery search keeps the fewest damaging
nodes; presets follow the profile's CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import tinymodels

pytestmark = pytest.mark.unit


def _session(path_or_bytes):  # noqa: ANN001, ANN202
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def test_weight_fake_quant_matches_onnxruntime(tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    from converters.quantize.fakequant import quantize_weight
    from converters.quantize.ort_quant import quantize_dynamic_int8
    from converters.quantize.presets import preset_for

    src = tinymodels.mlp_onnx(tmp_path / "mlp.onnx")
    quantize_dynamic_int8(src, tmp_path / "q.onnx", preset_for("arm64", None), [])
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "q.onnx")).graph.initializer}
    w1 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(src)).graph.initializer}["w1"]
    q, scale = quantize_weight(w1, axis=1)
    assert np.array_equal(q, inits["w1_quantized"])
    assert np.allclose(scale.reshape(-1), inits["w1_scale"])


def test_switch_model_spans_float_to_real_int8(tmp_path: Path) -> None:
    import onnx

    from converters.quantize.fakequant import SWITCH_INPUT, WEIGHT_SWITCH_INPUT, build_switch_model, find_candidates
    from converters.quantize.ort_quant import quantize_dynamic_int8
    from converters.quantize.presets import preset_for

    src = tinymodels.outlier_mlp_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(src))
    cands = find_candidates(model, ("MatMul", "Gather"), per_channel=True)
    assert [c.node for c in cands] == ["fc1", "fc2", "fc3"]
    sim = _session(build_switch_model(model, cands).SerializeToString())
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    ref = _session(str(src)).run(None, {"features": x})[0]
    n = len(cands)

    def run(a: list[float], b: list[float]) -> np.ndarray:
        feeds = {"features": x, SWITCH_INPUT: np.array(a, np.float32), WEIGHT_SWITCH_INPUT: np.array(b, np.float32)}
        return sim.run(None, feeds)[0]

    assert np.array_equal(run([0] * n, [0] * n), ref)  # all switches off: exactly the FP32 graph
    quantize_dynamic_int8(src, tmp_path / "q.onnx", preset_for("arm64", None), [])
    real = _session(str(tmp_path / "q.onnx")).run(None, {"features": x})[0]
    assert np.abs(run([1] * n, [0] * n) - real).max() <= 1e-3 * np.abs(real).max()  # all on: ONNX Runtime's INT8
    assert np.abs(run([1, 0, 1], [0] * n) - ref).max() < 0.05 * np.abs(ref).max()  # fc2 kept: close to FP32


class FakeSim:
    """Nodes with known damage: the score is 1 - sum of damage of quantized nodes, scaled into the gate."""

    def __init__(self, damage: list[float]) -> None:
        self.names = [f"n{i}" for i in range(len(damage))]
        self.damage = np.array(damage)
        self.calls = 0

    def evaluate(self, quantized, indices=None):  # noqa: ANN001, ANN201
        from converters.parity import summarize

        self.calls += 1
        loss = float(self.damage[np.asarray(quantized, bool)].sum())
        rows = np.full(4, 1.0 - loss)
        return summarize("cosine", rows, {"mean": 0.995, "min": 0.98}, 4), rows, np.arange(4)


def test_plan_keeps_the_fewest_most_damaging_nodes() -> None:
    from converters.quantize.recovery import plan

    sim = FakeSim([0.001, 0.012, 0.0005, 0.009, 0.002])  # gate: total loss <= 0.005
    p = plan(sim)
    assert p.kept == ["n1", "n3"]  # 0.0035 left: passes; keeping only n1 leaves 0.0125
    assert [n for n, _ in p.ranking][:2] == ["n1", "n3"]
    assert p.simulated is not None and p.simulated.passed
    assert plan(FakeSim([0.001, 0.001])).kept == []  # nothing to do when full INT8 passes


def test_plan_prunes_nodes_the_greedy_pass_did_not_need() -> None:
    from converters.quantize.recovery import plan

    # n0 hurts most alone, but n1 and n2 only hurt together: greedy keeps n0 then n1; pruning finds that n0 can
    # go back to INT8 once n1 is kept.
    class Interacting(FakeSim):
        def evaluate(self, quantized, indices=None):  # noqa: ANN001, ANN201
            from converters.parity import summarize

            q = np.asarray(quantized, bool)
            loss = 0.0025 * q[0] + 0.002 * q[1] + 0.002 * q[2] + (0.006 if q[1] and q[2] else 0.0)
            rows = np.full(4, 1.0 - loss)
            return summarize("cosine", rows, {"mean": 0.995, "min": 0.98}, 4), rows, np.arange(4)

    p = plan(Interacting([0, 0, 0]))
    assert p.ranking[0][0] == "n0"
    assert p.kept == ["n1"] and p.simulated is not None and p.simulated.passed


def test_realize_adds_next_ranked_nodes_until_the_real_gate_passes() -> None:
    from converters.quantize.recovery import Plan, realize
    from edgekit.manifest import Parity

    p = Plan(names=["a", "b", "c"], ranking=[("a", 0.1), ("b", 0.2), ("c", 0.3)], kept=["a"])
    built = []

    def check(kept: object) -> Parity:
        return Parity("cosine", mean=1.0, min=1.0, passed=len(kept) >= 2)  # type: ignore[arg-type]

    out = realize(p, lambda kept: built.append(list(kept)) or list(kept), check)
    assert out.parity.passed and out.kept == ["a", "b"] and built == [["a"], ["a", "b"]]


def test_presets_follow_the_cpu() -> None:
    from converters.quantize.presets import preset_for
    from edgekit.profiles import load_profile

    arm = preset_for("arm64", load_profile("raspberry-pi-4"))
    assert (arm.per_channel, arm.reduce_range, arm.static_activation) == (True, False, "QInt8")
    assert not preset_for("x86", load_profile("intel-nuc")).reduce_range  # AVX-VNNI
    assert preset_for("x86", load_profile("generic-x86_64")).reduce_range  # AVX2 only: u8 x s8 saturates
    with pytest.raises(ValueError):
        preset_for("riscv", None)


def test_gemm_is_rewritten_for_dynamic_quantization(tmp_path: Path) -> None:
    import onnx

    from converters.quantize.ort_quant import gemm_to_matmul

    model = onnx.load(str(tinymodels.cnn_onnx(tmp_path / "cnn.onnx")))
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    before = _session(model.SerializeToString()).run(None, {"images": x})[0]
    assert gemm_to_matmul(model) == 1
    assert "Gemm" not in {n.op_type for n in model.graph.node}
    after = _session(model.SerializeToString()).run(None, {"images": x})[0]
    assert np.allclose(before, after, atol=1e-5)

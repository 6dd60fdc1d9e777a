"""The accuracy gate: metrics, thresholds, overrides and the gate score the recovery search ranks by."""

from __future__ import annotations

import numpy as np
import pytest

from converters.parity import DEFAULT_THRESHOLDS, ParityChecker, describe, gate_score, row_values, summarize

pytestmark = pytest.mark.unit


def test_cosine_rows_and_zero_vectors() -> None:
    ref = {"y": np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])}
    out = {"y": np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, -1.0]])}
    assert np.allclose(row_values("cosine", out, ref), [1.0, 1.0, -1.0])


def test_top1_and_rel_error() -> None:
    ref = {"logits": np.array([[0.1, 0.9], [0.8, 0.2]])}
    out = {"logits": np.array([[0.2, 0.7], [0.1, 0.3]])}
    assert row_values("top1", out, ref).tolist() == [1.0, 0.0]
    rel = row_values("rel-error", {"y": np.array([[3.0, 4.0]]) * 1.1}, {"y": np.array([[3.0, 4.0]])})
    assert rel == pytest.approx([0.1])


def test_worst_output_wins_and_shape_mismatch_raises() -> None:
    ref = {"a": np.ones((2, 3)), "b": np.ones((2, 3))}
    out = {"a": np.ones((2, 3)), "b": np.array([[1, 1, 1], [-1, -1, -1]], dtype=float)}
    assert row_values("cosine", out, ref) == pytest.approx([1.0, -1.0])
    with pytest.raises(ValueError, match="shape"):
        row_values("cosine", {"a": np.ones((2, 4)), "b": np.ones((2, 3))}, ref)


def test_summarize_direction_and_score() -> None:
    th = DEFAULT_THRESHOLDS["cosine"]["int8"]
    p = summarize("cosine", np.array([0.999, 0.99, 0.97]), th, samples=3)
    assert not p.passed and p.min == pytest.approx(0.97)
    assert gate_score(p) < 0
    good = summarize("cosine", np.array([0.999, 0.998]), th, samples=2)
    assert good.passed and 0 < gate_score(good) <= 1
    err = summarize("rel-error", np.array([0.01, 0.02]), DEFAULT_THRESHOLDS["rel-error"]["int8"], samples=2)
    assert err.passed and gate_score(err) > 0
    assert "min 0.97 (>= 0.98)" in describe(p)


def test_checker_thresholds_follow_precision_and_overrides() -> None:
    samples = [{"x": np.ones((1, 2), np.float32)}]
    checker = ParityChecker(samples, [{"y": np.ones((1, 2))}], "cosine",
                            precision_of=lambda t: "int8" if "int8" in t else "fp32",
                            overrides={"*": {"min": 0.5}, "onnx-int8-x86": {"mean": 0.9}})
    assert checker.threshold("onnx-fp32") == {"mean": 0.99999, "min": 0.5}
    assert checker.threshold("onnx-int8-x86") == {"mean": 0.9, "min": 0.5}
    p = checker("onnx-fp32", lambda f: {"y": f["x"] * 2})
    assert p.passed and p.samples == 1

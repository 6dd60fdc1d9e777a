"""Artifact choice: profile order, CPU features, the bundle's benchmark, --target, runtime availability."""

from __future__ import annotations

import pytest

from edgekit.agent.select import rank
from edgekit.errors import AgentConfigError
from edgekit.manifest import Artifact, Latency, Manifest, ModelInfo, Report, ReportRow, TensorSpec

pytestmark = pytest.mark.unit

SHA = "0" * 64


def art(target: str, runtime: str = "onnxruntime", fmt: str = "onnx") -> Artifact:
    precision = "int8" if "int8" in target else "fp16" if "fp16" in target else "fp32"
    return Artifact(target=target, path=f"{target}/model", format=fmt, precision=precision, size_bytes=1,
                    sha256=SHA, runtime=runtime)


def manifest(*artifacts: Artifact) -> Manifest:
    t = (TensorSpec("x", "float32", ("batch", 4)),)
    return Manifest(1, ModelInfo("m", "s", SHA, "tensor", t, t), "p", "now", {"edgekit": "t"}, artifacts)


def report(**p50: float) -> Report:
    rows = tuple(ReportRow(target=t.replace("_", "-"), status="ok", latency_ms=Latency(p50=v, p95=v))
                 for t, v in p50.items())
    return Report(1, "m", "p", "now", rows)


PI4 = ["onnx-int8-arm64", "onnx-fp32", "tflite-int8", "tflite-fp32"]
BUNDLE = manifest(art("onnx-int8-arm64"), art("onnx-fp32"), art("tflite-fp32", "litert", "tflite"))


def targets(choices: list) -> list[str]:
    return [c.artifact.target for c in choices]


def test_profile_order_when_nothing_argues_against_it() -> None:
    choices = rank(BUNDLE, PI4, "arm64", ("neon",))
    assert targets(choices)[:2] == ["onnx-int8-arm64", "onnx-fp32"]
    assert any("no benchmark" in r for r in choices[0].reasons)


def test_pi4_falls_back_to_fp32_when_the_benchmark_says_int8_is_not_faster() -> None:
    choices = rank(BUNDLE, PI4, "arm64", ("neon",), report(onnx_int8_arm64=10.0, onnx_fp32=9.8))
    assert targets(choices)[0] == "onnx-fp32"
    assert any("not faster" in r for r in choices[1].reasons)


def test_int8_kept_when_benchmark_shows_it_faster() -> None:
    choices = rank(BUNDLE, PI4, "arm64", ("neon",), report(onnx_int8_arm64=5.0, onnx_fp32=9.8))
    assert targets(choices)[0] == "onnx-int8-arm64"


def test_dot_product_core_prefers_int8_even_if_profile_lists_fp32_first() -> None:
    choices = rank(BUNDLE, ["onnx-fp32", "onnx-int8-arm64"], "arm64", ("neon", "dotprod"))
    assert targets(choices)[0] == "onnx-int8-arm64"
    assert any("dot-product" in r for r in choices[0].reasons)


def test_missing_runtime_is_skipped_and_fp16_needs_a_gpu() -> None:
    bundle = manifest(art("onnx-fp16"), art("openvino-fp16", "openvino", "openvino-ir"), art("onnx-fp32"))
    choices = rank(bundle, ["onnx-fp16", "openvino-fp16", "onnx-fp32"], "x86_64", ("avx2",),
                   available=lambda rt: rt == "onnxruntime")
    assert targets(choices) == ["onnx-fp32", "onnx-fp16"]
    choices = rank(bundle, ["onnx-fp16", "onnx-fp32"], "arm64", (), gpu_providers=("CUDAExecutionProvider",),
                   available=lambda rt: rt == "onnxruntime")
    assert targets(choices)[0] == "onnx-fp16"


def test_other_architecture_goes_last() -> None:
    bundle = manifest(art("onnx-int8-arm64"), art("onnx-fp32"))
    assert targets(rank(bundle, ["onnx-int8-arm64", "onnx-fp32"], "x86_64", ("avx2",)))[0] == "onnx-fp32"


def test_forced_target() -> None:
    choices = rank(BUNDLE, PI4, "x86_64", ("avx2",), forced="onnx-int8-arm64")
    assert targets(choices) == ["onnx-int8-arm64"]
    assert "forces" in choices[0].reasons[0] and "x86_64" in choices[0].reasons[0]
    with pytest.raises(AgentConfigError, match="not in this bundle; it has: onnx-int8-arm64, onnx-fp32"):
        rank(BUNDLE, PI4, "arm64", (), forced="onnx-fp16")
    with pytest.raises(AgentConfigError, match="not installed"):
        rank(BUNDLE, PI4, "arm64", (), forced="tflite-fp32", available=lambda rt: rt != "litert")


def test_nothing_runnable() -> None:
    with pytest.raises(AgentConfigError, match="no artifact of this bundle can run here"):
        rank(BUNDLE, PI4, "arm64", (), available=lambda rt: False)

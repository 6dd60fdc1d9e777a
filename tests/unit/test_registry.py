"""The target registry: every DESIGN.md target id, duplicate registration, unknown ids."""

from __future__ import annotations

import pytest

from converters.registry import TargetRegistry, all_targets, get_target, register_target, target_ids
from edgekit.errors import RegistryError

pytestmark = pytest.mark.unit

DESIGN_IDS = ["onnx-fp32", "onnx-fp16", "onnx-int8-arm64", "onnx-int8-x86", "openvino-fp16", "openvino-int8",
              "tflite-fp32", "tflite-fp16", "tflite-int8", "coreml-fp16", "coreml-int8"]


def test_every_design_target_is_registered() -> None:
    assert set(DESIGN_IDS) <= set(target_ids())
    for spec in all_targets():
        assert spec.id.split("-")[0] in {"onnx", "openvino", "tflite", "coreml"}
        assert spec.precision in spec.id
        assert callable(spec.convert)


@pytest.mark.parametrize(
    ("target", "fmt", "precision", "runtime"),
    [("onnx-int8-arm64", "onnx", "int8", "onnxruntime"), ("openvino-fp16", "openvino-ir", "fp16", "openvino"),
     ("tflite-int8", "tflite", "int8", "litert"), ("coreml-fp16", "coreml", "fp16", "coreml")],
)
def test_target_metadata(target: str, fmt: str, precision: str, runtime: str) -> None:
    spec = get_target(target)
    assert (spec.format, spec.precision, spec.runtime) == (fmt, precision, runtime)


def test_registering_twice_raises() -> None:
    registry = TargetRegistry()
    kwargs = dict(format="onnx", precision="fp32", runtime="onnxruntime", extension=".onnx", extra="convert",
                  description="x", registry=registry)
    register_target("x-fp32", **kwargs)(lambda ctx, spec: None)
    with pytest.raises(RegistryError, match="'x-fp32' is already registered"):
        register_target("x-fp32", **kwargs)(lambda ctx, spec: None)


def test_bad_metadata_raises() -> None:
    with pytest.raises(RegistryError, match="runtime 'tensorflow' is not one of"):
        register_target("y", format="onnx", precision="fp32", runtime="tensorflow", extension=".onnx",
                        extra="convert", description="y", registry=TargetRegistry())(lambda ctx, spec: None)


def test_unknown_target_names_closest_and_lists_known() -> None:
    with pytest.raises(RegistryError) as info:
        get_target("onnx-int8-arm")
    message = str(info.value)
    assert "did you mean 'onnx-int8-arm64'" in message
    assert all(t in message for t in DESIGN_IDS)

"""``onnx-int8-arm64`` and ``onnx-int8-x86``: ONNX Runtime quantization with per-CPU presets."""

from __future__ import annotations

from typing import Any

from converters.registry import register_target
from edgekit.errors import NotAvailableError


def _convert(*args: Any, **kwargs: Any) -> Any:
    raise NotAvailableError("the ONNX INT8 converters are not in this build yet")


# ARM64: u8 activations, s8 symmetric weights, per-channel, no reduce_range (REFERENCE.md, Quantization).
register_target(
    "onnx-int8-arm64",
    format="onnx",
    precision="int8",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="INT8 ONNX tuned for ARM64 CPUs (u8 activations, s8 per-channel weights)",
    arches=("arm64",),
    oses=("linux", "android", "macos"),
    options={"preset": "arm64"},
)(_convert)

# x86: the VNNI-friendly variant (s8 weights; VNNI does u8 x s8 without saturation).
register_target(
    "onnx-int8-x86",
    format="onnx",
    precision="int8",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="INT8 ONNX for x86 CPUs with AVX512-VNNI / AVX-VNNI",
    arches=("x86_64",),
    options={"preset": "x86"},
)(_convert)

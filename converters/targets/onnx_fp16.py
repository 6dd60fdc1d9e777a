"""``onnx-fp16``: half-precision ONNX for GPUs (Jetson CUDA/TensorRT)."""

from __future__ import annotations

from typing import Any

from converters.registry import register_target
from edgekit.errors import NotAvailableError


@register_target(
    "onnx-fp16",
    format="onnx",
    precision="fp16",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="FP16 ONNX for GPU execution providers (Jetson CUDA/TensorRT)",
)
def convert(*args: Any, **kwargs: Any) -> Any:
    raise NotAvailableError("the onnx-fp16 converter is not in this build yet")

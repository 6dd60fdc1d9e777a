"""``onnx-fp32``: the reference artifact."""

from __future__ import annotations

from typing import Any

from converters.registry import register_target
from edgekit.errors import NotAvailableError


@register_target(
    "onnx-fp32",
    format="onnx",
    precision="fp32",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="FP32 ONNX, graph-optimised; the reference every other artifact is checked against",
    oses=("linux", "macos", "windows", "android"),
)
def convert(*args: Any, **kwargs: Any) -> Any:
    raise NotAvailableError("the onnx-fp32 converter is not in this build yet")

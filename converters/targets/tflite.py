"""``tflite-fp32``, ``tflite-fp16``, ``tflite-int8``: LiteRT flatbuffers, builtin ops only."""

from __future__ import annotations

from typing import Any

from converters.registry import register_target
from edgekit.errors import NotAvailableError


def _convert(*args: Any, **kwargs: Any) -> Any:
    raise NotAvailableError("the TFLite converters are not in this build yet")


for _precision in ("fp32", "fp16", "int8"):
    register_target(
        f"tflite-{_precision}",
        format="tflite",
        precision=_precision,
        runtime="litert",
        extension=".tflite",
        extra="tflite",
        description=f"TFLite (LiteRT), {_precision.upper()}",
        oses=("linux", "android", "ios", "macos"),
        options={"precision": _precision},
    )(_convert)

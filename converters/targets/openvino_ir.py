"""``openvino-fp16`` and ``openvino-int8``: OpenVINO IR (xml + bin), INT8 through NNCF."""

from __future__ import annotations

from typing import Any

from converters.registry import register_target
from edgekit.errors import NotAvailableError


def _convert(*args: Any, **kwargs: Any) -> Any:
    raise NotAvailableError("the OpenVINO converters are not in this build yet")


for _precision in ("fp16", "int8"):
    register_target(
        f"openvino-{_precision}",
        format="openvino-ir",
        precision=_precision,
        runtime="openvino",
        extension=".xml",
        extra="openvino",
        description=f"OpenVINO IR, {_precision.upper()} weights",
        oses=("linux", "windows", "macos"),
        options={"precision": _precision},
    )(_convert)

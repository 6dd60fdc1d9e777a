"""``coreml-fp16`` and ``coreml-int8``: Core ML ML Program packages (.mlpackage)."""

from __future__ import annotations

from typing import Any

from converters.registry import register_target
from edgekit.errors import NotAvailableError


def _convert(*args: Any, **kwargs: Any) -> Any:
    raise NotAvailableError("the Core ML converters are not in this build yet")


for _precision in ("fp16", "int8"):
    register_target(
        f"coreml-{_precision}",
        format="coreml",
        precision=_precision,
        runtime="coreml",
        extension=".mlpackage",
        extra="coreml",
        description=f"Core ML ML Program, {_precision.upper()} weights",
        oses=("ios", "macos"),
        options={"precision": _precision},
    )(_convert)

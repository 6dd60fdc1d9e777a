"""The runtime interface every backend implements, and the name -> module table."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgekit.errors import NotAvailableError

if TYPE_CHECKING:
    import numpy as np

# runtime id (as in the target registry) -> (module under edgekit.runtimes, import name that must exist, pip extra)
RUNTIME_MODULES: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("onnx_runtime", "onnxruntime", "agent"),
    "openvino": ("openvino_runtime", "openvino", "openvino"),
    "litert": ("litert_runtime", "ai_edge_litert", "tflite"),
    "coreml": ("coreml_runtime", "coremltools", "coreml"),
}


@dataclass(frozen=True)
class RuntimeOptions:
    """How to open a model. ``low_memory`` trades a little speed for a small, flat RSS (arena and
    memory-pattern planning off in ONNX Runtime; one stream and mmap in OpenVINO)."""

    threads: int | None = None
    low_memory: bool = False
    dynamic_shapes: bool = True
    # OpenVINO runs bf16 on AMX/AVX512-BF16 CPUs unless told f32; parity must run at the claimed precision.
    inference_precision: str = "f32"
    providers: tuple[str, ...] = ()
    cache_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IOSpec:
    name: str
    dtype: str
    shape: tuple[int | str | None, ...]


class Runner(Protocol):
    """An opened model. ``run`` takes and returns numpy arrays keyed by tensor name."""

    runtime: str
    precision: str  # the precision it actually executes at, e.g. "f32", "bf16", "fp16"
    inputs: list[IOSpec]
    outputs: list[IOSpec]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def runtime_available(runtime: str) -> bool:
    """Whether this runtime's library is importable here (Core ML also needs macOS to predict)."""
    if runtime not in RUNTIME_MODULES:
        return False
    _, import_name, _ = RUNTIME_MODULES[runtime]
    names = (import_name, "tflite_runtime") if runtime == "litert" else (import_name,)
    return any(importlib.util.find_spec(n) is not None for n in names)


def open_runner(runtime: str, path: Path, options: RuntimeOptions | None = None) -> Runner:
    """Open ``path`` with ``runtime``; a missing library is a NotAvailableError with the install hint."""
    if runtime not in RUNTIME_MODULES:
        raise NotAvailableError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIME_MODULES)}")
    module_name, import_name, extra = RUNTIME_MODULES[runtime]
    if not runtime_available(runtime):
        raise NotAvailableError(f"{import_name} is not installed; install it with: pip install 'edgekit[{extra}]'")
    module = importlib.import_module(f"edgekit.runtimes.{module_name}")
    return module.open(path, options or RuntimeOptions())  # type: ignore[no-any-return]

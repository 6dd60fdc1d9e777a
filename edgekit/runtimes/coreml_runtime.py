"""Core ML: predicts only on macOS. Elsewhere opening a model is a clear NotAvailableError."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from edgekit.errors import NotAvailableError
from edgekit.runtimes.base import IOSpec, RuntimeOptions


class CoreMlRunner:
    runtime = "coreml"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        if platform.system() != "Darwin":
            raise NotAvailableError(
                f"Core ML predicts only on macOS/iOS; this is {platform.system()}. "
                "The artifact is validated structurally here (converted-not-run)."
            )
        import coremltools as ct

        compute = {"cpu": ct.ComputeUnit.CPU_ONLY, "all": ct.ComputeUnit.ALL}[options.extra.get("compute", "all")]
        self.model = ct.models.MLModel(str(path), compute_units=compute)
        spec = self.model.get_spec()
        self.inputs = [IOSpec(i.name, "float32", tuple(i.type.multiArrayType.shape)) for i in spec.description.input]
        self.outputs = [IOSpec(o.name, "float32", tuple(o.type.multiArrayType.shape))
                        for o in spec.description.output]
        self.precision = "fp16"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.model.predict({k: v for k, v in feeds.items()})
        return {k: np.asarray(v) for k, v in out.items()}

    def close(self) -> None:
        del self.model


def open(path: Path, options: RuntimeOptions) -> CoreMlRunner:  # noqa: A001
    return CoreMlRunner(path, options)

"""OpenVINO on the CPU. Precision is pinned (f32 unless asked) so bf16-capable CPUs do not silently change results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.runtimes.base import IOSpec, RuntimeOptions


class OpenVinoRunner:
    runtime = "openvino"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": options.inference_precision}
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = options.threads
        if options.low_memory:
            config["NUM_STREAMS"] = 1
            config["ENABLE_MMAP"] = True
        if options.cache_dir:
            core.set_property({"CACHE_DIR": str(options.cache_dir)})
        model = core.read_model(str(path))
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        # ov.Type -> "f32" / "bf16" / "f16": the precision the CPU plugin actually runs at.
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        self.inputs = [IOSpec(p.get_any_name(), p.get_element_type().to_dtype().name,
                              tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape()))
                       for p in self.compiled.inputs]
        self.outputs = [IOSpec(p.get_any_name(), p.get_element_type().to_dtype().name,
                               tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape()))
                        for p in self.compiled.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        wanted = {i.name: feeds[i.name].astype(i.dtype, copy=False) for i in self.inputs if i.name in feeds}
        result = self.request.infer(wanted)
        out = {}
        for port, spec in zip(self.compiled.outputs, self.outputs, strict=True):
            out[spec.name] = np.array(result[port])
        return out

    def close(self) -> None:
        del self.request, self.compiled


def open(path: Path, options: RuntimeOptions) -> OpenVinoRunner:  # noqa: A001
    return OpenVinoRunner(path, options)

"""ONNX Runtime: CPU everywhere; CUDA / TensorRT providers first when the device has them (Jetson)."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.runtimes.base import IOSpec, RuntimeOptions

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
           "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
           "tensor(double)": "float64"}


# Profile accelerator -> ONNX Runtime execution provider, most preferred first (TensorRT before plain CUDA).
ACCELERATOR_PROVIDERS = (("tensorrt", "TensorrtExecutionProvider"), ("cuda", "CUDAExecutionProvider"))


def providers_for(accelerators: Sequence[str]) -> tuple[str, ...]:
    """The GPU providers a profile's accelerators ask for that this onnxruntime build has (Jetson: onnxruntime-gpu)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return ()
    available = set(ort.get_available_providers())
    return tuple(p for acc, p in ACCELERATOR_PROVIDERS if acc in accelerators and p in available)


# Measured with onnxruntime 1.31 on an AVX-512 x86 host: the fused SkipLayerNormalization CPU kernel takes ~240 us
# on [1, 128, 384] where Add + LayerNormalization take ~30 us, so fusing it costs BERT-class models ~2.4 ms per call
# at sequence 128 (fp32 and int8 alike). Overridable with RuntimeOptions(extra={"ort_disabled_optimizers": [...]}).
X86_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def disabled_optimizers(options: RuntimeOptions) -> list[str]:
    if "ort_disabled_optimizers" in options.extra:
        return list(options.extra["ort_disabled_optimizers"])
    return list(X86_DISABLED_OPTIMIZERS) if platform.machine().lower() in ("x86_64", "amd64") else []


class OnnxRunner:
    runtime = "onnxruntime"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if options.threads:
            so.intra_op_num_threads = options.threads
            so.inter_op_num_threads = 1
        if options.low_memory:
            # Arena and memory patterns grow RSS to GBs with dynamic shapes (onnxruntime issues 11627, 11118).
            so.enable_cpu_mem_arena = False
            if options.dynamic_shapes:
                so.enable_mem_pattern = False
            # Spinning threads burn CPU (and heat) between requests on small boards.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        available = ort.get_available_providers()
        wanted = [p for p in options.providers if p in available] or ["CPUExecutionProvider"]
        if "CPUExecutionProvider" not in wanted:
            wanted.append("CPUExecutionProvider")
        self.session = ort.InferenceSession(str(path), sess_options=so, providers=wanted,
                                            disabled_optimizers=disabled_optimizers(options))
        self.providers = self.session.get_providers()
        self.inputs = [IOSpec(i.name, _DTYPES.get(i.type, i.type), tuple(i.shape)) for i in self.session.get_inputs()]
        self.outputs = [IOSpec(o.name, _DTYPES.get(o.type, o.type), tuple(o.shape))
                        for o in self.session.get_outputs()]
        fp16_io = any(i.dtype == "float16" for i in self.inputs)
        self.precision = "fp16" if fp16_io else "f32"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.outputs]
        cast = {}
        for spec in self.inputs:
            if spec.name not in feeds:
                continue
            arr = feeds[spec.name]
            cast[spec.name] = arr.astype(spec.dtype, copy=False) if spec.dtype in _DTYPES.values() else arr
        return dict(zip(names, self.session.run(names, cast), strict=True))

    def close(self) -> None:
        del self.session


def open(path: Path, options: RuntimeOptions) -> OnnxRunner:  # noqa: A001 - the runtime module interface
    return OnnxRunner(path, options)

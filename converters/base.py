"""The contract between the conversion orchestrator and the target modules.

A converter is a small ``src -> dst`` function registered in ``converters.registry``::

    @register_target("onnx-fp32", ...)
    def convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact: ...

It reads ``ctx.source`` (the FP32 ONNX reference graph, and for torch-based sources a factory for the export
wrapper), writes its files under ``ctx.out_dir`` (``ctx.artifact_path(spec)`` names the primary file), uses
``ctx.work_dir`` for scratch (removed afterwards), and returns what it built. It raises ``ConversionError`` with
the reason when it cannot build. Parity against the FP32 reference is checked by the orchestrator through
``ctx.check_parity`` unless the converter already did (INT8 converters call it in their recovery loop and return
the passing figure). A converter never decides pass/fail itself: the orchestrator applies the gate to
``BuiltArtifact.parity``.

Additions since the first version (all optional, defaults keep old code working): ``SourceModel.metadata``;
``ConvertContext.parity`` (the ``ParityChecker`` behind ``check_parity``, for per-row figures and sample subsets),
``ConvertContext.measure_latency``, ``ConvertContext.threads`` and ``ConvertContext.artifact_path()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgekit.manifest import Latency, Parity, TensorSpec

if TYPE_CHECKING:
    import numpy as np

    from converters.parity import ParityChecker
    from converters.registry import TargetSpec
    from edgekit.profiles import DeviceProfile

# numpy is only named here, never loaded: importing the registry (profile validation, --help) stays light.
Feeds = dict[str, "np.ndarray"]
Predict = Callable[[Feeds], dict[str, "np.ndarray"]]


@dataclass(frozen=True)
class SourceModel:
    """A prepared source: always an FP32 ONNX graph, plus what torch-based converters need."""

    name: str
    source: str
    onnx_path: Path
    sha256: str
    task: str  # "text-embedding", "image-classification", "tensor"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    fixed_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    tokenizer_files: tuple[Path, ...] = ()
    hf_dir: Path | None = None
    # Builds the traceable torch module (the BERT export wrapper) for torch-based converters (litert-torch, Core ML).
    # Its forward takes the ONNX graph's inputs in order (input_ids, attention_mask) and returns its one output.
    torch_factory: Callable[[], Any] | None = None
    # Facts about the model the converters may use: family ("bert"), hidden_size, num_heads, num_layers, pooling,
    # and for text models the tokenization ("max_length", "pad_id").
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def input_spec(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass
class ConvertContext:
    source: SourceModel
    out_dir: Path
    work_dir: Path
    profile: DeviceProfile
    # Parity samples: feed dicts the reference was run on, and the reference outputs for each.
    samples: list[Feeds]
    reference: list[dict[str, np.ndarray]]
    calibration: list[Feeds] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # check_parity(spec_id, predict) -> Parity, filled in by the orchestrator.
    check_parity: Callable[[str, Predict], Parity] | None = None
    progress: Callable[[str], None] = lambda message: None
    # The object behind check_parity (converters.parity.ParityChecker): thresholds, per-row figures, subsets.
    parity: ParityChecker | None = None
    # measure_latency(predict) -> Latency at batch 1 on the orchestrator's latency input (for recorded costs).
    measure_latency: Callable[[Predict], Latency] | None = None
    threads: int = 2  # CPU threads for running artifacts here

    def artifact_path(self, spec: TargetSpec, suffix: str | None = None) -> Path:
        """The primary output file of ``spec``: ``<out_dir>/<target id><extension>``."""
        return self.out_dir / f"{spec.id}{suffix if suffix is not None else spec.extension}"


@dataclass
class BuiltArtifact:
    target: str
    path: Path  # the primary file or directory, inside ctx.out_dir
    files: tuple[Path, ...] = ()  # further files that belong to it (OpenVINO .bin, TFLite buckets)
    status: Literal["ok", "converted-not-run"] = "ok"
    parity: Parity | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    # How the orchestrator runs it for parity/latency when the default (open the primary file with the
    # target's runtime) does not fit, e.g. TFLite buckets that need padding.
    predict: Predict | None = None

"""Fixed-shape planning for mobile targets (TFLite, Core ML), and the torch module they trace.

Neither litert-torch nor onnx2tf produced a dynamic-sequence TFLite model, and flexible shapes keep Core ML off the
Neural Engine, so mobile artifacts are built for fixed shapes:

- a text model (an integer input with a dynamic second axis) gets one shape per (batch, sequence) *bucket*
  (default batch 1, sequences 16/32/64/128/256; options ``sequence_buckets`` and ``batch``); the runtime picks the
  smallest bucket that fits and pads with the attention mask;
- any other model gets one shape: the batch axis fixed to ``batch``, every other dynamic axis from
  ``--input-shape`` (``SourceModel.fixed_shapes``), or a ConversionError saying which input needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.base import SourceModel
from edgekit.errors import ConversionError

DEFAULT_SEQUENCE_BUCKETS = (16, 32, 64, 128, 256)
INT_DTYPES = ("int32", "int64", "int8", "uint8", "int16")


@dataclass(frozen=True)
class ShapePlan:
    """Fixed input shapes for one artifact file."""

    shapes: Mapping[str, tuple[int, ...]]
    batch: int
    sequence: int | None = None  # set for text buckets

    @property
    def tag(self) -> str:
        return f"b{self.batch}-s{self.sequence}" if self.sequence is not None else f"b{self.batch}"


def sequence_axes(source: SourceModel) -> dict[str, int]:
    """Inputs that carry a token sequence: integer inputs whose axis 1 is dynamic (a named dim)."""
    return {i.name: 1 for i in source.inputs
            if i.dtype in INT_DTYPES and len(i.shape) >= 2 and not isinstance(i.shape[1], int)}


def output_sequence_axes(source: SourceModel) -> dict[str, int]:
    """Output axes named like an input's sequence axis (they are sliced back after padding)."""
    names = {str(i.shape[1]) for i in source.inputs if i.name in sequence_axes(source)}
    out: dict[str, int] = {}
    for o in source.outputs:
        for axis, dim in enumerate(o.shape):
            if axis > 0 and isinstance(dim, str) and dim in names:
                out[o.name] = axis
    return out


def plan_shapes(source: SourceModel, options: Mapping[str, Any], *, single_sequence: int | None = None
                ) -> list[ShapePlan]:
    """Every fixed-shape plan to build; for text models one per sequence bucket (or just ``single_sequence``)."""
    batch = int(options.get("batch", 1))
    seq_axes = sequence_axes(source)
    if seq_axes and not any(name in source.fixed_shapes for name in seq_axes):
        buckets: Sequence[int] = (single_sequence,) if single_sequence else tuple(
            int(s) for s in options.get("sequence_buckets", DEFAULT_SEQUENCE_BUCKETS))
        if not buckets or any(s <= 0 for s in buckets):
            raise ConversionError(f"sequence buckets must be positive integers; got {list(buckets)}")
        return [ShapePlan(_shapes(source, batch, seq), batch, seq) for seq in sorted(set(buckets))]
    shapes = _shapes(source, batch, None)
    seq = next((shapes[n][1] for n in seq_axes if n in shapes), None)
    return [ShapePlan(shapes, batch, seq)]


def _shapes(source: SourceModel, batch: int, seq: int | None) -> dict[str, tuple[int, ...]]:
    out = {}
    for spec in source.inputs:
        if spec.name in source.fixed_shapes:
            out[spec.name] = tuple(int(d) for d in source.fixed_shapes[spec.name])
            continue
        dims = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                dims.append(dim)
            elif axis == 0:
                dims.append(batch)
            elif axis == 1 and seq is not None and spec.dtype in INT_DTYPES:
                dims.append(seq)
            else:
                raise ConversionError(
                    f"input {spec.name!r} has dynamic axis {axis} ({dim!r}) in shape {list(spec.shape)}; "
                    f"mobile targets need fixed shapes: pass --input-shape {spec.name}:"
                    + ",".join(str(d) if isinstance(d, int) and d > 0 else "N" for d in spec.shape))
        out[spec.name] = tuple(dims)
    return out


def example_feeds(source: SourceModel, plan: ShapePlan, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the planned shapes for tracing: ones for integer inputs (ids, masks), N(0,1) for floats."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in source.inputs:
        shape = plan.shapes[spec.name]
        if spec.dtype in INT_DTYPES:
            feeds[spec.name] = np.ones(shape, dtype=spec.dtype)
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype if spec.dtype != "float16" else "float32")
    return feeds


def torch_module(source: SourceModel) -> Any:
    """The model as a torch module taking keyword inputs (source names) and returning ``{output name: tensor}``.

    Torch-based sources use their export wrapper (``torch_factory``); ONNX-only sources go through the ONNX-to-torch
    interpreter, which fails naming any op it cannot run.
    """
    import torch

    if source.torch_factory is not None:
        inner = source.torch_factory()
    else:
        from converters import onnx_to_torch

        inner = onnx_to_torch.load(source.onnx_path)
    by_name = source.torch_factory is None  # the ONNX interpreter takes keyword inputs named as in the graph
    input_names = [i.name for i in source.inputs]
    output_names = [o.name for o in source.outputs]

    class NamedIO(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, **feeds: Any) -> dict[str, Any]:
            if by_name:
                result = self.inner(**{n: feeds[n] for n in input_names})
            else:
                result = self.inner(*[feeds[n] for n in input_names])
            if isinstance(result, dict):
                return {n: result[n] for n in output_names}
            if isinstance(result, (tuple, list)):
                return dict(zip(output_names, result, strict=True))
            return {output_names[0]: result}

    return NamedIO().eval()

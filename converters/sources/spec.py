"""Input/output specs read from an ONNX graph, ``--input-shape NAME:DIMS`` parsing, and task detection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgekit.errors import UsageError
from edgekit.manifest import TensorSpec

# onnx TensorProto element type -> numpy dtype name
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
               11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}


def tensor_specs(values: Iterable[Any], skip: set[str] | frozenset[str] = frozenset()) -> tuple[TensorSpec, ...]:
    """TensorSpecs of ONNX ValueInfos; a dynamic dim keeps its symbolic name, an unnamed one gets ``<tensor>_d<i>``."""
    out = []
    for v in values:
        if v.name in skip:
            continue
        tt = v.type.tensor_type
        shape: list[int | str] = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            else:
                shape.append(d.dim_param or f"{v.name}_d{i}")
        out.append(TensorSpec(v.name, ONNX_DTYPES.get(tt.elem_type, f"onnx-type-{tt.elem_type}"), tuple(shape)))
    return tuple(out)


def graph_specs(model: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    inits = {i.name for i in model.graph.initializer}
    return tensor_specs(model.graph.input, inits), tensor_specs(model.graph.output)


def parse_input_shapes(items: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """``["images:1,3,640,640"]`` -> ``{"images": (1, 3, 640, 640)}``; malformed text is a UsageError."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition(":")
        try:
            parsed = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed or any(d < 1 for d in parsed):
            raise UsageError(f"--input-shape {item!r} is not NAME:DIMS with positive integer dims; "
                             "write e.g. --input-shape images:1,3,640,640")
        if name in shapes:
            raise UsageError(f"--input-shape names {name!r} twice; give each input once")
        shapes[name] = parsed
    return shapes


def apply_input_shapes(inputs: tuple[TensorSpec, ...], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Check ``--input-shape`` values against the model's inputs (names, ranks, fixed dims)."""
    by_name = {s.name: s for s in inputs}
    for name, dims in shapes.items():
        if name not in by_name:
            raise UsageError(f"--input-shape names input {name!r}, but the model's inputs are "
                             f"{', '.join(by_name)}; use one of those names")
        spec = by_name[name]
        if len(dims) != len(spec.shape):
            raise UsageError(f"--input-shape {name}: {len(dims)} dims given, but input {name!r} has rank "
                             f"{len(spec.shape)} (shape {list(spec.shape)})")
        for i, (want, have) in enumerate(zip(dims, spec.shape, strict=True)):
            if isinstance(have, int) and have != want:
                raise UsageError(f"--input-shape {name}: dim {i} is fixed to {have} in the model, not {want}")


def detect_task(inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> str:
    """A guess from the I/O alone: one NCHW float input and one [batch, classes] output is a classifier;
    anything else is a generic tensor model (compared by relative error)."""
    if (len(inputs) == 1 and inputs[0].dtype.startswith("float") and len(inputs[0].shape) == 4
            and len(outputs) == 1 and len(outputs[0].shape) == 2):
        return "image-classification"
    return "tensor"

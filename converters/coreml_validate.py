"""Structural validation of a Core ML ``.mlpackage`` where it cannot predict (off macOS).

Checks, each one named in the result: the package loads as a spec (``skip_model_load``) and is an ML Program;
input/output names, dtypes and shapes match what the source promises; every weight has the requested precision
(fp16 consts, or int8 ``constexpr`` dequantization); the weights reloaded from the saved package match the source
model's (max relative error within what the precision allows); the metadata (version, source sha256, edgekit
version) is present. Any miss raises ``ValidationMismatch`` naming it. On macOS the orchestrator additionally runs
the package numerically through the parity gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ValidationMismatch

WEIGHT_MIN_ELEMENTS = 64  # smaller (and 1-D) consts are shapes, biases, scalars: not weights for the precision check
# Max error of a reloaded weight relative to the tensor's max |w|: fp16 rounding; int8 half-step (1/254) plus fp16
# scales.
WEIGHT_TOLERANCE = {"fp32": 1e-6, "fp16": 1e-3, "int8": 6e-3}
UNRELATED = 0.25  # a best match this far off is another tensor: the source one was folded away
REQUIRED_METADATA = ("edgekit_version", "source_sha256", "target")

# Core ML ArrayFeatureType.ArrayDataType values.
_ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}


@dataclass(frozen=True)
class ExpectedIO:
    name: str
    dtype: str
    shape: tuple[int, ...] | None  # None: any shape


@dataclass
class StructuralReport:
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    weight_precision: dict[str, int] = field(default_factory=dict)
    weight_max_rel_error: float | None = None
    weights_compared: int = 0

    def as_details(self) -> dict[str, Any]:
        return {"checks": self.checks, "weight_precision": self.weight_precision,
                "weight_max_rel_error": self.weight_max_rel_error, "weights_compared": self.weights_compared}


def validate_structure(package: Path, *, inputs: Sequence[ExpectedIO], outputs: Sequence[ExpectedIO],
                       precision: str, source_weights: Mapping[str, np.ndarray] | None = None,
                       required_metadata: Sequence[str] = REQUIRED_METADATA) -> StructuralReport:
    """Validate ``package`` without predicting; raises ValidationMismatch listing every problem found."""
    import coremltools as ct

    report = StructuralReport()
    try:
        model = ct.models.MLModel(str(package), skip_model_load=True)
    except Exception as err:  # coremltools raises bare Exceptions for unreadable packages
        raise ValidationMismatch(f"{package.name} does not load as a Core ML spec: {err}") from err
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        report.problems.append(f"model type is {spec.WhichOneof('Type')!r}, expected an ML Program")
    else:
        report.checks.append("ML Program spec loads (skip_model_load)")
    _check_io(report, "input", spec.description.input, inputs)
    _check_io(report, "output", spec.description.output, outputs)
    meta = dict(spec.description.metadata.userDefined)
    missing = [k for k in required_metadata if not meta.get(k)]
    if missing:
        report.problems.append(f"user_defined_metadata lacks {', '.join(missing)}")
    else:
        report.checks.append(f"metadata present: {', '.join(required_metadata)}")
    weights, kinds = _package_weights(spec, model.weights_dir)
    report.weight_precision = kinds
    wanted = {"fp16": "fp16", "int8": "int8", "fp32": "fp32"}[precision]
    wrong = {k: n for k, n in kinds.items() if k != wanted}
    if not kinds:
        report.problems.append("the package has no weight tensors")
    elif wrong:
        report.problems.append(f"weights are not all {wanted}: {kinds}")
    else:
        report.checks.append(f"all {sum(kinds.values())} weight tensors are {wanted}")
    if source_weights:
        _compare_weights(report, weights, source_weights, precision)
    if report.problems:
        raise ValidationMismatch(f"{package.name} fails structural validation: " + "; ".join(report.problems))
    return report


def _check_io(report: StructuralReport, kind: str, features: Any, expected: Sequence[ExpectedIO]) -> None:
    got = {f.name: f for f in features}
    names, want = list(got), [e.name for e in expected]
    if names != want:
        report.problems.append(f"{kind} names are {names}, expected {want}")
        return
    for e in expected:
        arr = got[e.name].type.multiArrayType
        dtype = _ARRAY_DTYPES.get(arr.dataType, str(arr.dataType))
        shape = tuple(int(d) for d in arr.shape)
        if dtype != e.dtype:
            report.problems.append(f"{kind} {e.name!r} has dtype {dtype}, expected {e.dtype}")
        if e.shape is not None and shape != tuple(e.shape):
            report.problems.append(f"{kind} {e.name!r} has shape {list(shape)}, expected {list(e.shape)}")
    report.checks.append(f"{kind}s match: " + ", ".join(f"{e.name} {e.dtype}{list(e.shape or ())}" for e in expected))


def _package_weights(spec: Any, weights_dir: str | None) -> tuple[list[np.ndarray], dict[str, int]]:
    """Weights as reloaded from the saved package (constexpr ops materialized), and a count per precision."""
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_to_pymil

    prog = milproto_to_pymil(spec, spec.specificationVersion, weights_dir)
    values: list[np.ndarray] = []
    kinds: dict[str, int] = {}
    for fn in prog.functions.values():
        for op in fn.operations:
            if op.op_type == "const":
                val = op.outputs[0].val
                if (not isinstance(val, np.ndarray) or val.size < WEIGHT_MIN_ELEMENTS or val.ndim < 2
                        or val.dtype.kind != "f"):  # 1-D: biases and norms stay fp16 by design
                    continue
                if any(c.op_type.startswith("constexpr") for c in op.outputs[0].child_ops):
                    continue
                kind = {np.dtype("float16"): "fp16", np.dtype("float32"): "fp32"}.get(val.dtype, str(val.dtype))
            elif op.op_type.startswith("constexpr"):
                val = op.materialized_val_inference()
                data = [v.val for v in op.inputs.values() if isinstance(v.val, np.ndarray) and v.val.size == val.size]
                kind = "int8" if any(d.dtype in (np.int8, np.uint8) for d in data) else op.op_type
            else:
                continue
            kinds[kind] = kinds.get(kind, 0) + 1
            values.append(np.asarray(val, dtype=np.float32))
    return values, kinds


def _compare_weights(report: StructuralReport, weights: list[np.ndarray], source: Mapping[str, np.ndarray],
                     precision: str) -> None:
    """Each source weight against the closest package tensor of the same size (as is, or transposed)."""
    by_size: dict[int, list[np.ndarray]] = {}
    for w in weights:
        by_size.setdefault(w.size, []).append(w)
    worst, compared, unmatched = 0.0, 0, []
    source = {k: v for k, v in source.items() if np.ndim(v) >= 2}  # 1-D biases/norms get fused: not comparable
    for name, src in source.items():
        src = np.asarray(src, dtype=np.float32)
        scale = float(np.abs(src).max()) or 1.0
        best = None
        for cand in by_size.get(src.size, []):
            for view in _views(cand, src.shape):
                err = float(np.abs(view - src).max()) / scale
                best = err if best is None else min(best, err)
        if best is None or best > UNRELATED:
            unmatched.append(name)  # fused or sliced away (BN folded into conv, a position table cut to length)
            continue
        compared += 1
        worst = max(worst, best)
    if len(unmatched) > len(source) / 2:
        report.problems.append(f"{len(unmatched)} of {len(source)} source weights have no counterpart in the package "
                               f"(e.g. {unmatched[0]!r}): it holds different weights")
    report.weight_max_rel_error = worst if compared else None
    report.weights_compared = compared
    tol = WEIGHT_TOLERANCE[precision]
    if compared and worst > tol:
        report.problems.append(f"reloaded weights differ from the source by up to {worst:.2e} of their range "
                               f"(allowed for {precision}: {tol:.0e})")
    elif compared:
        report.checks.append(f"{compared} source weights reload within {worst:.1e} (relative; allowed {tol:.0e})"
                             + (f"; {len(unmatched)} fused away" if unmatched else ""))


def _views(cand: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    out = []
    if cand.shape == shape:
        out.append(cand)
    if cand.ndim == 2 and cand.T.shape == shape:
        out.append(cand.T)
    return out

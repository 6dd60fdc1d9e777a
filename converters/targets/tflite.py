"""``tflite-fp32``, ``tflite-fp16``, ``tflite-int8``: LiteRT flatbuffers, builtin ops only, fixed shapes.

Path: source -> torch module (export wrapper, or the ONNX-to-torch interpreter for ONNX-only sources) ->
``torch.export`` per fixed-shape plan (text models: one per sequence bucket) -> the isolated ``litert-torch``
toolchain (litert-torch + ai-edge-quantizer, see ``edgekit.toolchains``) -> every file checked for Flex/custom ops
and loaded in LiteRT here -> parity through the bucket runner the device uses.

INT8: dynamic-range (int8 weights, float activations quantized on the fly) by default; full-integer (int8
activations, what mobile NPUs want) when calibration data is given. Full-integer INT8 collapses on transformer
encoders (cosine ~0.1 on MiniLM), so it goes through the gate here and fails saying what to use instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from converters.base import BuiltArtifact, ConvertContext
from converters.registry import TargetSpec, register_target
from edgekit.errors import ConversionError

log = logging.getLogger(__name__)

TOOLCHAIN = "litert-torch"
QUANT = {"fp32": "none", "fp16": "fp16"}
INT8_MODES = ("dynamic", "weight-only", "full-integer")
_INT8_QUANT = {"dynamic": "dynamic_int8", "weight-only": "weight_int8", "full-integer": "static_int8"}


def int8_mode(ctx: ConvertContext) -> str:
    mode = str(ctx.options.get("tflite_int8_mode") or ("full-integer" if ctx.calibration else "dynamic"))
    if mode not in INT8_MODES:
        raise ConversionError(f"tflite_int8_mode {mode!r} is not one of {', '.join(INT8_MODES)}")
    return mode


def convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact:
    import torch

    from converters import fixed_shape, tflite_ops
    from edgekit import toolchains
    from edgekit.runtimes.base import RuntimeOptions
    from edgekit.runtimes.litert_runtime import BucketedRunner, LiteRtRunner, litert_version, open_artifact

    precision = str(spec.options["precision"])
    mode = int8_mode(ctx) if precision == "int8" else None
    quant = _INT8_QUANT[mode] if mode else QUANT[precision]
    tc = toolchains.get_toolchain(TOOLCHAIN)
    toolchains.require(tc)  # fail fast, before exporting anything, with the install command
    source = ctx.source
    plans = fixed_shape.plan_shapes(source, ctx.options)
    module = fixed_shape.torch_module(source)
    ctx.progress(f"{spec.id}: exporting {len(plans)} fixed-shape program(s) for litert-torch")
    jobs = []
    for plan in plans:
        feeds = {k: torch.from_numpy(v) for k, v in fixed_shape.example_feeds(source, plan).items()}
        try:
            program = torch.export.export(module, (), feeds, strict=False)
        except Exception as err:  # torch raises many types; the message is what the user needs
            raise ConversionError(f"torch.export failed for shape {plan.tag}: {type(err).__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else ''}") from err
        pt2 = ctx.work_dir / f"{spec.id}-{plan.tag}.pt2"
        torch.export.save(program, str(pt2))
        name = f"{source.name}-{spec.id}-{plan.tag}.tflite" if plan.sequence else f"{source.name}-{spec.id}.tflite"
        job: dict[str, Any] = {"program": str(pt2), "out": str(ctx.out_dir / name), "quant": quant}
        if quant.startswith("static"):
            job["calibration"] = str(_calibration_npz(ctx, plan, ctx.work_dir / f"calib-{plan.tag}.npz"))
        jobs.append(job)
    ctx.progress(f"{spec.id}: converting with the {TOOLCHAIN} toolchain ({quant})")
    results = toolchains.run_worker(tc, {"jobs": jobs})
    failed = [r for r in results if r.get("error")]
    if failed:
        log.debug("toolchain traceback:\n%s", failed[0].get("traceback"))
        raise ConversionError(f"litert-torch could not convert {Path(failed[0]['out']).name}: {failed[0]['error']}")

    buckets: list[dict[str, Any]] = []
    ops: set[str] = set()
    for plan, result in zip(plans, results, strict=True):
        path = Path(result["out"])
        ops.update(tflite_ops.check_builtin_only(path))
        runner = LiteRtRunner(path, RuntimeOptions(threads=2))  # loads with builtin kernels only, or raises
        names = {i.name for i in runner.inputs}
        if names != {i.name for i in source.inputs}:
            raise ConversionError(f"{path.name} has inputs {sorted(names)}, the source has "
                                  f"{sorted(i.name for i in source.inputs)}")
        quant_io = runner.quantization()
        runner.close()
        buckets.append({"path": path.name, "batch": plan.batch, "sequence": plan.sequence,
                        "shapes": {k: list(v) for k, v in plan.shapes.items()},
                        "size_bytes": path.stat().st_size, "seconds": result.get("seconds")})
    details: dict[str, Any] = {
        "buckets": buckets if plans[0].sequence is not None else [],
        "sequence_inputs": fixed_shape.sequence_axes(source) if plans[0].sequence is not None else {},
        "sequence_outputs": fixed_shape.output_sequence_axes(source) if plans[0].sequence is not None else {},
        "padding": "zeros; attention_mask 0 marks padded tokens" if plans[0].sequence is not None else None,
        "input_shapes": {k: list(v) for k, v in plans[-1].shapes.items()},
        "input_dtypes": {i.name: ("int32" if i.dtype == "int64" else i.dtype) for i in source.inputs},
        "quantization": _quant_details(precision, mode, quant_io),
        "ops": sorted(ops), "builtin_ops_only": True,
        "converter": {"toolchain": TOOLCHAIN, **(toolchains.installed_info(tc) or {}).get("packages", {})},
        "min_runtime": {"ai-edge-litert": f">={litert_version() or '2.3.0'}",
                        "note": "tflite_runtime 2.14 cannot load these op versions (and fails under numpy 2)"},
        "metadata": "TFLite Support metadata is not embedded (its writer needs tflite-support/TensorFlow, not "
                    "installed); the input spec is in manifest.json",
    }
    primary = _primary(ctx.out_dir, buckets) if buckets else Path(results[0]["out"])
    extra = tuple(ctx.out_dir / b["path"] for b in buckets if ctx.out_dir / b["path"] != primary)
    opts = RuntimeOptions(threads=int(ctx.options.get("threads", 2)))
    model: LiteRtRunner | BucketedRunner = open_artifact(ctx.out_dir, details, primary, opts)
    predict = model.run
    artifact = BuiltArtifact(target=spec.id, path=primary, files=extra, details=details, predict=predict,
                             notes=(f"{len(plans)} fixed-shape file(s); the runtime pads to the smallest bucket",)
                             if len(plans) > 1 else ())
    if mode == "full-integer" and ctx.check_parity is not None:
        artifact.parity = _gate_full_integer(ctx, spec, predict, model)
    return artifact


def _primary(out_dir: Path, buckets: list[dict[str, Any]]) -> Path:
    """The bucket manifest tools show first: sequence 128 (the benchmark shape) when built, else the longest."""
    chosen = next((b for b in buckets if b["sequence"] == 128), buckets[-1])
    return out_dir / chosen["path"]


def _quant_details(precision: str, mode: str | None, io: dict[str, Any]) -> dict[str, Any]:
    if precision == "fp32":
        return {"weights": "fp32", "activations": "fp32"}
    if precision == "fp16":
        return {"weights": "fp16 (dequantized to fp32 at load)", "activations": "fp32", "method": "float_casting"}
    acts = {"dynamic": "fp32, quantized to int8 on the fly per op", "weight-only": "fp32",
            "full-integer": "int8 (static, calibrated)"}[mode or "dynamic"]
    out: dict[str, Any] = {"mode": mode, "weights": "int8 per-channel symmetric", "activations": acts,
                           "tool": "ai-edge-quantizer"}
    if io:
        out["io"] = io
    return out


def _calibration_npz(ctx: ConvertContext, plan: Any, path: Path) -> Path:
    """Calibration feeds padded/split to the plan's fixed shape, as ``<i>/<input>`` arrays."""
    import numpy as np

    from converters import fixed_shape

    seq_axes = fixed_shape.sequence_axes(ctx.source)
    arrays: dict[str, np.ndarray] = {}
    index = 0
    for feeds in ctx.calibration or []:
        rows = next(iter(feeds.values())).shape[0]
        for r in range(rows):
            for name, value in feeds.items():
                row = value[r:r + 1]
                if name in seq_axes and plan.sequence is not None:
                    row = row[:, :plan.sequence]
                    row = np.pad(row, [(0, 0), (0, plan.sequence - row.shape[1])] + [(0, 0)] * (row.ndim - 2))
                want = "int32" if row.dtype == np.int64 else row.dtype
                arrays[f"{index}/{name}"] = row.astype(want)
            index += 1
    if not arrays:
        raise ConversionError("full-integer INT8 needs calibration samples; pass --calibration FILE")
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _gate_full_integer(ctx: ConvertContext, spec: TargetSpec, predict: Any, runner: Any) -> Any:
    assert ctx.check_parity is not None
    parity = ctx.check_parity(spec.id, predict)
    if parity.passed is False:
        runner.close()
        raise ConversionError(
            f"full-integer INT8 (int8 activations) misses the parity gate: {parity.metric} mean {parity.mean:.4f}, "
            f"min {parity.min:.4f} against thresholds {parity.threshold}. Activations of this model do not fit "
            "int8 (transformer encoders typically collapse). Use dynamic-range INT8 instead (convert without "
            "--calibration, or tflite_int8_mode=dynamic), or tflite-fp16 for an accelerator")
    return parity


for _precision in ("fp32", "fp16", "int8"):
    register_target(
        f"tflite-{_precision}",
        format="tflite",
        precision=_precision,
        runtime="litert",
        extension=".tflite",
        extra="tflite",
        description=f"TFLite (LiteRT), {_precision.upper()}"
        + (": dynamic-range, or full-integer with --calibration" if _precision == "int8" else ""),
        oses=("linux", "android", "ios", "macos"),
        options={"precision": _precision},
    )(convert)

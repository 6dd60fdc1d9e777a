"""``onnx-int8-arm64`` and ``onnx-int8-x86``: ONNX Runtime INT8 with per-CPU presets and automatic recovery.

Transformers (MatMul-heavy graphs) get dynamic quantization; convolutional models get static QDQ calibrated on
``--calibration`` data (or, without it, on the generated samples, with a note). When the fully quantized model
misses the parity gate, ``converters.quantize.recovery`` ranks nodes by measured sensitivity and keeps the
fewest, most damaging ones in float compute (their weights still stored as int8 where possible), and the
report records which nodes and what they cost in size and latency.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from converters.base import BuiltArtifact, ConvertContext
from converters.registry import TargetSpec, register_target
from converters.toolrun import one_line, tool_scope
from edgekit.checksums import size_of
from edgekit.errors import ConversionError, missing_extra
from edgekit.manifest import Parity
from edgekit.runtimes import RuntimeOptions, open_runner

log = logging.getLogger(__name__)


def _prepare(ctx: ConvertContext) -> tuple[Path, str, Any]:
    """Name every node (exclusion works by name), pick the mode, rewrite Gemm for dynamic mode."""
    import onnx

    from converters.quantize.ort_quant import gemm_to_matmul

    model = onnx.load(str(ctx.source.onnx_path))
    counts = Counter(n.op_type for n in model.graph.node)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    mode = "static" if counts["Conv"] and counts["Conv"] >= counts["MatMul"] else "dynamic"
    if mode == "dynamic":
        gemm_to_matmul(model)
    path = ctx.work_dir / "prepared.onnx"
    onnx.save_model(model, str(path))
    return path, mode, model


def _convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact:
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError as err:
        raise missing_extra("onnxruntime", "convert") from err
    from converters.parity import describe
    from converters.quantize import ort_quant, recovery
    from converters.quantize.fakequant import find_candidates
    from converters.quantize.ort_sim import OrtSimulator
    from converters.quantize.presets import preset_for

    preset = preset_for(str(spec.options["preset"]), ctx.profile)
    prepared, mode, model = _prepare(ctx)
    op_types = ort_quant.DYNAMIC_OPS if mode == "dynamic" else ort_quant.STATIC_OPS
    candidates = find_candidates(model, op_types, preset.per_channel)
    if not candidates:
        raise ConversionError(f"nothing to quantize: the graph has no {'/'.join(op_types)} node with constant "
                              "float weights; use onnx-fp32 or onnx-fp16 for this model")
    notes: list[str] = []
    calibration = ctx.calibration
    if mode == "static" and not calibration:
        calibration = ctx.samples
        notes.append("static INT8 calibrated on generated inputs; pass --calibration with real data for "
                     "representative ranges")
    details: dict[str, Any] = {"mode": mode, "preset": preset.name, "preset_settings": preset.why,
                               "quantizable_nodes": len(candidates)}
    tool_dir = ctx.work_dir / "tool"
    weight_only = False

    def build(kept: list[str]) -> tuple[Path, list[str]]:
        out = ctx.work_dir / "attempt.onnx"
        try:
            with tool_scope(tool_dir):
                if mode == "dynamic":
                    ort_quant.quantize_dynamic_int8(prepared, out, preset, kept)
                else:
                    ort_quant.quantize_static_qdq(prepared, out, preset, calibration or [], kept)
        except Exception as err:
            raise ConversionError(f"ONNX Runtime {mode} quantization failed: {one_line(err)}") from err
        stored = ort_quant.store_weights_int8(out, kept) if weight_only and kept else []
        return out, stored

    def check(path: Path) -> tuple[Parity, Any]:
        runner = open_runner(spec.runtime, path, RuntimeOptions(threads=ctx.threads))
        assert ctx.check_parity is not None
        return ctx.check_parity(spec.id, runner.run), runner

    ctx.progress("quantizing every node")
    path, _ = build([])
    parity, runner = check(path)
    details["full_int8"] = {"parity": {"mean": parity.mean, "min": parity.min, "max": parity.max},
                            "size_bytes": size_of(path)}
    if parity.passed or ctx.parity is None:
        runner.close()
        shutil.move(str(path), ctx.artifact_path(spec))
        details["kept_float"] = []
        return BuiltArtifact(spec.id, ctx.artifact_path(spec), parity=parity, notes=tuple(notes), details=details)
    if ctx.measure_latency is not None:
        details["full_int8"]["latency_ms"] = ctx.measure_latency(runner.run).p50
    runner.close()
    log.info("%s: full INT8 misses the gate (%s); searching for sensitive nodes", spec.id, describe(parity))

    ctx.progress("building the sensitivity simulator")
    ranges = None
    if mode == "static":
        acts = sorted({c.activation for c in candidates if c.activation})
        ranges = ort_quant.activation_ranges(prepared, acts, calibration or [])
    sim = OrtSimulator(prepared, candidates, ctx.parity, spec.id, reduce_range=preset.reduce_range,
                       activation_ranges=ranges, work=ctx.work_dir, threads=ctx.threads)
    if mode == "dynamic":
        wo = sim.weight_only_passes()
        weight_only = sim.weight_only_kept
        details["weight_only_storage"] = {"used": weight_only, "simulated_parity": {"mean": wo.mean, "min": wo.min}}
    plan = recovery.plan(sim, progress=ctx.progress)
    details["sensitivity"] = {"measure": "gate score with only this node quantized, on the samples full INT8 "
                                         "hurts most (lower = more damaging)",
                              "ranking": [{"node": n, "score": s} for n, s in plan.ranking[:12]],
                              "simulated_evaluations": plan.evaluations}
    del sim
    state: dict[str, Any] = {}

    def build_real(kept: list[str]) -> Path:
        path, state["stored"] = build(kept)
        return path

    def check_real(path: object) -> Parity:
        parity, runner = check(Path(str(path)))
        if parity.passed and ctx.measure_latency is not None and "latency_ms" in details["full_int8"]:
            details["latency_cost_ms"] = round(ctx.measure_latency(runner.run).p50
                                               - details["full_int8"]["latency_ms"], 3)
        runner.close()
        return parity

    outcome = recovery.realize(plan, build_real, check_real, progress=ctx.progress)
    path, parity, kept = Path(str(outcome.handle)), outcome.parity, outcome.kept
    details["attempts"] = outcome.attempts
    by_name = {c.node: c for c in candidates}
    details["kept_float"] = [{"node": n, "op": by_name[n].op_type,
                              "weights": "int8 storage" if n in state["stored"] else "float"} for n in kept]
    details["size_cost_bytes"] = size_of(path) - details["full_int8"]["size_bytes"]
    shutil.move(str(path), ctx.artifact_path(spec))
    if kept:
        weights = "their weights still int8" if state["stored"] else "float weights"
        notes.append(f"kept {len(kept)} of {len(candidates)} quantizable nodes out of activation quantization to "
                     f"pass the gate ({weights}, +{details['size_cost_bytes'] / 1e6:.2f} MB)")
        if state["stored"]:
            details["kept_execution"] = ("DequantizeLinear + MatMul: float activations; ONNX Runtime >= 1.2x fuses "
                                         "it into MatMulNBits (8-bit weights, block-wise int8 activations at its "
                                         "default accuracy level 4); parity was measured as this runtime runs it")
    return BuiltArtifact(spec.id, ctx.artifact_path(spec), parity=parity, notes=tuple(notes), details=details)


# ARM64: u8 activations, s8 symmetric weights, per-channel, no reduce_range (REFERENCE.md, Quantization).
register_target(
    "onnx-int8-arm64",
    format="onnx",
    precision="int8",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="INT8 ONNX tuned for ARM64 CPUs (u8 activations, s8 per-channel weights)",
    arches=("arm64",),
    oses=("linux", "android", "macos"),
    options={"preset": "arm64"},
)(_convert)

# x86: the VNNI-friendly variant (s8 weights; VNNI does u8 x s8 without saturation).
register_target(
    "onnx-int8-x86",
    format="onnx",
    precision="int8",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="INT8 ONNX for x86 CPUs with AVX512-VNNI / AVX-VNNI",
    arches=("x86_64",),
    options={"preset": "x86"},
)(_convert)

"""``onnx-fp32``: the reference artifact, graph-optimised where that does not change outputs.

BERT-family sources go through ONNX Runtime's transformer optimizer (fusions such as BiasGelu); the result must
pass the FP32 gate against the source graph, otherwise the unoptimised graph ships with a note. Other models get
ONNX Runtime's basic (portable, standard-ops-only) offline optimisation.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from converters.base import BuiltArtifact, ConvertContext
from converters.registry import TargetSpec, register_target
from converters.toolrun import one_line, tool_scope
from edgekit.errors import ConversionError, missing_extra
from edgekit.runtimes import RuntimeOptions, open_runner

log = logging.getLogger(__name__)


def _transformer_optimize(ctx: ConvertContext, src: Path, dst: Path) -> dict[str, object]:
    from onnxruntime.transformers.optimizer import optimize_model

    meta = ctx.source.metadata
    with tool_scope(ctx.work_dir / "optimizer"):
        opt = optimize_model(str(src), model_type="bert", num_heads=int(meta.get("num_heads", 0)),
                             hidden_size=int(meta.get("hidden_size", 0)), opt_level=0)
        fused = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(str(dst))
    return {"optimizer": "onnxruntime.transformers (model_type bert, opt_level 0)", "fused_ops": fused}


def _basic_optimize(src: Path, dst: Path) -> dict[str, object]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    so.log_severity_level = 3
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return {"optimizer": "onnxruntime basic offline optimisation (standard ONNX ops only)"}


@register_target(
    "onnx-fp32",
    format="onnx",
    precision="fp32",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="FP32 ONNX, graph-optimised; the reference every other artifact is checked against",
    oses=("linux", "macos", "windows", "android"),
)
def convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise missing_extra("onnxruntime", "convert") from err
    from converters.parity import describe
    src, dst = ctx.source.onnx_path, ctx.artifact_path(spec)
    if ctx.source.metadata.get("external_data"):
        shutil.copy2(src, dst)
        shutil.copy2(src.parent / f"{src.name}.data", ctx.out_dir / f"{src.name}.data")
        return BuiltArtifact(spec.id, dst, files=(ctx.out_dir / f"{src.name}.data",),
                             notes=("external-data model shipped as exported (no offline optimisation)",))
    candidate = ctx.work_dir / "optimized.onnx"
    notes: list[str] = []
    if ctx.source.metadata.get("family") == "bert" and ctx.check_parity is not None:
        try:
            details = _transformer_optimize(ctx, src, candidate)
            runner = open_runner(spec.runtime, candidate, RuntimeOptions(threads=ctx.threads))
            parity = ctx.check_parity(spec.id, runner.run)
            runner.close()
            if parity.passed:
                shutil.move(str(candidate), dst)
                return BuiltArtifact(spec.id, dst, parity=parity, details=details)
            notes.append(f"transformer optimizer changed outputs ({describe(parity)}); shipped the basic graph")
        except Exception as err:  # the optimizer is best-effort; the unoptimised graph is always valid
            notes.append(f"transformer optimizer skipped: {one_line(err, 160)}")
    try:
        details = _basic_optimize(src, dst)
    except Exception as err:
        raise ConversionError(f"ONNX Runtime cannot load the source graph: {one_line(err)}") from err
    return BuiltArtifact(spec.id, dst, notes=tuple(notes), details=details)

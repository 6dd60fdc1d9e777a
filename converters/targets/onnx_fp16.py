"""``onnx-fp16``: half-precision ONNX for GPU execution providers (Jetson CUDA/TensorRT).

Built from the source graph (standard ops, so TensorRT can take it) with float32 inputs/outputs kept, so the
interface matches every other artifact. Validated on the CPU where ONNX Runtime can run it; where it cannot
(no float16 kernel for some op), the artifact is ``converted-not-run`` with the reason.
"""

from __future__ import annotations

from converters.base import BuiltArtifact, ConvertContext
from converters.registry import TargetSpec, register_target
from converters.toolrun import one_line, tool_scope
from edgekit.errors import ConversionError, missing_extra
from edgekit.runtimes import RuntimeOptions, open_runner


@register_target(
    "onnx-fp16",
    format="onnx",
    precision="fp16",
    runtime="onnxruntime",
    extension=".onnx",
    extra="convert",
    description="FP16 ONNX for GPU execution providers (Jetson CUDA/TensorRT)",
)
def convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact:
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as err:
        raise missing_extra("onnxruntime", "convert") from err
    dst = ctx.artifact_path(spec)
    try:
        with tool_scope(ctx.work_dir / "fp16"):
            model = convert_float_to_float16(onnx.load(str(ctx.source.onnx_path)), keep_io_types=True)
            onnx.save_model(model, str(dst))
    except Exception as err:
        raise ConversionError(f"float16 conversion failed: {one_line(err)}") from err
    notes = ["built for GPU execution providers; CPU latency here is not indicative (ONNX Runtime's CPU "
             "provider runs many float16 ops through casts)"]
    try:
        runner = open_runner(spec.runtime, dst, RuntimeOptions(threads=ctx.threads))
        runner.run(ctx.samples[0])
        runner.close()
    except Exception as err:
        return BuiltArtifact(spec.id, dst, status="converted-not-run",
                             notes=(f"ONNX Runtime's CPU provider cannot run it here ({one_line(err, 160)}); "
                                    "validate on the device",))
    return BuiltArtifact(spec.id, dst, notes=tuple(notes))

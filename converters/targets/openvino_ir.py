"""``openvino-fp16`` and ``openvino-int8``: OpenVINO IR (xml + bin), INT8 through NNCF.

FP16 stores half-precision weights; it is validated and timed at f32 inference precision (the runtime pins
``INFERENCE_PRECISION_HINT``), because AMX/AVX512-BF16 CPUs otherwise run it in bf16 silently.
INT8 is NNCF weight compression (int8 per-channel weights, float activations) by default, or post-training
quantization of weights and activations when ``--calibration`` is given. Either way the gate decides: a miss
triggers the same sensitivity-driven recovery as the ONNX INT8 targets, expressed as NNCF's ignored scope.
"""

from __future__ import annotations

import logging
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


def _read(ctx: ConvertContext) -> Any:
    try:
        import openvino as ov
    except ImportError as err:
        raise missing_extra("openvino", "openvino") from err
    try:
        with tool_scope(ctx.work_dir / "ov"):
            return ov.convert_model(str(ctx.source.onnx_path))
    except Exception as err:  # OpenVINO raises its own exception types with multi-line C++ text
        raise ConversionError(f"OpenVINO cannot convert the model: {_first_reason(err)}") from err


def _first_reason(err: BaseException) -> str:
    """OpenVINO's frontend errors are long; keep the line that names the problem (e.g. the unsupported op)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in lines:
        if "not supported" in ln.lower() or "no conversion rule" in ln.lower() or "unsupported" in ln.lower():
            return one_line(ValueError(ln.lstrip("- ")), 240)
    return one_line(err, 240)


def _save(model: Any, xml: Path, fp16: bool) -> tuple[Path, Path]:
    import openvino as ov

    ov.save_model(model, str(xml), compress_to_fp16=fp16)
    return xml, xml.with_suffix(".bin")


def _convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact:
    model = _read(ctx)
    xml = ctx.artifact_path(spec)
    if spec.options["precision"] == "fp16":
        _save(model, xml, fp16=True)
        return BuiltArtifact(spec.id, xml, files=(xml.with_suffix(".bin"),),
                             notes=("FP16 weights; validated and timed at f32 inference precision",),
                             details={"inference_precision": "f32"})
    return _int8(ctx, spec, model, xml)


def _int8(ctx: ConvertContext, spec: TargetSpec, model: Any, xml: Path) -> BuiltArtifact:
    try:
        import nncf
    except ImportError as err:
        raise missing_extra("nncf", "openvino") from err
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from openvino._offline_transformations import compress_quantize_weights_transformation

    from converters.parity import describe
    from converters.quantize import recovery
    from converters.quantize.ov_sim import OvSimulator

    ptq = bool(ctx.calibration)
    text = ctx.source.metadata.get("family") == "bert"
    details: dict[str, Any] = {"mode": "post-training quantization (NNCF, weights + activations)" if ptq
                               else "weight compression (NNCF INT8_ASYM, per-channel weights, float activations)",
                               "inference_precision": "f32"}
    scratch = ctx.work_dir / "nncf"

    def build(kept: list[str]) -> Any:
        scope = nncf.IgnoredScope(names=list(kept), validate=False)
        try:
            with tool_scope(scratch):
                if not ptq:
                    return nncf.compress_weights(model.clone(), ignored_scope=scope)
                data = list(ctx.calibration or [])
                # Weights keep their FakeQuantize (uncompressed) so the simulator can switch them; _final()
                # folds them into int8 constants before saving.
                advanced = AdvancedQuantizationParameters(backend_params={"compress_weights": False})
                return nncf.quantize(model.clone(), nncf.Dataset(data), subset_size=min(300, len(data)),
                                     model_type=nncf.ModelType.TRANSFORMER if text else None, ignored_scope=scope,
                                     advanced_parameters=advanced)
        except Exception as err:
            raise ConversionError(f"NNCF {'quantization' if ptq else 'weight compression'} failed: "
                                  f"{one_line(err)}") from err

    def final(q: Any) -> Any:
        """Fold weight FakeQuantize into int8 constants. Ops kept in float keep FP16-stored weights: NNCF's
        SmoothQuant has already rescaled them, and int8-compressing rescaled weights costs the accuracy the
        recovery just bought."""
        if not ptq:
            return q
        out = q.clone()
        compress_quantize_weights_transformation(out)
        return out

    def check(q: Any) -> Parity:
        _save(final(q), scratch / "attempt.xml", fp16=True)
        runner = open_runner(spec.runtime, scratch / "attempt.xml", RuntimeOptions(threads=ctx.threads))
        try:
            assert ctx.check_parity is not None
            return ctx.check_parity(spec.id, runner.run)
        finally:
            runner.close()

    ctx.progress("quantizing every op" if ptq else "compressing weights")
    full = build([])
    parity = check(full)
    details["full_int8"] = {"parity": {"mean": parity.mean, "min": parity.min, "max": parity.max},
                            "size_bytes": size_of(scratch / "attempt.xml") + size_of(scratch / "attempt.bin")}
    kept: list[str] = []
    if not parity.passed and ctx.parity is not None:
        log.info("%s: full INT8 misses the gate (%s); searching for sensitive ops", spec.id, describe(parity))
        ctx.progress("building the sensitivity simulator")
        sim = OvSimulator(full.clone(), ctx.parity, spec.id, ctx.threads,
                          mode="activations" if ptq else "weights", original=model)
        plan = recovery.plan(sim, progress=ctx.progress)
        del sim
        outcome = recovery.realize(plan, build, check, progress=ctx.progress)
        full, parity, kept = outcome.handle, outcome.parity, outcome.kept
        details["sensitivity"] = {"measure": "gate score with only this op quantized, on the samples full INT8 "
                                             "hurts most (lower = more damaging)",
                                  "ranking": [{"node": n, "score": s} for n, s in plan.ranking[:12]],
                                  "simulated_evaluations": plan.evaluations}
        details["attempts"] = outcome.attempts
    _save(final(full), xml, fp16=True)
    size = size_of(xml) + size_of(xml.with_suffix(".bin"))
    details["kept_float"] = [{"node": n} for n in kept]
    details["size_cost_bytes"] = size - details["full_int8"]["size_bytes"]
    notes = [f"kept {len(kept)} op(s) out of INT8 to pass the gate (NNCF ignored scope)"] if kept else []
    if not ptq:
        notes.append("weights-only INT8; pass --calibration for full post-training quantization (faster)")
    return BuiltArtifact(spec.id, xml, files=(xml.with_suffix(".bin"),), parity=parity, notes=tuple(notes),
                         details=details)


for _precision in ("fp16", "int8"):
    register_target(
        f"openvino-{_precision}",
        format="openvino-ir",
        precision=_precision,
        runtime="openvino",
        extension=".xml",
        extra="openvino",
        description=f"OpenVINO IR, {_precision.upper()} weights",
        oses=("linux", "windows", "macos"),
        options={"precision": _precision},
    )(_convert)

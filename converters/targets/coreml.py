"""``coreml-fp16`` and ``coreml-int8``: Core ML ML Program packages (.mlpackage), fixed shapes.

Path: source -> torch module (export wrapper; ONNX-only sources through the ONNX-to-torch interpreter, which names
any op it cannot run) -> ``torch.export`` at one fixed shape -> coremltools ``convert`` (ML Program, FP16
compute precision, iOS 16) -> for int8, linear symmetric weight quantization (``coremltools.optimize``) ->
metadata (author, version, license, description, ``user_defined_metadata``: edgekit version, source sha256,
target) -> saved. Fixed shapes keep Core ML on the Neural Engine (flexible ones push it to GPU/CPU); text models use
sequence ``coreml_sequence`` (default 128) and the app pads with the attention mask.

Core ML predicts only on macOS: elsewhere the artifact is ``converted-not-run`` and validated structurally
(``converters.coreml_validate``); on macOS the orchestrator also runs it through the parity gate.
"""

from __future__ import annotations

import logging
import platform
from typing import Any

from converters.base import BuiltArtifact, ConvertContext
from converters.registry import TargetSpec, register_target
from edgekit.errors import ConversionError
from edgekit.manifest import Parity

log = logging.getLogger(__name__)

DEFAULT_SEQUENCE = 128
MIN_DEPLOYMENT = "iOS16"  # ML Program with FP16 I/O-capable ops and constexpr weight dequantization


def convert(ctx: ConvertContext, spec: TargetSpec) -> BuiltArtifact:
    from converters import fixed_shape
    from converters.coreml_validate import WEIGHT_MIN_ELEMENTS, ExpectedIO, validate_structure

    try:
        import coremltools as ct
        import torch
    except ImportError as err:
        from edgekit.errors import missing_extra

        raise missing_extra("coremltools", "coreml") from err
    precision = str(spec.options["precision"])
    source = ctx.source
    seq = int(ctx.options.get("coreml_sequence", DEFAULT_SEQUENCE))
    plan = fixed_shape.plan_shapes(source, ctx.options, single_sequence=seq)[0]
    module = fixed_shape.torch_module(source)
    in_names = [i.name for i in source.inputs]
    out_names = [o.name for o in source.outputs]
    feeds = fixed_shape.example_feeds(source, plan)
    # Core ML has no int64 tensors: integer inputs are int32 (the app feeds Int32 MLMultiArrays).
    core_dtypes = {i.name: "int32" if i.dtype in fixed_shape.INT_DTYPES else "float32" for i in source.inputs}
    example = tuple(torch.from_numpy(feeds[n].astype(core_dtypes[n])) for n in in_names)

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.named = module

        def forward(self, *args: Any) -> tuple[Any, ...]:
            out = self.named(**{n: a.long() if a.dtype == torch.int32 else a for n, a in zip(in_names, args,
                                                                                            strict=True)})
            return tuple(out[n] for n in out_names)

    ctx.progress(f"{spec.id}: exporting at {dict(plan.shapes)} and converting with coremltools {ct.__version__}")
    import numpy as np

    kwargs: dict[str, Any] = dict(
        inputs=[ct.TensorType(name=n, shape=plan.shapes[n], dtype=np.dtype(core_dtypes[n]).type) for n in in_names],
        outputs=[ct.TensorType(name=n, dtype=np.float32) for n in out_names],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16,
        minimum_deployment_target=getattr(ct.target, MIN_DEPLOYMENT),
    )
    wrapper = Positional().eval()
    with torch.no_grad():
        try:
            # torch.export gives static shapes (no aten::Int shape arithmetic, which coremltools 9 mishandles under
            # numpy 2); TorchScript tracing is the fallback for modules export cannot take.
            try:
                program: Any = torch.export.export(wrapper, example, strict=False).run_decompositions({})
            except Exception as err:  # noqa: BLE001 - fall back, and say so in the details
                log.info("torch.export failed (%s); tracing with TorchScript instead", err)
                program = torch.jit.trace(wrapper, example, strict=False)
            mlmodel = ct.convert(program, **kwargs)
        except ConversionError:
            raise
        except Exception as err:  # coremltools raises plain errors naming the op ("op 'x' not implemented")
            raise ConversionError(f"coremltools could not convert {source.name}: {type(err).__name__}: "
                                  f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}") from err
    if precision == "int8":
        from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

        config = OptimizationConfig(global_config=OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=WEIGHT_MIN_ELEMENTS))
        mlmodel = linear_quantize_weights(mlmodel, config)
    _set_metadata(mlmodel, ctx, spec, plan)
    path = ctx.out_dir / f"{source.name}-{spec.id}.mlpackage"
    mlmodel.save(str(path))

    expected_in = [ExpectedIO(n, core_dtypes[n], plan.shapes[n]) for n in in_names]
    seq_out = fixed_shape.output_sequence_axes(source)
    expected_out = [ExpectedIO(o.name, "float32", _fixed_output(o.shape, plan, seq_out.get(o.name)))
                    for o in source.outputs]
    source_weights = {k: v.detach().float().numpy() for k, v in module.state_dict().items()
                      if v.dtype.is_floating_point and v.numel() >= WEIGHT_MIN_ELEMENTS}
    report = validate_structure(path, inputs=expected_in, outputs=expected_out, precision=precision,
                                source_weights=source_weights)
    details = {
        "shapes": {n: list(plan.shapes[n]) for n in in_names},
        "sequence": plan.sequence, "input_dtypes": core_dtypes,
        "compute_precision": "fp16",
        "weights": "int8 linear symmetric per-channel" if precision == "int8" else "fp16",
        "minimum_deployment_target": MIN_DEPLOYMENT,
        "structural_validation": report.as_details(),
        "converter": {"coremltools": ct.__version__, "torch": torch.__version__.split("+")[0]},
        "min_runtime": {"ios": "16", "macos": "13"},
    }
    artifact = BuiltArtifact(target=spec.id, path=path, details=details)
    if platform.system() == "Darwin" and ctx.check_parity is not None:
        return artifact  # the orchestrator runs it through the numeric gate with the Core ML runtime
    artifact.status = "converted-not-run"
    artifact.parity = Parity(metric="structural (weights max relative error; Core ML predicts only on macOS)",
                             max=report.weight_max_rel_error, samples=0, passed=True,
                             threshold={"max": _tol(precision)})
    artifact.notes = ("converted-not-run: Core ML predicts only on macOS; validated structurally (I/O names, dtypes, "
                      "shapes, weight precision, reloaded weights, metadata)",)
    return artifact


def _tol(precision: str) -> float:
    from converters.coreml_validate import WEIGHT_TOLERANCE

    return WEIGHT_TOLERANCE[precision]


def _fixed_output(shape: tuple[int | str, ...], plan: Any, seq_axis: int | None) -> tuple[int, ...] | None:
    """The source output shape with batch/sequence resolved to the plan; None when another dim is dynamic."""
    dims = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, int) and dim > 0:
            dims.append(dim)
        elif axis == 0:
            dims.append(plan.batch)
        elif plan.sequence is not None and axis == seq_axis:
            dims.append(plan.sequence)
        else:
            return None
    return tuple(dims)


def _set_metadata(mlmodel: Any, ctx: ConvertContext, spec: TargetSpec, plan: Any) -> None:
    from edgekit import __version__

    source = ctx.source
    mlmodel.author = str(ctx.options.get("author", "edgekit"))
    mlmodel.license = str(ctx.options.get("license", "see the source model's license"))
    mlmodel.short_description = (f"{source.name} ({source.task}), {spec.id}, fixed shapes "
                                 + ", ".join(f"{k}{list(v)}" for k, v in plan.shapes.items()))
    mlmodel.version = str(ctx.options.get("model_version", source.sha256[:12]))
    meta = mlmodel.user_defined_metadata
    meta["edgekit_version"] = __version__
    meta["source_sha256"] = source.sha256
    meta["source"] = source.source
    meta["target"] = spec.id
    if plan.sequence is not None:
        meta["sequence_length"] = str(plan.sequence)
    meta["outputs"] = ",".join(o.name for o in source.outputs)


for _precision in ("fp16", "int8"):
    register_target(
        f"coreml-{_precision}",
        format="coreml",
        precision=_precision,
        runtime="coreml",
        extension=".mlpackage",
        extra="coreml",
        description=f"Core ML ML Program, {_precision.upper()} weights (converted-not-run off macOS)",
        oses=("ios", "macos"),
        options={"precision": _precision},
    )(convert)

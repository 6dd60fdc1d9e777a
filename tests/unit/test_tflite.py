"""TFLite targets: every precision on the tiny MLP, CNN and 2-layer encoder (ONNX-only and torch sources), bucketed
fixed shapes, full-integer INT8 through the gate, and the builtin-ops-only check on the flatbuffer itself.

Conversions run in the real isolated litert-torch toolchain (installed once per machine by the fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converters.registry import get_target
from converters.tflite_ops import CUSTOM, check_builtin_only, read_operator_codes
from edgekit.errors import ConversionError
from tests.unit import mobile_fixtures as mf
from tests.unit.mobile_fixtures import litert_toolchain  # noqa: F401 - fixture

needs_toolchain = pytest.mark.integration  # real isolated toolchain + LiteRT


@needs_toolchain
@pytest.mark.parametrize("model", mf.MODELS)
@pytest.mark.parametrize("target", ["tflite-fp32", "tflite-fp16", "tflite-int8"])
def test_conformance(model: str, target: str, tmp_path: Path, litert_toolchain) -> None:  # noqa: F811
    ctx = mf.context(mf.source(model, tmp_path), tmp_path)
    spec = get_target(target)
    art = spec.convert(ctx, spec)
    files = [art.path, *art.files]
    assert all(p.is_file() and p.parent == ctx.out_dir and p.suffix == ".tflite" for p in files)
    for p in files:
        assert check_builtin_only(p)  # builtin ops only, read from the flatbuffer
    assert art.details["builtin_ops_only"] is True
    assert art.details["min_runtime"]["ai-edge-litert"].startswith(">=")
    if model == "encoder":
        assert [b["sequence"] for b in art.details["buckets"]] == [16, 32]
        assert art.details["sequence_inputs"] == {"input_ids": 1, "attention_mask": 1}
        assert art.details["input_dtypes"]["input_ids"] == "int32"
    else:
        assert art.details["buckets"] == [] and len(files) == 1
    parity = ctx.check_parity(target, art.predict)
    assert parity.passed, parity
    if target == "tflite-int8":
        assert art.details["quantization"]["mode"] == "dynamic"
        assert parity.min >= 0.99
    else:
        assert parity.min >= 0.999


@needs_toolchain
def test_torch_source_buckets_match_unpadded_reference(tmp_path: Path, litert_toolchain) -> None:  # noqa: F811
    """The torch-factory path; padding to a bucket gives the result of the unpadded input (masked tokens drop out)."""
    ctx = mf.context(mf.source("encoder", tmp_path, torch_based=True), tmp_path)
    spec = get_target("tflite-fp32")
    art = spec.convert(ctx, spec)
    for feeds, ref in zip(ctx.samples, ctx.reference, strict=True):
        got = art.predict(feeds)["sentence_embedding"]
        np.testing.assert_allclose(got, ref["sentence_embedding"], atol=2e-5)


@needs_toolchain
def test_full_integer_int8_passes_for_cnn_and_records_quantization(tmp_path: Path, litert_toolchain) -> None:  # noqa: F811
    ctx = mf.context(mf.source("cnn", tmp_path), tmp_path, calibration=True)
    spec = get_target("tflite-int8")
    art = spec.convert(ctx, spec)
    q = art.details["quantization"]
    assert q["mode"] == "full-integer" and q["activations"].startswith("int8")
    assert q["io"]["images"]["dtype"] == "int8" and q["io"]["images"]["scale"] > 0
    assert art.parity is not None and art.parity.passed and art.parity.min >= 0.99


@needs_toolchain
def test_full_integer_int8_collapse_on_encoder_fails_and_says_what_to_use(tmp_path: Path, litert_toolchain) -> None:  # noqa: F811
    ctx = mf.context(mf.source("encoder", tmp_path), tmp_path, calibration=True,
                     options={"sequence_buckets": [16]})
    ctx.samples = [{k: v[:, :16] for k, v in s.items()} for s in ctx.samples]
    import onnxruntime as ort

    sess = ort.InferenceSession(str(ctx.source.onnx_path))
    ctx.reference = [{"sentence_embedding": sess.run(None, s)[0]} for s in ctx.samples]
    ctx.check_parity = mf.cosine_parity(ctx.samples, ctx.reference)
    spec = get_target("tflite-int8")
    with pytest.raises(ConversionError, match="full-integer INT8 .* misses the parity gate.*dynamic-range INT8"):
        spec.convert(ctx, spec)


@needs_toolchain
def test_missing_toolchain_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_TOOLCHAINS_DIR", str(tmp_path / "none"))
    ctx = mf.context(mf.source("mlp", tmp_path), tmp_path)
    spec = get_target("tflite-fp32")
    with pytest.raises(Exception, match="edgekit toolchain install litert-torch"):
        spec.convert(ctx, spec)


@pytest.mark.unit
def test_flex_op_is_detected_and_failed(tmp_path: Path) -> None:
    """A real LiteRT flatbuffer whose first operator is rewritten to the custom op ``FlexErf`` (what TF's converter
    emits for Erf with SELECT_TF_OPS): the check names it, and stock LiteRT refuses to run it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    plain = _tiny_tflite(tmp_path)
    model = schema.ModelT.InitFromPackedBuf(plain.read_bytes(), 0)
    model.operatorCodes[0].builtinCode = CUSTOM
    model.operatorCodes[0].deprecatedBuiltinCode = CUSTOM
    model.operatorCodes[0].customCode = "FlexErf"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    flex = tmp_path / "flex.tflite"
    flex.write_bytes(bytes(builder.Output()))
    assert [c.name for c in read_operator_codes(flex)][0] == "FlexErf"
    assert read_operator_codes(flex)[0].is_flex
    with pytest.raises(ConversionError, match="non-builtin op.*FlexErf.*Flex delegate"):
        check_builtin_only(flex)
    from ai_edge_litert.interpreter import Interpreter

    with pytest.raises((RuntimeError, ValueError)):
        Interpreter(model_path=str(flex)).allocate_tensors()


@pytest.mark.unit
def test_not_a_flatbuffer_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ConversionError, match="not a TFLite flatbuffer"):
        read_operator_codes(bad)


def _tiny_tflite(tmp_path: Path) -> Path:
    """A committed-in-code TFLite file is not possible without a converter; ai_edge_litert ships none, so build one
    with the flatbuffer schema: one FULLY_CONNECTED op, float32 [1,4] x [2,4] -> [1,2]."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT()
    m.version = 3
    op_code = s.OperatorCodeT()
    op_code.builtinCode = s.BuiltinOperator.FULLY_CONNECTED
    op_code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    op_code.version = 1
    m.operatorCodes = [op_code]
    empty, weights = s.BufferT(), s.BufferT()
    weights.data = np.arange(8, dtype=np.float32).tobytes()
    m.buffers = [empty, empty, weights, s.BufferT()]

    def tensor(name: str, shape: list[int], buffer: int) -> object:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, s.TensorType.FLOAT32, buffer
        return t

    g = s.SubGraphT()
    g.tensors = [tensor("x", [1, 4], 1), tensor("w", [2, 4], 2), tensor("y", [1, 2], 3)]
    g.inputs, g.outputs = [0], [2]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, -1], [2]
    op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = s.FullyConnectedOptionsT()
    g.operators = [op]
    m.subgraphs = [g]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "fc.tflite"
    path.write_bytes(bytes(builder.Output()))
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()  # the plain file is valid and runs
    it.set_tensor(it.get_input_details()[0]["index"], np.ones((1, 4), np.float32))
    it.invoke()
    assert it.get_tensor(it.get_output_details()[0]["index"]).tolist() == [[6.0, 22.0]]
    return path

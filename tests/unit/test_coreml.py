"""Core ML targets on the tiny MLP, CNN and 2-layer encoder (ONNX-only and torch sources), and the structural
validation that stands in for prediction off macOS: it must catch a wrong output name and a wrong precision."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import pytest

from converters.coreml_validate import ExpectedIO, validate_structure
from converters.registry import get_target
from edgekit.errors import ConversionError, ValidationMismatch
from tests.unit import mobile_fixtures as mf

pytestmark = pytest.mark.integration  # real coremltools conversions


def _convert(model: str, target: str, tmp_path: Path, *, torch_based: bool = False):  # type: ignore[no-untyped-def]
    ctx = mf.context(mf.source(model, tmp_path, torch_based=torch_based), tmp_path, profile="iphone")
    spec = get_target(target)
    return ctx, spec.convert(ctx, spec)


@pytest.mark.parametrize("model", mf.MODELS)
@pytest.mark.parametrize("target", ["coreml-fp16", "coreml-int8"])
def test_conformance(model: str, target: str, tmp_path: Path) -> None:
    ctx, art = _convert(model, target, tmp_path)
    assert art.path.is_dir() and art.path.suffix == ".mlpackage" and art.path.parent == ctx.out_dir
    v = art.details["structural_validation"]
    precision = target.split("-")[1]
    assert set(v["weight_precision"]) == {precision}
    assert v["weights_compared"] >= 1
    assert v["weight_max_rel_error"] <= {"fp16": 1e-3, "int8": 6e-3}[precision]
    if platform.system() != "Darwin":
        assert art.status == "converted-not-run"
        assert art.parity is not None and art.parity.metric.startswith("structural") and art.parity.passed
    import coremltools as ct

    spec = ct.models.MLModel(str(art.path), skip_model_load=True).get_spec()
    meta = dict(spec.description.metadata.userDefined)
    assert meta["source_sha256"] == ctx.source.sha256 and meta["target"] == target and meta["edgekit_version"]
    assert spec.description.metadata.author and spec.description.metadata.versionString
    names = [i.name for i in spec.description.input]
    assert names == [i.name for i in ctx.source.inputs]
    if model == "encoder":
        assert art.details["shapes"]["input_ids"] == [1, 32] and art.details["input_dtypes"]["input_ids"] == "int32"


def test_torch_source_converts(tmp_path: Path) -> None:
    _, art = _convert("encoder", "coreml-fp16", tmp_path, torch_based=True)
    assert art.details["structural_validation"]["weights_compared"] >= 8


@pytest.fixture(scope="module")
def mlp_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mlp")
    _, art = _convert("mlp", "coreml-fp16", tmp)
    return art.path  # type: ignore[no-any-return]


IN = [ExpectedIO("x", "float32", (1, 16))]
OUT = [ExpectedIO("logits", "float32", (1, 4))]


def test_structural_validation_passes_the_real_package(mlp_package: Path) -> None:
    report = validate_structure(mlp_package, inputs=IN, outputs=OUT, precision="fp16")
    assert any("outputs match" in c for c in report.checks)


def test_structural_validation_catches_wrong_output_name(mlp_package: Path, tmp_path: Path) -> None:
    import coremltools as ct

    renamed = tmp_path / "renamed.mlpackage"
    model = ct.models.MLModel(str(mlp_package), skip_model_load=True)
    spec = model.get_spec()
    ct.utils.rename_feature(spec, "logits", "scores")
    ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True).save(str(renamed))
    with pytest.raises(ValidationMismatch, match=r"output names are \['scores'\], expected \['logits'\]"):
        validate_structure(renamed, inputs=IN, outputs=OUT, precision="fp16")


def test_structural_validation_catches_wrong_precision(mlp_package: Path) -> None:
    with pytest.raises(ValidationMismatch, match="weights are not all int8"):
        validate_structure(mlp_package, inputs=IN, outputs=OUT, precision="int8")


def test_structural_validation_catches_wrong_shape_and_missing_metadata(mlp_package: Path, tmp_path: Path) -> None:
    import coremltools as ct

    stripped = tmp_path / "stripped.mlpackage"
    model = ct.models.MLModel(str(mlp_package), skip_model_load=True)
    spec = model.get_spec()
    del spec.description.metadata.userDefined["source_sha256"]
    ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True).save(str(stripped))
    with pytest.raises(ValidationMismatch) as err:
        validate_structure(stripped, inputs=[ExpectedIO("x", "float32", (1, 8))], outputs=OUT, precision="fp16")
    assert "shape [1, 16], expected [1, 8]" in str(err.value) and "source_sha256" in str(err.value)


def test_structural_validation_catches_changed_weights(mlp_package: Path, tmp_path: Path) -> None:
    import numpy as np

    wrong = {"l1.weight": np.full((32, 16), 0.5, np.float32), "l2.weight": np.ones((4, 32), np.float32)}
    with pytest.raises(ValidationMismatch, match="no counterpart|differ from the source"):
        validate_structure(mlp_package, inputs=IN, outputs=OUT, precision="fp16", source_weights=wrong)


def test_unsupported_onnx_op_fails_naming_it(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det0")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    from converters.base import SourceModel
    from edgekit.manifest import TensorSpec

    src = SourceModel(name="det", source=str(path), onnx_path=path, sha256="0" * 64, task="tensor",
                      inputs=(TensorSpec("x", "float32", (1, 3, 3)),), outputs=(TensorSpec("y", "float32", (1,)),))
    ctx = mf.context.__wrapped__(src, tmp_path) if hasattr(mf.context, "__wrapped__") else None
    from converters.base import ConvertContext
    from edgekit.profiles import load_profile

    (tmp_path / "o").mkdir()
    ctx = ConvertContext(source=src, out_dir=tmp_path / "o", work_dir=tmp_path, profile=load_profile("iphone"),
                         samples=[], reference=[])
    spec = get_target("coreml-fp16")
    with pytest.raises(ConversionError, match=r"Det \(node 'det0'\)"):
        spec.convert(ctx, spec)
    shutil.rmtree(tmp_path / "o")

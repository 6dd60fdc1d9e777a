"""Sources: .onnx files (with and without external data), broken files, --input-shape, samples, builtin names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import tinymodels

pytestmark = pytest.mark.unit


def test_onnx_source_reads_the_spec(tmp_path: Path) -> None:
    from converters.sources import load_source

    src = load_source(str(tinymodels.mlp_onnx(tmp_path / "mlp.onnx")), tmp_path / "work")
    assert [(i.name, i.dtype, i.shape) for i in src.inputs] == [("features", "float32", ("batch", 16))]
    assert [(o.name, o.shape) for o in src.outputs] == [("scores", ("batch", 8))]
    assert src.task == "tensor" and len(src.sha256) == 64 and src.onnx_path.is_file()
    cnn = load_source(str(tinymodels.cnn_onnx(tmp_path / "cnn.onnx")), tmp_path / "work2")
    assert cnn.task == "image-classification"


def test_external_data_is_loaded_and_required(tmp_path: Path) -> None:
    import onnx

    from converters.sources import load_source
    from edgekit.errors import SourceError

    path = tinymodels.mlp_onnx(tmp_path / "ext.onnx", external_data=True)
    assert (tmp_path / "ext.onnx.data").is_file()
    src = load_source(str(path), tmp_path / "work")
    model = onnx.load(str(src.onnx_path))  # the work copy is self-contained
    assert all(i.data_location == 0 for i in model.graph.initializer)
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(SourceError, match="external data 'ext.onnx.data'"):
        load_source(str(path), tmp_path / "work3")


@pytest.mark.parametrize("content", [b"", b"this is not a model\n", None])
def test_broken_files_are_one_line_source_errors(tmp_path: Path, content: bytes | None) -> None:
    from converters.sources import load_source
    from edgekit.errors import SourceError

    path = tmp_path / "bad.onnx"
    if content is None:  # truncated: the first half of a real model
        good = tinymodels.mlp_onnx(tmp_path / "good.onnx").read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(SourceError) as info:
        load_source(str(path), tmp_path / "work")
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_input_shapes_are_parsed_and_checked(tmp_path: Path) -> None:
    from converters.sources import load_source
    from converters.sources.spec import parse_input_shapes
    from edgekit.errors import UsageError

    assert parse_input_shapes(["images:1,3,64,64", "x:2x4"]) == {"images": (1, 3, 64, 64), "x": (2, 4)}
    for bad in (["images"], ["images:1,a"], ["images:0,3"], ["a:1", "a:2"]):
        with pytest.raises(UsageError):
            parse_input_shapes(bad)
    path = str(tinymodels.mlp_onnx(tmp_path / "mlp.onnx"))
    with pytest.raises(UsageError, match="inputs are features"):
        load_source(path, tmp_path / "w1", {"nope": (1, 16)})
    with pytest.raises(UsageError, match="fixed to 16"):
        load_source(path, tmp_path / "w2", {"features": (1, 15)})
    src = load_source(path, tmp_path / "w3", {"features": (4, 16)})
    assert src.fixed_shapes == {"features": (4, 16)}


def test_generated_samples_and_npz_calibration(tmp_path: Path) -> None:
    from converters.samples import build_samples, load_samples, save_samples
    from converters.sources import load_source
    from edgekit.errors import UsageError

    src = load_source(str(tinymodels.cnn_onnx(tmp_path / "cnn.onnx")), tmp_path / "w")
    samples = build_samples(src)
    assert len(samples.parity) >= 33 and samples.parity[-1]["images"].shape == (4, 3, 32, 32)
    again = build_samples(src)  # seeded: the same every time
    assert np.array_equal(samples.parity[5]["images"], again.parity[5]["images"])
    calib = tmp_path / "calib.npz"
    np.savez(calib, images=np.zeros((6, 3, 32, 32), np.float32))
    with_calib = build_samples(src, calib)
    assert len(with_calib.calibration or []) == 6 and with_calib.calibration[0]["images"].shape == (1, 3, 32, 32)
    np.savez(tmp_path / "wrong.npz", pixels=np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(UsageError, match="lacks arrays for inputs"):
        build_samples(src, tmp_path / "wrong.npz")
    save_samples(tmp_path / "s.npz", samples.parity[:3], [{"logits": np.ones((1, 10))}] * 3)
    feeds, refs = load_samples(tmp_path / "s.npz")
    assert len(feeds) == 3 and np.array_equal(feeds[2]["images"], samples.parity[2]["images"])


def test_unknown_builtin_names_the_known_ones(tmp_path: Path) -> None:
    from converters.sources import load_source
    from edgekit.errors import SourceError

    with pytest.raises(SourceError, match="did you mean 'all-minilm-l6-v2'"):
        load_source("builtin:all-minilm-l6", tmp_path)


def test_builtin_sentences_are_many_and_varied() -> None:
    from converters.sentences import builtin_sentences

    sentences = builtin_sentences()
    lengths = sorted(len(s.split()) for s in sentences)
    assert len(sentences) >= 50 and len(set(sentences)) == len(sentences)
    assert lengths[0] <= 2 and lengths[-1] >= 150

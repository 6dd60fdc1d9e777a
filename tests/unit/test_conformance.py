"""The conformance template every target passes, on tiny models built in code (tests/tinymodels.py).

Structure: the artifact keeps the source's input/output names and dtypes, and its dynamic dims stay dynamic
(unless the target is fixed-shape by design). Numbers: the parity gate passed at conversion, ``edgekit verify``'s
re-run passes, and the artifact agrees with the FP32 reference on fresh inputs of another batch size.

Adding a target is one line in ``CASES``. Each model is converted once per session for every case that covers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import tinymodels

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    target: str
    dynamic: bool = True  # keeps dynamic batch/sequence dims (False: fixed-shape by design, e.g. TFLite buckets)
    models: tuple[str, ...] = ("mlp", "cnn", "bert", "outlier")
    may_not_run: bool = False  # converted-not-run is acceptable here (e.g. Core ML on Linux)


CASES = [
    Case("onnx-fp32"),
    Case("onnx-fp16"),
    Case("onnx-int8-arm64"),
    Case("onnx-int8-x86"),
    Case("openvino-fp16"),
    Case("openvino-int8"),
]

# model -> (builder writing the source under a directory and returning the SOURCE argument, profile)
MODELS: dict[str, Callable[[Path], Path]] = {
    "mlp": lambda d: tinymodels.mlp_onnx(d / "mlp.onnx"),
    "cnn": lambda d: tinymodels.cnn_onnx(d / "cnn.onnx"),
    "bert": lambda d: tinymodels.bert_dir(d / "tiny-bert"),
    "outlier": lambda d: tinymodels.outlier_mlp_onnx(d / "outlier.onnx"),
}
PROFILE = "generic-x86_64"


@dataclass
class Converted:
    source: Any  # converters.base.SourceModel
    result: Any  # converters.pipeline.ConvertResult

    def row(self, target: str) -> Any:
        return next(r for r in self.result.report.rows if r.target == target)

    def artifact(self, target: str) -> Any:
        return self.result.manifest.artifact(target)


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Converted]:
    """model name -> that model converted for every case covering it (once per session)."""
    from converters.pipeline import ConvertRequest, run_convert
    from converters.sources import load_source

    cache: dict[str, Converted] = {}

    def get(model: str) -> Converted:
        if model not in cache:
            base = tmp_path_factory.mktemp(f"conformance-{model}")
            src = MODELS[model](base)
            targets = [c.target for c in CASES if model in c.models]
            result = run_convert(ConvertRequest(str(src), PROFILE, targets=targets, out_dir=base / "out",
                                                latency_runs=10))
            cache[model] = Converted(load_source(str(src), base / "probe"), result)
        return cache[model]

    return get


PARAMS = [pytest.param(case, model, id=f"{case.target}-{model}") for case in CASES for model in case.models]


def open_artifact(conv: Converted, target: str) -> Any:
    from converters.recheck import open_artifact as open_from_manifest
    from edgekit.runtimes import RuntimeOptions

    return open_from_manifest(conv.result.out_dir, conv.artifact(target), RuntimeOptions(threads=2))


@pytest.mark.parametrize(("case", "model"), PARAMS)
def test_builds_and_passes_the_gate(case: Case, model: str, converted: Callable[[str], Converted]) -> None:
    conv = converted(model)
    row = conv.row(case.target)
    allowed = {"ok", "converted-not-run"} if case.may_not_run else {"ok"}
    assert row.status in allowed, row.error
    if row.status == "ok":
        assert row.parity is not None and row.parity.passed, row.parity
        assert row.latency_ms is not None and row.latency_ms.p50 > 0 and row.latency_ms.precision
        assert (conv.result.out_dir / conv.artifact(case.target).path).exists()


@pytest.mark.parametrize(("case", "model"), PARAMS)
def test_keeps_io_names_dtypes_and_dynamic_dims(case: Case, model: str,
                                                converted: Callable[[str], Converted]) -> None:
    conv = converted(model)
    if conv.row(case.target).status != "ok":
        pytest.skip("not runnable here")
    runner = open_artifact(conv, case.target)
    try:
        for ours, theirs in ((runner.inputs, conv.source.inputs), (runner.outputs, conv.source.outputs)):
            assert [s.name for s in ours] == [s.name for s in theirs]
            assert [s.dtype for s in ours] == [s.dtype for s in theirs]
            if not case.dynamic:
                continue
            for got, want in zip(ours, theirs, strict=True):
                for i, dim in enumerate(want.shape):
                    if isinstance(dim, str):
                        assert not isinstance(got.shape[i], int) or got.shape[i] < 0, (got, want)
                    else:
                        assert got.shape[i] == dim, (got, want)
    finally:
        runner.close()


def fresh_feeds(conv: Converted, batch: int) -> dict[str, np.ndarray]:
    """Inputs unlike the parity samples: another batch size (and for text, another sequence length)."""
    from converters.samples import TextEncoder, random_feeds

    if conv.source.task == "text-embedding":
        return TextEncoder(conv.source).encode(["a brand new sentence", "and another, a little longer one",
                                                "short"][:batch])
    return random_feeds(conv.source.inputs, conv.source.fixed_shapes, np.random.default_rng(123), batch=batch)


@pytest.mark.parametrize(("case", "model"), PARAMS)
def test_matches_the_reference_on_fresh_inputs(case: Case, model: str, converted: Callable[[str], Converted]) -> None:
    from converters.parity import DEFAULT_THRESHOLDS, row_values
    from edgekit.runtimes import RuntimeOptions, open_runner

    conv = converted(model)
    row = conv.row(case.target)
    if row.status != "ok":
        pytest.skip("not runnable here")
    feeds = fresh_feeds(conv, batch=3 if case.dynamic else 1)
    ref_runner = open_runner("onnxruntime", conv.source.onnx_path, RuntimeOptions(threads=2))
    reference = ref_runner.run(feeds)
    runner = open_artifact(conv, case.target)
    try:
        got = runner.run(feeds)
    finally:
        runner.close()
        ref_runner.close()
    metric = row.parity.metric
    values = row_values(metric, got, reference)
    assert len(values) == next(iter(feeds.values())).shape[0]
    threshold = DEFAULT_THRESHOLDS[metric][conv.artifact(case.target).precision]
    if metric == "rel-error":
        assert values.max() <= threshold["max"], values
    elif metric == "cosine":
        assert values.min() >= threshold["min"], values
    else:
        assert values.mean() >= threshold["mean"] - 1 / len(values), values


@pytest.mark.parametrize("model", list(MODELS))
def test_outputs_are_schema_valid_and_verify_passes(model: str, converted: Callable[[str], Converted]) -> None:
    from converters.recheck import recheck_parity
    from edgekit.bundle.verify import check_checksums
    from edgekit.manifest import read_manifest, read_report

    conv = converted(model)
    out = conv.result.out_dir
    manifest, report = read_manifest(out), read_report(out)  # both validate against the shipped JSON Schemas
    assert [r.target for r in report.rows] == [c.target for c in CASES if model in c.models]
    assert {i.name for i in manifest.model.inputs} == {i.name for i in conv.source.inputs}
    assert check_checksums(out).ok
    assert (out / "report.md").read_text().count("\n| ") == len(report.rows) + 1
    checks = recheck_parity(out, threads=2)
    assert [c.status for c in checks if c.status == "failed"] == [], checks
    assert not list(out.parent.glob(".out.partial-*")), "staging directories left behind"
    if model == "bert":
        assert (out / "tokenizer" / "tokenizer.json").is_file()
        assert manifest.extra["text"]["max_length"] == 64


def test_recovery_keeps_exactly_the_damaging_node(converted: Callable[[str], Converted]) -> None:
    """The outlier MLP: per-tensor activation quantization ruins fc2 only; every INT8 target must find it."""
    conv = converted("outlier")
    for case in CASES:
        if conv.artifact(case.target).precision != "int8":
            continue
        details = conv.row(case.target).details
        assert [k["node"] for k in details["kept_float"]] == ["fc2"], (case.target, details)
        assert details["full_int8"]["parity"]["max"] > 0.1  # full INT8 really missed the gate
        assert details["sensitivity"]["ranking"][0]["node"] == "fc2"

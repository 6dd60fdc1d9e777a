"""`edgekit bench`: every artifact of a real convert output timed with its runtime, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_edgekit
from tests.tinymodels import bert_dir, mlp_onnx

pytestmark = pytest.mark.integration


def test_bench_times_every_artifact(tmp_path: Path) -> None:
    src = mlp_onnx(tmp_path / "mlp.onnx")
    out = tmp_path / "out"
    proc = run_edgekit("convert", str(src), "--profile", "generic-x86_64",
                       "--targets", "onnx-fp32,onnx-int8-x86,openvino-fp16", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    proc = run_edgekit("bench", str(out), "--json", "--runs", "10", "--batch", "1,4")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {(r["target"], r["batch"]) for r in rows} == {
        (t, b) for t in ("onnx-fp32", "onnx-int8-x86", "openvino-fp16") for b in (1, 4)}
    for r in rows:
        assert r["skipped"] is None and 0 < r["p50_ms"] <= r["p95_ms"], r
    by_target = {r["target"]: r for r in rows if r["batch"] == 1}
    assert by_target["onnx-int8-x86"]["precision"].startswith("int8")
    assert by_target["openvino-fp16"]["precision"] == "f32"  # OpenVINO pinned to f32 inference precision
    table = run_edgekit("bench", str(out), "--runs", "5", "--targets", "onnx-fp32")
    assert table.returncode == 0 and "onnx-fp32" in table.stdout and "openvino" not in table.stdout


def test_bench_text_model_at_each_sequence_length(tmp_path: Path) -> None:
    src = bert_dir(tmp_path / "bert")
    out = tmp_path / "out"
    proc = run_edgekit("convert", str(src), "--profile", "generic-x86_64", "--targets", "onnx-fp32", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(run_edgekit("bench", str(out), "--json", "--runs", "5", "--seq", "8,32").stdout)
    assert [(r["target"], r["seq"]) for r in rows] == [("onnx-fp32", 8), ("onnx-fp32", 32)]


def test_bench_bad_input_is_one_line(tmp_path: Path) -> None:
    proc = run_edgekit("bench", str(tmp_path / "missing"))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    bad = run_edgekit("bench", str(tmp_path), "--batch", "0")
    assert bad.returncode == 2 and "positive integers" in bad.stderr

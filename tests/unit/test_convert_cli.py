"""``edgekit convert`` / ``edgekit verify`` through the real entry point: bad input gives one clear line and no
output that looks valid; a failed target is a failed row and a non-zero exit; verify re-runs parity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.checksums import sha256_path, size_of
from tests import tinymodels
from tests.conftest import run_edgekit

pytestmark = pytest.mark.unit


def error_lines(stderr: str, command: str = "convert") -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(f"edgekit {command}: error:")]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} was created"
    assert not list(out.parent.glob(f".{out.name}.partial-*")), "staging directory left behind"


@pytest.mark.parametrize("kind", ["truncated", "not-onnx", "empty"])
def test_broken_source_is_one_line_and_writes_nothing(tmp_path: Path, kind: str) -> None:
    good = tinymodels.mlp_onnx(tmp_path / "good.onnx").read_bytes()
    bad = tmp_path / "model.onnx"
    bad.write_bytes({"truncated": good[: len(good) // 3], "not-onnx": b"PK\x03\x04 a zip, not a model",
                     "empty": b""}[kind])
    out = tmp_path / "out"
    proc = run_edgekit("convert", str(bad), "--profile", "generic-x86_64", "--out", str(out))
    assert proc.returncode == 1
    [line] = error_lines(proc.stderr)
    assert str(bad) in line and ("truncated" in line or "empty" in line or "not ONNX" in line)
    assert "Traceback" not in proc.stderr
    assert_nothing_written(out)


@pytest.mark.parametrize(("args", "expected"), [
    (["--profile", "raspbery-pi-4"], "unknown profile 'raspbery-pi-4' (did you mean 'raspberry-pi-4'?)"),
    (["--profile", "generic-x86_64", "--targets", "onnx-int9-arm64"],
     "unknown target 'onnx-int9-arm64' (did you mean 'onnx-int8-arm64'?)"),
    (["--profile", "generic-x86_64", "--input-shape", "features=1,16"], "--input-shape 'features=1,16'"),
    (["--profile", "generic-x86_64", "--threshold", "mean:0.9"], "--threshold 'mean:0.9'"),
])
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], expected: str) -> None:
    src = tinymodels.mlp_onnx(tmp_path / "mlp.onnx")
    out = tmp_path / "out"
    proc = run_edgekit("convert", str(src), *args, "--out", str(out))
    assert proc.returncode in (1, 2)
    [line] = error_lines(proc.stderr)
    assert expected in line
    assert_nothing_written(out)


def test_unsupported_op_fails_that_target_only(tmp_path: Path) -> None:
    src = tinymodels.unsupported_op_onnx(tmp_path / "scaler.onnx")
    out = tmp_path / "out"
    proc = run_edgekit("convert", str(src), "--profile", "generic-x86_64", "--targets", "onnx-fp32,openvino-fp16",
                       "--out", str(out))
    assert proc.returncode == 1
    [line] = error_lines(proc.stderr)
    assert "openvino-fp16" in line and "ai.onnx.ml.Scaler" in line and "report.md" in line
    report = json.loads((out / "report.json").read_text())
    rows = {r["target"]: r for r in report["rows"]}
    assert rows["onnx-fp32"]["status"] == "ok"
    assert rows["openvino-fp16"]["status"] == "failed"
    assert "No conversion rule found for operations: ai.onnx.ml.Scaler" in rows["openvino-fp16"]["error"]["message"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["target"] for a in manifest["artifacts"]] == ["onnx-fp32"]
    assert not list(out.glob("openvino-fp16*")), "a failed target's files must not stay in the output"
    assert "| openvino-fp16 | failed |" in (out / "report.md").read_text()


def test_out_dir_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    src = tinymodels.mlp_onnx(tmp_path / "mlp.onnx")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    proc = run_edgekit("convert", str(src), "--profile", "generic-x86_64", "--targets", "onnx-fp32",
                       "--out", str(out))
    assert proc.returncode == 2
    assert "is not an edgekit output directory" in error_lines(proc.stderr)[0]
    assert (out / "thesis.tex").read_text() == "do not delete"


def test_convert_verify_and_catch_a_swapped_artifact(tmp_path: Path) -> None:
    src = tinymodels.outlier_mlp_onnx(tmp_path / "m.onnx")
    out = tmp_path / "out"
    proc = run_edgekit("convert", str(src), "--profile", "generic-x86_64", "--targets", "onnx-fp32,onnx-int8-x86",
                       "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "onnx-int8-x86" in proc.stdout and "ok" in proc.stdout
    # converting again into the same directory replaces it
    again = run_edgekit("convert", str(src), "--profile", "generic-x86_64", "--targets", "onnx-fp32",
                        "--out", str(out))
    assert again.returncode == 0, again.stderr
    proc = run_edgekit("convert", str(src), "--profile", "generic-x86_64", "--targets", "onnx-fp32,onnx-int8-x86",
                       "--out", str(out))
    ok = run_edgekit("verify", str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "parity onnx-int8-x86" in ok.stdout and "all within their thresholds" in ok.stdout

    # Swap in a different model and fix the checksums: only the parity re-run can notice.
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = next(a for a in manifest["artifacts"] if a["target"] == "onnx-int8-x86")
    tinymodels.outlier_mlp_onnx(out / entry["path"], seed=7)
    entry["sha256"], entry["size_bytes"] = sha256_path(out / entry["path"]), size_of(out / entry["path"])
    manifest_path.write_text(json.dumps(manifest, indent=2))
    bad = run_edgekit("verify", str(out))
    assert bad.returncode == 1
    [line] = error_lines(bad.stderr, "verify")
    assert "onnx-int8-x86" in line and "fail parity" in line

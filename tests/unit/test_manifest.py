"""manifest.json / report.json: round trip through the JSON Schemas, and tamper detection by `edgekit verify`."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from edgekit.bundle.archive import pack
from edgekit.bundle.verify import check_checksums
from edgekit.checksums import sha256_path, size_of
from edgekit.errors import BundleIntegrityError
from edgekit.manifest import (
    Artifact,
    FileEntry,
    Latency,
    Manifest,
    ModelInfo,
    Parity,
    Report,
    ReportRow,
    TensorSpec,
    now_iso,
    read_manifest,
    read_report,
    write_manifest,
    write_report,
)
from tests.conftest import run_edgekit

pytestmark = pytest.mark.unit


def make_bundle(root: Path) -> Manifest:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)) * 40)
    ir = root / "model_ov"
    ir.mkdir()
    (ir / "model.xml").write_text("<net/>")
    (ir / "model.bin").write_bytes(b"\x00" * 1000)
    (root / "tokenizer.json").write_text('{"version": "1.0"}')
    inputs = (TensorSpec("input_ids", "int64", ("batch", "sequence")),
              TensorSpec("attention_mask", "int64", ("batch", "sequence")))
    manifest = Manifest(
        schema_version=1,
        model=ModelInfo(name="tiny", source="tiny.onnx", sha256="a" * 64, task="text-embedding", inputs=inputs,
                        outputs=(TensorSpec("sentence_embedding", "float32", ("batch", 384)),)),
        profile="raspberry-pi-4",
        created=now_iso(),
        producer={"edgekit": "0.1.0", "onnxruntime": "1.31.1"},
        artifacts=(
            Artifact(target="onnx-fp32", path="model.onnx", format="onnx", precision="fp32",
                     size_bytes=size_of(root / "model.onnx"), sha256=sha256_path(root / "model.onnx"),
                     runtime="onnxruntime",
                     validation=Parity(metric="cosine", mean=1.0, min=1.0, threshold={"mean": 0.999})),
            Artifact(target="openvino-fp16", path="model_ov/model.xml", format="openvino-ir", precision="fp16",
                     size_bytes=6, sha256=sha256_path(ir / "model.xml"), runtime="openvino",
                     files=(FileEntry("model_ov/model.bin", sha256_path(ir / "model.bin"), 1000),),
                     details={"weights": "fp16"}),
        ),
        files=(FileEntry("tokenizer.json", sha256_path(root / "tokenizer.json"), size_of(root / "tokenizer.json"),
                         kind="tokenizer"),),
    )
    write_manifest(manifest, root)
    return manifest


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = make_bundle(tmp_path / "b")
    again = read_manifest(tmp_path / "b")
    assert again == manifest
    assert again.model.inputs[0].shape == ("batch", "sequence")
    assert again.artifact("openvino-fp16").files[0].size_bytes == 1000
    with pytest.raises(BundleIntegrityError, match="no artifact for target 'tflite-int8'"):
        again.artifact("tflite-int8")


def test_report_round_trip_and_failed_rows_need_an_error(tmp_path: Path) -> None:
    report = Report(schema_version=1, model="tiny", profile="raspberry-pi-4", created=now_iso(), rows=(
        ReportRow(target="onnx-fp32", status="ok", size_bytes=10, latency_ms=Latency(p50=1.5, p95=2.0),
                  parity=Parity(metric="cosine", mean=1.0, min=1.0)),
        ReportRow(target="tflite-int8", status="failed", error={"message": "cosine 0.07 < 0.98"}),
    ))
    write_report(report, tmp_path)
    assert read_report(tmp_path) == report
    assert [r.target for r in read_report(tmp_path).failed] == ["tflite-int8"]
    data = json.loads((tmp_path / "report.json").read_text())
    del data["rows"][1]["error"]
    (tmp_path / "report.json").write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="'error' is a required property"):
        read_report(tmp_path)


def test_schema_rejects_bad_manifest(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["artifacts"][0]["sha256"] = "not-a-hash"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="at artifacts/0/sha256"):
        read_manifest(tmp_path)


def test_clean_bundle_checks_out(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    result = check_checksums(tmp_path)
    assert result.ok, result.problems
    assert set(result.checked) == {"model.onnx", "model_ov/model.xml", "model_ov/model.bin", "tokenizer.json"}


@pytest.mark.parametrize("victim", ["model.onnx", "model_ov/model.bin", "tokenizer.json"])
def test_one_changed_byte_is_reported_with_the_file_name(tmp_path: Path, victim: str) -> None:
    make_bundle(tmp_path / "b")
    path = tmp_path / "b" / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    result = check_checksums(tmp_path / "b")
    assert result.problems == [f"{victim}: sha256 differs from the manifest (the file was changed)"]
    proc = run_edgekit("verify", str(tmp_path / "b"))
    assert proc.returncode == 1
    assert victim in proc.stderr and "Traceback" not in proc.stderr


def test_missing_file_reported(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    assert check_checksums(tmp_path).problems == ["tokenizer.json: missing"]


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_verify_archives(tmp_path: Path, suffix: str) -> None:
    make_bundle(tmp_path / "b")
    archive = pack(tmp_path / "b", tmp_path / f"bundle{suffix}")
    proc = run_edgekit("verify", str(archive))
    assert proc.returncode == 0, proc.stderr
    assert "4 file(s) match the manifest" in proc.stdout
    # Tamper inside the archive: rebuild it with one byte changed.
    (tmp_path / "b" / "model.onnx").write_bytes(b"changed")
    bad = pack(tmp_path / "b", tmp_path / f"bad{suffix}")
    proc = run_edgekit("verify", str(bad))
    assert proc.returncode == 1 and "model.onnx" in proc.stderr


def test_archive_members_cannot_escape(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/evil", "x")
    proc = run_edgekit("verify", str(evil))
    assert proc.returncode == 1 and "escape" in proc.stderr
    tar = tmp_path / "evil.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        info = tarfile.TarInfo("../evil")
        tf.addfile(info)
    proc = run_edgekit("verify", str(tar))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr

"""``edgekit bundle`` per platform (real files: a LiteRT flatbuffer, a Core ML package, a tokenizer), archives,
Ed25519 signing, and tampering caught by ``edgekit verify`` (the real entry point)."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from edgekit import __version__
from edgekit.bundle.archive import opened
from edgekit.bundle.build import build_bundle
from edgekit.bundle.signing import SIGNATURE_NAME, generate_keypair, sign_manifest, verify_signature
from edgekit.bundle.verify import check_checksums
from edgekit.checksums import sha256_path, size_of
from edgekit.errors import BundleIntegrityError
from edgekit.manifest import Artifact, FileEntry, Manifest, ModelInfo, TensorSpec, read_manifest, write_manifest
from tests.conftest import run_edgekit

pytestmark = pytest.mark.unit


def _artifact(root: Path, target: str, rel: str, fmt: str, precision: str, runtime: str, *, files: tuple[str, ...] = (),
              status: str = "ok", details: dict | None = None) -> Artifact:
    entries = tuple(FileEntry(f, sha256_path(root / f), size_of(root / f), "bucket") for f in files)
    return Artifact(target=target, path=rel, format=fmt, precision=precision, size_bytes=size_of(root / rel),
                    sha256=sha256_path(root / rel), runtime=runtime, status=status, files=entries,  # type: ignore[arg-type]
                    details=details or {})


@pytest.fixture(scope="module")
def convert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A convert output directory as 'edgekit convert' writes it: ONNX, two TFLite buckets, a Core ML package."""
    from tests.unit.test_tflite import _tiny_tflite

    root = tmp_path_factory.mktemp("converted")
    tfl = _tiny_tflite(root)
    (root / "m-tflite-int8-b1-s16.tflite").write_bytes(tfl.read_bytes())
    (root / "m-tflite-int8-b1-s32.tflite").write_bytes(tfl.read_bytes() + b"")
    tfl.unlink()
    (root / "m-onnx-fp32.onnx").write_bytes(b"onnx-bytes")
    pkg = root / "m-coreml-fp16.mlpackage" / "Data" / "com.apple.CoreML"
    pkg.mkdir(parents=True)
    (pkg / "model.mlmodel").write_bytes(b"spec")
    (pkg.parent.parent / "Manifest.json").write_text("{}")
    (root / "tokenizer.json").write_text('{"model": {}}')
    buckets = [{"path": f"m-tflite-int8-b1-s{s}.tflite", "batch": 1, "sequence": s} for s in (16, 32)]
    tfl_details = {"buckets": buckets, "sequence_inputs": {"input_ids": 1, "attention_mask": 1},
                   "input_dtypes": {"input_ids": "int32", "attention_mask": "int32"},
                   "input_shapes": {"input_ids": [1, 32], "attention_mask": [1, 32]},
                   "quantization": {"mode": "dynamic", "weights": "int8"},
                   "min_runtime": {"ai-edge-litert": ">=2.3.0", "note": "x"}, "metadata": "not embedded"}
    manifest = Manifest(
        schema_version=1,
        model=ModelInfo("m", "builtin:m", "a" * 64, "text-embedding",
                        (TensorSpec("input_ids", "int64", ("batch", "sequence")),
                         TensorSpec("attention_mask", "int64", ("batch", "sequence"))),
                        (TensorSpec("sentence_embedding", "float32", ("batch", 384)),)),
        profile="android", created="2026-01-01T00:00:00+00:00", producer={"edgekit": __version__},
        artifacts=(
            _artifact(root, "tflite-int8", "m-tflite-int8-b1-s32.tflite", "tflite", "int8", "litert",
                      files=("m-tflite-int8-b1-s16.tflite",), details=tfl_details),
            _artifact(root, "onnx-fp32", "m-onnx-fp32.onnx", "onnx", "fp32", "onnxruntime"),
            _artifact(root, "coreml-fp16", "m-coreml-fp16.mlpackage", "coreml", "fp16", "coreml",
                      status="converted-not-run",
                      details={"shapes": {"input_ids": [1, 128]}, "input_dtypes": {"input_ids": "int32"},
                               "min_runtime": {"ios": "16"}}),
        ),
        files=(FileEntry("tokenizer.json", sha256_path(root / "tokenizer.json"), size_of(root / "tokenizer.json"),
                         "tokenizer"),),
        extra={"normalize": True},
    )
    write_manifest(manifest, root)
    return root


def _names(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_android_bundle_contents(convert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "android"
    result = build_bundle(convert_dir, "android", out)
    assert result.artifacts == ("tflite-int8",)
    names = _names(out)
    assert {"m-tflite-int8-b1-s16.tflite", "m-tflite-int8-b1-s32.tflite", "tokenizer.json", "manifest.json",
            "INTEGRATION.md", "CHECKSUMS.sha256"} == names
    m = read_manifest(out)
    assert m.platform == "android" and [a.target for a in m.artifacts] == ["tflite-int8"]
    assert m.min_runtime == {"ai-edge-litert": ">=2.3.0"}
    spec = m.extra["bundle"]["input_spec"]
    assert spec["inputs"][0] == {"name": "input_ids", "dtype": "int32", "shape": [1, 32]}
    assert spec["normalization"] == "L2-normalised embedding"
    assert m.extra["bundle"]["quantization"]["tflite-int8"]["mode"] == "dynamic"
    assert "not embedded" in m.extra["bundle"]["tflite_metadata"]
    doc = (out / "INTEGRATION.md").read_text()
    assert 'noCompress += "tflite"' in doc and "Interpreter(" in doc and "getSignatureRunner" in doc
    assert check_checksums(out).ok
    checksums = (out / "CHECKSUMS.sha256").read_text().splitlines()
    assert len(checksums) == len(names) - 1


def test_android_zip_keeps_tflite_uncompressed(convert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    build_bundle(convert_dir, "android", out)
    with zipfile.ZipFile(out) as zf:
        methods = {Path(i.filename).name: i.compress_type for i in zf.infolist()}
    assert methods["m-tflite-int8-b1-s32.tflite"] == zipfile.ZIP_STORED
    assert methods["manifest.json"] == zipfile.ZIP_DEFLATED


def test_ios_bundle_contents(convert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ios"
    result = build_bundle(convert_dir, "ios", out)
    assert result.artifacts == ("coreml-fp16",)
    names = _names(out)
    assert "m-coreml-fp16.mlpackage/Data/com.apple.CoreML/model.mlmodel" in names
    assert not any(n.endswith(".tflite") or n.endswith(".onnx") for n in names)
    doc = (out / "INTEGRATION.md").read_text()
    assert "Xcode" in doc and "import CoreML" in doc and "computeUnits" in doc and "coremlcompiler" in doc
    m = read_manifest(out)
    assert m.platform == "ios" and m.min_runtime["ios"] == "16"
    assert "CHECKSUMS.sha256" in names and check_checksums(out).ok


def test_linux_bundle_holds_what_the_device_runs(convert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "linux.tar.gz"
    result = build_bundle(convert_dir, "linux", out)
    assert set(result.artifacts) == {"tflite-int8", "onnx-fp32"}  # Core ML does not run on Linux
    with tarfile.open(out) as tf:
        names = {Path(n).name for n in tf.getnames()}
    assert {"m-onnx-fp32.onnx", "tokenizer.json", "manifest.json"} <= names and "INTEGRATION.md" not in names
    assert run_edgekit("verify", str(out)).returncode == 0


def test_bundle_refuses_a_platform_without_artifacts(convert_dir: Path, tmp_path: Path) -> None:
    proc = run_edgekit("bundle", str(convert_dir), "--platform", "ios", "--targets", "onnx-fp32",
                       "--out", str(tmp_path / "x"))
    assert proc.returncode == 1 and "needs a coreml artifact" in proc.stderr


@pytest.mark.parametrize("suffix", ["", ".tar.gz", ".zip"])
def test_signed_bundle_verifies_with_key_and_tamper_is_caught(convert_dir: Path, tmp_path: Path, suffix: str) -> None:
    key, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    generate_keypair(key, pub)
    out = tmp_path / f"b{suffix}"
    proc = run_edgekit("bundle", str(convert_dir), "--platform", "android", "--out", str(out), "--sign", str(key))
    assert proc.returncode == 0, proc.stderr
    ok = run_edgekit("verify", str(out), "--key", str(pub))
    assert ok.returncode == 0 and "signature ok" in ok.stdout, ok.stderr
    other_key, other_pub = tmp_path / "other.pem", tmp_path / "other.pub"
    generate_keypair(other_key, other_pub)
    wrong = run_edgekit("verify", str(out), "--key", str(other_pub))
    assert wrong.returncode == 1 and "signed by another key" in wrong.stderr


def test_tampered_model_file_fails_verify(convert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    build_bundle(convert_dir, "android", out)
    with (out / "m-tflite-int8-b1-s16.tflite").open("r+b") as f:
        f.seek(40)
        f.write(b"\xff")
    proc = run_edgekit("verify", str(out))
    assert proc.returncode == 1 and "m-tflite-int8-b1-s16.tflite: sha256 differs" in proc.stderr


def test_tampered_manifest_breaks_the_signature(convert_dir: Path, tmp_path: Path) -> None:
    """Re-pointing the manifest at a swapped model keeps checksums consistent, but not the signature."""
    key, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    generate_keypair(key, pub)
    out = tmp_path / "b"
    build_bundle(convert_dir, "android", out, sign_key=key)
    assert verify_signature(out, pub)
    data = json.loads((out / "manifest.json").read_text())
    data["model"]["name"] = "evil"
    (out / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")
    assert check_checksums(out).ok  # the files still match...
    with pytest.raises(BundleIntegrityError, match="changed after signing"):
        verify_signature(out, pub)  # ...but the manifest is not the one that was signed
    proc = run_edgekit("verify", str(out), "--key", str(pub))
    assert proc.returncode == 1 and "does not verify" in proc.stderr


def test_unsigned_bundle_is_refused_when_a_key_is_given(convert_dir: Path, tmp_path: Path) -> None:
    key, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    generate_keypair(key, pub)
    out = tmp_path / "b.zip"
    build_bundle(convert_dir, "android", out)
    with opened(out) as root:
        assert not (root / SIGNATURE_NAME).exists()
        with pytest.raises(BundleIntegrityError, match="not signed"):
            verify_signature(root, pub)
    proc = run_edgekit("verify", str(out), "--key", str(pub))
    assert proc.returncode == 1 and "not signed" in proc.stderr
    assert "unsigned" in run_edgekit("verify", str(out)).stdout


def test_sign_rejects_a_non_ed25519_key(tmp_path: Path, convert_dir: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(Exception, match="Ed25519 keys only"):
        sign_manifest(convert_dir, path)

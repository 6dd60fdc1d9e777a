"""End to end on the builtin model: ``edgekit convert builtin:all-minilm-l6-v2`` for the android and iphone
profiles, then ``edgekit bundle`` (signed) and ``edgekit verify --key`` on each, all through the real entry point.

Needs the litert-torch toolchain (installed once per machine by the fixture) and the orchestrator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edgekit.bundle.signing import generate_keypair
from tests.conftest import run_edgekit
from tests.unit.mobile_fixtures import litert_toolchain  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("converters.pipeline") is None,
                       reason="the conversion orchestrator (converters.pipeline) is not in this build yet"),
]


@pytest.mark.parametrize(("profile", "targets", "platform", "bundled"), [
    # The bundled target only: 5 sequence buckets of MiniLM take ~10 s each to convert on 2 cores.
    ("android", "tflite-int8", "android", "tflite-int8"),
    ("iphone", "coreml-fp16,coreml-int8", "ios", "coreml-fp16"),
])
def test_builtin_model_bundle_verifies(profile: str, targets: str, platform: str, bundled: str, tmp_path: Path,
                                       litert_toolchain) -> None:  # noqa: F811
    out = tmp_path / profile
    conv = run_edgekit("convert", "builtin:all-minilm-l6-v2", "--profile", profile, "--targets", targets,
                       "--out", str(out), timeout=1200)
    assert conv.returncode == 0, conv.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    rows = {r["target"]: r for r in report["rows"]}
    if platform == "android":
        assert rows["tflite-int8"]["status"] == "ok" and rows["tflite-int8"]["parity"]["passed"]
        assert rows["tflite-int8"]["parity"]["min"] >= 0.97
    else:
        assert {r["status"] for r in rows.values()} == {"converted-not-run"}
    assert run_edgekit("verify", str(out)).returncode == 0
    key, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    generate_keypair(key, pub)
    bundle = tmp_path / f"{profile}.zip"
    made = run_edgekit("bundle", str(out), "--platform", platform, "--out", str(bundle), "--sign", str(key))
    assert made.returncode == 0, made.stderr
    assert bundled in made.stdout
    ok = run_edgekit("verify", str(bundle), "--key", str(pub), timeout=900)
    assert ok.returncode == 0, ok.stderr
    assert "signature ok" in ok.stdout

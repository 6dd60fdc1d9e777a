"""``edgekit convert builtin:all-minilm-l6-v2`` for raspberry-pi-4 and intel-nuc, through the real CLI, then
``edgekit verify`` on the result. The builtin export is cached once per session (``EDGEKIT_CACHE``).

By default the profiles' ONNX and OpenVINO targets run (the TFLite / Core ML targets have their own tests and an
isolated toolchain); set ``EDGEKIT_TEST_ALL_TARGETS=1`` to run every target the profile lists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_edgekit

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OWN_FORMATS = ("onnx", "openvino-ir")


@pytest.fixture(scope="session")
def edgekit_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One builtin export for the whole session (reuses $EDGEKIT_CACHE when the caller set one)."""
    from converters.sources.builtin import BUILTINS, cached_export

    cache = os.environ.get("EDGEKIT_CACHE") or str(tmp_path_factory.mktemp("edgekit-cache"))
    env = {"EDGEKIT_CACHE": cache, "HF_HUB_OFFLINE": "1"}
    old = os.environ.get("EDGEKIT_CACHE")
    os.environ["EDGEKIT_CACHE"] = cache
    try:
        cached_export("all-minilm-l6-v2", BUILTINS["all-minilm-l6-v2"]())
    finally:
        if old is None:
            os.environ.pop("EDGEKIT_CACHE", None)
        else:
            os.environ["EDGEKIT_CACHE"] = old
    return env


def targets_for(profile_name: str) -> list[str]:
    from converters.registry import get_target
    from edgekit.profiles import load_profile

    targets = list(load_profile(profile_name).targets)
    if os.environ.get("EDGEKIT_TEST_ALL_TARGETS") == "1":
        return targets
    return [t for t in targets if get_target(t).format in OWN_FORMATS]


def convert(profile: str, out: Path, env: dict[str, str]) -> dict[str, dict]:
    proc = run_edgekit("convert", "builtin:all-minilm-l6-v2", "--profile", profile,
                       "--targets", ",".join(targets_for(profile)), "--out", str(out), env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    rows = {r["target"]: r for r in report["rows"]}
    assert list(rows) == targets_for(profile)
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["latency_ms"]["batch"] == 1 and row["latency_ms"]["seq"] == 128 and row["latency_ms"]["precision"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["task"] == "text-embedding"
    assert [i["name"] for i in manifest["model"]["inputs"]] == ["input_ids", "attention_mask"]
    assert manifest["model"]["inputs"][0]["shape"] == ["batch", "sequence"]
    assert {f["path"] for f in manifest["files"]} >= {"tokenizer/tokenizer.json", "parity-samples.npz"}
    verify = run_edgekit("verify", str(out), env=env, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return rows


def test_raspberry_pi_4(tmp_path: Path, edgekit_cache: dict[str, str]) -> None:
    rows = convert("raspberry-pi-4", tmp_path / "pi4", edgekit_cache)
    int8, fp32 = rows["onnx-int8-arm64"], rows["onnx-fp32"]
    assert int8["parity"]["metric"] == "cosine"
    assert int8["parity"]["mean"] >= 0.995 and int8["parity"]["min"] >= 0.98  # the text-embedding gate
    assert int8["size_bytes"] <= 0.27 * fp32["size_bytes"]
    details = int8["details"]
    assert details["mode"] == "dynamic" and details["preset"] == "arm64"
    # Full INT8 misses the gate on MiniLM; recovery keeps a few nodes, named, with their cost recorded.
    assert details["full_int8"]["parity"]["min"] < 0.98
    assert 0 < len(details["kept_float"]) <= 12
    assert "size_cost_bytes" in details and details["sensitivity"]["ranking"]


def test_intel_nuc(tmp_path: Path, edgekit_cache: dict[str, str]) -> None:
    rows = convert("intel-nuc", tmp_path / "nuc", edgekit_cache)
    assert rows["openvino-fp16"]["latency_ms"]["precision"] == "f32"  # never the silent bf16 of AMX CPUs
    assert rows["openvino-int8"]["latency_ms"]["precision"] == "int8+f32"
    assert rows["openvino-int8"]["parity"]["min"] >= 0.98
    assert rows["onnx-int8-x86"]["details"]["preset"] == "x86"
    assert rows["onnx-int8-x86"]["parity"]["mean"] >= 0.995

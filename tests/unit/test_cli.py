"""The command line through the real entry point: help, errors, env, profiles."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgekit.cli import COMMANDS
from tests.conftest import run_edgekit

pytestmark = pytest.mark.unit

DESIGN_COMMANDS = ["profiles", "convert", "bundle", "verify", "agent", "infer", "telemetry", "bench", "flash",
                   "provision", "quickstart", "toolchain", "env"]


def test_every_design_command_has_help() -> None:
    assert set(DESIGN_COMMANDS) <= set(COMMANDS)
    top = run_edgekit("--help")
    assert top.returncode == 0
    for name in DESIGN_COMMANDS:
        assert name in top.stdout
        proc = run_edgekit(name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert "usage: edgekit" in proc.stdout


def test_help_imports_nothing_heavy() -> None:
    """`edgekit --help` must stay fast: no numpy, torch, onnx or runtime imports at start-up."""
    code = ("import sys; from edgekit.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('numpy', 'torch', 'onnx', 'onnxruntime', 'openvino', 'paho', 'jsonschema', "
            "'transformers', 'coremltools', 'matplotlib', 'rich') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_profiles_imports_nothing_heavy() -> None:
    """Profile validation reads the target registry; converter modules load numpy and friends only in bodies."""
    code = ("import sys; from edgekit.profiles import shipped_profiles; shipped_profiles(); "
            "print([m for m in ('numpy', 'torch', 'onnx', 'onnxruntime', 'openvino', 'jsonschema') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_prints_help_and_exits_2() -> None:
    proc = run_edgekit()
    assert proc.returncode == 2
    assert "usage: edgekit" in proc.stdout


def test_errors_are_one_line_without_traceback_unless_debug() -> None:
    proc = run_edgekit("profiles", "show", "no-such-board")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit profiles: error: unknown profile 'no-such-board'")
    debug = run_edgekit("--debug", "profiles", "show", "no-such-board")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_profiles_list_and_show_json() -> None:
    proc = run_edgekit("profiles", "list", "--json")
    names = [p["name"] for p in json.loads(proc.stdout)]
    assert "raspberry-pi-4" in names and "iphone" in names
    show = json.loads(run_edgekit("profiles", "show", "jetson-orin-nano", "--json").stdout)
    assert show["qemu_cpu"] == "neoverse-n1" and show["flash"]["jetpack"].startswith("6")
    text = run_edgekit("profiles", "show", "raspberry-pi-4").stdout
    assert "memory.cap_mb" in text and "512" in text


def test_env_lists_versions_or_not_installed() -> None:
    proc = run_edgekit("env", "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["python"] == sys.version.split()[0]
    assert {"onnxruntime", "openvino", "coremltools", "paho-mqtt", "ai-edge-litert"} <= set(data["libraries"])
    text = run_edgekit("env").stdout
    assert "edgekit" in text and "python" in text

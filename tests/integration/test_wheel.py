"""A non-editable install of the wheel into a fresh venv ships every device profile, the JSON Schemas and the
firmware scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_wheel_in_fresh_venv_lists_every_profile(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("edgekit-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    out = subprocess.run([str(venv / "bin" / "edgekit"), "profiles", "list"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    names = {line.split()[0] for line in out.stdout.splitlines()}
    assert {"raspberry-pi-4", "raspberry-pi-5", "jetson-nano", "jetson-orin-nano", "intel-nuc",
            "generic-x86_64", "generic-arm64", "iphone", "android"} <= names
    # The schemas ship too (verify needs them), and nothing imports from the source checkout.
    code = ("import edgekit, pathlib; from edgekit.manifest import load_schema; load_schema('manifest'); "
            "load_schema('mqtt-telemetry'); from importlib import resources; "
            "assert resources.files('edgekit.firmware_scripts').joinpath('rpi', 'firstrun.sh').is_file(); "
            "print(pathlib.Path(edgekit.__file__).parent)")
    where = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert str(venv) in where.stdout

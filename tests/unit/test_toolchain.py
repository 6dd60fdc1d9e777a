"""``edgekit toolchain``: the isolated litert-torch venv is installed once (idempotent, locked), listed, and kept
apart from this environment, whose ``pip check`` stays clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit import toolchains
from tests.conftest import run_edgekit
from tests.unit.mobile_fixtures import litert_toolchain  # noqa: F401 - fixture


@pytest.mark.unit
def test_unknown_toolchain_names_the_known_ones() -> None:
    proc = run_edgekit("toolchain", "install", "litert-troch")
    assert proc.returncode == 2 and "did you mean 'litert-torch'" in proc.stderr


@pytest.mark.unit
def test_list_reports_not_installed_with_the_command(tmp_path: Path) -> None:
    proc = run_edgekit("toolchain", "list", env={"EDGEKIT_TOOLCHAINS_DIR": str(tmp_path)})
    assert proc.returncode == 0 and "edgekit toolchain install litert-torch" in proc.stdout


@pytest.mark.unit
def test_pins_keep_torch_in_step_with_the_host() -> None:
    tc = toolchains.get_toolchain("litert-torch")
    assert "torch==2.13.0" in tc.requirements and "torch==2.13.0" in tc.constraints
    assert all("==" in c for c in tc.constraints)


@pytest.mark.integration
def test_installed_toolchain_is_isolated_and_reported(litert_toolchain) -> None:  # noqa: F811
    proc = run_edgekit("toolchain", "install", "litert-torch")  # second install: a no-op
    assert proc.returncode == 0 and "already installed" in proc.stdout
    rows = json.loads(run_edgekit("toolchain", "list", "--json").stdout)
    row = next(r for r in rows if r["name"] == "litert-torch")
    assert row["installed"] and row["size_bytes"] > 10**8 and row["packages"]["litert-torch"] == "0.10.0"
    py = toolchains.python_of(litert_toolchain)
    inside = subprocess.run([str(py), "-c", "import litert_torch, ai_edge_quantizer, typing_extensions as t; "
                             "import importlib.metadata as m; print(m.version('typing_extensions'))"],
                            capture_output=True, text=True, timeout=300)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip().startswith("4.12")  # the pin that would break pip check here
    here = subprocess.run([sys.executable, "-c", "import litert_torch"], capture_output=True, text=True)
    assert here.returncode != 0  # not importable in the user's environment
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout
    assert subprocess.run([str(py), "-m", "pip", "check"], capture_output=True, timeout=300).returncode == 0

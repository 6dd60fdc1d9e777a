"""`edgekit profiles detect` on stand-in trees.

No Raspberry Pi or Jetson exists here: each board is a directory shaped like its root filesystem
(/proc/cpuinfo, /proc/device-tree/model with its trailing NUL, /etc/nv_tegra_release), with contents
taken from the documented layouts of those boards.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgekit.profiles.detect import detect
from tests.conftest import run_edgekit

pytestmark = pytest.mark.unit

ARM_CORE = """processor\t: {n}
BogoMIPS\t: 108.00
Features\t: {features}
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: {part}
CPU revision\t: 3

"""

PI4_FEATURES = "fp asimd evtstrm crc32 cpuid"
A76_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"


def arm_tree(root: Path, *, features: str, part: str, cores: int, model: str | None,
             tegra: str | None = None) -> Path:
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text(
        "".join(ARM_CORE.format(n=i, features=features, part=part) for i in range(cores))
    )
    if model:
        (root / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\x00")
    if tegra:
        (root / "etc").mkdir()
        (root / "etc" / "nv_tegra_release").write_text(tegra)
    return root


def test_raspberry_pi_4(tmp_path: Path) -> None:
    arm_tree(tmp_path, features=PI4_FEATURES, part="0xd08", cores=4, model="Raspberry Pi 4 Model B Rev 1.4")
    found = detect(tmp_path)
    assert found.profile == "raspberry-pi-4"
    assert found.facts.arch == "arm64" and found.facts.cores == 4
    assert found.facts.isa == ("neon",)  # A72: no asimddp


def test_raspberry_pi_5(tmp_path: Path) -> None:
    arm_tree(tmp_path, features=A76_FEATURES, part="0xd0b", cores=4, model="Raspberry Pi 5 Model B Rev 1.0")
    found = detect(tmp_path)
    assert found.profile == "raspberry-pi-5"
    assert {"neon", "dotprod", "fp16"} <= set(found.facts.isa) and "i8mm" not in found.facts.isa


def test_jetson_orin_nano(tmp_path: Path) -> None:
    arm_tree(tmp_path, features=A76_FEATURES + " uscat ilrcpc flagm paca pacg", part="0xd42", cores=6,
             model="NVIDIA Jetson Orin Nano Developer Kit",
             tegra="# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
                   "DATE: Fri Sep 13 04:36:44 UTC 2024\n")
    found = detect(tmp_path)
    assert found.profile == "jetson-orin-nano"
    assert found.facts.tegra_release == "R36.4"
    assert any("nv_tegra_release" in r for r in found.reasons)


def test_jetson_nano_is_not_taken_for_orin(tmp_path: Path) -> None:
    arm_tree(tmp_path, features="fp asimd evtstrm aes pmull sha1 sha2 crc32", part="0xd07", cores=4,
             model="NVIDIA Jetson Nano Developer Kit",
             tegra="# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: x\n")
    assert detect(tmp_path).profile == "jetson-nano"


def test_unknown_arm_board_is_generic(tmp_path: Path) -> None:
    arm_tree(tmp_path, features=PI4_FEATURES, part="0xd03", cores=4, model="Pine64 RockPro64")
    assert detect(tmp_path).profile == "generic-arm64"


def test_this_x86_machine_tree(tmp_path: Path) -> None:
    """A copy of this machine's /proc/cpuinfo: generic-x86_64 with the VNNI flags it really has."""
    (tmp_path / "proc").mkdir()
    shutil.copy("/proc/cpuinfo", tmp_path / "proc" / "cpuinfo")
    found = detect(tmp_path)
    assert found.profile == "generic-x86_64"
    flags = Path("/proc/cpuinfo").read_text()
    if "avx512_vnni" in flags:
        assert "avx512_vnni" in found.facts.isa
    (tmp_path / "sys" / "class" / "dmi" / "id").mkdir(parents=True)
    (tmp_path / "sys" / "class" / "dmi" / "id" / "product_name").write_text("NUC13ANHi5\n")
    assert detect(tmp_path).profile == "intel-nuc"


def test_detect_cli_on_the_real_machine() -> None:
    proc = run_edgekit("profiles", "detect", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["profile"] in ("generic-x86_64", "intel-nuc")
    assert data["facts"]["arch"] == "x86_64"


def test_detect_cli_with_root(tmp_path: Path) -> None:
    arm_tree(tmp_path, features=A76_FEATURES, part="0xd0b", cores=4, model="Raspberry Pi 5 Model B Rev 1.0")
    proc = run_edgekit("profiles", "detect", "--root", str(tmp_path))
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "raspberry-pi-5"
    assert "dotprod" in proc.stdout

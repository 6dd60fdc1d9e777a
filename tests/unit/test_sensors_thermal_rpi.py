"""Thermal zones (stand-in /sys/class/thermal tree) and Raspberry Pi ``vcgencmd`` readers (captured output).

The vcgencmd texts below have the documented format of ``get_throttled`` (a hex bitmask) and of a Raspberry Pi
5's ``pmic_read_adc`` (one ``<RAIL>_A current(n)=...A`` / ``<RAIL>_V volt(n)=...V`` line per channel).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.sensors.rpi5_pmic import Rpi5Pmic, parse_pmic
from edgekit.sensors.rpi_throttled import ThrottleReader, parse_throttled
from edgekit.sensors.thermal import ThermalZones

pytestmark = pytest.mark.unit

PMIC = """\
   3V7_WL_SW_A current(0)=0.08781323A
     3V3_SYS_A current(1)=0.05172289A
     1V8_SYS_A current(2)=0.16494790A
    DDR_VDD2_A current(3)=0.02049637A
    DDR_VDDQ_A current(4)=0.00000000A
     1V1_SYS_A current(5)=0.18248120A
      0V8_SW_A current(6)=0.33186880A
    VDD_CORE_A current(7)=0.73211150A
   3V7_WL_SW_V volt(8)=3.74664400V
     3V3_SYS_V volt(9)=3.31428600V
     1V8_SYS_V volt(10)=1.79926700V
    DDR_VDD2_V volt(11)=1.11318700V
    DDR_VDDQ_V volt(12)=0.60561660V
     1V1_SYS_V volt(13)=1.10622700V
      0V8_SW_V volt(14)=0.80256400V
    VDD_CORE_V volt(15)=0.82930400V
       EXT5V_V volt(24)=5.13418800V
        BATT_V volt(25)=0.00000000V
"""


def zones(root: Path, entries: dict[int, tuple[str, str]]) -> Path:
    for n, (kind, temp) in entries.items():
        d = root / f"sys/class/thermal/thermal_zone{n}"
        d.mkdir(parents=True)
        (d / "type").write_text(kind + "\n")
        (d / "temp").write_text(temp + "\n")
    return root


def test_zone_by_type_and_hottest_fallback(tmp_path: Path) -> None:
    zones(tmp_path, {0: ("acpitz", "27800"), 1: ("x86_pkg_temp", "55000"), 10: ("iwlwifi_1", "61000")})
    assert ThermalZones(tmp_path, "x86_pkg_temp").read_celsius() == 55.0
    assert ThermalZones(tmp_path, "cpu-thermal").read_celsius() == 61.0  # absent: the hottest zone
    assert ThermalZones(tmp_path).zones() == {"acpitz": 27.8, "x86_pkg_temp": 55.0, "iwlwifi_1": 61.0}
    assert ThermalZones(tmp_path / "nothing").read_celsius() is None


def test_jetson_zones_with_repeated_types(tmp_path: Path) -> None:
    zones(tmp_path, {0: ("cpu-thermal", "45500"), 1: ("gpu-thermal", "44000"), 2: ("cpu-thermal", "46000")})
    z = ThermalZones(tmp_path, "cpu-thermal")
    assert z.zones() == {"cpu-thermal": 45.5, "gpu-thermal": 44.0, "cpu-thermal#2": 46.0}
    assert z.read_celsius() == 45.5


@pytest.mark.parametrize("text, now, occurred", [
    ("throttled=0x0\n", set(), set()),
    ("throttled=0x50005\n", {"under_voltage", "throttled"}, {"under_voltage", "throttled"}),
    ("throttled=0x80008\n", {"soft_temp_limit"}, {"soft_temp_limit"}),
    ("throttled=0x20000\n", set(), {"freq_capped"}),
])
def test_get_throttled_bits(text: str, now: set[str], occurred: set[str]) -> None:
    got = parse_throttled(text)
    assert got is not None
    assert {k for k in ("under_voltage", "freq_capped", "throttled", "soft_temp_limit") if got[k]} == now
    assert {k for k, v in got["occurred"].items() if v} == occurred


def test_throttle_reader_without_vcgencmd() -> None:
    assert ThrottleReader(lambda argv: None).read() is None
    assert ThrottleReader(lambda argv: "throttled=0x1\n").read()["under_voltage"] is True


def test_pi5_pmic_sums_rails_with_both_current_and_voltage() -> None:
    rails = parse_pmic(PMIC)
    assert "EXT5V" not in rails and "BATT" not in rails  # voltage only: no current to multiply
    assert rails["VDD_CORE"] == pytest.approx(0.73211150 * 0.82930400)
    assert len(rails) == 8
    reading = Rpi5Pmic(lambda argv: PMIC if argv == ["vcgencmd", "pmic_read_adc"] else None).read()
    assert reading.source == "rpi5-pmic"
    assert reading.watts == pytest.approx(sum(rails.values()))
    assert 1.0 < reading.watts < 3.0
    assert not Rpi5Pmic(lambda argv: None).available()

"""Power sources on stand-in sysfs trees built from the documented layouts: Jetson INA3221 (hwmon, JetPack 5/6;
IIO, JetPack 4), Intel RAPL (with wraparound and nested domains), the profile estimate, and the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.profiles.model import PowerSettings
from edgekit.sensors import open_power_sensor
from edgekit.sensors.estimated import EstimatedPower
from edgekit.sensors.ina3221 import Ina3221, read_rails
from edgekit.sensors.rapl import Rapl, energy_delta

pytestmark = pytest.mark.unit


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def orin_hwmon(root: Path, hwmon: str = "hwmon3") -> Path:
    """JetPack 6 Orin Nano: ina3221 at 1-0040, channels VDD_IN, VDD_CPU_GPU_CV, VDD_SOC, plus the sum channel."""
    d = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon" / hwmon
    for n, label, mv, ma in [(1, "VDD_IN", 5072, 1208), (2, "VDD_CPU_GPU_CV", 5064, 336), (3, "VDD_SOC", 5064, 448)]:
        write(d / f"in{n}_label", label)
        write(d / f"in{n}_input", str(mv))
        write(d / f"curr{n}_input", str(ma))
    write(d / "in7_label", "sum of shunt voltages")
    write(d / "in7_input", "1992")
    write(d / "curr4_input", "1992")
    write(d / "name", "ina3221")
    return d


def test_hwmon_layout_total_rail_and_skipped_channels(tmp_path: Path) -> None:
    orin_hwmon(tmp_path, "hwmon5")  # hwmon numbers change between boots: globbed
    rails = read_rails(tmp_path)
    assert set(rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
    reading = Ina3221(tmp_path).read()
    assert reading.watts == pytest.approx(5.072 * 1.208)  # VDD_IN is the module input, sub-rails not added
    assert Ina3221(tmp_path, rail="VDD_SOC").read().watts == pytest.approx(5.064 * 0.448)


def test_hwmon_nc_channel_and_agx_without_total(tmp_path: Path) -> None:
    d = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    for n, label, mv, ma in [(1, "VDD_GPU_SOC", 5000, 1000), (2, "VDD_CPU_CV", 5000, 400), (3, "NC", 0, 0)]:
        write(d / f"in{n}_label", label)
        write(d / f"in{n}_input", str(mv))
        write(d / f"curr{n}_input", str(ma))
    reading = Ina3221(tmp_path).read()
    assert set(reading.rails) == {"VDD_GPU_SOC", "VDD_CPU_CV"}
    assert reading.watts == pytest.approx(7.0)  # no total rail: the rails are summed


def test_iio_layout_jetpack4_nano(tmp_path: Path) -> None:
    d = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for n, name, mw in [(0, "POM_5V_IN", 3150), (1, "POM_5V_GPU", 40), (2, "POM_5V_CPU", 640)]:
        write(d / f"rail_name_{n}", name)
        write(d / f"in_power{n}_input", str(mw))
        write(d / f"in_voltage{n}_input", "5000")
        write(d / f"in_current{n}_input", str(mw // 5))
    reading = Ina3221(tmp_path).read()
    assert reading.watts == pytest.approx(3.15)
    assert reading.rails["POM_5V_CPU"] == pytest.approx(0.64)


def rapl_tree(root: Path, pkg_uj: int, core_uj: int = 0, max_range: int = 262143328850) -> Path:
    base = root / "sys/class/powercap"
    for name, domain, uj in [("intel-rapl:0", "package-0", pkg_uj), ("intel-rapl:0:0", "core", core_uj),
                             ("intel-rapl:1", "psys", pkg_uj * 3)]:
        write(base / name / "name", domain)
        write(base / name / "energy_uj", str(uj))
        write(base / name / "max_energy_range_uj", str(max_range))
    return base


def test_rapl_watts_from_energy_and_no_nested_sum(tmp_path: Path) -> None:
    base = rapl_tree(tmp_path, 1_000_000, core_uj=500_000)
    clock = iter([10.0, 12.0, 13.0])
    rapl = Rapl(tmp_path, clock=lambda: next(clock))
    assert [d.name for d in rapl.domains] == ["intel-rapl:0"]  # the package only: core nests in it, psys covers it
    assert rapl.read().watts is None  # one point is not a rate
    write(base / "intel-rapl:0/energy_uj", str(1_000_000 + 20_000_000))
    write(base / "intel-rapl:0:0/energy_uj", str(5_000_000))
    assert rapl.read().watts == pytest.approx(10.0)  # 20 J over 2 s


def test_rapl_wraparound(tmp_path: Path) -> None:
    max_range = 262_143_328_850
    base = rapl_tree(tmp_path, max_range - 3_000_000, max_range=max_range)
    clock = iter([0.0, 1.0])
    rapl = Rapl(tmp_path, clock=lambda: next(clock))
    rapl.read()
    write(base / "intel-rapl:0/energy_uj", "2000000")
    assert rapl.read().watts == pytest.approx(5.0)
    assert energy_delta(10, 4, 12) == 6


def test_rapl_unreadable_is_unavailable(tmp_path: Path) -> None:
    assert not Rapl(tmp_path).available()


def test_estimate_and_fallbacks(tmp_path: Path) -> None:
    est = EstimatedPower(2.7, 6.4, utilisation=lambda: 0.5)
    assert est.read().watts == pytest.approx(4.55) and est.read().source == "estimated"
    pi4 = PowerSettings(source="estimated", idle_watts=2.7, max_watts=6.4)
    assert open_power_sensor(pi4, tmp_path, utilisation=lambda: 0.0).read().watts == pytest.approx(2.7)
    # a profile naming a sensor this machine lacks falls back to its estimate, labelled as such
    nuc = PowerSettings(source="rapl", idle_watts=10.0, max_watts=65.0)
    assert open_power_sensor(nuc, tmp_path, utilisation=lambda: 1.0).read().source == "estimated"
    orin = PowerSettings(source="ina3221", rail="VDD_IN")
    assert open_power_sensor(orin, tmp_path).read().source == "none"
    orin_hwmon(tmp_path)
    assert open_power_sensor(orin, tmp_path).read().source == "ina3221"

"""NVIDIA Jetson power from the INA3221 monitors, in both sysfs layouts.

* JetPack 5/6 (hwmon driver): ``/sys/bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmon<N>/`` with ``inK_label``,
  ``inK_input`` (mV) and ``currK_input`` (mA); P = V x I. The hwmon number changes between boots, so it is globbed.
* JetPack 4 (IIO driver ``ina3221x``): ``/sys/bus/i2c/drivers/ina3221x/<bus-addr>/iio:device<N>/`` with
  ``rail_name_K`` and ``in_powerK_input`` (mW).

Channels labelled ``NC`` are not connected and the hwmon sum channel (``in7``, "sum of shunt voltages") is not a
rail: both are skipped. The total is the profile's rail, else the module input (``VDD_IN`` on Orin Nano/NX and
Xavier NX, ``POM_5V_IN`` on Nano); AGX Orin has no total rail, and then the rails are summed. Tests build a
stand-in tree of each layout.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.sensors.base import PowerReading, read_number, read_text

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
SUM_CHANNEL = 7


def _hwmon_rails(root: Path) -> dict[str, float]:
    rails: dict[str, float] = {}
    for label_file in sorted(root.glob("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label")):
        m = re.fullmatch(r"in(\d+)_label", label_file.name)
        if not m:
            continue
        channel = int(m.group(1))
        label = read_text(label_file) or ""
        if channel == SUM_CHANNEL or not label or label.upper() == "NC" or "sum" in label.lower():
            continue
        millivolts = read_number(label_file.with_name(f"in{channel}_input"))
        milliamps = read_number(label_file.with_name(f"curr{channel}_input"))
        if millivolts is not None and milliamps is not None:
            rails[label] = millivolts * milliamps / 1e6
    return rails


def _iio_rails(root: Path) -> dict[str, float]:
    rails: dict[str, float] = {}
    for name_file in sorted(root.glob("sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*")):
        channel = name_file.name.rsplit("_", 1)[1]
        label = read_text(name_file) or ""
        if not label or label.upper() == "NC":
            continue
        milliwatts = read_number(name_file.with_name(f"in_power{channel}_input"))
        if milliwatts is not None:
            rails[label] = milliwatts / 1000.0
    return rails


def read_rails(root: Path = Path("/")) -> dict[str, float]:
    """rail -> watts from whichever layout this Jetson has (hwmon first, then IIO)."""
    return _hwmon_rails(root) or _iio_rails(root)


class Ina3221:
    source = "ina3221"

    def __init__(self, root: Path = Path("/"), rail: str | None = None) -> None:
        self.root = root
        self.rail = rail

    def available(self) -> bool:
        return bool(read_rails(self.root))

    def total(self, rails: dict[str, float]) -> float | None:
        for name in (self.rail, *TOTAL_RAILS):
            if name and name in rails:
                return rails[name]
        return sum(rails.values()) if rails else None

    def read(self) -> PowerReading:
        rails = read_rails(self.root)
        return PowerReading(self.total(rails), self.source, rails)

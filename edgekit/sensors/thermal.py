"""Temperatures from ``/sys/class/thermal/thermal_zone*/{type,temp}`` (milli-degrees Celsius).

The profile names the zone by its ``type`` (``cpu-thermal`` on a Pi, ``x86_pkg_temp`` on Intel); zone numbers
differ between boards and kernels, so zones are found by type. Tests use a stand-in tree of the same shape.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.sensors.base import read_number, read_text


class ThermalZones:
    def __init__(self, root: Path = Path("/"), zone_type: str | None = None) -> None:
        self.base = root / "sys/class/thermal"
        self.zone_type = zone_type

    def zones(self) -> dict[str, float]:
        """Every readable zone: type -> degrees Celsius (a repeated type gets ``#n`` appended)."""
        out: dict[str, float] = {}
        for zone in sorted(self.base.glob("thermal_zone*"), key=lambda p: int(p.name[12:] or 0)):
            kind = read_text(zone / "type") or zone.name
            milli = read_number(zone / "temp")
            if milli is None:
                continue
            name, n = kind, 1
            while name in out:
                n += 1
                name = f"{kind}#{n}"
            out[name] = milli / 1000.0
        return out

    def read_celsius(self) -> float | None:
        """The profile's zone; without one (or when it is absent) the hottest zone, which is what throttles."""
        zones = self.zones()
        if not zones:
            return None
        if self.zone_type and self.zone_type in zones:
            return zones[self.zone_type]
        return max(zones.values())

"""Power without a sensor: P = idle + (max - idle) x CPU utilisation, from the profile, labelled ``estimated``.

A Raspberry Pi 4 has no power sensor; this model is what the agent reports there, and it says so in
``power_source``. It is never mixed with measured figures.
"""

from __future__ import annotations

from collections.abc import Callable

from edgekit.sensors.base import PowerReading


def system_utilisation() -> float:
    """Whole-machine CPU utilisation (0..1) since the previous call."""
    import psutil

    return float(psutil.cpu_percent(interval=None)) / 100.0


class EstimatedPower:
    source = "estimated"

    def __init__(self, idle_watts: float, max_watts: float,
                 utilisation: Callable[[], float] = system_utilisation) -> None:
        self.idle_watts = idle_watts
        self.max_watts = max_watts
        self.utilisation = utilisation

    def read(self) -> PowerReading:
        u = min(max(self.utilisation(), 0.0), 1.0)
        return PowerReading(self.idle_watts + (self.max_watts - self.idle_watts) * u, self.source)

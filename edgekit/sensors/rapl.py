"""Intel RAPL energy counters: ``/sys/class/powercap/intel-rapl:<N>/energy_uj`` (micro-joules).

Watts are the energy delta over the time between two reads. The counter wraps at ``max_energy_range_uj``.
Domains nest (``intel-rapl:0:0`` core and ``intel-rapl:0:1`` uncore are inside package ``intel-rapl:0``), so only
top-level package domains are summed (one per socket); ``psys`` (the whole platform) is used only when there is
no package domain. ``energy_uj`` is root-only since 2020: without access the sensor is unavailable. Tests use a
stand-in tree of the same shape.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.sensors.base import PowerReading, read_number, read_text


def top_level_domains(root: Path) -> list[Path]:
    base = root / "sys/class/powercap"
    tops = [p for p in sorted(base.glob("intel-rapl:*")) if re.fullmatch(r"intel-rapl:\d+", p.name)]
    readable = [p for p in tops if read_number(p / "energy_uj") is not None]
    packages = [p for p in readable if (read_text(p / "name") or "").startswith("package")]
    if packages:
        return packages
    return [p for p in readable if read_text(p / "name") == "psys"][:1]


def energy_delta(before: float, after: float, max_range: float | None) -> float:
    """Micro-joules between two counter values, across one wraparound."""
    if after >= before:
        return after - before
    return after + (max_range or 0.0) - before


class Rapl:
    source = "rapl"

    def __init__(self, root: Path = Path("/"), clock: Callable[[], float] = time.monotonic) -> None:
        self.domains = top_level_domains(root)
        self.clock = clock
        self._last: tuple[float, dict[str, float]] | None = None

    def available(self) -> bool:
        return bool(self.domains)

    def _counters(self) -> dict[str, float]:
        out = {}
        for d in self.domains:
            value = read_number(d / "energy_uj")
            if value is not None:
                out[d.name] = value
        return out

    def read(self) -> PowerReading:
        """Average watts since the previous read (None on the first read)."""
        now, counters = self.clock(), self._counters()
        last, self._last = self._last, (now, counters)
        if last is None or now <= last[0]:
            return PowerReading(None, self.source)
        rails = {}
        for name, value in counters.items():
            if name in last[1]:
                max_range = read_number(self.domains[0].parent / name / "max_energy_range_uj")
                rails[read_text(self.domains[0].parent / name / "name") or name] = (
                    energy_delta(last[1][name], value, max_range) / 1e6 / (now - last[0])
                )
        return PowerReading(sum(rails.values()) if rails else None, self.source, rails)

"""Telemetry over a window: latency percentiles, throughput, queue, batch sizes, errors and rejects, memory, CPU,
temperature, throttling, and power with energy per inference.

Power is sampled about once a second and integrated (trapezoid) over the window, so ``energy_per_inference_j`` is
window energy / answered requests and ``watts`` is the window's mean. ``power.source`` names the sensor or says
``estimated``; one source is chosen at start and never mixed with another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.sensors.base import PowerSensor
from edgekit.sensors.rpi_throttled import ThrottleReader
from edgekit.sensors.thermal import ThermalZones

POWER_SAMPLE_S = 1.0


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


@dataclass
class Window:
    """Counts for one telemetry window; the intake and the batcher record into it from their threads."""

    started: float = field(default_factory=time.monotonic)
    latencies_ms: list[float] = field(default_factory=list)
    batch_rows: list[int] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    rejects: int = 0


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = Window()

    def answered(self, total_ms: float, ok: bool) -> None:
        with self._lock:
            self._window.requests += 1
            if ok:
                self._window.latencies_ms.append(total_ms)
            else:
                self._window.errors += 1

    def rejected(self) -> None:
        with self._lock:
            self._window.requests += 1
            self._window.rejects += 1

    def batch(self, rows: int) -> None:
        with self._lock:
            self._window.batch_rows.append(rows)

    def take(self) -> Window:
        with self._lock:
            window, self._window = self._window, Window()
        return window


class PowerMeter:
    """Integrates a power sensor's watts over time."""

    def __init__(self, sensor: PowerSensor) -> None:
        self.sensor = sensor
        self._last: tuple[float, float] | None = None
        self._energy_j = 0.0
        self._covered_s = 0.0
        self.rails: dict[str, float] = {}

    def sample(self) -> None:
        reading = self.sensor.read()
        now = time.monotonic()
        if reading.watts is None:
            return
        self.rails = {k: round(v, 3) for k, v in reading.rails.items()}
        if self._last is not None:
            t0, w0 = self._last
            self._energy_j += (w0 + reading.watts) / 2.0 * (now - t0)
            self._covered_s += now - t0
        self._last = (now, reading.watts)

    def take(self) -> tuple[float | None, float | None]:
        """(mean watts, joules) since the previous take; (None, None) without two samples."""
        energy, covered = self._energy_j, self._covered_s
        self._energy_j = self._covered_s = 0.0
        if covered <= 0:
            return (self._last[1] if self._last else None), None
        return energy / covered, energy


class Telemetry:
    def __init__(self, stats: Stats, power: PowerMeter, thermal: ThermalZones, throttle: ThrottleReader,
                 gauges: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats
        self.power = power
        self.thermal = thermal
        self.throttle = throttle
        self.gauges = gauges
        self._last_power = 0.0
        import psutil

        self._proc = psutil.Process()
        self._proc.cpu_percent(None)

    def tick(self) -> None:
        """Called often by the main loop: samples power about once a second."""
        now = time.monotonic()
        if now - self._last_power >= POWER_SAMPLE_S:
            self._last_power = now
            self.power.sample()

    def body(self) -> dict[str, Any]:
        """The telemetry payload without the header (``v``, ``device_id``, ``seq``, ``ts``)."""
        self.power.sample()
        w = self.stats.take()
        window_s = max(time.monotonic() - w.started, 1e-3)
        watts, energy = self.power.take()
        answered = len(w.latencies_ms)
        g = self.gauges()
        return {
            "window_s": round(window_s, 3),
            "target": g["target"],
            "state": g["state"],
            "latency_ms": {"p50": percentile(w.latencies_ms, 50), "p95": percentile(w.latencies_ms, 95),
                           "p99": percentile(w.latencies_ms, 99)},
            "throughput_rps": round(answered / window_s, 3),
            "requests": w.requests,
            "errors": w.errors,
            "rejects": w.rejects,
            "queue_depth": g["queue_depth"],
            "batch": {"mean": round(float(np.mean(w.batch_rows)), 3) if w.batch_rows else None,
                      "max": max(w.batch_rows) if w.batch_rows else None, "limit": g["batch_limit"]},
            "memory": g["memory"],
            "cpu_percent": round(self._proc.cpu_percent(None), 1),
            "temperature_c": _round(self.thermal.read_celsius(), 1),
            "throttled": self.throttle.read(),
            "power": {"watts": _round(watts, 3), "source": self.power.sensor.source,
                      "energy_per_inference_j": _round(energy / answered, 4) if energy is not None and answered
                      else None, **({"rails": self.power.rails} if self.power.rails else {})},
            "spool": g["spool"],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)

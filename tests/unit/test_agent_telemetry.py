"""Telemetry window figures and every outgoing payload shape against the shipped JSON Schemas."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgekit.agent import payloads
from edgekit.agent.telemetry import PowerMeter, Stats, Telemetry, percentile
from edgekit.sensors.base import PowerReading
from edgekit.sensors.rpi_throttled import ThrottleReader
from edgekit.sensors.thermal import ThermalZones

pytestmark = pytest.mark.unit


class FixedPower:
    source = "ina3221"

    def read(self) -> PowerReading:
        return PowerReading(5.0, self.source, {"VDD_IN": 5.0})


def gauges() -> dict:
    return {"target": "onnx-fp32", "state": "serving", "queue_depth": 3, "batch_limit": 8,
            "memory": {"rss_mb": 90.0, "cap_mb": 256.0, "cgroup_current_mb": None, "cgroup_events": None},
            "spool": {"depth": 0, "dropped": 0}}


def test_window_percentiles_throughput_and_energy(tmp_path: Path) -> None:
    (tmp_path / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (tmp_path / "sys/class/thermal/thermal_zone0/type").write_text("cpu-thermal\n")
    (tmp_path / "sys/class/thermal/thermal_zone0/temp").write_text("47250\n")
    stats = Stats()
    meter = PowerMeter(FixedPower())
    tel = Telemetry(stats, meter, ThermalZones(tmp_path, "cpu-thermal"),
                    ThrottleReader(lambda argv: "throttled=0x50000\n"), gauges)
    meter.sample()
    for ms in range(1, 101):
        stats.answered(float(ms), ok=True)
    stats.answered(5.0, ok=False)
    stats.rejected()
    stats.batch(4)
    stats.batch(8)
    time.sleep(0.2)
    body = tel.body()
    assert body["latency_ms"]["p50"] == pytest.approx(50.5)
    assert body["latency_ms"]["p99"] == pytest.approx(99.01)
    assert body["requests"] == 102 and body["errors"] == 1 and body["rejects"] == 1
    assert body["batch"] == {"mean": 6.0, "max": 8, "limit": 8}
    assert body["temperature_c"] == 47.2 or body["temperature_c"] == 47.3
    assert body["throttled"]["occurred"]["under_voltage"] and not body["throttled"]["under_voltage"]
    assert body["power"]["source"] == "ina3221" and body["power"]["watts"] == 5.0
    # 5 W over the window, shared by the 100 answered requests
    assert body["power"]["energy_per_inference_j"] == pytest.approx(5.0 * body["window_s"] / 100, rel=0.2)
    data = {**payloads.header("dev", 7), **body}
    assert payloads.errors("telemetry", data) == []
    assert tel.body()["latency_ms"] == {"p50": None, "p95": None, "p99": None}  # the window was reset


def test_encode_refuses_a_payload_that_breaks_its_schema() -> None:
    good = {**payloads.header("dev", 1), "id": "r1", "status": "ok", "embeddings": [[0.1, 0.2]]}
    assert payloads.encode("result", good).startswith(b"{")
    with pytest.raises(ValueError, match="mqtt-result.schema.json"):
        payloads.encode("result", {**good, "status": "fine"})


def test_percentile_of_nothing() -> None:
    assert percentile([], 50) is None

"""A synthetic device: schema-valid status, telemetry and result payloads with per-device ``seq`` numbers.

It stands in for an agent when testing consumers (tests, the ingest benchmark, the examples in docs/telemetry.md).
It is not the agent and runs no model. Curves are deterministic for a given seed: load follows a slow wave, latency
and CPU follow load, temperature warms up, RSS creeps, power is the profile-style estimate ``idle + k·CPU``.
"""

from __future__ import annotations

import copy
import math
import random
import time
from typing import Any

_THROTTLE_FLAGS = ("under_voltage", "freq_capped", "throttled", "soft_temp_limit")  # vcgencmd get_throttled bits


class SyntheticDevice:
    def __init__(self, device_id: str = "sim-01", *, seed: int = 0, start: float | None = None,
                 window_s: float = 5.0, target: str = "onnx-int8-arm64", profile: str = "raspberry-pi-4",
                 cap_mb: int = 512, idle_watts: float = 2.7, max_watts: float = 6.4,
                 power_source: str = "estimated") -> None:
        self.device_id = device_id
        self.rng = random.Random(seed)
        self.now = time.time() if start is None else start
        self.window_s = window_s
        self.target, self.profile, self.cap_mb = target, profile, cap_mb
        self.idle_watts, self.max_watts, self.power_source = idle_watts, max_watts, power_source
        self.seq = 0
        self.bd_seq = 0
        self.windows = 0

    def _head(self) -> dict[str, Any]:
        head = {"v": 1, "device_id": self.device_id, "seq": self.seq, "ts": round(self.now, 3)}
        self.seq += 1
        return head

    def status(self, state: str = "online", **extra: Any) -> dict[str, Any]:
        msg = {**self._head(), "state": state, "bd_seq": self.bd_seq}
        if state == "online":
            msg.update(profile=self.profile, runtime="onnxruntime", target=self.target,
                       precision=next((p for p in ("int8", "fp16") if p in self.target), "fp32"),
                       bundle={"model": "all-minilm-l6-v2", "version": "0.1.0", "sha256": "9f2c" + "0" * 60},
                       cpu_features=["neon"], memory_cap_mb=self.cap_mb, edgekit_version="0.1.0",
                       selection=[f"profile {self.profile} prefers {self.target}"],
                       providers=["CPUExecutionProvider"])
        if state == "lost":
            msg["reason"] = "connection lost (Last Will)"
        msg.update(extra)
        return msg

    def telemetry(self, advance: bool = True) -> dict[str, Any]:
        """One window of telemetry; the clock moves on by ``window_s`` first (unless ``advance`` is False)."""
        if advance:
            self.now += self.window_s
        self.windows += 1
        r, i = self.rng, self.windows
        load = max(0.0, 20 + 14 * math.sin(2 * math.pi * i / 60) + r.gauss(0, 1.5))  # requests/s
        requests = int(load * self.window_s)
        p50 = 9.0 + 0.25 * load + r.gauss(0, 0.4)
        cpu = min(100.0, 8 + 2.6 * load + r.gauss(0, 2))
        watts = self.idle_watts + (self.max_watts - self.idle_watts) * cpu / 100
        state = "idle" if requests == 0 else "overloaded" if load > 32 else "serving"
        return {
            **self._head(), "window_s": self.window_s, "target": self.target, "state": state,
            "latency_ms": {"p50": round(p50, 2), "p95": round(p50 * 1.7, 2), "p99": round(p50 * 2.3, 2)}
            if requests else {"p50": None, "p95": None, "p99": None},
            "throughput_rps": round(requests / self.window_s, 2), "requests": requests,
            "errors": int(r.random() < 0.05), "rejects": 0, "queue_depth": max(0, int(r.gauss(load / 10, 1))),
            "batch": {"mean": round(1 + load / 12, 2), "max": int(2 + load / 6), "limit": 32} if requests else
            {"mean": None, "max": None, "limit": 32},
            "memory": {"rss_mb": round(180 + 0.15 * i + r.gauss(0, 1), 1), "cap_mb": self.cap_mb,
                       "soft_limit_mb": round(self.cap_mb * 0.85, 1), "pressure": False, "sheds": 0,
                       "cgroup_current_mb": round(200 + 0.15 * i, 1),
                       "cgroup_events": {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0}},
            "cpu_percent": round(max(0.0, cpu), 1),
            "temperature_c": round(48 + 14 * (1 - math.exp(-i / 40)) + 0.15 * load + r.gauss(0, 0.3), 1),
            "throttled": {"raw": "0x0", **dict.fromkeys(_THROTTLE_FLAGS, False),
                          "occurred": dict.fromkeys(_THROTTLE_FLAGS, False)},
            "power": {"watts": round(watts, 2), "source": self.power_source,
                      "energy_per_inference_j": round(watts / load, 4) if load >= 0.1 and requests else None},
            "spool": {"depth": 0, "bytes": 0, "dropped": 0, "dropped_by_kind": {}},
        }

    def result(self, texts: int = 2, dims: int = 8, request_id: str | None = None) -> dict[str, Any]:
        """An ``ok`` answer with small made-up embeddings (``dims`` wide; the real model gives 384)."""
        emb = [[round(self.rng.uniform(-0.3, 0.3), 4) for _ in range(dims)] for _ in range(texts)]
        total = round(self.rng.uniform(8, 20), 2)
        return {**self._head(), "id": request_id or f"req-{self.seq:06d}", "status": "ok", "target": self.target,
                "batch_size": texts, "latency_ms": {"queue": 0.4, "inference": round(total - 0.4, 2),
                                                    "total": total},
                "embeddings": emb}

    def error_result(self, code: str = "too-large", message: str = "batch of 300 exceeds max_batch 32",
                     request_id: str | None = None) -> dict[str, Any]:
        return {**self._head(), "id": request_id or f"req-{self.seq:06d}", "status": "error",
                "error": {"code": code, "message": message}}


def replayed(payload: dict[str, Any]) -> dict[str, Any]:
    """The same message as replayed from a device's disk spool: identical, plus ``historical: true``."""
    out = copy.deepcopy(payload)
    out["historical"] = True
    return out

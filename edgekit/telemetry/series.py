"""A recording as per-device time series, the common input of ``plot`` and ``summary``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from edgekit.telemetry.store import TelemetryStore

GAP_WINDOWS = 2.5  # no telemetry for this many windows: a gap (lines are broken there, not drawn across)


def png_name(device_id: str) -> str:
    """The chart file of a device: its id with anything unsafe in a file name replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id) + ".png"


@dataclass
class DeviceSeries:
    device_id: str
    ts: list[float] = field(default_factory=list)
    historical: list[bool] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    status: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    results: int = 0
    result_errors: int = 0
    seqs: dict[str, list[int]] = field(default_factory=dict)

    def values(self, *path: str) -> list[float]:
        """One telemetry field over time (``"latency_ms", "p50"``), NaN where absent or null."""
        out = []
        for msg in self.telemetry:
            v: Any = msg
            for key in path:
                v = v.get(key) if isinstance(v, dict) else None
            out.append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan)
        return out

    @property
    def window_s(self) -> float:
        windows = [float(m["window_s"]) for m in self.telemetry if isinstance(m.get("window_s"), int | float)]
        return sorted(windows)[len(windows) // 2] if windows else 5.0

    def gaps(self) -> list[tuple[float, float]]:
        """Spans with no telemetry for more than GAP_WINDOWS windows (data that never arrived)."""
        limit = GAP_WINDOWS * self.window_s
        return [(a, b) for a, b in zip(self.ts, self.ts[1:], strict=False) if b - a > limit]

    def replayed_spans(self) -> list[tuple[float, float]]:
        """Spans whose telemetry arrived late, replayed from the device's spool (``historical: true``)."""
        spans: list[tuple[float, float]] = []
        start = None
        for i, (t, hist) in enumerate(zip(self.ts, self.historical, strict=True)):
            if hist and start is None:
                start = t - self.window_s
            if start is not None and (not hist or i == len(self.ts) - 1):
                spans.append((start, t if hist else self.ts[i - 1]))
                start = None
        return spans

    def missing_seqs(self) -> tuple[int, list[tuple[int, int]]]:
        """How many seq numbers never arrived, and the missing ranges. One counter per device, as the contract
        says; if the kinds' numbers overlap (an agent counting per topic), each kind is checked on its own."""
        all_seqs = [s for seqs in self.seqs.values() for s in seqs]
        groups = list(self.seqs.values()) if len(set(all_seqs)) < len(all_seqs) else [all_seqs]
        missing, ranges = 0, []
        for seqs in groups:
            ordered = sorted(set(seqs))
            for a, b in zip(ordered, ordered[1:], strict=False):
                if b - a > 1:
                    missing += b - a - 1
                    ranges.append((a + 1, b - 1))
        return missing, sorted(ranges)

    def last(self, kind: str = "telemetry") -> dict[str, Any]:
        if kind == "status":
            return self.status[-1][1] if self.status else {}
        return self.telemetry[-1] if self.telemetry else {}

    def first_status(self, key: str) -> Any:
        for _ts, st in reversed(self.status):
            if st.get(key) is not None:
                return st[key]
        return None


def load_series(store: TelemetryStore, device: str = "all") -> dict[str, DeviceSeries]:
    out: dict[str, DeviceSeries] = {}
    for dev, kind, msg in store.messages(None if device == "all" else device):
        s = out.setdefault(dev, DeviceSeries(dev))
        s.seqs.setdefault(kind, []).append(msg.seq)
        if kind == "telemetry":
            s.ts.append(msg.ts)
            s.historical.append(msg.historical)
            s.telemetry.append(msg.data)
        elif kind == "status":
            # A Last Will is composed when the agent connects, so its ts is that moment; the loss itself is when
            # the broker published it, i.e. when it was received.
            s.status.append((msg.received if msg.data.get("state") == "lost" else msg.ts, msg.data))
        elif kind == "results":
            s.results += 1
            s.result_errors += msg.data.get("status") == "error"
    for s in out.values():
        s.status.sort(key=lambda item: item[0])
    return out

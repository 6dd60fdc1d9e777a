"""Latency of one artifact on this machine: warm-up, then timed runs until a count or a time budget is reached."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgekit.manifest import Latency

Feeds = dict[str, np.ndarray]


def time_runs(run: Callable[[Feeds], object], feeds: Feeds, *, runs: int = 50, warmup: int = 5,
              budget_s: float = 5.0) -> list[float]:
    """Milliseconds per call; stops early after ``budget_s`` seconds (but never under 10 runs)."""
    for _ in range(warmup):
        run(feeds)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (len(times) < 10 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        run(feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def summarize(times: list[float], *, batch: int, precision: str | None, seq: int | None) -> Latency:
    arr = np.asarray(times)
    return Latency(p50=round(float(np.percentile(arr, 50)), 3), p95=round(float(np.percentile(arr, 95)), 3),
                   batch=batch, precision=precision, seq=seq)


def measure(run: Callable[[Feeds], object], feeds: Feeds, *, precision: str | None, seq: int | None = None,
            runs: int = 50, budget_s: float = 5.0) -> Latency:
    batch = int(next(iter(feeds.values())).shape[0]) if feeds else 1
    return summarize(time_runs(run, feeds, runs=runs, budget_s=budget_s), batch=batch, precision=precision, seq=seq)

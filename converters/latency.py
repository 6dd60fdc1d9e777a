"""Latency of one artifact on this machine: warm-up, then timed runs until a count or a time budget is reached."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgekit.manifest import Latency

Feeds = dict[str, np.ndarray]


def claimed_precision(precision: str) -> str:
    """The label of an artifact's own precision (fp32/fp16/int8) as latency tables print it."""
    return {"fp32": "f32", "fp16": "fp16", "int8": "int8"}[precision]


def ran_at(runtime: str, precision: str, runner_precision: str) -> str:
    """The precision a latency figure ran at: the runtime's float precision (OpenVINO reports its inference
    precision hint; ONNX Runtime's CPU provider never silently lowers it), prefixed with int8 for INT8 artifacts."""
    floating = runner_precision
    if runtime == "onnxruntime":
        floating = "fp16" if precision == "fp16" else "f32"
    if precision == "int8" and not floating.startswith("int8"):
        return f"int8+{floating}"
    return floating


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

"""The memory cap, in layers.

1. Admission: before loading, estimate what the artifact needs (file size x a factor per format/precision + the
   agent's own baseline) and refuse to start when it cannot fit. The factor is replaced by the figure measured the
   last time this artifact was loaded on this device (kept beside the spool), so the estimate calibrates itself.
2. Working memory: after loading, two warm-up runs measure peak memory per batch shape (via the kernel's peak-RSS
   reset, ``/proc/self/clear_refs``), and batches are split so a run stays under the soft limit.
3. Watchdog: RSS and, in a cgroup v2, ``memory.current`` / ``memory.events``. Above the soft limit (profile
   ``soft_limit_pct``) the agent sheds load: new requests get ``overloaded`` and the batch limit halves.
4. Where the agent runs in a delegated (writable) cgroup v2 it sets ``memory.high`` (soft) and ``memory.max`` (cap)
   itself; it never raises a limit someone else set. RLIMIT_AS is deliberately not used: it counts address space,
   not memory, and native runtimes fail under it long before RSS reaches the cap.

glibc is told to return freed buffers to the kernel (fixed mmap threshold, 2 arenas): without this, RSS after one
large batch stays at its peak for the life of the process. When the cap leaves little room above the loaded model
the threshold drops to 256 KB, trading some speed for memory that goes back at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import AgentConfigError
from edgekit.manifest import Artifact

log = logging.getLogger(__name__)

MB = 1 << 20
# Measured on x86_64 with ONNX Runtime 1.31 (arena off) and this agent's imports; see benchmarks/results/agent.md.
AGENT_BASELINE_MB = 70.0
# Resident memory per MB of artifact file after loading (weights plus the runtime's prepacked copies).
LOAD_FACTOR = {("onnx", "int8"): 2.2, ("onnx", "fp16"): 2.0, ("onnx", "fp32"): 1.5,
               ("openvino-ir", "int8"): 2.5, ("openvino-ir", "fp16"): 2.5, ("openvino-ir", "fp32"): 2.0,
               ("tflite", "int8"): 1.3, ("tflite", "fp16"): 2.2, ("tflite", "fp32"): 1.3}
DEFAULT_LOAD_FACTOR = 2.5
# Room for at least a small batch on top of the loaded model.
MIN_WORKING_MB = 8.0

# glibc mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None


# glibc serves allocations above this from mmap, so they go back to the kernel when freed. 4 MB keeps a model's
# per-layer buffers in the reused heap (page-faulting fresh mmaps made batched MiniLM runs ~2x slower);
# 256 KB returns nearly everything, for caps with little room above the loaded model.
MMAP_THRESHOLD = 4 << 20
TIGHT_MMAP_THRESHOLD = 256 << 10
TIGHT_BUDGET_MB = 64.0


def tune_malloc(arenas: int = 2, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Make glibc give large freed buffers back to the kernel (arena count only matters before threads start).
    False off glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    ok = libc.mallopt(_M_ARENA_MAX, arenas) and libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, 4 * mmap_threshold)
    return bool(ok)


def malloc_trim() -> None:
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / MB


class PeakMeter:
    """The process's peak RSS since the last reset (``VmHWM``; reset by writing 5 to ``clear_refs``)."""

    def __init__(self, proc: Path = Path("/proc/self")) -> None:
        self.proc = proc

    def reset(self) -> bool:
        try:
            (self.proc / "clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_mb(self) -> float | None:
        try:
            for line in (self.proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, IndexError):
            pass
        return None


# --- admission ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    mb: float
    how: str


class Calibration:
    """Measured figures per artifact sha256, kept in a small JSON file beside the spool."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict[str, float]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def get(self, sha256: str) -> dict[str, float]:
        return self.data.get(sha256, {})

    def put(self, sha256: str, **values: float) -> None:
        self.data.setdefault(sha256, {}).update({k: round(v, 3) for k, v in values.items()})
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as err:
            log.warning("cannot save memory calibration to %s: %s", self.path, err)


def estimate_load(artifact: Artifact, calibration: Calibration | None = None) -> Estimate:
    size_mb = artifact.size_bytes / MB
    measured = calibration.get(artifact.sha256) if calibration else {}
    if "load_mb" in measured:
        return Estimate(AGENT_BASELINE_MB + measured["load_mb"],
                        f"baseline {AGENT_BASELINE_MB:.0f} MB + {measured['load_mb']:.0f} MB measured when this "
                        "artifact was last loaded here")
    factor = LOAD_FACTOR.get((artifact.format, artifact.precision), DEFAULT_LOAD_FACTOR)
    return Estimate(AGENT_BASELINE_MB + size_mb * factor,
                    f"baseline {AGENT_BASELINE_MB:.0f} MB + {size_mb:.1f} MB file x {factor} "
                    f"({artifact.format} {artifact.precision})")


def admits(estimate: Estimate, cap_mb: float, soft_pct: int) -> bool:
    return estimate.mb + MIN_WORKING_MB <= cap_mb * soft_pct / 100.0


def refuse(artifact: Artifact, estimate: Estimate, cap_mb: float, soft_pct: int, others: list[str]) -> AgentConfigError:
    need = int((estimate.mb + MIN_WORKING_MB) * 100 / soft_pct) + 1
    alt = f", or force a smaller artifact with --target ({', '.join(others)})" if others else ""
    return AgentConfigError(
        f"artifact {artifact.target} does not fit the memory cap: it needs about {estimate.mb:.0f} MB "
        f"({estimate.how}) plus {MIN_WORKING_MB:.0f} MB to run, and the soft limit is {soft_pct}% of "
        f"{cap_mb:.0f} MB = {cap_mb * soft_pct / 100:.0f} MB; raise --memory-cap to at least {need}{alt}"
    )


# --- working memory per batch shape --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkCost:
    """Peak MB of one run of ``rows`` sequences of ``length`` tokens: rows x length x (a + b x length) KB.

    The length-squared term is attention; both coefficients are fitted to two measured warm-up runs.
    """

    a_kb: float
    b_kb: float

    def __call__(self, rows: int, length: int) -> float:
        return rows * length * (self.a_kb + self.b_kb * length) / 1024.0

    @staticmethod
    def fit(short: tuple[int, int, float], long: tuple[int, int, float]) -> WorkCost:
        """From two (rows, length, peak MB) points; falls back to a linear model when the points disagree."""
        (r1, l1, m1), (r2, l2, m2) = short, long
        y1, y2 = m1 * 1024 / (r1 * l1), m2 * 1024 / (r2 * l2)  # KB per token at each length
        b = (y2 - y1) / (l2 - l1) if l2 != l1 else 0.0
        if b < 0:
            return WorkCost(max(y1, y2), 0.0)
        return WorkCost(max(y1 - b * l1, 0.0), b)


# --- cgroup v2 ------------------------------------------------------------------------------------------------------
class CgroupMemory:
    """This process's cgroup v2 memory files, if any (``/proc/self/cgroup`` line ``0::/path``)."""

    def __init__(self, root: Path = Path("/"), proc_cgroup: Path | None = None) -> None:
        self.dir = self._find(root, proc_cgroup or root / "proc/self/cgroup")

    @staticmethod
    def _find(root: Path, proc_cgroup: Path) -> Path | None:
        try:
            lines = proc_cgroup.read_text().splitlines()
        except OSError:
            return None
        rel = next((line[3:] for line in lines if line.startswith("0::")), None)
        if rel is None:
            return None
        for mount in ("sys/fs/cgroup", "sys/fs/cgroup/unified"):
            d = root / mount / rel.lstrip("/")
            if (d / "memory.current").exists():
                return d
        return None

    def current_mb(self) -> float | None:
        value = self._read("memory.current")
        return int(value) / MB if value and value.isdigit() else None

    def events(self) -> dict[str, int] | None:
        text = self._read("memory.events")
        if text is None:
            return None
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    def limit_mb(self, name: str = "memory.max") -> float | None:
        value = self._read(name)
        return int(value) / MB if value and value.isdigit() else None

    def apply(self, cap_mb: float, soft_pct: int) -> list[str]:
        """Set memory.high and memory.max where writable and not already lower. Returns what was done."""
        done: list[str] = []
        if self.dir is None:
            return done
        for name, mb in (("memory.high", cap_mb * soft_pct / 100.0), ("memory.max", cap_mb)):
            path = self.dir / name
            current = self.limit_mb(name)
            if current is not None and current <= mb:
                done.append(f"{name} already {current:.0f} MB")
                continue
            if not os.access(path, os.W_OK):
                continue
            try:
                path.write_text(str(int(mb * MB)))
                done.append(f"set {name} = {mb:.0f} MB")
            except OSError as err:
                log.info("cannot write %s: %s (not a delegated cgroup)", path, err.strerror)
        return done

    def _read(self, name: str) -> str | None:
        if self.dir is None:
            return None
        try:
            return (self.dir / name).read_text().strip()
        except OSError:
            return None


# --- watchdog -------------------------------------------------------------------------------------------------------
@dataclass
class MemoryState:
    rss_mb: float
    cap_mb: float
    cgroup_current_mb: float | None = None
    cgroup_events: dict[str, int] | None = None
    pressure: bool = False
    sheds: int = 0
    reasons: list[str] = field(default_factory=list)


class MemoryWatchdog:
    """Decides when to shed load. Pressure starts at ``soft_pct`` of the cap (RSS or cgroup ``memory.current``
    minus page cache is not available, so cgroup usage only counts through its ``high``/``max`` events) and ends
    ``hysteresis_pct`` below it."""

    def __init__(self, cap_mb: float, soft_pct: int, cgroup: CgroupMemory | None = None,
                 rss: Callable[[], float] = rss_mb, hysteresis_pct: int = 5) -> None:
        self.cap_mb = cap_mb
        self.soft_mb = cap_mb * soft_pct / 100.0
        self.resume_mb = cap_mb * (soft_pct - hysteresis_pct) / 100.0
        self.cgroup = cgroup
        self.rss = rss
        self.state = MemoryState(rss_mb=0.0, cap_mb=cap_mb)
        self._last_events: dict[str, int] | None = None
        self._last_shed = 0.0

    def check(self) -> MemoryState:
        st = self.state
        st.rss_mb = self.rss()
        if self.cgroup is not None and self.cgroup.dir is not None:
            st.cgroup_current_mb = self.cgroup.current_mb()
            st.cgroup_events = self.cgroup.events()
        reasons = []
        if st.rss_mb >= self.soft_mb:
            reasons.append(f"RSS {st.rss_mb:.0f} MB >= soft limit {self.soft_mb:.0f} MB")
        events = st.cgroup_events or {}
        if self._last_events is not None:
            for key in ("high", "max", "oom"):
                if events.get(key, 0) > self._last_events.get(key, 0):
                    reasons.append(f"cgroup memory.events {key} rose to {events[key]}")
        self._last_events = dict(events)
        was = st.pressure
        if reasons:
            st.pressure = True
            self._last_shed = time.monotonic()
        elif st.pressure and st.rss_mb < self.resume_mb and time.monotonic() - self._last_shed > 1.0:
            st.pressure = False
        if st.pressure and not was:
            st.sheds += 1
            log.warning("memory pressure: %s; shedding load", "; ".join(reasons))
        elif was and not st.pressure:
            log.info("memory pressure over (RSS %.0f MB)", st.rss_mb)
        st.reasons = reasons
        return st

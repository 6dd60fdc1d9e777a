"""Memory cap layers: admission estimate and refusal, calibration, working-memory model, cgroup v2 files
(a stand-in /sys/fs/cgroup tree shaped like a delegated systemd cgroup), and the shedding watchdog."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.agent.memory import (
    AGENT_BASELINE_MB,
    Calibration,
    CgroupMemory,
    MemoryWatchdog,
    PeakMeter,
    WorkCost,
    admits,
    estimate_load,
    refuse,
)
from edgekit.manifest import Artifact

pytestmark = pytest.mark.unit

MB = 1 << 20


def artifact(size_mb: float, precision: str = "int8") -> Artifact:
    return Artifact(target=f"onnx-{precision}", path="m.onnx", format="onnx", precision=precision,
                    size_bytes=int(size_mb * MB), sha256="a" * 64, runtime="onnxruntime")


def test_estimate_admission_and_the_refusal_message(tmp_path: Path) -> None:
    a = artifact(22.0)
    est = estimate_load(a)
    assert est.mb == pytest.approx(AGENT_BASELINE_MB + 22 * 2.2)
    assert admits(est, 256, 90) and not admits(est, 100, 90)
    err = refuse(a, est, 100, 90, ["onnx-int8-arm64"])
    text = str(err)
    assert "does not fit the memory cap" in text and "raise --memory-cap to at least" in text
    assert "--target" in text


def test_calibration_replaces_the_factor(tmp_path: Path) -> None:
    cal = Calibration(tmp_path / "cal.json")
    a = artifact(22.0)
    cal.put(a.sha256, load_mb=30.0)
    again = Calibration(tmp_path / "cal.json")
    est = estimate_load(a, again)
    assert est.mb == pytest.approx(AGENT_BASELINE_MB + 30.0)
    assert "measured" in est.how


def test_work_cost_fit() -> None:
    # Points shaped like MiniLM-int8 measurements: a + b*L KB per token.
    a, b = 3.3, 0.095
    pts = [(4, L, 4 * L * (a + b * L) / 1024) for L in (16, 128)]
    cost = WorkCost.fit(*pts)
    assert cost.a_kb == pytest.approx(a, rel=1e-6) and cost.b_kb == pytest.approx(b, rel=1e-6)
    assert cost(32, 128) == pytest.approx(32 * 128 * (a + b * 128) / 1024)
    flat = WorkCost.fit((4, 16, 10.0), (4, 128, 1.0))  # noisy: falls back to linear, conservatively
    assert flat.b_kb == 0 and flat.a_kb > 0


def test_peak_meter_on_this_kernel() -> None:
    meter = PeakMeter()
    if not meter.reset():
        pytest.skip("no /proc/self/clear_refs here")
    before = meter.peak_mb()
    blob = bytearray(64 * MB)
    blob[::4096] = b"x" * len(blob[::4096])
    assert meter.peak_mb() is not None and meter.peak_mb() >= (before or 0) + 50
    del blob


def cgroup_tree(root: Path, max_value: str = "max", high: str = "max", events: str = "") -> Path:
    """/proc/self/cgroup and /sys/fs/cgroup/<path>/memory.* as on a cgroup v2 system under systemd."""
    rel = "system.slice/edgekit-agent.service"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(f"0::/{rel}\n")
    d = root / "sys/fs/cgroup" / rel
    d.mkdir(parents=True)
    (root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (d / "memory.current").write_text(str(120 * MB) + "\n")
    (d / "memory.max").write_text(max_value + "\n")
    (d / "memory.high").write_text(high + "\n")
    (d / "memory.events").write_text(events or "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n")
    return d


def test_cgroup_limits_are_set_when_delegated_and_never_raised(tmp_path: Path) -> None:
    d = cgroup_tree(tmp_path)
    cg = CgroupMemory(tmp_path)
    assert cg.dir == d and cg.current_mb() == 120.0
    assert cg.events() == {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0, "oom_group_kill": 0}
    done = cg.apply(200, 90)
    assert done == ["set memory.high = 180 MB", "set memory.max = 200 MB"]
    assert (d / "memory.max").read_text() == str(200 * MB)
    assert (d / "memory.high").read_text() == str(180 * MB)
    # systemd's MemoryMax= lower than our cap stays as it is
    (d / "memory.max").write_text(str(150 * MB))
    assert "memory.max already 150 MB" in CgroupMemory(tmp_path).apply(200, 90)
    assert (d / "memory.max").read_text() == str(150 * MB)


def test_no_cgroup_v2_is_fine(tmp_path: Path) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text("4:memory:/x\n0::/\n")
    cg = CgroupMemory(tmp_path)
    assert cg.dir is None and cg.current_mb() is None and cg.events() is None and cg.apply(100, 90) == []


def test_watchdog_sheds_above_the_soft_limit_and_recovers_with_hysteresis(tmp_path: Path) -> None:
    rss = [100.0]
    wd = MemoryWatchdog(200, 90, None, rss=lambda: rss[0])
    assert not wd.check().pressure
    rss[0] = 185.0
    st = wd.check()
    assert st.pressure and st.sheds == 1 and "RSS 185 MB" in st.reasons[0]
    rss[0] = 175.0  # below 90 % but above 85 %: still shedding
    assert wd.check().pressure
    rss[0] = 120.0
    wd._last_shed -= 2  # noqa: SLF001 - skip the one-second hold
    assert not wd.check().pressure


def test_watchdog_counts_cgroup_high_events(tmp_path: Path) -> None:
    d = cgroup_tree(tmp_path)
    wd = MemoryWatchdog(1000, 90, CgroupMemory(tmp_path), rss=lambda: 50.0)
    assert not wd.check().pressure
    (d / "memory.events").write_text("low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\n")
    st = wd.check()
    assert st.pressure and "high rose to 3" in st.reasons[0]
    assert st.cgroup_current_mb == 120.0

"""Which artifact of the bundle this device runs, and why.

Order: ``--target`` when given; otherwise the profile's ``targets`` (most preferred first), then anything else
the bundle has. Candidates whose runtime is not installed are dropped; FP16 ONNX needs a GPU provider; targets
built for another CPU architecture go last. INT8 is moved ahead of FP32 on CPUs with INT8 dot-product
instructions (ARM ``dotprod``/``i8mm``, x86 VNNI/AMX), and behind FP32 on CPUs without them when the bundle's
benchmark says INT8 is not faster (a Raspberry Pi 4's Cortex-A72). The reasons are returned for the log and the
status birth message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgekit.errors import AgentConfigError
from edgekit.manifest import Artifact, Manifest, Report
from edgekit.runtimes import runtime_available

INT8_DOT = frozenset({"dotprod", "i8mm", "avx512_vnni", "avx_vnni", "amx"})
# INT8 must be at least this much faster than FP32 in the bundle's benchmark to be kept first without dot-product.
INT8_MIN_SPEEDUP = 1.05


@dataclass(frozen=True)
class Choice:
    artifact: Artifact
    reasons: tuple[str, ...]


@dataclass
class _Cand:
    artifact: Artifact
    rank: float
    notes: list[str]


def _arches(target: str) -> frozenset[str] | None:
    try:
        from converters.registry import get_target
    except ImportError:  # a device install without the converters package
        return None
    try:
        return get_target(target).arches
    except Exception:  # noqa: BLE001 - an unregistered target just has no arch restriction here
        return None


def benchmark_p50(manifest: Manifest, report: Report | None) -> dict[str, float]:
    """target -> p50 latency (ms) from report.json rows or the artifacts' ``details.latency_ms``."""
    out: dict[str, float] = {}
    for a in manifest.artifacts:
        lat = a.details.get("latency_ms") if isinstance(a.details, dict) else None
        if isinstance(lat, dict) and isinstance(lat.get("p50"), (int, float)):
            out[a.target] = float(lat["p50"])
    if report is not None:
        for row in report.rows:
            if row.latency_ms is not None and row.status == "ok":
                out[row.target] = row.latency_ms.p50
    return out


def rank(
    manifest: Manifest,
    preferred: Sequence[str],
    arch: str,
    isa: Sequence[str],
    report: Report | None = None,
    forced: str | None = None,
    gpu_providers: Sequence[str] = (),
    available: Callable[[str], bool] = runtime_available,
) -> list[Choice]:
    """Every runnable artifact, best first, each with the reasons for its place."""
    runnable = [a for a in manifest.artifacts if a.status != "failed"]
    if forced is not None:
        for a in runnable:
            if a.target == forced:
                if not available(a.runtime):
                    raise AgentConfigError(
                        f"--target {forced!r} needs runtime {a.runtime!r}, which is not installed here; install "
                        "its extra (see 'edgekit env') or choose another target")
                note = f"--target {forced} forces it"
                arches = _arches(forced)
                if arches is not None and arch not in arches:
                    note += f" (built for {'/'.join(sorted(arches))}, this CPU is {arch})"
                return [Choice(a, (note,))]
        have = ", ".join(a.target for a in runnable) or "none"
        raise AgentConfigError(f"--target {forced!r} is not in this bundle; it has: {have}")

    bench = benchmark_p50(manifest, report)
    has_dot = bool(INT8_DOT & set(isa))
    cands: list[_Cand] = []
    for a in runnable:
        if not available(a.runtime):
            continue
        if a.target in preferred:
            c = _Cand(a, float(preferred.index(a.target)), [f"position {preferred.index(a.target) + 1} in the "
                                                           "profile's targets"])
        else:
            c = _Cand(a, 100.0 + manifest.artifacts.index(a), ["not in the profile's targets"])
        arches = _arches(a.target)
        if arches is not None and arch not in arches:
            c.rank += 1000
            c.notes.append(f"built for {'/'.join(sorted(arches))}, this CPU is {arch}")
        if a.precision == "fp16" and a.format == "onnx" and not gpu_providers:
            c.rank += 500
            c.notes.append("FP16 ONNX without a GPU provider runs slowly on the CPU")
        cands.append(c)
    if not cands:
        have = ", ".join(f"{a.target} ({a.runtime})" for a in runnable) or "none"
        raise AgentConfigError(f"no artifact of this bundle can run here: it has {have} and none of those runtimes "
                               "is installed; install the runtime's extra, e.g. pip install 'edgekit[agent]'")
    _order_int8(cands, has_dot, bench, isa)
    cands.sort(key=lambda c: c.rank)
    return [Choice(c.artifact, tuple(c.notes)) for c in cands]


def _order_int8(cands: list[_Cand], has_dot: bool, bench: dict[str, float], isa: Sequence[str]) -> None:
    fp32 = [c for c in cands if c.artifact.precision == "fp32"]
    for c in (c for c in cands if c.artifact.precision == "int8"):
        sibling = next((f for f in fp32 if f.artifact.runtime == c.artifact.runtime), None)
        if sibling is None:
            continue
        if has_dot:
            if c.rank > sibling.rank and c.rank < 1000:
                c.rank = sibling.rank - 0.5
                c.notes.append(f"moved ahead of {sibling.artifact.target}: the CPU has INT8 dot-product "
                               f"instructions ({', '.join(sorted(INT8_DOT & set(isa)))})")
            continue
        t_int8, t_fp32 = bench.get(c.artifact.target), bench.get(sibling.artifact.target)
        if t_int8 is None or t_fp32 is None:
            if c.rank < sibling.rank:
                c.notes.append("no INT8 dot-product on this CPU, and the bundle has no benchmark to compare; "
                               "keeping the profile's order")
            continue
        if t_int8 * INT8_MIN_SPEEDUP > t_fp32 and c.rank < sibling.rank:
            c.rank = sibling.rank + 0.5
            c.notes.append(f"moved behind {sibling.artifact.target}: no INT8 dot-product on this CPU and the "
                           f"bundle's benchmark says INT8 is not faster ({t_int8:.2f} ms vs {t_fp32:.2f} ms p50)")

"""``telemetry plot``: one PNG dashboard per device, plus summary.md.

Six panels on one time axis: latency percentiles, throughput, memory against the cap, temperature, power (labelled
with its source; measured and estimated watts are never drawn as one line) and energy per inference. Status
changes are vertical lines, spans replayed from the device's spool are shaded orange, spans with no data grey.
matplotlib (Agg) is imported only here.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from edgekit.errors import NotAvailableError
from edgekit.telemetry.series import DeviceSeries, load_series, png_name
from edgekit.telemetry.store import TelemetryStore
from edgekit.telemetry.summary import write_summary

_STATUS_COLOURS = {"online": "#2e7d32", "offline": "#616161", "lost": "#c62828"}
_REPLAY = "#ff9800"
_GAP = "#9e9e9e"


def _times(ts: list[float]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(t) for t in ts]


def _broken(series: DeviceSeries, values: list[float]) -> tuple[list[dt.datetime], list[float]]:
    """Times and values with a NaN inserted in every gap, so lines are not drawn across missing data."""
    xs, ys = [], []
    gaps = {a for a, _ in series.gaps()}
    for t, v in zip(series.ts, values, strict=True):
        xs.append(dt.datetime.fromtimestamp(t))
        ys.append(v)
        if t in gaps:
            xs.append(dt.datetime.fromtimestamp(t + series.window_s))
            ys.append(math.nan)
    return xs, ys


def _decorate(ax: Any, series: DeviceSeries, label_events: bool) -> None:
    for a, b in series.replayed_spans():
        ax.axvspan(dt.datetime.fromtimestamp(a), dt.datetime.fromtimestamp(b), color=_REPLAY, alpha=0.12, lw=0)
    for a, b in series.gaps():
        ax.axvspan(dt.datetime.fromtimestamp(a), dt.datetime.fromtimestamp(b), color=_GAP, alpha=0.18, lw=0)
    lo, hi = (series.ts[0], series.ts[-1]) if series.ts else (-math.inf, math.inf)
    close = 0.04 * ((hi - lo) if series.ts and hi > lo else 60.0)
    last_label, stack = -math.inf, 0
    for ts, st in series.status:
        state = st.get("state")
        if state not in _STATUS_COLOURS or not lo - series.window_s <= ts <= hi + series.window_s:
            continue
        ax.axvline(dt.datetime.fromtimestamp(ts), color=_STATUS_COLOURS[state], lw=1.2, ls=(0, (4, 3)), alpha=0.8)
        if label_events:
            stack = stack + 1 if ts - last_label < close else 0  # events close together: stack their labels
            last_label = ts
            ax.annotate(state, (dt.datetime.fromtimestamp(ts), 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -3 - 11 * stack), textcoords="offset points", va="top", fontsize=8,
                        color=_STATUS_COLOURS[state], fontweight="bold")
    ax.grid(True, alpha=0.3, lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def _nanmax(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan


def plot_device(series: DeviceSeries, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(3, 2, figsize=(14, 9.6), sharex=True, dpi=110)
    (ax_lat, ax_thr), (ax_mem, ax_tmp), (ax_pow, ax_enj) = axes

    for key, style, colour in (("p50", "-", "#1565c0"), ("p95", "-", "#ef6c00"), ("p99", ":", "#c62828")):
        ax_lat.plot(*_broken(series, series.values("latency_ms", key)), ls=style, color=colour, lw=1.6, label=key)
    x, p50 = _broken(series, series.values("latency_ms", "p50"))
    _, p95 = _broken(series, series.values("latency_ms", "p95"))
    ax_lat.fill_between(x, p50, p95, color="#ef6c00", alpha=0.10, lw=0)
    ax_lat.set_title("Latency (ms)", loc="left", fontweight="bold")
    ax_lat.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False)

    x, thr = _broken(series, series.values("throughput_rps"))
    ax_thr.plot(x, thr, color="#2e7d32", lw=1.6)
    ax_thr.fill_between(x, 0, thr, color="#2e7d32", alpha=0.12, lw=0)
    errors = sum(int(m.get("errors") or 0) for m in series.telemetry)
    rejects = sum(int(m.get("rejects") or 0) for m in series.telemetry)
    ax_thr.set_title(f"Throughput (req/s) · peak {_nanmax(thr):.1f} · {errors} error(s), {rejects} reject(s)",
                     loc="left", fontweight="bold")

    x, rss = _broken(series, series.values("memory", "rss_mb"))
    _, cap = _broken(series, series.values("memory", "cap_mb"))
    _, cg = _broken(series, series.values("memory", "cgroup_current_mb"))
    ax_mem.plot(x, rss, color="#6a1b9a", lw=1.6, label="RSS")
    ax_mem.fill_between(x, 0, rss, color="#6a1b9a", alpha=0.10, lw=0)
    if any(not math.isnan(v) for v in cg):
        ax_mem.plot(x, cg, color="#ab47bc", lw=1.0, ls="--", label="cgroup")
    if any(not math.isnan(v) for v in cap):
        ax_mem.plot(x, cap, color="#c62828", lw=1.6, ls="--", label="cap")
    top = _nanmax([*rss, *cap, *cg])
    ax_mem.set_ylim(0, top * 1.12 if not math.isnan(top) else 1)
    peak = _nanmax(rss)
    ax_mem.set_title(f"Memory (MB) · peak RSS {peak:.0f} of cap {_nanmax(cap):.0f}", loc="left", fontweight="bold")
    ax_mem.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False)

    x, temp = _broken(series, series.values("temperature_c"))
    ax_tmp.plot(x, temp, color="#d84315", lw=1.6)
    tmax = _nanmax(temp)
    ax_tmp.set_title(f"Temperature (°C) · max {tmax:.1f}" if not math.isnan(tmax) else "Temperature (°C)",
                     loc="left", fontweight="bold")

    sources = sorted({str((m.get("power") or {}).get("source")) for m in series.telemetry} - {"None"})
    watts = series.values("power", "watts")
    src = [str((m.get("power") or {}).get("source")) for m in series.telemetry]
    for source, colour in zip(sources, ("#0277bd", "#00897b", "#5d4037"), strict=False):
        only = [w if s == source else math.nan for w, s in zip(watts, src, strict=True)]
        ax_pow.plot(*_broken(series, only), color=colour, lw=1.6, ls="--" if source == "estimated" else "-",
                    label=source)
    ax_pow.set_title(f"Power (W) · source: {', '.join(sources) or 'none'}", loc="left", fontweight="bold")
    if len(sources) > 1:
        ax_pow.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False)

    x, enj = _broken(series, [v * 1000 for v in series.values("power", "energy_per_inference_j")])
    ax_enj.plot(x, enj, color="#00838f", lw=1.6)
    finite = sorted(v for v in enj if not math.isnan(v))
    med = finite[len(finite) // 2] if finite else math.nan
    ax_enj.set_title(f"Energy per inference (mJ) · median {med:.0f}" + (" (estimated)" if sources == ["estimated"]
                                                                          else ""), loc="left", fontweight="bold")

    with_data = {ax for ax in axes.flat  # before _decorate adds the status lines
                 if any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any() for line in ax.get_lines())}
    for i, ax in enumerate(axes.flat):
        _decorate(ax, series, label_events=i < 2)
        if ax not in with_data:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "not reported by this device", transform=ax.transAxes, ha="center", va="center",
                    color="#757575", fontsize=11, style="italic")
        elif ax is not ax_tmp:
            ax.set_ylim(bottom=0)
    for ax in axes[-1]:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))

    status = series.last("status")
    target = series.last().get("target") or status.get("target") or series.first_status("target") or "?"
    profile = series.first_status("profile")
    span = (series.ts[-1] - series.ts[0]) if series.ts else 0.0
    when = (dt.datetime.fromtimestamp(series.ts[0]).strftime("%Y-%m-%d %H:%M:%S") if series.ts else "no telemetry")
    fig.suptitle(f"{series.device_id} · {target}" + (f" · {profile}" if profile else ""), x=0.01, ha="left",
                 fontsize=15, fontweight="bold")
    fig.text(0.01, 0.935, f"{when} + {span / 60:.1f} min · {len(series.telemetry)} telemetry windows of "
             f"{series.window_s:.3g} s · {series.results} results · last state: {status.get('state', '?')}",
             fontsize=10, color="#424242")
    handles = [Patch(color=_REPLAY, alpha=0.3, label="replayed from the device spool"),
               Patch(color=_GAP, alpha=0.35, label="no data")]
    handles += [Patch(color=c, label=f"status {s}") for s, c in _STATUS_COLOURS.items()]
    fig.legend(handles=handles, loc="upper right", ncols=5, fontsize=8, frameon=False, bbox_to_anchor=(0.995, 0.95))
    fig.tight_layout(rect=(0, 0, 1, 0.925))
    path = out / png_name(series.device_id)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_recording(recording: Path, out: Path, device: str = "all") -> list[Path]:
    """Write ``<device>.png`` for every device and ``summary.md`` into ``out``; returns the files written."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise NotAvailableError("matplotlib is not installed; install it with: pip install matplotlib") from err
    out.mkdir(parents=True, exist_ok=True)
    with TelemetryStore(recording, readonly=True) as store:
        series = load_series(store, device)
        sessions = store.sessions()
        rejects = store.reject_count()
    pngs = [plot_device(s, out) for _, s in sorted(series.items())]
    return [*pngs, write_summary(series, sessions, rejects, recording, out)]

"""summary.md: one table row per device, then each device's chart and the facts a chart cannot show
(missing seq numbers, replayed messages, status changes, the recorder's sessions)."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from pathlib import Path
from typing import Any

from edgekit.telemetry.series import DeviceSeries, png_name

_EMPTY = "–"


def _fmt(value: float, spec: str = ".1f") -> str:
    return _EMPTY if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _median(values: list[float]) -> float:
    f = _finite(values)
    return statistics.median(f) if f else math.nan


def _max(values: list[float]) -> float:
    f = _finite(values)
    return max(f) if f else math.nan


def _mean(values: list[float]) -> float:
    f = _finite(values)
    return statistics.fmean(f) if f else math.nan


def _clock(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _ranges(ranges: list[tuple[int, int]], limit: int = 8) -> str:
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in ranges[:limit]]
    return ", ".join(parts) + (f", … ({len(ranges) - limit} more)" if len(ranges) > limit else "")


def device_row(s: DeviceSeries) -> list[str]:
    sources = sorted({str((m.get("power") or {}).get("source")) for m in s.telemetry} - {"None"})
    missing, _ = s.missing_seqs()
    thr = s.values("throughput_rps")
    return [
        f"[{s.device_id}](#{s.device_id.lower()})",
        str(s.last("status").get("state", _EMPTY)),
        str(s.last().get("target") or s.first_status("target") or _EMPTY),
        str(len(s.telemetry)),
        _fmt(_median(s.values("latency_ms", "p50"))),
        _fmt(_max(s.values("latency_ms", "p95"))),
        f"{_fmt(_mean(thr))} / {_fmt(_max(thr))}",
        f"{_fmt(_max(s.values('memory', 'rss_mb')), '.0f')} / {_fmt(_max(s.values('memory', 'cap_mb')), '.0f')}",
        _fmt(_max(s.values("temperature_c"))),
        f"{_fmt(_mean(s.values('power', 'watts')), '.2f')} ({', '.join(sources) or _EMPTY})",
        _fmt(_median([v * 1000 for v in s.values("power", "energy_per_inference_j")]), ".0f"),
        f"{s.results} ({s.result_errors})",
        str(missing),
    ]


HEADER = ["device", "last state", "target", "telemetry", "p50 ms (median)", "p95 ms (max)", "req/s (mean / peak)",
          "RSS max / cap MB", "temp max °C", "power mean W (source)", "mJ/inference (median)", "results (errors)",
          "missing seq"]


def render_summary(series: dict[str, DeviceSeries], sessions: list[dict[str, Any]], rejects: int,
                   recording: Path, png_names: dict[str, str]) -> str:
    all_ts = [t for s in series.values() for t in s.ts] + [t for s in series.values() for t, _ in s.status]
    lines = [f"# Telemetry summary: {recording.name}", ""]
    if all_ts:
        lines.append(f"{len(series)} device(s), {_clock(min(all_ts))} → {_clock(max(all_ts))} "
                     f"({(max(all_ts) - min(all_ts)) / 60:.1f} min of device time).")
    else:
        lines.append("The recording holds no messages.")
    if rejects:
        lines.append(f"{rejects} message(s) were rejected while recording (see the `rejects` table).")
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(device_row(s)) + " |" for _, s in sorted(series.items())]
    lines += ["", "p50 is the median over telemetry windows of each window's p50; p95 is the worst window's p95. "
              "Energy per inference is as reported by the device (an estimate when its power source is "
              "`estimated`)."]
    for device, s in sorted(series.items()):
        missing, ranges = s.missing_seqs()
        replayed = sum(s.historical)
        st = s.last("status")
        lines += ["", f"## {device}", "", f"![{device}]({png_names[device]})", ""]
        facts = [f"profile {s.first_status('profile') or _EMPTY}, runtime {s.first_status('runtime') or _EMPTY}, "
                 f"bundle {(s.first_status('bundle') or {}).get('version', _EMPTY)}",
                 f"{len(s.telemetry)} telemetry windows, {len(s.status)} status messages, {s.results} results "
                 f"({s.result_errors} errors)",
                 f"{replayed} telemetry window(s) arrived late, replayed from the device's spool (`historical`)"]
        facts.append(f"missing seq numbers: {missing} ({_ranges(ranges)})" if missing else
                     "no missing seq numbers: every message the device numbered was recorded")
        changes = [f"{_clock(ts)[11:]} {m.get('state')}" for ts, m in s.status]
        if changes:
            facts.append("status: " + ", ".join(changes[:20]) + (" …" if len(changes) > 20 else ""))
        if st.get("state") == "lost":
            facts.append(f"**last seen lost** at {_clock(st.get('ts', 0))}: {st.get('reason', 'no reason given')}")
        lines += [f"- {f}" for f in facts]
    if sessions:
        lines += ["", "## Recording sessions", "", "| started | ended | broker | received | stored | duplicates "
                  "| rejected | reconnects |", "|---|---|---|---|---|---|---|---|"]
        for ses in sessions:
            lines.append("| " + " | ".join([_clock(ses["started"]), _clock(ses["ended"]) if ses["ended"] else
                                             "(still running or killed)", str(ses["broker"])] +
                                            [str(ses[k]) if ses[k] is not None else _EMPTY for k in
                                             ("received", "stored", "duplicates", "rejected", "reconnects")]) + " |")
    return "\n".join(lines) + "\n"


def write_summary(series: dict[str, DeviceSeries], sessions: list[dict[str, Any]], rejects: int,
                  recording: Path, out: Path) -> Path:
    path = out / "summary.md"
    path.write_text(render_summary(series, sessions, rejects, recording,
                                   {d: png_name(d) for d in series}), encoding="utf-8")
    return path

"""The ``watch`` table: a pure function of the latest messages per device and the current time."""

from __future__ import annotations

import io
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgekit.telemetry.fleet import Latest

SILENT_AFTER_WINDOWS = 3  # an online device with no message for 3 telemetry windows is shown as silent
SILENT_MIN_S = 15.0

_STATE_STYLE = {"serving": "green", "idle": "cyan", "online": "green", "overloaded": "bold yellow",
                "offline": "dim", "lost": "bold red", "silent": "yellow", "unknown": "dim"}


def device_state(entry: dict[str, Any], now: float) -> str:
    """lost / offline from the status; silent when an online device stopped talking; else the telemetry state."""
    status, telemetry = entry.get("status") or {}, entry.get("telemetry") or {}
    state = status.get("state")
    if state in ("lost", "offline"):
        return str(state)
    window = telemetry.get("window_s") or 5.0
    if now - entry.get("last_seen", now) > max(SILENT_MIN_S, SILENT_AFTER_WINDOWS * window):
        return "silent"
    return str(telemetry.get("state") or state or "unknown")


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return fmt.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _memory(mem: dict[str, Any]) -> Text:
    rss, cap = mem.get("rss_mb"), mem.get("cap_mb")
    if not isinstance(rss, int | float):
        return Text("–")
    if not isinstance(cap, int | float) or cap <= 0:
        return Text(f"{rss:.0f} MB")
    share = rss / cap
    style = "bold red" if share >= 0.95 else "yellow" if share >= 0.8 else ""
    return Text(f"{rss:.0f}/{cap:.0f} MB {share:.0%}", style=style)


def _temperature(value: Any) -> Text:
    if not isinstance(value, int | float):
        return Text("–")
    return Text(f"{value:.1f}", style="bold red" if value >= 80 else "yellow" if value >= 70 else "")


def _power(power: dict[str, Any]) -> str:
    watts, source = power.get("watts"), power.get("source")
    if not isinstance(watts, int | float):
        return f"– ({source})" if source else "–"
    return f"{watts:.1f} W {'est.' if source == 'estimated' else source or ''}".rstrip()


def _energy(power: dict[str, Any]) -> str:
    j = power.get("energy_per_inference_j")
    if not isinstance(j, int | float):
        return "–"
    return f"{j * 1000:.0f} mJ" if j < 1 else f"{j:.2f} J"


# Columns in display order, and the order they give way when the terminal is too narrow for all of them
# (the least telling first); device, state, latency, throughput and memory always stay.
_COLUMNS = (("device", "left"), ("state", "left"), ("target", "left"), ("p50/p95 ms", "right"), ("req/s", "right"),
            ("RSS / cap", "right"), ("CPU %", "right"), ("temp °C", "right"), ("power", "right"),
            ("J/inf", "right"), ("last seen", "right"))
_DROP_ORDER = ("J/inf", "CPU %", "last seen", "target", "power", "temp °C")


def _row(device: str, entry: dict[str, Any], now: float) -> dict[str, Text | str]:
    status, tel = entry.get("status") or {}, entry.get("telemetry") or {}
    state = device_state(entry, now)
    lat = tel.get("latency_ms") or {}
    return {
        "device": Text(device, style="bold"),
        "state": Text(state, style=_STATE_STYLE.get(state, "")),
        "target": str(tel.get("target") or status.get("target") or "–"),
        "p50/p95 ms": f"{_num(lat.get('p50'))}/{_num(lat.get('p95'))}",
        "req/s": _num(tel.get("throughput_rps")),
        "RSS / cap": _memory(tel.get("memory") or {}),
        "CPU %": _num(tel.get("cpu_percent"), "{:.0f}"),
        "temp °C": _temperature(tel.get("temperature_c")),
        "power": _power(tel.get("power") or {}),
        "J/inf": _energy(tel.get("power") or {}),
        "last seen": _ago(now - entry.get("last_seen", now)),
    }


def _fitting_columns(rows: list[dict[str, Text | str]], width: int | None) -> list[tuple[str, str]]:
    """The columns that fit in ``width`` characters, dropping the least telling ones first."""
    columns = list(_COLUMNS)
    if width is None:
        return columns

    def needed(cols: list[tuple[str, str]]) -> int:  # cell + right padding, plus one divider between columns
        return sum(max([len(name), *(len(str(r[name])) for r in rows)]) + 1 for name, _ in cols) + len(cols) - 1

    for name in _DROP_ORDER:
        if needed(columns) <= width:
            break
        columns = [c for c in columns if c[0] != name]
    return columns


def render_fleet(latest: Latest, now: float | None = None, *, title: str | None = None,
                 width: int | None = None) -> Table:
    """One frame of the fleet table, one row per device (sorted by id); with ``width`` (the terminal's), the
    least telling columns give way rather than every cell being cut to an ellipsis."""
    now = time.time() if now is None else now
    rows = [_row(device, latest[device], now) for device in sorted(latest)]
    table = Table(title=title, title_justify="left", expand=False, header_style="bold", box=box.SIMPLE_HEAD,
                  padding=(0, 1, 0, 0), show_edge=False)
    columns = _fitting_columns(rows, width)
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for device, row in zip(sorted(latest), rows, strict=True):
        state = device_state(latest[device], now)
        table.add_row(*(row[name] for name, _ in columns), style="dim" if state in ("lost", "offline") else "")
    lost = sum(device_state(e, now) == "lost" for e in latest.values())
    table.caption = (f"{len(latest)} device(s){f', {lost} lost' if lost else ''} · "
                     f"{time.strftime('%H:%M:%S', time.localtime(now))}")
    table.caption_justify = "left"
    return table


def frame_text(latest: Latest, now: float | None = None, width: int = 160, title: str | None = None) -> str:
    """The frame as plain text (no colour), e.g. for tests and logs."""
    buf = io.StringIO()
    Console(width=width, file=buf, color_system=None).print(render_fleet(latest, now, title=title, width=width))
    return buf.getvalue()

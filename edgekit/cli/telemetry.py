"""``edgekit telemetry watch / record / plot``: fleet telemetry consumers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("telemetry", help="watch, record and plot fleet telemetry")
    tsub = p.add_subparsers(dest="telemetry_command", metavar="ACTION", required=True)
    w = tsub.add_parser("watch", help="live table of every device")
    w.add_argument("--broker", required=True)
    w.add_argument("--device", default="all", help="a device id, or all")
    w.set_defaults(func=pending("edgekit telemetry watch"))
    r = tsub.add_parser("record", help="record status, telemetry and results to SQLite")
    r.add_argument("--broker", required=True)
    r.add_argument("--out", type=Path, required=True, help="SQLite file")
    r.add_argument("--share", metavar="GROUP", help="join the MQTT v5 shared subscription $share/GROUP/...")
    r.set_defaults(func=pending("edgekit telemetry record"))
    pl = tsub.add_parser("plot", help="PNG charts and a Markdown summary from a recording")
    pl.add_argument("file", type=Path, help="SQLite file written by 'telemetry record'")
    pl.add_argument("--out", type=Path, required=True, help="output directory")
    pl.set_defaults(func=pending("edgekit telemetry plot"))

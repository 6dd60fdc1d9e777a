"""``edgekit telemetry watch / record / plot``: fleet telemetry consumers."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.client.connection import add_broker_args

RECORD_EPILOG = """\
Messages are de-duplicated by (device, seq): replays from a device's spool (historical) and retained statuses
delivered again are stored once. Several recorders can split the load with --share GROUP (an MQTT v5 shared
subscription; retained status messages are not delivered to shared subscriptions, live ones are).
Stops on Ctrl-C, SIGTERM or after --duration, and prints a summary.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("telemetry", help="watch, record and plot fleet telemetry")
    tsub = p.add_subparsers(dest="telemetry_command", metavar="ACTION", required=True)

    w = tsub.add_parser("watch", help="live table of every device",
                        description="A live table of every device (state, target, latency, throughput, memory, "
                        "CPU, temperature, power, last seen), updated in place.")
    add_broker_args(w)
    w.add_argument("--device", default="all", help="a device id, or all (default)")
    w.add_argument("--once", action="store_true", help="listen briefly (--duration, default 2 s), print one table")
    w.add_argument("--duration", type=float, help="stop after this many seconds")
    w.set_defaults(func=run_watch)

    r = tsub.add_parser("record", help="record status, telemetry and results to SQLite", epilog=RECORD_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_broker_args(r)
    r.add_argument("--out", type=Path, required=True, help="SQLite file (created, or appended to)")
    r.add_argument("--device", default="all", help="a device id, or all (default)")
    r.add_argument("--share", metavar="GROUP", help="join the MQTT v5 shared subscription $share/GROUP/...")
    r.add_argument("--duration", type=float, help="stop after this many seconds")
    r.add_argument("--validate", action="store_true",
                   help="check every payload against its JSON Schema and reject those that do not match")
    r.add_argument("--client-id", help="MQTT client id (default: stable for this host and --out, so a restarted "
                   "recorder resumes its session)")
    r.set_defaults(func=run_record)

    pl = tsub.add_parser("plot", help="PNG charts and a Markdown summary from a recording")
    pl.add_argument("file", type=Path, help="SQLite file written by 'telemetry record'")
    pl.add_argument("--out", type=Path, required=True, help="output directory")
    pl.add_argument("--device", default="all", help="a device id, or all (default)")
    pl.set_defaults(func=run_plot)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so a run ends cleanly (summary printed, files closed)."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_watch(args: argparse.Namespace) -> int:
    from edgekit.client import broker_options_from_args
    from edgekit.telemetry.watch import watch

    with _stop_on_signals() as stop:
        watch(broker_options_from_args(args), device=args.device, once=args.once, duration=args.duration,
              stop=stop)
    return 0


def run_record(args: argparse.Namespace) -> int:
    from edgekit.client import broker_options_from_args
    from edgekit.telemetry.record import Recorder
    from edgekit.telemetry.store import TelemetryStore

    options = broker_options_from_args(args)
    with TelemetryStore(args.out) as store, _stop_on_signals() as stop:
        recorder = Recorder(store, options, device=args.device, share=args.share, validate=args.validate,
                            client_id=args.client_id)
        print(f"recording {', '.join(recorder.subscriptions)} from {options.url} to {args.out}"
              + (f" for {args.duration:g} s" if args.duration else " (Ctrl-C to stop)"), flush=True)
        stats = recorder.run(duration=args.duration, stop=stop)
    print("\n".join(stats.lines(str(args.out))), flush=True)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from edgekit.telemetry.plot import plot_recording

    written = plot_recording(args.file, args.out, device=args.device)
    for path in written:
        print(f"  wrote {path}")
    if len(written) == 1:
        print(f"{args.file} holds no messages{'' if args.device == 'all' else f' from {args.device}'}: "
              "only the summary was written")
    return 0

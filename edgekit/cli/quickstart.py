"""``edgekit quickstart``: the whole path on this machine with the builtin model and an embedded broker."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from edgekit.client.connection import add_broker_args

EPILOG = """\
steps: detect the profile; convert builtin:all-minilm-l6-v2 for it (cached in $EDGEKIT_CACHE/quickstart, default
~/.cache/edgekit/quickstart, or in --keep DIR); bundle; verify; start a broker on loopback (mosquitto, else amqtt;
or use --broker); start 'edgekit agent' as a separate process; send sentences and show which are most similar;
show live telemetry under load; shut everything down.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("quickstart", help="convert, verify, bundle, serve and query the builtin model here",
                       description="The whole edgekit path on this machine, with the builtin demo model.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", help="device profile (default: the detected one)")
    add_broker_args(p, required=False, help="use this broker (mqtt:// or mqtts://) instead of an embedded one")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep everything (converted artifacts, bundle, logs) in DIR; a re-run reuses its conversion")
    p.add_argument("--targets", help="convert only these targets (comma-separated; default: the profile's)")
    p.add_argument("--embedded-broker", choices=("auto", "mosquitto", "amqtt"), default="auto",
                   help="which embedded broker to start when --broker is not given (default auto: mosquitto if "
                   "installed, else amqtt)")
    p.add_argument("--demo-seconds", type=float, default=6.0, help="how long to show live telemetry (default 6)")
    p.add_argument("--device-id", default="quickstart", help="the agent's device id (default quickstart)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.client import broker_options_from_args
    from edgekit.quickstart import Quickstart, QuickstartOptions

    options = QuickstartOptions(
        profile=args.profile, broker=broker_options_from_args(args) if args.broker else None, keep=args.keep,
        targets=args.targets, embedded_broker=args.embedded_broker, demo_seconds=args.demo_seconds,
        device_id=args.device_id)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds every step, so the agent and the broker are stopped

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        return Quickstart(options).run()
    finally:
        signal.signal(signal.SIGTERM, previous)

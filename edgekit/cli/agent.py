"""``edgekit agent``: the on-device agent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  edgekit agent --bundle pi4-bundle.tar.gz --device-id pi-01 --broker mqtt://192.168.1.10:1883
  edgekit agent --config /etc/edgekit/agent.toml          # every flag has a key of the same name
  edgekit agent --bundle out/pi4 --device-id pi-01 --broker mqtts://broker.lan:8883 \\
      --ca-file ca.pem --cert-file pi-01.crt --key-file pi-01.key --memory-cap 256

topics: edgekit/v1/<device-id>/{status,telemetry,results,infer,cmd}. Flags override the --config file.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="run the on-device inference agent",
                       description="Serve a bundle on this device: local inference under a memory cap, dynamic "
                       "batching, results and telemetry over MQTT, a disk spool so nothing is lost offline.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="bundle directory, .tar.gz or .zip")
    p.add_argument("--device-id", help="this device's id (MQTT topic edgekit/v1/<id>/...)")
    p.add_argument("--broker", help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--memory-cap", type=int, metavar="MB", dest="memory_cap_mb",
                   help="memory cap in MB (default: the profile's)")
    p.add_argument("--config", type=Path, help="agent config TOML (keys as the long flags, with underscores)")
    p.add_argument("--profile", help="device profile name or .toml (default: detected)")
    p.add_argument("--target", help="run this artifact of the bundle instead of the automatic choice")
    p.add_argument("--telemetry-interval", type=float, metavar="S", dest="telemetry_interval_s",
                   help="seconds between telemetry messages (default 10)")
    p.add_argument("--spool", dest="spool_path", metavar="PATH",
                   help="SQLite spool file (default $STATE_DIRECTORY or ~/.local/state/edgekit/<id>.spool.sqlite)")
    p.add_argument("--spool-max-mb", type=int, metavar="MB", help="spool size cap (default 64)")
    p.add_argument("--max-batch", type=int, metavar="N", help="largest batch (default: the profile's)")
    p.add_argument("--max-wait-ms", type=int, metavar="MS", help="longest wait to fill a batch (default: profile's)")
    p.add_argument("--threads", type=int, help="inference threads (default: the profile's)")
    p.add_argument("--mqtt-version", choices=("5", "3.1.1"), help="MQTT protocol version (default 5)")
    p.add_argument("--username", help="MQTT username")
    p.add_argument("--password-file", metavar="FILE", help="file holding the MQTT password")
    p.add_argument("--ca-file", metavar="FILE", help="CA certificate(s) to verify an mqtts:// broker")
    p.add_argument("--cert-file", metavar="FILE", help="client certificate (PEM) for mqtts://")
    p.add_argument("--key-file", metavar="FILE", help="client private key (PEM) for mqtts://")
    p.set_defaults(func=run)


OVERRIDES = ("bundle", "device_id", "broker", "memory_cap_mb", "profile", "target", "telemetry_interval_s",
             "spool_path", "spool_max_mb", "max_batch", "max_wait_ms", "threads", "mqtt_version", "username",
             "password_file", "ca_file", "cert_file", "key_file")


def run(args: argparse.Namespace) -> int:
    from edgekit.agent.config import load_config
    from edgekit.agent.service import run_agent

    config = load_config(args.config, {key: getattr(args, key) for key in OVERRIDES})
    return run_agent(config)

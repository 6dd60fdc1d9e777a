"""``edgekit agent``: the on-device agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="run the on-device inference agent",
                       description="Serve a bundle on this device: local inference under a memory cap, dynamic "
                       "batching, results and telemetry over MQTT, a disk spool so nothing is lost offline.")
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory, .tar.gz or .zip")
    p.add_argument("--device-id", required=True, help="this device's id (MQTT topic edgekit/v1/<id>/...)")
    p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--memory-cap", type=int, metavar="MB", help="memory cap in MB (default: the profile's)")
    p.add_argument("--config", type=Path, help="agent config TOML")
    p.set_defaults(func=pending("edgekit agent"))

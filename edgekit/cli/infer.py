"""``edgekit infer``: request/response client for a running agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("infer", help="send inference requests to an agent over MQTT")
    p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--device-id", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", action="append", help="a sentence (repeatable)")
    g.add_argument("--input", type=Path, help=".npy, .npz or .json input tensors")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    p.add_argument("--json", action="store_true", help="print the raw JSON reply")
    p.set_defaults(func=pending("edgekit infer"))

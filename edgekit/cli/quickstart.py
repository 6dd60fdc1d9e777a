"""``edgekit quickstart``: the whole path on this machine with the builtin model and an embedded broker."""

from __future__ import annotations

from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("quickstart", help="convert, verify, bundle, serve and query the builtin model here")
    p.add_argument("--profile", help="device profile (default: the detected one)")
    p.add_argument("--broker", help="use this broker instead of an embedded one")
    p.set_defaults(func=pending("edgekit quickstart"))

"""``edgekit provision HOST``: install and start the agent on a running Linux device."""

from __future__ import annotations

from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("provision", help="install the agent on a running Linux device over SSH")
    p.add_argument("host", nargs="?", help="user@host")
    p.set_defaults(func=pending("edgekit provision"))
